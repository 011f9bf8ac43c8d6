//! Deterministic digests of business results (FNV-1a 64), so two architectures can be
//! checked to return the same result for the same request.

/// Incremental FNV-1a 64-bit digest.
#[derive(Debug, Clone, Copy)]
pub struct Digest(u64);

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Digest {
    fn default() -> Self {
        Self::new()
    }
}

impl Digest {
    pub fn new() -> Self {
        Digest(OFFSET_BASIS)
    }

    /// Adds bytes, followed by a separator so that `("ab","c")` and `("a","bc")` differ.
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for byte in bytes.iter().chain(std::iter::once(&0xffu8)) {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    pub fn value(&self) -> u64 {
        self.0
    }

    /// The digest as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Lower-case hex of `bytes` (a trace id, a file's SHA-256).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_fields_and_is_stable() {
        let ab_c = Digest::new().add(b"ab").add(b"c").value();
        let a_bc = Digest::new().add(b"a").add(b"bc").value();
        assert_ne!(ab_c, a_bc);
        assert_eq!(Digest::new().add(b"x").hex(), Digest::new().add(b"x").hex());
        assert_eq!(Digest::new().hex().len(), 16);
    }
}
