//! Where the desired state comes from: a git repository or a local directory.
//!
//! A source produces the spec files at one revision; it never parses them
//! (that is `reconciler_spec`'s job) and never talks to Docker. Fetching is
//! blocking (git2, the file system); the runtime calls it on a blocking thread.

mod dir;
mod git;
pub mod signature;
pub mod webhook;

use crate::failure::{Classify, ErrorClass};
use std::path::PathBuf;

pub use dir::DirSource;
pub use git::{is_plaintext_remote, redact_url, url_has_credentials, GitRef, GitSource};

/// The spec files of one revision.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// A git commit id, or `dir-<hash of the files>` for a directory.
    pub revision: String,
    /// Paths relative to the spec root, with their contents.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// Why a source could not produce a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading the local spec directory failed.
    #[error(transparent)]
    Dir(#[from] reconciler_spec::LoadError),
    /// A git operation failed (the network, the server, the cache); trying
    /// again may pass.
    #[error("git {operation} of {url}: {}", source.message())]
    Git {
        /// What was being done (`fetch`, `read tree`, ...).
        operation: &'static str,
        /// The remote, credentials removed.
        url: String,
        /// libgit2's error, with its code and class.
        #[source]
        source: git2::Error,
    },
    /// The remote refused the credentials, or asked for some and none are
    /// configured: only a person can fix that (a revoked token, a new key).
    #[error("git {url} refused the credentials: {}. Set RECONCILER_GIT_SSH_KEY (a deploy key), or RECONCILER_GIT_USERNAME and RECONCILER_GIT_PASSWORD_FILE (a token with read access); the controller tries again at its resync interval", source.message())]
    Auth {
        /// The remote, credentials removed.
        url: String,
        /// libgit2's error ([`git2::ErrorCode::Auth`]).
        #[source]
        source: git2::Error,
    },
    /// The followed branch or tag is not on the remote (deleted, renamed, a
    /// typo): the last good revision stays in force until it is back or the
    /// controller follows another.
    #[error("{reference} does not exist in {url}; push it, or start the controller with --branch/--tag naming one that exists (the last good revision stays in force)")]
    MissingRef {
        /// The remote, credentials removed.
        url: String,
        /// `branch main`, `tag v1`.
        reference: String,
    },
    /// The configured sub-path does not exist at this revision.
    #[error("{path} does not exist in {url} at {revision}")]
    MissingPath {
        /// The remote, credentials removed.
        url: String,
        /// The `--path` asked for.
        path: String,
        /// The commit it is missing from.
        revision: String,
    },
    /// The fetch brought more than [`git::MAX_FETCH_BYTES`]: the revision
    /// is refused (the last good one stays) before it costs the board its
    /// memory.
    #[error("git fetch of {url} passed {} MiB and was stopped: the commit holds more than a spec needs (a large file?); the last good revision stays in force", git::MAX_FETCH_BYTES / (1024 * 1024))]
    TooLarge {
        /// The remote, credentials removed.
        url: String,
    },
    /// `--verify-signatures` is on and the followed commit's signature is
    /// missing or not by an allowed signer.
    #[error("commit {revision} of {url} is refused: {reason}; the last good revision stays in force (sign it with a key the allowed signers file lists)")]
    Unverified {
        url: String,
        revision: String,
        reason: signature::Unverified,
    },
    /// The local cache directory is unusable.
    #[error("git cache {path}: {message}")]
    Cache {
        /// The cache folder (or its parent).
        path: PathBuf,
        /// What the file system or libgit2 said.
        message: String,
    },
}

/// A configured source of desired state.
#[derive(Debug)]
pub enum Source {
    Dir(DirSource),
    Git(GitSource),
}

impl Source {
    /// Reads the spec files at the source's current revision (fetching first for git).
    pub fn snapshot(&mut self) -> Result<Snapshot, SourceError> {
        match self {
            Source::Dir(dir) => dir.snapshot(),
            Source::Git(git) => git.snapshot(),
        }
    }

    /// A short description for logs and the status page (never credentials).
    pub fn describe(&self) -> String {
        match self {
            Source::Dir(dir) => format!("directory {}", dir.path().display()),
            Source::Git(git) => git.describe(),
        }
    }
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            // A certificate that does not verify is a person's to check
            // (a self-signed server, or someone on the path).
            SourceError::Git { source, .. } if source.code() == git2::ErrorCode::Certificate => {
                ErrorClass::NeedsPerson
            }
            SourceError::Git { .. } | SourceError::Cache { .. } => ErrorClass::Retryable,
            SourceError::Auth { .. }
            | SourceError::MissingRef { .. }
            | SourceError::MissingPath { .. }
            | SourceError::TooLarge { .. }
            | SourceError::Unverified { .. } => ErrorClass::NeedsPerson,
            SourceError::Dir(error) => error.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            SourceError::Git { source, .. } if source.code() == git2::ErrorCode::Certificate => {
                "git_certificate"
            }
            SourceError::Git { .. } => "git",
            SourceError::Auth { .. } => "git_auth",
            SourceError::MissingRef { .. } => "git_missing_ref",
            SourceError::Cache { .. } => "git_cache",
            SourceError::MissingPath { .. } => "missing_path",
            SourceError::TooLarge { .. } => "git_too_large",
            SourceError::Unverified { .. } => "git_unverified",
            SourceError::Dir(error) => error.reason(),
        }
    }
}
