//! The ARM builds, run where this machine can run them: `scripts/cross
//! aarch64` builds the static binary a Pi 3/4/5 takes, `scripts/cross armv6`
//! the one a Pi Zero / Pi 1 takes, and qemu-user runs them here (the ARMv6
//! one on the Pi Zero's own core, `-cpu arm1176`).
//! Its answers are compared with the native binary's on the same inputs:
//! `--version`, `validate` of every example, and `plan examples/local`
//! against this machine's Docker socket (the emulated binary talks to the
//! real daemon).
//!
//! Then the ARM binary fetches a repository over HTTPS with a password (the
//! trimmed, statically linked OpenSSL doing TLS, libgit2 the protocol) and
//! loads its spec.
//!
//! The cold build takes 15-20 minutes on 2 cores; its target directory is
//! kept outside the clone (`RECONCILER_CROSS_DIR`, default
//! `~/.cache/reconciler/cross`), so a machine that built it before only
//! checks it is fresh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reconciler_tests::boards::{Boards, Registry, GATEWAY};
use reconciler_tests::git::{GitHttp, GitRepo};
use reconciler_tests::{reconciler, repo_path, require_swarm, wait_until, SpecDir};

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

/// Runs `program args` (under the emulator command `qemu`, e.g.
/// `["qemu-arm-static", "-cpu", "arm1176"]`, when not empty), with stdin closed.
fn run(qemu: &[&str], program: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = match qemu.split_first() {
        Some((emulator, options)) => {
            let mut c = Command::new(emulator);
            c.args(options).arg(program);
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
    answers_as_the_native_binary(&arm, &["qemu-aarch64-static"]);
    fetches_over_https(&arm);
}

/// Issue 23: Pi Zero / Pi 1 boards (ARMv6) could not run the controller.
/// `scripts/cross armv6` builds it; qemu emulating the Pi Zero's own core
/// (ARM1176, which has no ARMv7 instruction: one would end the process with
/// SIGILL) runs it through the same answers as the native binary.
#[test]
fn the_armv6_binary_runs_on_a_pi_zero_core_under_qemu() {
    require_swarm();
    let armv6 = cross_build("armv6");
    let header = std::fs::read(&armv6).expect("the binary");
    assert_eq!(
        reconciler::install::Arch::of_elf(&header),
        Some(reconciler::install::Arch::Arm { version: 6 })
    );
    answers_as_the_native_binary(&armv6, &["qemu-arm-static", "-cpu", "arm1176"]);
}

/// `--version`, `validate` of every example and `plan examples/local`
/// against this machine's Docker: the same exit codes and output as the
/// native binary.
fn answers_as_the_native_binary(binary: &Path, qemu: &[&str]) {
    let native = reconciler_tests::process::binary();
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
        let theirs = run(&[], &native, &args);
        let ours = run(qemu, binary, &args);
        assert_eq!(ours.0, theirs.0, "{args:?}: exit codes differ\n{}", ours.2);
        assert_eq!(ours.1, theirs.1, "{args:?}: stdout differs");
        if args[0] == "validate" {
            assert_eq!(ours.0, 0, "{args:?}: {}", ours.2);
        }
    }
}

/// `reconciler run --git https://...` of the ARM binary under qemu, against a
/// local HTTPS git server with a certificate made here: it fetches, and says
/// which revision it loaded.
fn fetches_over_https(arm: &Path) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let repo = GitRepo::new();
    let revision = repo.commit(
        &[
            ("cluster.toml", "[cluster]\nname = \"t-arm\"\n"),
            (
                "services.toml",
                "[service.arm-web]\nimage = \"local/busybox:1\"\ncommand = [\"sleep\", \"3600\"]\n",
            ),
        ],
        "first",
    );
    let server = GitHttp::start_tls(repo.root(), "ops", "tls-pw", &cert, &key);
    let password = dir.path().join("password");
    std::fs::write(&password, "tls-pw\n").expect("write");
    let url = format!("https://127.0.0.1:{}/remote.git", server.port);
    let cache = dir.path().join("cache").display().to_string();
    let mut child = Command::new("qemu-aarch64-static")
        .arg(arm)
        .args(["run", "--git", &url, "--observe", "--interval", "1h"])
        .args(["--listen", "127.0.0.1:0", "--cache-dir", &cache])
        .env("SSL_CERT_FILE", &cert)
        .env("RECONCILER_GIT_USERNAME", "ops")
        .env("RECONCILER_GIT_PASSWORD_FILE", &password)
        .env("RECONCILER_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("qemu-aarch64-static");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wanted = format!("spec loaded revision={revision}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut log = String::new();
    let loaded = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(&wanted);
                log.push_str(&line);
                log.push('\n');
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        loaded,
        "the ARM binary did not load {revision} over HTTPS:\n{log}"
    );
}

/// Issue 24: an image built only for linux/amd64, on a swarm whose one node
/// is aarch64: pre-flight asks the registry through the board's Docker and
/// names the node before anything is written.
fn preflight_names_the_arm_node_an_amd64_image_cannot_run_on(spec: &SpecDir) {
    let _registry = Registry::with_busybox(5081);
    spec.write(
        "services.toml",
        &format!("[service.arm-web]\nimage = \"{GATEWAY}:5081/busybox:1\"\n"),
    );
    let plan = reconciler(&["plan", &spec.arg(), "--ssh"]).expect_code(1);
    assert!(
        plan.stdout.contains("service.arm-web [platform] image `10.77.0.1:5081/busybox:1` has no manifest for any node it may be placed on: `rca1` (linux/arm64); it is built for linux/amd64"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
    std::fs::remove_file(spec.path().join("services.toml")).expect("remove services.toml");
}

/// Issue 23: `install` onto an ARM board of the test bed. An arm64 board
/// (Debian's arm64 userland run by qemu-aarch64 through binfmt_misc: `uname
/// -m` says aarch64) is made a one-node swarm by `apply --ssh` (Docker
/// installed from the mirror, started without iptables, which qemu-user
/// cannot give it); `install` given both the native and the aarch64 binary
/// puts the aarch64 one there and starts it; a push then changes the node's
/// label, and the controller running on the board writes it.
#[test]
fn the_controller_installed_on_an_arm_board_reconciles_its_swarm() {
    let arm = cross_build("aarch64");
    let boards = Boards::start_arm64("rca", 98, 1);
    assert_eq!(boards.exec(0, "uname -m").stdout.trim(), "aarch64");
    let spec = SpecDir::new("arm-board");
    let cluster = |tier: &str| {
        format!(
            r#"[cluster]
name = "arm-board"

[ssh]
user = "pi"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
hostname = true
hosts_file = true
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io >/dev/null"
start_docker = "nohup dockerd --iptables=false --ip6tables=false --insecure-registry {GATEWAY}:5081 >/var/log/dockerd.log 2>&1 </dev/null &"

[node.rca1]
address = "{address}"
role = "manager"
arch = "aarch64"
labels = {{ tier = "{tier}" }}
"#,
            identity = boards.identity().display(),
            known = boards.known_hosts().display(),
            address = boards.address(0),
        )
    };
    spec.write("cluster.toml", &cluster("one"));
    let dir = spec.arg();
    reconciler(&["apply", &dir, "--ssh", "--auto-approve", "--timeout", "5m"]).expect_code(0);
    let label = || {
        boards
            .exec(
                0,
                "sudo docker node inspect self --format '{{index .Spec.Labels \"tier\"}} {{.Description.Platform.Architecture}}'",
            )
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(label(), "one aarch64");

    preflight_names_the_arm_node_an_amd64_image_cannot_run_on(&spec);

    let repo = GitRepo::new();
    repo.commit(&[("cluster.toml", &cluster("one"))], "first");
    let server = GitHttp::start_on(repo.root(), "ops", "arm-pw", GATEWAY);
    let url = format!("http://{GATEWAY}:{}/remote.git", server.port);
    let password = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(password.path(), "arm-pw\n").expect("write");
    let native = reconciler_tests::process::binary().display().to_string();
    let installed = reconciler(&[
        "install",
        &dir,
        "--git",
        &url,
        "--git-username",
        "ops",
        "--git-password-file",
        &password.path().display().to_string(),
        "--binary",
        &native,
        "--binary",
        &arm.display().to_string(),
        "--run-arg=--interval=5s",
        "--run-arg=--allow-plaintext-git",
        "--ready-timeout",
        "3m",
    ])
    .expect_code(0);
    assert!(
        installed.stdout.contains("node rca1 (aarch64")
            && installed.stdout.contains("controller (re)started")
            && installed.stdout.contains("the controller is ready"),
        "{}",
        installed.stdout
    );
    // What is on the board is the aarch64 build (ELF e_machine 0xb7).
    assert_eq!(
        boards
            .exec(0, "od -An -tx1 -j18 -N2 /usr/local/bin/reconciler")
            .stdout
            .trim(),
        "b7 00"
    );

    repo.commit(&[("cluster.toml", &cluster("two"))], "tier two");
    wait_until(
        "the controller on the ARM board to relabel its node",
        Duration::from_secs(240),
        || match label().as_str() {
            "two aarch64" => Ok(()),
            other => Err(format!(
                "label {other:?}; log:\n{}",
                boards.exec(0, "tail -20 /var/log/reconciler.log").stdout
            )),
        },
    );
}
