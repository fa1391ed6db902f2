//! Reading the small files the controller's owner gives it (a policy, an
//! allowed-signers file) with a size bound: a wrong path (a disk image, a
//! device) must not be read whole.

use std::io::Read as _;
use std::path::Path;

/// Why a bounded file was not read.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    /// Missing, unreadable, or not UTF-8.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Larger than the bound.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// The text of `path`, refused past `max` bytes (reading stops there).
pub fn read_text(path: &Path, max: u64) -> Result<String, BoundedReadError> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(BoundedReadError::TooLarge(max));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_past_the_bound_is_refused_and_one_within_it_read() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").expect("written");
        assert_eq!(super::read_text(&file, 5).expect("within"), "12345");
        assert!(matches!(
            super::read_text(&file, 4),
            Err(super::BoundedReadError::TooLarge(4))
        ));
        assert!(matches!(
            super::read_text(&dir.path().join("none"), 4),
            Err(super::BoundedReadError::Io(_))
        ));
    }
}
