//! The one short-hash helper: a stable name from content (spec hashes,
//! config and secret versions, git cache folders, /etc/hosts blocks), in
//! lower-case hex like every hash the controller writes.

use sha2::{Digest, Sha256};

/// The first `bytes` bytes of the SHA-256 of `data`, as hex: a short, stable name.
pub fn sha256_prefix(data: &[u8], bytes: usize) -> String {
    let digest = Sha256::digest(data);
    hex::encode(&digest[..bytes.min(digest.len())])
}

/// The whole SHA-256 of `data`, hex, as `sha256sum` prints it (a board
/// reports its files so).
pub fn sha256_hex(data: &[u8]) -> String {
    sha256_prefix(data, 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_prefixes() {
        // SHA-256("abc") starts with ba7816bf8f01cfea.
        assert_eq!(sha256_prefix(b"abc", 8), "ba7816bf8f01cfea");
        assert_eq!(sha256_prefix(b"abc", 64).len(), 64);
    }
}
