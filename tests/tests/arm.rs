//! The ARM build, run where this machine can run it: `scripts/cross aarch64`
//! builds the static binary a Pi 3/4/5 takes, and qemu-user runs it here.
//! Its answers are compared with the native binary's on the same inputs:
//! `--version`, `validate` of every example, and `plan examples/local`
//! against this machine's Docker socket (the emulated binary talks to the
//! real daemon).
//!
//! The cold build takes 15-20 minutes on 2 cores; its target directory is
//! kept outside the clone (`RECONCILER_CROSS_DIR`, default
//! `~/.cache/reconciler/cross`), so a machine that built it before only
//! checks it is fresh.

use std::path::{Path, PathBuf};
use std::process::Command;

use reconciler_tests::{repo_path, require_swarm};

fn cross_build(target: &str) -> PathBuf {
    let cache = std::env::var_os("RECONCILER_CROSS_DIR").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/reconciler/cross")
        },
        PathBuf::from,
    );
    let output = Command::new(repo_path("scripts/cross"))
        .arg(target)
        .env("RECONCILER_CROSS_DIR", &cache)
        .output()
        .expect("cannot run scripts/cross");
    assert!(
        output.status.success(),
        "scripts/cross {target} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(path.is_file(), "no binary at {}", path.display());
    path
}

/// Runs `program args` (under `qemu` when given), with stdin closed.
fn run(qemu: Option<&str>, program: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = match qemu {
        Some(qemu) => {
            let mut c = Command::new(qemu);
            c.arg(program);
            c
        }
        None => Command::new(program),
    };
    let output = command
        .args(args)
        .env("RECONCILER_LOG", "error")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cannot run the binary");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_aarch64_binary_answers_as_the_native_one_under_qemu() {
    require_swarm();
    let arm = cross_build("aarch64");
    let header = std::fs::read(&arm).expect("the binary");
    assert_eq!(
        reconciler::install::Arch::of_elf(&header),
        Some(reconciler::install::Arch::Aarch64)
    );
    let native = reconciler_tests::process::binary();
    let qemu = Some("qemu-aarch64-static");

    let mut cases: Vec<Vec<String>> = vec![vec!["--version".into()]];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_path("examples"))
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 6, "{examples:?}");
    for example in &examples {
        cases.push(vec!["validate".into(), example.display().to_string()]);
    }
    cases.push(vec![
        "plan".into(),
        repo_path("examples/local").display().to_string(),
        "--docker-host".into(),
        "unix:///var/run/docker.sock".into(),
    ]);
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = run(None, &native, &args);
        let ours = run(qemu, &arm, &args);
        assert_eq!(ours.0, theirs.0, "{args:?}: exit codes differ\n{}", ours.2);
        assert_eq!(ours.1, theirs.1, "{args:?}: stdout differs");
        if args[0] == "validate" {
            assert_eq!(ours.0, 0, "{args:?}: {}", ours.2);
        }
    }
}
