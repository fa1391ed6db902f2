//! Lower-case hex, the one spelling of every hash and signature the
//! controller writes (spec hashes, revisions of directories, webhook
//! signatures, git cache names).

use sha2::{Digest, Sha256};

/// `bytes` as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The first `bytes` bytes of the SHA-256 of `data`, as hex: a short, stable name.
pub fn sha256_prefix(data: &[u8], bytes: usize) -> String {
    let digest = Sha256::digest(data);
    encode(&digest[..bytes.min(digest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_hash_prefixes() {
        assert_eq!(encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // SHA-256("abc") starts with ba7816bf8f01cfea.
        assert_eq!(sha256_prefix(b"abc", 8), "ba7816bf8f01cfea");
        assert_eq!(sha256_prefix(b"abc", 64).len(), 64);
    }
}
