//! Decrypting age files (<https://age-encryption.org/v1>) with X25519
//! identities, the `AGE-SECRET-KEY-1...` lines `age-keygen` writes.
//!
//! Only what a controller needs: decryption, binary and ASCII-armored files,
//! X25519 recipients. Passphrase (scrypt), SSH and plugin recipients are
//! refused with a message saying so. The tests compare every path with the
//! `age` command line tool on the same files.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use curve25519_dalek::montgomery::MontgomeryPoint;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why an age file did not decrypt. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgeError {
    /// The file has neither the binary header nor the ASCII armor.
    #[error("not an age file (no `age-encryption.org/v1` header or armor)")]
    NotAge,
    /// The armor's lines or Base64 are malformed.
    #[error("broken ASCII armor: {0}")]
    Armor(&'static str),
    /// The header's stanzas or MAC line are malformed.
    #[error("broken age header: {0}")]
    Header(&'static str),
    /// The file is for a passphrase (scrypt), which nobody types under `run`.
    #[error(
        "encrypted with a passphrase; only X25519 recipients (age1...) can be decrypted unattended"
    )]
    Passphrase,
    /// None of the controller's identities is a recipient of the file.
    #[error("none of the {identities} identities matches the file's {stanzas} X25519 recipient(s) (other kinds: {others}); encrypt it to the controller's recipient too")]
    NoMatchingIdentity {
        identities: usize,
        stanzas: usize,
        others: String,
    },
    /// The header was changed after encryption.
    #[error("the header's MAC does not match: the file was altered")]
    HeaderMac,
    /// A payload chunk fails authentication (changed or cut short).
    #[error("the payload does not decrypt (altered or truncated file)")]
    Payload,
    /// An identity (`AGE-SECRET-KEY-1...`) is malformed.
    #[error("not an age identity: {0}")]
    BadIdentity(&'static str),
}

/// An X25519 identity: the secret scalar and the recipient it answers to.
#[derive(Clone)]
pub struct Identity {
    secret: [u8; 32],
    recipient: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.recipient())
    }
}

const SECRET_KEY_HRP: &str = "age-secret-key-";
const RECIPIENT_HRP: &str = "age";

impl Identity {
    /// One `AGE-SECRET-KEY-1...` line.
    pub fn parse(line: &str) -> Result<Self, AgeError> {
        let (hrp, data, variant) = bech32::decode(line.trim()).map_err(|_| {
            AgeError::BadIdentity("not valid Bech32 (expected AGE-SECRET-KEY-1...)")
        })?;
        if hrp != SECRET_KEY_HRP || variant != bech32::Variant::Bech32 {
            return Err(AgeError::BadIdentity("expected AGE-SECRET-KEY-1..."));
        }
        let bytes = bech32::FromBase32::from_base32(&data)
            .map_err(|_| AgeError::BadIdentity("bad key data"))?;
        let secret: [u8; 32] = <Vec<u8>>::try_into(bytes)
            .map_err(|_| AgeError::BadIdentity("the key is not 32 bytes"))?;
        let recipient = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        Ok(Self { secret, recipient })
    }

    /// The public `age1...` recipient files must be encrypted to.
    pub fn recipient(&self) -> String {
        bech32::encode(
            RECIPIENT_HRP,
            bech32::ToBase32::to_base32(&self.recipient),
            bech32::Variant::Bech32,
        )
        .unwrap_or_default()
    }

    /// The file key of an X25519 stanza, if it was made for this identity.
    fn unwrap(&self, share: &[u8; 32], body: &[u8]) -> Option<[u8; 16]> {
        let shared = MontgomeryPoint(*share).mul_clamped(self.secret).to_bytes();
        if shared == [0; 32] {
            return None;
        }
        let mut salt = Vec::with_capacity(64);
        salt.extend_from_slice(share);
        salt.extend_from_slice(&self.recipient);
        let wrap_key: [u8; 32] = hkdf(&salt, &shared, b"age-encryption.org/v1/X25519")?;
        let cipher = ChaCha20Poly1305::new_from_slice(&wrap_key).ok()?;
        let key = cipher.decrypt(&[0u8; 12].into(), body).ok()?;
        key.try_into().ok()
    }
}

/// Every identity of an identity file: `AGE-SECRET-KEY-1...` lines; blank
/// lines and `#` comments (as `age-keygen` writes them) are skipped.
pub fn parse_identities(text: &str) -> Result<Vec<Identity>, AgeError> {
    let identities = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            if line.starts_with("AGE-PLUGIN-") {
                Err(AgeError::BadIdentity(
                    "plugin identities (AGE-PLUGIN-...) are not supported",
                ))
            } else {
                Identity::parse(line)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if identities.is_empty() {
        return Err(AgeError::BadIdentity("no AGE-SECRET-KEY-1... line"));
    }
    Ok(identities)
}

const MAGIC: &[u8] = b"age-encryption.org/v1\n";
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";

/// Whether `bytes` are an age file (binary or armored): what keeps a file
/// that is encrypted from being deployed as its ciphertext.
pub fn is_age(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC) || trim_ascii(bytes).starts_with(ARMOR_BEGIN.as_bytes())
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Decrypts an age file, binary or armored, with the first identity that
/// opens one of its X25519 stanzas.
pub fn decrypt(bytes: &[u8], identities: &[Identity]) -> Result<Vec<u8>, AgeError> {
    if bytes.starts_with(MAGIC) {
        return decrypt_binary(bytes, identities);
    }
    if trim_ascii(bytes).starts_with(ARMOR_BEGIN.as_bytes()) {
        return decrypt_binary(&dearmor(bytes)?, identities);
    }
    Err(AgeError::NotAge)
}

/// The binary file inside the ASCII armor (PEM-like, standard base64 with
/// padding, lines of 64 columns).
fn dearmor(bytes: &[u8]) -> Result<Vec<u8>, AgeError> {
    let text = std::str::from_utf8(bytes).map_err(|_| AgeError::Armor("not ASCII"))?;
    let text = text.trim();
    let inner = text
        .strip_prefix(ARMOR_BEGIN)
        .and_then(|rest| rest.strip_suffix(ARMOR_END))
        .ok_or(AgeError::Armor("missing BEGIN or END line"))?;
    let lines: Vec<&str> = inner
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.iter().any(|l| l.len() > 64) {
        return Err(AgeError::Armor("a line is longer than 64 columns"));
    }
    STANDARD
        .decode(lines.concat())
        .map_err(|_| AgeError::Armor("bad base64"))
}

/// One recipient stanza: `-> TYPE ARGS...` and its body.
struct Stanza<'a> {
    kind: &'a str,
    args: Vec<&'a str>,
    body: Vec<u8>,
}

/// The parsed header: stanzas, the bytes its MAC covers, the MAC, and where
/// the payload starts.
struct Header<'a> {
    stanzas: Vec<Stanza<'a>>,
    mac_input: &'a [u8],
    mac: Vec<u8>,
    payload_start: usize,
}

fn parse_header(bytes: &[u8]) -> Result<Header<'_>, AgeError> {
    let bad = AgeError::Header;
    let mut pos = MAGIC.len();
    let mut stanzas = Vec::new();
    let next_line = |pos: &mut usize| -> Result<&[u8], AgeError> {
        let rest = &bytes[*pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(bad("unterminated header line"))?;
        *pos += end + 1;
        Ok(&rest[..end])
    };
    loop {
        let line_start = pos;
        let line = next_line(&mut pos)?;
        let line = std::str::from_utf8(line).map_err(|_| bad("non-ASCII header line"))?;
        if let Some(mac) = line.strip_prefix("--- ") {
            let mac = STANDARD_NO_PAD
                .decode(mac)
                .map_err(|_| bad("bad MAC encoding"))?;
            if mac.len() != 32 {
                return Err(bad("bad MAC length"));
            }
            return Ok(Header {
                stanzas,
                mac_input: &bytes[..line_start + 3],
                mac,
                payload_start: pos,
            });
        }
        let Some(args) = line.strip_prefix("-> ") else {
            return Err(bad("expected `-> ` or `--- `"));
        };
        let mut words = args.split(' ');
        let kind = words
            .next()
            .filter(|k| !k.is_empty())
            .ok_or(bad("empty stanza"))?;
        let args: Vec<&str> = words.collect();
        let mut body = Vec::new();
        loop {
            let line = next_line(&mut pos)?;
            if line.len() > 64 {
                return Err(bad("stanza body line longer than 64 columns"));
            }
            let chunk = STANDARD_NO_PAD
                .decode(line)
                .map_err(|_| bad("bad stanza body encoding"))?;
            body.extend_from_slice(&chunk);
            if line.len() < 64 {
                break;
            }
        }
        stanzas.push(Stanza { kind, args, body });
    }
}

fn decrypt_binary(bytes: &[u8], identities: &[Identity]) -> Result<Vec<u8>, AgeError> {
    let header = parse_header(bytes)?;
    if header.stanzas.iter().any(|s| s.kind == "scrypt") {
        return Err(AgeError::Passphrase);
    }
    let mut x25519 = 0;
    let mut others = Vec::new();
    let mut file_key = None;
    for stanza in &header.stanzas {
        if stanza.kind != "X25519" {
            others.push(stanza.kind.to_string());
            continue;
        }
        x25519 += 1;
        let [share] = stanza.args[..] else {
            return Err(AgeError::Header(
                "X25519 stanza without exactly one argument",
            ));
        };
        let share: [u8; 32] = STANDARD_NO_PAD
            .decode(share)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(AgeError::Header("bad X25519 share"))?;
        if stanza.body.len() != 32 {
            return Err(AgeError::Header("bad X25519 body length"));
        }
        if let Some(key) = identities
            .iter()
            .find_map(|identity| identity.unwrap(&share, &stanza.body))
        {
            file_key = Some(key);
            break;
        }
    }
    let Some(file_key) = file_key else {
        others.dedup();
        return Err(AgeError::NoMatchingIdentity {
            identities: identities.len(),
            stanzas: x25519,
            others: if others.is_empty() {
                "none".into()
            } else {
                others.join(", ")
            },
        });
    };
    let mac_key: [u8; 32] = hkdf(&[], &file_key, b"header").ok_or(AgeError::HeaderMac)?;
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&mac_key)
        .map_err(|_| AgeError::HeaderMac)?;
    mac.update(header.mac_input);
    mac.verify_slice(&header.mac)
        .map_err(|_| AgeError::HeaderMac)?;
    decrypt_payload(&bytes[header.payload_start..], &file_key)
}

/// The STREAM construction: 64 KiB chunks, each sealed with a nonce of an
/// 11-byte counter and a last-chunk flag.
fn decrypt_payload(payload: &[u8], file_key: &[u8; 16]) -> Result<Vec<u8>, AgeError> {
    const CHUNK: usize = 64 * 1024;
    const TAG: usize = 16;
    if payload.len() < 16 {
        return Err(AgeError::Payload);
    }
    let (nonce, mut rest) = payload.split_at(16);
    let key: [u8; 32] = hkdf(nonce, file_key, b"payload").ok_or(AgeError::Payload)?;
    let cipher = ChaCha20Poly1305::new_from_slice(&key).map_err(|_| AgeError::Payload)?;
    let mut plaintext = Vec::with_capacity(payload.len());
    let mut counter: u128 = 0;
    loop {
        let last = rest.len() <= CHUNK + TAG;
        let (chunk, tail) = rest.split_at(rest.len().min(CHUNK + TAG));
        let mut chunk_nonce = [0u8; 12];
        chunk_nonce[..11].copy_from_slice(&counter.to_be_bytes()[5..]);
        chunk_nonce[11] = u8::from(last);
        let opened = cipher
            .decrypt(&chunk_nonce.into(), chunk)
            .map_err(|_| AgeError::Payload)?;
        if last && opened.is_empty() && counter > 0 {
            return Err(AgeError::Payload);
        }
        plaintext.extend_from_slice(&opened);
        if last {
            return Ok(plaintext);
        }
        rest = tail;
        counter += 1;
    }
}

/// HKDF-SHA-256 of `N` bytes.
fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the age specification's X25519 section is not
    /// public as a file; these checks cover parsing only. Decryption is
    /// compared with the `age` tool in `tests/tests/sealed.rs`.
    #[test]
    fn identity_lines_and_their_recipient() {
        // From age's own documentation (age-keygen output shown in its README).
        let key = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        let identity = Identity::parse(key).expect("valid key");
        assert!(identity.recipient().starts_with("age1"));
        assert_eq!(identity.recipient().len(), 62);
        let file = format!("# created: 2026-01-01\n# public key: x\n{key}\n");
        assert_eq!(parse_identities(&file).map(|v| v.len()), Ok(1));
        assert!(parse_identities("# nothing\n").is_err());
        assert!(Identity::parse("AGE-SECRET-KEY-1NOTBECH32").is_err());
        assert!(!format!("{identity:?}").contains("SECRET"));
    }

    #[test]
    fn not_age_and_broken_armor_are_named() {
        assert_eq!(decrypt(b"hello", &[]), Err(AgeError::NotAge));
        assert!(is_age(b"age-encryption.org/v1\n-> X25519 a\n"));
        assert!(is_age(b"\n-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert_eq!(
            decrypt(b"-----BEGIN AGE ENCRYPTED FILE-----\nQQ==\n", &[]),
            Err(AgeError::Armor("missing BEGIN or END line"))
        );
        assert_eq!(
            decrypt(b"age-encryption.org/v1\n-> X25519", &[]),
            Err(AgeError::Header("unterminated header line"))
        );
    }
}
