//! Embeds the bundled charts (`../charts/*`) into the library, so the
//! `reconciler` binary carries them wherever it is copied (a Pi, a container).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, root, out);
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push((relative.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let charts = manifest.join("..").join("charts");
    println!("cargo:rerun-if-changed={}", charts.display());
    let mut files = Vec::new();
    collect(&charts, &charts, &mut files);
    let mut code = String::from("/// (path under charts/, contents) of every bundled chart file.\npub(crate) const BUNDLED: &[(&str, &str)] = &[\n");
    for (relative, path) in files {
        let absolute = path.canonicalize().unwrap_or(path);
        let _ = writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            absolute.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("bundled_charts.rs");
    if let Err(error) = std::fs::write(&out, code) {
        panic!("cannot write {}: {error}", out.display());
    }
}
