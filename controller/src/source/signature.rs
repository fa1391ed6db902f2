//! Commit signatures, checked as `git verify-commit` checks SSH signatures
//! (`gpg.format = ssh`, git's `verify_ssh_signed_buffer`, which hands them
//! to `ssh-keygen -Y find-principals` and `-Y verify -n git`): the signature
//! is an SSHSIG in namespace `git` over the commit without its signature,
//! made by a key an allowed-signers file lists (OpenSSH's format,
//! ssh-keygen(1) "ALLOWED SIGNERS") for namespace `git`, valid at the
//! commit's committer time. GPG and X.509 signatures are not checked: a
//! commit signed so is refused, with what to use instead.

use std::path::{Path, PathBuf};

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey, SshSig};

/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// The largest allowed-signers file read.
const MAX_SIGNERS_BYTES: u64 = 1024 * 1024;

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
struct Signer {
    principals: String,
    /// `namespaces="..."`: the patterns the key may sign in (any without).
    namespaces: Option<String>,
    /// `valid-after` / `valid-before`, seconds since the epoch.
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    /// `cert-authority`: the key signs certificates, never commits itself.
    certificate_authority: bool,
    /// Always set once the line is read.
    key: Option<KeyData>,
}

/// The keys whose signatures a followed commit must carry (`--verify-signatures`).
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    signers: Vec<Signer>,
}

/// Why an allowed-signers file cannot be used; the controller does not start.
#[derive(Debug, thiserror::Error)]
pub enum SignersError {
    /// The file is missing or unreadable.
    #[error("cannot read the allowed signers file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Larger than any list of keys needs.
    #[error("the allowed signers file {path} is larger than {MAX_SIGNERS_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// A line that is not `PRINCIPALS [OPTIONS] KEYTYPE KEY [COMMENT]`.
    #[error("{path}:{line}: {source}\n  help: a line is `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY`, e.g. `alice@example.com namespaces=\"git\" ssh-ed25519 AAAA...` (ssh-keygen(1), ALLOWED SIGNERS)")]
    Line {
        path: PathBuf,
        line: usize,
        #[source]
        source: LineError,
    },
    /// No key at all: every commit would be refused.
    #[error("the allowed signers file {path} lists no key")]
    Empty { path: PathBuf },
}

/// What is wrong with one line of an allowed-signers file.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Only principals, no key.
    #[error("no key after the principals")]
    NoKey,
    /// The key does not parse.
    #[error("not a public key: {0}")]
    Key(ssh_key::Error),
    /// An option ssh-keygen does not know (it refuses the line too).
    #[error("unknown option `{0}`")]
    Option(String),
    /// A validity time without its zone, which ssh-keygen would read in
    /// the controller's local zone.
    #[error("`{0}`: write the time in UTC with a trailing Z (`{0}Z`); without it ssh-keygen reads the local time zone")]
    LocalTime(String),
    /// Not a time in OpenSSH's form.
    #[error("`{0}` is not YYYYMMDD[HHMM[SS]]Z")]
    Time(String),
}

/// Why a commit's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unverified {
    /// The commit carries no signature.
    #[error("the commit is not signed")]
    Unsigned,
    /// Signed with GPG or X.509, which are not checked here.
    #[error("the commit carries a {0} signature; only SSH signatures are checked (sign with `git config gpg.format ssh` and `user.signingkey`)")]
    NotSsh(&'static str),
    /// The signature cannot be read.
    #[error("the commit's signature cannot be read: {0}")]
    Malformed(String),
    /// Signed by a key the allowed signers file does not list.
    #[error("the commit is signed by {0}, which the allowed signers file does not list")]
    UnknownKey(String),
    /// The key is listed, but not for the `git` namespace.
    #[error("the commit is signed by {0}, which the allowed signers file does not allow to sign commits (namespaces)")]
    Namespace(String),
    /// The key is listed, but was not valid at the commit's time.
    #[error("the commit is signed by {0}, which was not valid at the commit's time (valid-after / valid-before)")]
    Expired(String),
    /// The signature does not match the commit (altered after signing), or
    /// was made in another namespace.
    #[error("the commit's signature by {0} does not match the commit")]
    BadSignature(String),
}

impl AllowedSigners {
    /// Reads an allowed-signers file.
    pub fn load(path: &Path) -> Result<Self, SignersError> {
        let text = crate::bounded::read_text(path, MAX_SIGNERS_BYTES).map_err(|e| match e {
            crate::bounded::BoundedReadError::Io(source) => SignersError::Read {
                path: path.to_path_buf(),
                source,
            },
            crate::bounded::BoundedReadError::TooLarge(_) => SignersError::TooLarge {
                path: path.to_path_buf(),
            },
        })?;
        Self::parse(&text, path)
    }

    /// Parses the file's text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, SignersError> {
        let mut signers = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let signer = signer(line).map_err(|source| SignersError::Line {
                path: path.to_path_buf(),
                line: index + 1,
                source,
            })?;
            signers.push(signer);
        }
        if signers.is_empty() {
            return Err(SignersError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self { signers })
    }

    /// Checks `signature` (the commit's `gpgsig` header) over `signed` (the
    /// commit without it), made at `committed` (the committer time, seconds
    /// since the epoch). Returns the signer's principals.
    pub fn verify(
        &self,
        signature: &[u8],
        signed: &[u8],
        committed: i64,
    ) -> Result<String, Unverified> {
        let text = std::str::from_utf8(signature)
            .map_err(|_| Unverified::Malformed("not text".into()))?
            .trim();
        if text.starts_with("-----BEGIN PGP SIGNATURE-----") {
            return Err(Unverified::NotSsh("GPG"));
        }
        if text.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            return Err(Unverified::NotSsh("X.509"));
        }
        let sig = SshSig::from_pem(text).map_err(|e| Unverified::Malformed(e.to_string()))?;
        let key = sig.public_key();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let listed: Vec<&Signer> = self
            .signers
            .iter()
            .filter(|s| !s.certificate_authority && s.key.as_ref() == Some(key))
            .collect();
        if listed.is_empty() {
            return Err(Unverified::UnknownKey(fingerprint));
        }
        let for_git: Vec<&&Signer> = listed
            .iter()
            .filter(|s| {
                s.namespaces
                    .as_deref()
                    .is_none_or(|patterns| match_pattern_list(NAMESPACE, patterns))
            })
            .collect();
        if for_git.is_empty() {
            return Err(Unverified::Namespace(fingerprint));
        }
        let valid = for_git.iter().find(|s| {
            s.valid_after.is_none_or(|after| committed >= after)
                && s.valid_before.is_none_or(|before| committed <= before)
        });
        let Some(signer) = valid else {
            return Err(Unverified::Expired(fingerprint));
        };
        PublicKey::from(key.clone())
            .verify(NAMESPACE, signed, &sig)
            .map_err(|_| Unverified::BadSignature(fingerprint))?;
        Ok(signer.principals.clone())
    }
}

/// Checks commit `id` of `repo` as `git verify-commit` does; returns the
/// signer's principals. A repository that cannot be read counts as unverified.
pub fn verify_commit(
    repo: &git2::Repository,
    id: git2::Oid,
    signers: &AllowedSigners,
) -> Result<String, Unverified> {
    let unreadable = |error: git2::Error| Unverified::Malformed(error.message().to_string());
    let committed = repo
        .find_commit(id)
        .map_err(unreadable)?
        .committer()
        .when()
        .seconds();
    let (signature, signed) = match repo.extract_signature(&id, None) {
        Ok(parts) => parts,
        Err(error) if error.code() == git2::ErrorCode::NotFound => {
            return Err(Unverified::Unsigned)
        }
        Err(error) => return Err(unreadable(error)),
    };
    signers.verify(&signature, &signed, committed)
}

/// [`verify_commit`] for the repository at `path` and a commit named by
/// its full id (what the differential test against git calls).
pub fn verify_commit_at(
    path: &Path,
    revision: &str,
    signers: &AllowedSigners,
) -> Result<String, Unverified> {
    let unreadable = |error: git2::Error| Unverified::Malformed(error.message().to_string());
    let repo = git2::Repository::open(path).map_err(unreadable)?;
    let id = git2::Oid::from_str(revision).map_err(unreadable)?;
    verify_commit(&repo, id, signers)
}

/// One line: `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]`. As
/// ssh-keygen reads it: the key is tried first, and what is not a key is
/// the options.
fn signer(line: &str) -> Result<Signer, LineError> {
    let (principals, rest) = next_field(line);
    if principals.is_empty() || rest.is_empty() {
        return Err(LineError::NoKey);
    }
    let mut signer = Signer {
        principals: principals.trim_matches('"').to_string(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
        certificate_authority: false,
        key: None,
    };
    let looks_like_key = ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|kind| rest.starts_with(kind));
    let key_text = if looks_like_key || PublicKey::from_openssh(rest).is_ok() {
        rest
    } else {
        let (options, after) = next_field(rest);
        for option in split_unquoted(options, ',') {
            option_into(&mut signer, option)?;
        }
        after
    };
    let key = PublicKey::from_openssh(key_text).map_err(LineError::Key)?;
    signer.key = Some(key.key_data().clone());
    Ok(signer)
}

fn option_into(signer: &mut Signer, option: &str) -> Result<(), LineError> {
    let (name, value) = match option.split_once('=') {
        Some((name, value)) => (name, Some(value.trim_matches('"'))),
        None => (option, None),
    };
    match (name.to_ascii_lowercase().as_str(), value) {
        ("cert-authority", None) => signer.certificate_authority = true,
        ("namespaces", Some(value)) => signer.namespaces = Some(value.to_string()),
        ("valid-after", Some(value)) => signer.valid_after = Some(absolute_time(value)?),
        ("valid-before", Some(value)) => signer.valid_before = Some(absolute_time(value)?),
        _ => return Err(LineError::Option(option.to_string())),
    }
    Ok(())
}

/// The first whitespace-separated field (quotes keep spaces) and the rest.
fn next_field(text: &str) -> (&str, &str) {
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&text[..at], text[at..].trim_start()),
            _ => {}
        }
    }
    (text, "")
}

/// `text` split at each `separator` outside quotes.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// OpenSSH's `YYYYMMDD[HHMM[SS]]Z`. Without the `Z` ssh-keygen reads the
/// controller's local time zone; that is refused here rather than guessed.
fn absolute_time(text: &str) -> Result<i64, LineError> {
    let Some(digits) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) else {
        return Err(LineError::LocalTime(text.to_string()));
    };
    let bad = || LineError::Time(text.to_string());
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> i64 {
        digits.get(range).and_then(|d| d.parse().ok()).unwrap_or(0)
    };
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    let (hour, minute, second) = (number(8..10), number(10..12), number(12..14));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let stamp = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z");
    crate::timestamp::parse_rfc3339(&stamp)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(bad)
}

/// OpenSSH's `match_pattern_list`: comma-separated `*`/`?` patterns; a
/// matching `!pattern` refuses whatever else matches.
fn match_pattern_list(text: &str, patterns: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        let pattern = pattern.trim();
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(text.as_bytes(), negated.as_bytes()) {
                return false;
            }
        } else if glob(text.as_bytes(), pattern.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` (any run) and `?` (one character) wildcards.
fn glob(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn lines_are_read_as_ssh_keygen_reads_them() {
        let text = format!(
            "# team\nalice@example.com {KEY} laptop\n\"bob@example.com\" namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=\"20300101120000Z\" {KEY}\n*@example.com cert-authority {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text, Path::new("allowed")).expect("valid");
        assert_eq!(signers.signers.len(), 3);
        let bob = &signers.signers[1];
        assert_eq!(bob.principals, "bob@example.com");
        assert_eq!(bob.namespaces.as_deref(), Some("git,file"));
        assert_eq!(bob.valid_after, Some(1_704_067_200));
        assert_eq!(bob.valid_before, Some(1_893_499_200));
        assert!(signers.signers[2].certificate_authority);
    }

    #[test]
    fn a_time_without_zone_or_an_unknown_option_is_refused_with_its_line() {
        for (line, expected) in [
            (format!("a valid-after=\"20240101\" {KEY}"), "trailing Z"),
            (format!("a no-touch-required {KEY}"), "unknown option"),
            ("a ssh-ed25519 AAAA".to_string(), "not a public key"),
            ("a".to_string(), "no key"),
        ] {
            let error = AllowedSigners::parse(&format!("\n{line}\n"), Path::new("allowed"))
                .expect_err(&line);
            let text = error.to_string();
            assert!(
                text.starts_with("allowed:2: ") && text.contains(expected),
                "{text}"
            );
        }
        assert!(matches!(
            AllowedSigners::parse("# nobody\n", Path::new("allowed")),
            Err(SignersError::Empty { .. })
        ));
    }

    #[test]
    fn pattern_lists_match_as_openssh_matches_them() {
        assert!(match_pattern_list("git", "git"));
        assert!(match_pattern_list("git", "file,g*"));
        assert!(match_pattern_list("git", "?it"));
        assert!(!match_pattern_list("git", "file"));
        assert!(!match_pattern_list("git", "*,!git"));
        assert!(!match_pattern_list("git", ""));
    }

    #[test]
    fn other_kinds_of_signature_are_named() {
        let signers = AllowedSigners::parse(&format!("a {KEY}\n"), Path::new("f")).expect("valid");
        assert_eq!(
            signers.verify(b"-----BEGIN PGP SIGNATURE-----\nxx\n", b"", 0),
            Err(Unverified::NotSsh("GPG"))
        );
        assert!(matches!(
            signers.verify(
                b"-----BEGIN SSH SIGNATURE-----\nnope\n-----END SSH SIGNATURE-----\n",
                b"",
                0
            ),
            Err(Unverified::Malformed(_))
        ));
    }
}
