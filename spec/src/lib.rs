//! The desired-state model of a Reconciler cluster.
//!
//! A spec is a directory of TOML files merged into one [`Spec`]. This crate
//! reads and validates it and nothing else: no network, no Docker, no SSH.
//! The serde types of the file format (`file`, private) are kept apart from the model
//! the planner works on ([`model`]); [`load_dir`] converts one into the other
//! and reports every problem at once, each with file, line and column.

pub mod address;
mod board;
pub mod canonical;
mod chart;
mod compose;
pub mod diagnostic;
mod file;
mod load;
mod lower;
pub mod model;
pub mod render;
pub mod sealed;
mod share;
mod source;
mod suggest;
pub mod units;
mod validate;
pub mod window;

/// Labels under this prefix are written by the controller (ownership, spec hash)
/// and may not be set by users.
pub const RESERVED_LABEL_PREFIX: &str = "io.reconciler.";

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use load::{
    check_size, is_spec_file, load_dir, load_dir_with, load_files, load_files_with, read_dir_files,
    spec_file_kept, Environment, LoadError, LoadOptions, NotText, WalkLimits, MAX_DATA_FILE_BYTES,
    MAX_FOLDER_DEPTH, MAX_KEPT_FILE_BYTES, MAX_SPEC_BYTES, MAX_SPEC_ENTRIES, MAX_SPEC_FILE_BYTES,
};
pub use model::*;
pub use sealed::Keyring;
pub use window::{Window, WindowError};
