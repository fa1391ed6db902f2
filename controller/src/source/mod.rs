//! Where the desired state comes from: a git repository or a local directory.
//!
//! A source produces the spec files at one revision; it never parses them
//! (that is `reconciler_spec`'s job) and never talks to Docker. Fetching is
//! blocking (git2, the file system); the runtime calls it on a blocking thread.

mod dir;
mod git;
pub mod webhook;

use crate::failure::{Classify, ErrorClass};
use std::path::PathBuf;

pub use dir::DirSource;
pub use git::{GitRef, GitSource};

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
    /// A git operation failed (network, authentication, a missing branch, ...).
    #[error("git {operation} of {url}: {message}")]
    Git {
        operation: &'static str,
        url: String,
        message: String,
    },
    /// The configured sub-path does not exist at this revision.
    #[error("{path} does not exist in {url} at {revision}")]
    MissingPath {
        url: String,
        path: String,
        revision: String,
    },
    /// The local cache directory is unusable.
    #[error("git cache {path}: {message}")]
    Cache { path: PathBuf, message: String },
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
            SourceError::Git { .. } | SourceError::Cache { .. } => ErrorClass::Retryable,
            SourceError::MissingPath { .. } => ErrorClass::NeedsPerson,
            SourceError::Dir(error) => error.class(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            SourceError::Git { .. } => "git",
            SourceError::Cache { .. } => "git_cache",
            SourceError::MissingPath { .. } => "missing_path",
            SourceError::Dir(error) => error.reason(),
        }
    }
}
