//! Decrypting SOPS files (<https://github.com/getsops/sops>) whose data key
//! is encrypted for age recipients — the files SwarmCD and doco-cd users
//! keep in git.
//!
//! A SOPS file is its document with every value encrypted in place
//! (`ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`, the path of map keys
//! as additional data) and a `sops` entry (flattened `sops_*` keys in dotenv)
//! holding the data key for each recipient and a MAC over all values. The
//! format follows the file name as `sops` itself does: `.yaml`/`.yml`,
//! `.json`, `.env`, anything else binary (a JSON document whose `data` is the
//! file). The result is what `sops decrypt` prints: byte for byte for
//! binary, dotenv and JSON; the same document for YAML (written by our YAML
//! emitter, so spacing and comments may differ). Compared with the `sops`
//! tool in `tests/tests/sealed.rs`.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_yaml::Value;
use sha2::{Digest, Sha512};

use super::age::{self, AgeError, Identity};

/// Why a SOPS file did not decrypt. Messages name keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SopsError {
    /// The document has no `sops` metadata (or it is malformed).
    #[error("not a SOPS file: {0}")]
    NotSops(String),
    /// An option this decrypter does not implement (`*_regex`, key groups).
    #[error("SOPS option `{0}` is not supported; re-encrypt without it")]
    Unsupported(String),
    /// The data key is encrypted only for KMS, PGP or other non-age keys.
    #[error("the file has no age recipient (it was encrypted for {0} only)")]
    NoAgeRecipient(String),
    /// The age-encrypted data key does not decrypt with our identities.
    #[error("the data key does not decrypt: {0}")]
    DataKey(AgeError),
    /// One `ENC[...]` value is malformed or fails authentication.
    #[error("value at `{path}` does not decrypt: {why}")]
    Value { path: String, why: &'static str },
    /// The document's MAC does not match its values.
    #[error("the MAC does not match: the file was changed without sops")]
    Mac,
}

/// The document formats SOPS stores, chosen by file name like `sops` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SopsFormat {
    Yaml,
    Json,
    Dotenv,
    Binary,
}

impl SopsFormat {
    pub fn for_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Self::Yaml,
            Some("json") => Self::Json,
            Some("env") => Self::Dotenv,
            _ => Self::Binary,
        }
    }
}

/// Whether `bytes` look like a SOPS file: a document with a `sops` entry
/// holding a `mac` (or dotenv `sops_mac=` line).
pub fn is_sops(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    if text.lines().any(|l| l.starts_with("sops_mac=")) {
        return true;
    }
    serde_yaml::from_str::<Value>(text)
        .ok()
        .and_then(|doc| doc.get("sops").and_then(|s| s.get("mac")).cloned())
        .is_some()
}

/// The parts of the `sops` metadata decryption needs.
#[derive(Default)]
struct Metadata {
    /// `enc` of each age recipient, with the recipient.
    age: Vec<(String, String)>,
    /// Kinds of other key sources (pgp, kms, ...), for the error message.
    others: Vec<String>,
    lastmodified: String,
    mac: String,
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    mac_only_encrypted: bool,
}

/// One leaf of the document in walk order: its map-key path and its value.
enum Leaf<'a> {
    Value(&'a mut Value, Vec<String>),
}

/// Decrypts a SOPS file to what `sops decrypt` prints.
pub fn decrypt(
    bytes: &[u8],
    format: SopsFormat,
    identities: &[Identity],
) -> Result<Vec<u8>, SopsError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| SopsError::NotSops("not UTF-8 text".into()))?;
    match format {
        SopsFormat::Dotenv => decrypt_dotenv(text, identities),
        SopsFormat::Yaml | SopsFormat::Json | SopsFormat::Binary => {
            let mut doc: Value = serde_yaml::from_str(text)
                .map_err(|e| SopsError::NotSops(format!("not a document: {e}")))?;
            let Value::Mapping(map) = &mut doc else {
                return Err(SopsError::NotSops("the document is not a mapping".into()));
            };
            let meta = map
                .remove("sops")
                .ok_or_else(|| SopsError::NotSops("no `sops` entry".into()))?;
            let meta = metadata_from_tree(&meta)?;
            let key = data_key(&meta, identities)?;
            let mut hasher = mac_hasher(&meta);
            let mut leaves = Vec::new();
            collect_leaves(&mut doc, &mut Vec::new(), &mut leaves);
            for Leaf::Value(value, path) in leaves {
                decrypt_leaf(value, &path, &meta, &key, &mut hasher)?;
            }
            check_mac(&meta, &key, hasher)?;
            match format {
                SopsFormat::Binary => match doc.get("data") {
                    Some(Value::String(data)) => Ok(data.as_bytes().to_vec()),
                    _ => Err(SopsError::NotSops(
                        "a binary SOPS file needs a string `data` entry".into(),
                    )),
                },
                SopsFormat::Json => {
                    let mut out = String::new();
                    write_go_json(&doc, 0, &mut out);
                    out.push('\n');
                    Ok(out.into_bytes())
                }
                _ => serde_yaml::to_string(&doc)
                    .map(String::into_bytes)
                    .map_err(|e| SopsError::NotSops(format!("cannot write YAML: {e}"))),
            }
        }
    }
}

fn collect_leaves<'a>(value: &'a mut Value, path: &mut Vec<String>, out: &mut Vec<Leaf<'a>>) {
    match value {
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = match key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                path.push(key);
                collect_leaves(item, path, out);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for item in items {
                collect_leaves(item, path, out);
            }
        }
        Value::Tagged(tagged) => collect_leaves(&mut tagged.value, path, out),
        Value::Null => {}
        leaf => out.push(Leaf::Value(leaf, path.clone())),
    }
}

fn metadata_from_tree(meta: &Value) -> Result<Metadata, SopsError> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let mut found = Metadata {
        lastmodified: text(meta.get("lastmodified")).unwrap_or_default(),
        mac: text(meta.get("mac")).unwrap_or_default(),
        unencrypted_suffix: text(meta.get("unencrypted_suffix")),
        encrypted_suffix: text(meta.get("encrypted_suffix")),
        mac_only_encrypted: meta
            .get("mac_only_encrypted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..Metadata::default()
    };
    if let Some(Value::Mapping(map)) = Some(meta) {
        for (key, value) in map {
            let Some(key) = key.as_str() else { continue };
            match key {
                "age" => {
                    for entry in value.as_sequence().into_iter().flatten() {
                        if let (Some(recipient), Some(enc)) =
                            (text(entry.get("recipient")), text(entry.get("enc")))
                        {
                            found.age.push((recipient, enc));
                        }
                    }
                }
                "key_groups" => return Err(SopsError::Unsupported("key_groups".into())),
                "unencrypted_regex"
                | "encrypted_regex"
                | "unencrypted_comment_regex"
                | "encrypted_comment_regex" => {
                    return Err(SopsError::Unsupported(key.into()));
                }
                "lastmodified" | "mac" | "version" | "unencrypted_suffix" | "encrypted_suffix"
                | "mac_only_encrypted" | "shamir_threshold" => {}
                other => {
                    if value.as_sequence().is_some_and(|s| !s.is_empty()) {
                        found.others.push(other.to_string());
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The 32-byte data key, from the first age entry an identity opens.
fn data_key(meta: &Metadata, identities: &[Identity]) -> Result<[u8; 32], SopsError> {
    if meta.age.is_empty() {
        return Err(SopsError::NoAgeRecipient(if meta.others.is_empty() {
            "no key source".into()
        } else {
            meta.others.join(", ")
        }));
    }
    let mut last = AgeError::NotAge;
    for (_recipient, enc) in &meta.age {
        match age::decrypt(enc.as_bytes(), identities) {
            Ok(key) => {
                return key
                    .try_into()
                    .map_err(|_| SopsError::DataKey(AgeError::Payload))
            }
            Err(e) => last = e,
        }
    }
    Err(SopsError::DataKey(last))
}

/// Bytes sops mixes into the MAC first when only encrypted values count,
/// so the two kinds of MAC never match each other (sops.go).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

fn mac_hasher(meta: &Metadata) -> Sha512 {
    let mut hasher = Sha512::new();
    if meta.mac_only_encrypted {
        hasher.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    hasher
}

/// Whether sops encrypted the value at `path` (its suffix rules).
fn is_encrypted(path: &[String], meta: &Metadata) -> bool {
    let mut encrypted = true;
    if let Some(suffix) = meta.unencrypted_suffix.as_deref().filter(|s| !s.is_empty()) {
        if path.iter().any(|k| k.ends_with(suffix)) {
            encrypted = false;
        }
    }
    if let Some(suffix) = meta.encrypted_suffix.as_deref().filter(|s| !s.is_empty()) {
        encrypted = path.iter().any(|k| k.ends_with(suffix));
    }
    encrypted
}

/// The text sops hashes for a value it did not encrypt (`ToBytes`).
fn plain_bytes(value: &Value) -> String {
    match value {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => format!("{f}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn decrypt_leaf(
    value: &mut Value,
    path: &[String],
    meta: &Metadata,
    key: &[u8; 32],
    hasher: &mut Sha512,
) -> Result<(), SopsError> {
    let encrypted = is_encrypted(path, meta);
    if encrypted {
        let Value::String(sealed) = &*value else {
            return Err(SopsError::Value {
                path: path.join(":"),
                why: "expected an ENC[...] string",
            });
        };
        let aad = format!("{}:", path.join(":"));
        let (plain, kind) = open_value(sealed, key, &aad).map_err(|why| SopsError::Value {
            path: path.join(":"),
            why,
        })?;
        hasher.update(&plain);
        *value = typed(plain, &kind).ok_or(SopsError::Value {
            path: path.join(":"),
            why: "the plaintext does not match its type",
        })?;
    } else if !meta.mac_only_encrypted {
        hasher.update(plain_bytes(value).as_bytes());
    }
    Ok(())
}

/// A decrypted value as the document type sops gives it.
fn typed(plain: Vec<u8>, kind: &str) -> Option<Value> {
    let text = String::from_utf8(plain).ok()?;
    Some(match kind {
        "int" => Value::Number(text.parse::<i64>().ok()?.into()),
        "float" => Value::Number(text.parse::<f64>().ok()?.into()),
        "bool" => Value::Bool(match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => true,
            "false" | "f" | "0" => false,
            _ => return None,
        }),
        _ => Value::String(text),
    })
}

/// Opens one `ENC[AES256_GCM,...]` value: its bytes and its type.
fn open_value(sealed: &str, key: &[u8; 32], aad: &str) -> Result<(Vec<u8>, String), &'static str> {
    if sealed.is_empty() {
        return Ok((Vec::new(), "str".into()));
    }
    let inner = sealed
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|s| s.strip_suffix(']'))
        .ok_or("not an ENC[AES256_GCM,...] value")?;
    let mut data = None;
    let mut iv = None;
    let mut tag = None;
    let mut kind = None;
    for part in inner.split(',') {
        let (name, field) = part.split_once(':').ok_or("malformed ENC[...] value")?;
        match name {
            "data" => data = Some(field),
            "iv" => iv = Some(field),
            "tag" => tag = Some(field),
            "type" => kind = Some(field.to_string()),
            _ => return Err("malformed ENC[...] value"),
        }
    }
    let decode = |field: Option<&str>| {
        field
            .and_then(|f| STANDARD.decode(f).ok())
            .ok_or("malformed ENC[...] value")
    };
    let mut ciphertext = decode(data)?;
    let iv = decode(iv)?;
    ciphertext.extend_from_slice(&decode(tag)?);
    let iv: [u8; 32] = iv.try_into().map_err(|_| "the IV is not 32 bytes")?;
    let cipher = AesGcm::<Aes256, U32>::new_from_slice(key).map_err(|_| "bad data key")?;
    let plain = cipher
        .decrypt(
            &iv.into(),
            Payload {
                msg: &ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| "authentication failed (wrong key or altered value)")?;
    Ok((plain, kind.ok_or("malformed ENC[...] value")?))
}

fn check_mac(meta: &Metadata, key: &[u8; 32], hasher: Sha512) -> Result<(), SopsError> {
    let computed: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let (stored, _) = open_value(&meta.mac, key, &meta.lastmodified).map_err(|_| SopsError::Mac)?;
    if stored == computed.as_bytes() {
        Ok(())
    } else {
        Err(SopsError::Mac)
    }
}

/// dotenv: `KEY=VALUE` lines (`\n` in a value is a newline), `#` comments
/// (encrypted too), metadata as flattened `sops_*` keys.
fn decrypt_dotenv(text: &str, identities: &[Identity]) -> Result<Vec<u8>, SopsError> {
    enum Line {
        Comment(String),
        Pair(String, String),
    }
    let mut lines = Vec::new();
    let mut meta = Metadata::default();
    let mut age: std::collections::BTreeMap<usize, (Option<String>, Option<String>)> =
        Default::default();
    for raw in text.split('\n').filter(|l| !l.is_empty()) {
        if let Some(comment) = raw.strip_prefix('#') {
            lines.push(Line::Comment(comment.to_string()));
            continue;
        }
        let (key, value) = raw
            .split_once('=')
            .ok_or_else(|| SopsError::NotSops("a line without `=`".into()))?;
        let value = value.replace("\\n", "\n");
        let Some(meta_key) = key.strip_prefix("sops_") else {
            lines.push(Line::Pair(key.to_string(), value));
            continue;
        };
        match meta_key {
            "lastmodified" => meta.lastmodified = value,
            "mac" => meta.mac = value,
            "unencrypted_suffix" => meta.unencrypted_suffix = Some(value),
            "encrypted_suffix" => meta.encrypted_suffix = Some(value),
            "mac_only_encrypted" => meta.mac_only_encrypted = value == "true",
            "version" | "shamir_threshold" => {}
            k if k.starts_with("age__list_") => {
                let rest = &k["age__list_".len()..];
                let (index, field) = rest
                    .split_once("__map_")
                    .ok_or_else(|| SopsError::NotSops(format!("bad metadata key sops_{k}")))?;
                let index: usize = index
                    .parse()
                    .map_err(|_| SopsError::NotSops(format!("bad metadata key sops_{k}")))?;
                let slot = age.entry(index).or_default();
                match field {
                    "recipient" => slot.0 = Some(value),
                    "enc" => slot.1 = Some(value),
                    _ => {}
                }
            }
            k if k.contains("regex") || k.starts_with("key_groups") => {
                return Err(SopsError::Unsupported(
                    k.split("__").next().unwrap_or(k).into(),
                ))
            }
            k => {
                let kind = k.split("__").next().unwrap_or(k).to_string();
                if !meta.others.contains(&kind) {
                    meta.others.push(kind);
                }
            }
        }
    }
    meta.age = age
        .into_values()
        .filter_map(|(recipient, enc)| Some((recipient?, enc?)))
        .collect();
    if meta.mac.is_empty() {
        return Err(SopsError::NotSops("no sops_mac line".into()));
    }
    let key = data_key(&meta, identities)?;
    let mut hasher = mac_hasher(&meta);
    let mut out = String::new();
    for line in lines {
        match line {
            Line::Comment(comment) => {
                // Comments are encrypted unless sops was told otherwise; an
                // old or plain comment stays as it is (as sops does).
                let shown = match open_value(&comment, &key, ":") {
                    Ok((plain, _)) => String::from_utf8(plain).unwrap_or(comment),
                    Err(_) => comment,
                };
                out.push('#');
                out.push_str(&shown);
            }
            Line::Pair(key_name, value) => {
                let mut value = Value::String(value);
                decrypt_leaf(
                    &mut value,
                    std::slice::from_ref(&key_name),
                    &meta,
                    &key,
                    &mut hasher,
                )?;
                out.push_str(&key_name);
                out.push('=');
                out.push_str(&plain_bytes(&value).replace('\n', "\\n"));
            }
        }
        out.push('\n');
    }
    check_mac(&meta, &key, hasher)?;
    Ok(out.into_bytes())
}

/// JSON as Go's `json.Marshal` + `json.Indent` with tabs write it (what
/// `sops decrypt` prints): `<`, `>`, `&` escaped, floats in Go's spelling.
fn write_go_json(value: &Value, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n('\t', depth));
    };
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => go_string(s, out),
        Value::Sequence(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_go_json(item, depth + 1, out);
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Mapping(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                go_string(&plain_bytes(key), out);
                out.push_str(": ");
                write_go_json(item, depth + 1, out);
            }
            indent(out, depth);
            out.push('}');
        }
        Value::Tagged(tagged) => write_go_json(&tagged.value, depth, out),
    }
}

fn go_number(n: &serde_yaml::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        format!("{f}")
    } else {
        // Go: 1e+21, 1e-07 cleaned to 1e-7.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_file_name_like_sops() {
        use std::path::Path;
        assert_eq!(
            SopsFormat::for_path(Path::new("a.enc.yaml")),
            SopsFormat::Yaml
        );
        assert_eq!(SopsFormat::for_path(Path::new("a.yml")), SopsFormat::Yaml);
        assert_eq!(SopsFormat::for_path(Path::new("a.json")), SopsFormat::Json);
        assert_eq!(
            SopsFormat::for_path(Path::new("prod.env")),
            SopsFormat::Dotenv
        );
        assert_eq!(
            SopsFormat::for_path(Path::new("key.pem")),
            SopsFormat::Binary
        );
    }

    #[test]
    fn go_json_spelling() {
        let doc: Value = serde_yaml::from_str(
            r#"{"a": "<&>", "n": 1e21, "s": 1e-7, "f": 1.5, "e": [], "m": {}}"#,
        )
        .expect("yaml");
        let mut out = String::new();
        write_go_json(&doc, 0, &mut out);
        assert_eq!(
            out,
            "{\n\t\"a\": \"\\u003c\\u0026\\u003e\",\n\t\"n\": 1e+21,\n\t\"s\": 1e-7,\n\t\"f\": 1.5,\n\t\"e\": [],\n\t\"m\": {}\n}"
        );
    }

    #[test]
    fn suffix_rules_decide_what_was_encrypted() {
        let meta = Metadata {
            unencrypted_suffix: Some("_unencrypted".into()),
            ..Metadata::default()
        };
        assert!(is_encrypted(&["a".into()], &meta));
        assert!(!is_encrypted(&["a_unencrypted".into(), "b".into()], &meta));
        let meta = Metadata {
            encrypted_suffix: Some("_secret".into()),
            ..Metadata::default()
        };
        assert!(!is_encrypted(&["a".into()], &meta));
        assert!(is_encrypted(&["pw_secret".into()], &meta));
    }
}
