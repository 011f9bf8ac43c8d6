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
}
