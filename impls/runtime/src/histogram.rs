//! HdrHistograms as text: the standard V2 compressed encoding (deflate), base64-encoded,
//! readable by any HdrHistogram tool. Results files and unit stats replies both use it.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Why an encoded histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramCodecError {
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("not an HdrHistogram V2 encoding: {0}")]
    Decode(String),
    #[error("histogram out of bounds: {0}")]
    Bounds(String),
}

/// Largest value a decoded histogram may track (ns of an hour, µs of 36 days): more than
/// any grainbench figure, and small enough that its counts array stays a few MiB.
pub const MAX_DECODED_HIGHEST: u64 = 3_600_000_000_000;
/// Most significant digits a decoded histogram may have (grainbench writes 3).
pub const MAX_DECODED_DIGITS: u32 = 5;
/// Largest compressed or uncompressed payload a decoded histogram may declare.
pub const MAX_DECODED_BYTES: u32 = 16 * 1024 * 1024;

const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

/// Reads the header of a V2 (deflate) encoding without building the histogram, and
/// refuses one whose declared size would make the decoder allocate without bound: a
/// results file is untrusted input.
fn check_header(bytes: &[u8]) -> Result<(), HistogramCodecError> {
    use std::io::Read as _;
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let be64 = |b: &[u8]| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let malformed = |what: &str| HistogramCodecError::Decode(what.to_string());
    if bytes.len() < 8 || be32(bytes) != V2_COMPRESSED_COOKIE {
        return Err(malformed("no V2 compressed cookie"));
    }
    if be32(&bytes[4..]) > MAX_DECODED_BYTES {
        return Err(HistogramCodecError::Bounds(format!(
            "compressed length {} above {MAX_DECODED_BYTES}",
            be32(&bytes[4..])
        )));
    }
    let mut header = [0u8; 40];
    flate2::read::ZlibDecoder::new(&bytes[8..])
        .read_exact(&mut header)
        .map_err(|_| malformed("truncated V2 header"))?;
    if be32(&header) != V2_COOKIE {
        return Err(malformed("no V2 cookie"));
    }
    let (payload, digits) = (be32(&header[4..]), be32(&header[12..]));
    let (lowest, highest) = (be64(&header[16..]), be64(&header[24..]));
    if payload > MAX_DECODED_BYTES
        || digits > MAX_DECODED_DIGITS
        || lowest == 0
        || highest > MAX_DECODED_HIGHEST
        || highest < lowest.saturating_mul(2)
    {
        return Err(HistogramCodecError::Bounds(format!(
            "payload {payload} bytes, {digits} significant digits, values {lowest}..{highest}; \
             allowed: payload ≤ {MAX_DECODED_BYTES}, digits ≤ {MAX_DECODED_DIGITS}, \
             1 ≤ lowest, 2·lowest ≤ highest ≤ {MAX_DECODED_HIGHEST}"
        )));
    }
    Ok(())
}

/// Encodes a histogram as base64 of its compressed V2 encoding.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(histogram, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(error) => {
            tracing::error!(?error, "cannot serialize a histogram");
            String::new()
        }
    }
}

/// Decodes [`encode`]'s output (or any HdrHistogram V2 tool's, base64-encoded).
pub fn decode(encoded: &str) -> Result<Histogram<u64>, HistogramCodecError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim())?;
    check_header(&bytes)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramCodecError::Decode(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        histogram.record(42).unwrap();
        histogram.record(4200).unwrap();
        let back = decode(&encode(&histogram)).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.max(), histogram.max());
        assert!(matches!(decode("%%%"), Err(HistogramCodecError::Base64(_))));
        assert!(matches!(
            decode("AAAA"),
            Err(HistogramCodecError::Decode(_))
        ));
    }

    /// A valid V2 deflate encoding whose header declares these bounds (no counts).
    fn forged(digits: u32, lowest: u64, highest: u64) -> String {
        use std::io::Write as _;
        let mut header = Vec::new();
        header.extend_from_slice(&V2_COOKIE.to_be_bytes());
        header.extend_from_slice(&0u32.to_be_bytes()); // payload length
        header.extend_from_slice(&0u32.to_be_bytes()); // normalizing offset
        header.extend_from_slice(&digits.to_be_bytes());
        header.extend_from_slice(&lowest.to_be_bytes());
        header.extend_from_slice(&highest.to_be_bytes());
        header.extend_from_slice(&1f64.to_bits().to_be_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&header).unwrap();
        let body = z.finish().unwrap();
        let mut bytes = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_histogram_declaring_a_huge_range_is_refused_before_any_allocation() {
        // 5 digits up to u64::MAX would ask the decoder for gigabytes of counts.
        let huge = forged(5, 1, u64::MAX);
        assert!(huge.len() < 100, "a short string: {}", huge.len());
        assert!(matches!(decode(&huge), Err(HistogramCodecError::Bounds(_))));
        assert!(matches!(
            decode(&forged(9, 1, 1000)),
            Err(HistogramCodecError::Bounds(_))
        ));
        assert!(matches!(
            decode(&forged(3, 0, 1000)),
            Err(HistogramCodecError::Bounds(_))
        ));
        // What grainbench writes is within bounds.
        assert!(decode(&forged(3, 1, 60_000_000)).is_ok());
        let errors_ns = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        assert!(decode(&encode(&errors_ns)).is_ok());
    }
}
