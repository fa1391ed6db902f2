//! What a spec directory may hold: regular files, and links to regular
//! files inside it. Regression tests for loading that followed a link out
//! of the spec (an `env_file` linked to `/proc/self/environ` deployed the
//! controller's environment), hung on a FIFO, or read any size.

use std::path::Path;
use std::time::{Duration, Instant};

use reconciler_spec::{load_dir, LoadError};

const STACK: &str =
    "version: \"3.8\"\nservices:\n  app:\n    image: local/busybox:1\n    env_file: app.env\n";

fn spec_with_stack(dir: &Path) {
    std::fs::write(
        dir.join("spec.toml"),
        "[cluster]\nname = \"c\"\n[stack.s]\ncompose = \"docker-stack.yml\"\n",
    )
    .expect("write spec");
    std::fs::write(dir.join("docker-stack.yml"), STACK).expect("write stack");
}

fn refusal(dir: &Path) -> String {
    match load_dir(dir) {
        Err(LoadError::Refused { path, why }) => format!("{}: {why}", path.display()),
        Err(other) => panic!("expected a refusal, got: {other}"),
        Ok(_) => panic!("the spec was accepted"),
    }
}

#[test]
fn regression_a_link_out_of_the_spec_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    spec_with_stack(dir.path());
    std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("app.env")).expect("symlink");
    let why = refusal(dir.path());
    assert!(
        why.contains("app.env") && why.contains("outside the spec"),
        "{why}"
    );
}

#[test]
fn a_link_to_a_file_inside_the_spec_is_read_through() {
    let dir = tempfile::tempdir().expect("temp dir");
    spec_with_stack(dir.path());
    std::fs::create_dir(dir.path().join("shared")).expect("mkdir");
    std::fs::write(dir.path().join("shared/common.env"), "GREETING=hello\n").expect("write");
    std::os::unix::fs::symlink("shared/common.env", dir.path().join("app.env")).expect("symlink");
    let spec = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.services["s_app"]
            .env
            .get("GREETING")
            .map(String::as_str),
        Some("hello")
    );
    // A link to a directory, even inside, is not followed.
    std::os::unix::fs::symlink("shared", dir.path().join("more")).expect("symlink");
    assert!(refusal(dir.path()).contains("not a regular file"));
}

#[test]
fn regression_a_fifo_is_refused_at_once_instead_of_hanging_the_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    spec_with_stack(dir.path());
    std::fs::write(dir.path().join("app.env"), "A=1\n").expect("write");
    let fifo = dir.path().join("pipe.env");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let started = Instant::now();
    let why = refusal(dir.path());
    assert!(why.contains("pipe.env") && why.contains("FIFO"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn spec_files_and_whole_specs_have_a_size_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    spec_with_stack(dir.path());
    std::fs::write(dir.path().join("app.env"), "A=1\n").expect("write");
    // A large file that is not a spec file is skipped unread, not refused.
    std::fs::write(
        dir.path().join("backup.tar"),
        vec![0u8; reconciler_spec::MAX_KEPT_FILE_BYTES + 1],
    )
    .expect("write");
    assert!(load_dir(dir.path()).is_ok());
    // A spec file over the limit is refused, naming it.
    let huge = format!(
        "[cluster]\nname = \"c\"\n# {}\n",
        "x".repeat(reconciler_spec::MAX_SPEC_FILE_BYTES)
    );
    std::fs::write(dir.path().join("spec.toml"), huge).expect("write");
    let why = refusal(dir.path());
    assert!(
        why.contains("spec.toml") && why.contains("the limit is 4 MiB"),
        "{why}"
    );
}

/// A link into `.git` (or any hidden folder) is inside the spec's folder
/// but not part of the spec: under `--git` the same commit is refused, so
/// under `--dir` it is too (issue 22).
#[test]
fn regression_a_link_into_a_hidden_folder_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    spec_with_stack(dir.path());
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir");
    std::fs::write(dir.path().join(".git/config"), "[remote]\n").expect("write");
    std::os::unix::fs::symlink(".git/config", dir.path().join("app.env")).expect("symlink");
    let why = refusal(dir.path());
    assert!(why.contains("hidden folder"), "{why}");
}

/// Folders nested thousands deep overflowed the recursive walk's stack; the
/// walk keeps its own stack now and refuses past the limit (issue 22).
#[test]
fn regression_folders_nested_past_the_limit_are_refused_not_walked() {
    let dir = tempfile::tempdir().expect("temp dir");
    spec_with_stack(dir.path());
    std::fs::write(dir.path().join("app.env"), "A=1\n").expect("write");
    let mut deep = dir.path().to_path_buf();
    for _ in 0..reconciler_spec::MAX_FOLDER_DEPTH + 1 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("x.txt"), "x").expect("write");
    let why = refusal(dir.path());
    assert!(why.contains("nested more than 32 deep"), "{why}");
    // At the limit, the spec loads.
    std::fs::remove_dir_all(dir.path().join("d")).expect("rm");
    let mut at_limit = dir.path().to_path_buf();
    for _ in 0..reconciler_spec::MAX_FOLDER_DEPTH - 1 {
        at_limit.push("d");
    }
    std::fs::create_dir_all(&at_limit).expect("mkdir");
    std::fs::write(at_limit.join("x.txt"), "x").expect("write");
    assert!(load_dir(dir.path()).is_ok());
}
