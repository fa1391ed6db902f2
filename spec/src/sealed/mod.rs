//! Secrets kept encrypted in git: age files and SOPS files (for age
//! recipients), decrypted in memory while a spec loads.
//!
//! The controller's identity (an age key) comes from a file or an
//! environment variable (see [`Keyring::from_env`]); the public recipients
//! live in the repository so anyone can encrypt a new secret. A file that
//! does not decrypt is an error naming it, so the revision is refused and
//! the last good one stays in force.

pub mod age;
pub mod sops;

use std::path::{Path, PathBuf};

pub use age::{AgeError, Identity};
pub use sops::{SopsError, SopsFormat};

/// How a secret's file is encrypted (`encryption = "age" | "sops"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// The whole file is an age file (`age -r age1... -o x.age`, armored or not).
    Age,
    /// A SOPS file; its format follows the file name as with `sops`.
    Sops,
}

impl Encryption {
    /// What the contents of a file look like, if encrypted: a file that looks
    /// encrypted is never deployed as its ciphertext by mistake.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if age::is_age(bytes) {
            Some(Self::Age)
        } else if sops::is_sops(bytes) {
            Some(Self::Sops)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::Sops => "sops",
        }
    }
}

/// The age identities the controller decrypts with, and where they came
/// from (named in errors; the keys themselves are never shown).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    identities: Vec<Identity>,
    origin: Option<String>,
}

/// Why the controller's identities could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The identity file cannot be read.
    #[error("cannot read the age identity file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file or variable holds no valid identity.
    #[error("{origin}: {source}")]
    Parse {
        origin: String,
        #[source]
        source: AgeError,
    },
}

/// The environment variables an identity is read from, in order: a file,
/// then the key itself; SOPS's own names are understood too.
pub const IDENTITY_FILE_VARS: [&str; 2] = ["RECONCILER_AGE_IDENTITY_FILE", "SOPS_AGE_KEY_FILE"];
pub const IDENTITY_VARS: [&str; 2] = ["RECONCILER_AGE_IDENTITY", "SOPS_AGE_KEY"];

impl Keyring {
    /// Identities from an identity file (`age-keygen -o FILE`).
    pub fn from_file(path: &Path) -> Result<Self, KeyringError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = format!("age identity file {}", path.display());
        Self::from_text(&text, origin)
    }

    /// Identities from text (an identity file's contents), `origin` naming
    /// where it came from in messages.
    pub fn from_text(text: &str, origin: String) -> Result<Self, KeyringError> {
        let identities = age::parse_identities(text).map_err(|source| KeyringError::Parse {
            origin: origin.clone(),
            source,
        })?;
        Ok(Self {
            identities,
            origin: Some(origin),
        })
    }

    /// The identity named by `file` if given, else by the first of
    /// [`IDENTITY_FILE_VARS`] / [`IDENTITY_VARS`] that is set; an empty
    /// keyring when none is (a spec without encrypted secrets needs none).
    pub fn from_env(file: Option<&Path>) -> Result<Self, KeyringError> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        for var in IDENTITY_FILE_VARS {
            if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return Self::from_file(Path::new(&path));
            }
        }
        for var in IDENTITY_VARS {
            if let Ok(text) = std::env::var(var) {
                if !text.trim().is_empty() {
                    return Self::from_text(&text, format!("${var}"));
                }
            }
        }
        Ok(Self::default())
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The public recipients of the identities (`age1...`), to encrypt to.
    pub fn recipients(&self) -> Vec<String> {
        self.identities.iter().map(Identity::recipient).collect()
    }

    /// Where the identities came from, for messages.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Decrypts the file at `path` (its name picks the SOPS format).
    pub fn decrypt(
        &self,
        encryption: Encryption,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Vec<u8>, UnsealError> {
        if self.identities.is_empty() {
            return Err(UnsealError::NoIdentity);
        }
        match encryption {
            Encryption::Age => age::decrypt(bytes, &self.identities).map_err(UnsealError::Age),
            Encryption::Sops => sops::decrypt(bytes, SopsFormat::for_path(path), &self.identities)
                .map_err(UnsealError::Sops),
        }
    }
}

/// Why an encrypted file of the spec did not decrypt.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    /// The spec holds encrypted files and the controller has no identity.
    #[error("the controller has no age identity (set RECONCILER_AGE_IDENTITY_FILE or --age-identity-file)")]
    NoIdentity,
    /// An age file did not decrypt.
    #[error("age: {0}")]
    Age(AgeError),
    /// A SOPS file did not decrypt.
    #[error("sops: {0}")]
    Sops(SopsError),
}
