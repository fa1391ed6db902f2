//! A local spec directory, for the laptop workflow (`reconciler run --dir`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Snapshot, SourceError};

#[derive(Debug)]
pub struct DirSource {
    path: PathBuf,
}

impl DirSource {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the files; the revision is a hash of their names and contents,
    /// so an unchanged directory keeps its revision.
    pub fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let files = reconciler_spec::read_dir_files(&self.path)?;
        let mut hasher = Sha256::new();
        for (path, text) in &files {
            hasher.update(path.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(text);
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        let hex = hex::encode(&digest[..6]);
        Ok(Snapshot {
            revision: format!("dir-{hex}"),
            files,
        })
    }
}
