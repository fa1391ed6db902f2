//! The test bed for Reconciler's end-to-end tests: real Docker, real swarm.
//!
//! * [`docker`] runs the Docker CLI (for setting up drift and checking results
//!   independently of the code under test).
//! * [`reconciler`] runs the `reconciler` command line in-process, exactly as
//!   the binary does, and captures what a user would see.
//! * [`SpecDir`] writes a spec directory; [`Cleanup`] removes a test's Docker
//!   objects when it ends, also when it fails.
//! * [`proxy::DockerProxy`] sits between the controller and the Docker socket
//!   and counts every request: the proof of "zero writes" and "no calls".
//! * [`process::Process`] runs the real binary (for `reconciler run`),
//!   [`http`] talks to it, [`git::GitRepo`] is a real repository to follow.
//!
//! The machine must have been prepared by `scripts/setup` (Docker in swarm
//! mode and the `local/busybox` images); [`require_swarm`] says so if not.

pub mod boards;
pub mod browser;
pub mod controller;
pub mod generate;
pub mod git;
pub mod http;
pub mod process;
pub mod proxy;
pub mod rack;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use reconciler::cli::{Cli, Console};

/// The tiny image every test service runs (busybox, built by `scripts/setup`).
pub const IMAGE: &str = "local/busybox:1";
/// The same image under a second tag, for image updates.
pub const IMAGE_V2: &str = "local/busybox:2";

/// Tests that change the one node (availability, labels) must run alone;
/// every other swarm test holds a shared guard.
static NODE: RwLock<()> = RwLock::new(());

pub fn shared_node() -> RwLockReadGuard<'static, ()> {
    NODE.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn exclusive_node() -> RwLockWriteGuard<'static, ()> {
    NODE.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Output of one command.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams when the exit code is not `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs the Docker CLI; panics with its stderr if it fails.
pub fn docker(args: &[&str]) -> String {
    let output = docker_unchecked(args);
    assert_eq!(
        output.code,
        0,
        "docker {} failed: {}",
        args.join(" "),
        output.stderr
    );
    output.stdout
}

/// Runs the Docker CLI and returns whatever happened.
pub fn docker_unchecked(args: &[&str]) -> Output {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("cannot run the docker CLI");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Panics with instructions unless the local daemon is a swarm manager with the test images.
pub fn require_swarm() {
    let state = docker_unchecked(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    assert!(
        state.code == 0 && state.stdout.trim() == "active true",
        "these tests need a local Docker daemon that is a swarm manager (got: {} {}); run scripts/setup first",
        state.stdout.trim(),
        state.stderr.trim()
    );
    for image in [IMAGE, IMAGE_V2] {
        assert_eq!(
            docker_unchecked(&["image", "inspect", image]).code,
            0,
            "image {image} is missing; run scripts/setup first"
        );
    }
}

/// Runs `reconciler ARGS...` in-process through the same code path as the binary.
pub fn reconciler(args: &[&str]) -> Output {
    in_process(args, None)
}

/// Runs `reconciler ARGS...` in-process with `answer` typed at its
/// confirmation prompt, as a person at a terminal would.
pub fn reconciler_answering(args: &[&str], answer: &str) -> Output {
    in_process(args, Some(answer))
}

/// The binary's `main` without the process: parse, run, capture both streams.
/// `answer` is what a person at a terminal types; `None` is no terminal.
fn in_process(args: &[&str], answer: Option<&str>) -> Output {
    use clap::Parser;
    let mut argv = vec!["reconciler"];
    argv.extend_from_slice(args);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(error) => {
            return Output {
                code: error.exit_code(),
                stdout: String::new(),
                stderr: error.to_string(),
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut typed = answer.map(|a| std::io::Cursor::new(a.as_bytes().to_vec()));
    let code = {
        let mut console = Console {
            out: &mut out,
            err: &mut err,
            progress: reconciler::cli::ProgressStyle::Plain,
            input: typed.as_mut().map(|t| t as &mut dyn std::io::BufRead),
        };
        runtime.block_on(reconciler::cli::run(cli, &mut console))
    };
    Output {
        code: i32::from(code),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// A spec directory in a temporary folder.
#[derive(Debug)]
pub struct SpecDir {
    dir: tempfile::TempDir,
}

impl SpecDir {
    /// A spec whose `[cluster] name` is `cluster`, in `cluster.toml`.
    pub fn new(cluster: &str) -> Self {
        let dir = tempfile::tempdir().expect("cannot make a temp dir");
        let spec = Self { dir };
        spec.write(
            "cluster.toml",
            &format!("[cluster]\nname = \"{cluster}\"\n"),
        );
        spec
    }

    /// Writes (or replaces) one file of the spec.
    pub fn write(&self, name: &str, body: &str) -> &Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        std::fs::write(&path, body)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self
    }

    pub fn remove(&self, name: &str) -> &Self {
        let path = self.dir.path().join(name);
        std::fs::remove_file(&path)
            .unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(&self) -> String {
        self.dir.path().display().to_string()
    }
}

/// Removes a test's services and networks when dropped: everything labelled
/// with its cluster name, and every object whose name starts with its prefix.
#[derive(Debug)]
pub struct Cleanup {
    cluster: String,
    prefix: String,
}

impl Cleanup {
    /// Also removes leftovers of an earlier run right away, including the
    /// lease a killed controller of the same test left behind (a standby
    /// with a long interval would otherwise wait for it).
    pub fn new(cluster: &str, prefix: &str) -> Self {
        let cleanup = Self {
            cluster: cluster.to_string(),
            prefix: prefix.to_string(),
        };
        cleanup.run();
        for _ in 0..10 {
            if lease_label(cluster).is_none() || try_set_lease_label(cluster, None).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        cleanup
    }

    fn names(&self, kind: &str) -> Vec<String> {
        let label = format!("label=io.reconciler.cluster={}", self.cluster);
        let by_label =
            docker_unchecked(&[kind, "ls", "--filter", &label, "--format", "{{.Name}}"]).stdout;
        let all = docker_unchecked(&[kind, "ls", "--format", "{{.Name}}"]).stdout;
        let mut names: Vec<String> = by_label
            .lines()
            .chain(all.lines().filter(|n| n.starts_with(&self.prefix)))
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn run(&self) {
        for service in self.names("service") {
            docker_unchecked(&["service", "rm", &service]);
        }
        // Configs and secrets are free once no service names them.
        for kind in ["config", "secret"] {
            for name in self.names(kind) {
                docker_unchecked(&[kind, "rm", &name]);
            }
        }
        let networks = self.names("network");
        if networks.is_empty() {
            return;
        }
        // A network is busy until the tasks of removed services are gone, and
        // after the swarm removed it, this node keeps its copy for a moment:
        // wait until it is gone for good, so the next test does not see a ghost.
        let deadline = Instant::now() + Duration::from_secs(30);
        for network in networks {
            while docker_unchecked(&["network", "inspect", &network]).code == 0
                && Instant::now() < deadline
            {
                docker_unchecked(&["network", "rm", &network]);
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// Polls `check` until it returns `Ok`, or panics with its last complaint at the deadline.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(problem) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}: {problem}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// `docker service inspect` of one service, parsed.
pub fn inspect_service(name: &str) -> serde_json::Value {
    let text = docker(&["service", "inspect", name]);
    let list: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("docker service inspect {name}: bad JSON: {e}"));
    list.get(0)
        .cloned()
        .unwrap_or_else(|| panic!("service {name} not found"))
}

/// The service's version index, which Docker bumps on every write.
pub fn service_version(name: &str) -> u64 {
    inspect_service(name)["Version"]["Index"]
        .as_u64()
        .unwrap_or_else(|| panic!("service {name} has no version index"))
}

/// `GET` of a Docker Engine API path on the local socket (`/swarm`, ...),
/// parsed: for what the docker CLI does not print, such as the Swarm
/// object's labels. Independent of the code under test.
pub fn docker_api(path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect("/var/run/docker.sock")
        .expect("cannot reach /var/run/docker.sock");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").expect("docker API request");
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .expect("docker API response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {raw}"));
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}\n{body}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: bad JSON ({e}): {body}"))
}

/// The one-writer lease label of a cluster on the Swarm object (`"HOLDER EXPIRY"`).
pub fn lease_label(cluster: &str) -> Option<String> {
    docker_api("/swarm")["Spec"]["Labels"][format!("io.reconciler.lease.{cluster}")]
        .as_str()
        .map(str::to_string)
}

/// Writes (or with `None` removes) a cluster's lease label on the Swarm
/// object, as another controller would: through the Docker API, at the
/// swarm's current version.
pub fn set_lease_label(cluster: &str, value: Option<&str>) {
    if let Err(raw) = try_set_lease_label(cluster, value) {
        panic!("POST /swarm/update: {raw}");
    }
}

/// [`set_lease_label`], returning Docker's answer when it is not 200 (the
/// swarm's version moved under a parallel test's controller, say).
pub fn try_set_lease_label(cluster: &str, value: Option<&str>) -> Result<(), String> {
    let swarm = docker_api("/swarm");
    let version = swarm["Version"]["Index"].as_u64().unwrap_or_default();
    let mut spec = swarm["Spec"].clone();
    let key = format!("io.reconciler.lease.{cluster}");
    if let Some(labels) = spec["Labels"].as_object_mut() {
        match value {
            Some(value) => labels.insert(key, value.into()),
            None => labels.remove(&key),
        };
    }
    match docker_api_post(&format!("/swarm/update?version={version}"), &spec) {
        (200, _) => Ok(()),
        (status, answer) => Err(format!("{status} {answer}")),
    }
}

/// `POST` of a JSON body to a path of the local Engine API: the status code
/// and the parsed answer (a string when it is not JSON). Independent of the
/// code under test (no bollard).
pub fn docker_api_post(path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut stream = std::os::unix::net::UnixStream::connect("/var/run/docker.sock")
        .expect("cannot reach /var/run/docker.sock");
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("docker API request");
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .expect("docker API response");
    let (head, answer) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {raw}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let answer = serde_json::from_str(answer)
        .unwrap_or_else(|_| serde_json::Value::String(answer.to_string()));
    (status, answer)
}

/// Runs the real `reconciler` binary (not in-process): for what only a
/// process has, its environment (`DOCKER_HOST`, `SSH_AUTH_SOCK`) and its
/// log lines on stderr (`RECONCILER_LOG`).
pub fn reconciler_binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(process::binary());
    command.args(args).stdin(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("cannot run reconciler");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The tasks Swarm wants running for `service`, as `docker service ps`
/// (the reference) reports them: `(task name, node, current state)` with
/// the state's first word (`Running`, `Starting`, ...). None for a service
/// that does not exist.
pub fn wanted_tasks(service: &str) -> Vec<(String, String, String)> {
    docker_unchecked(&[
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}} {{.Node}} {{.CurrentState}}",
    ])
    .stdout
    .lines()
    .filter_map(|line| {
        let mut fields = line.split_whitespace();
        Some((
            fields.next()?.to_string(),
            fields.next()?.to_string(),
            fields.next()?.to_string(),
        ))
    })
    .collect()
}

/// How many of a service's tasks run, by `docker service ps`.
pub fn running_tasks(service: &str) -> usize {
    wanted_tasks(service)
        .iter()
        .filter(|(_, _, state)| state == "Running")
        .count()
}

/// Runs the real `reconciler` binary on a pseudo-terminal (util-linux
/// `script`), 100 columns wide, as a person at a terminal would: `stdout`
/// is what the terminal received (stdout and stderr together, control
/// codes included).
pub fn reconciler_on_terminal(args: &[&str], env: &[(&str, &str)]) -> Output {
    let command = std::iter::once(process::binary().display().to_string())
        .chain(
            args.iter()
                .map(|a| format!("'{}'", a.replace('\'', "'\\''"))),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .env("COLUMNS", "100")
        .env("TERM", "xterm")
        .env_remove("RECONCILER_PROGRESS");
    for (key, value) in env {
        script.env(key, value);
    }
    let output = script.output().expect("cannot run script (util-linux)");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Where the repository's folders are, for examples and the bad-spec corpus.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The one running container of a service (single-node swarm), once it runs.
pub fn running_container(service: &str) -> String {
    let mut found = String::new();
    wait_until(
        &format!("a running container of {service}"),
        Duration::from_secs(60),
        || {
            let ids = docker_unchecked(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ])
            .stdout;
            match ids.lines().next() {
                Some(id) if ids.lines().count() == 1 => {
                    found = id.to_string();
                    Ok(())
                }
                _ => Err(format!("containers: {ids:?}")),
            }
        },
    );
    found
}

/// Restarts the local dockerd as a crash-and-reboot of a board would: the
/// daemon stops (its containers with it), starts again from its state on
/// disk, and the one-node swarm comes back. Hold [`exclusive_node`] around
/// it. Under systemd it is `systemctl restart docker`; otherwise the daemon
/// `scripts/setup` started is signalled and started again the same way.
pub fn restart_dockerd() {
    let systemd = Command::new("systemctl")
        .args(["is-active", "--quiet", "docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    if systemd {
        let status = Command::new("systemctl")
            .args(["restart", "docker"])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "systemctl restart docker failed"
        );
    } else {
        let status = Command::new("pkill")
            .args(["-TERM", "-x", "dockerd"])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "no dockerd to stop");
        wait_until(
            "dockerd to stop",
            Duration::from_secs(60),
            || match Command::new("pgrep").args(["-x", "dockerd"]).status() {
                Ok(s) if !s.success() => Ok(()),
                _ => Err("still running".to_string()),
            },
        );
        // Its own session, so it outlives this test process.
        let status = Command::new("sh")
            .args([
                "-c",
                "setsid -f dockerd >>/var/log/reconciler-dockerd.log 2>&1 </dev/null",
            ])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "cannot start dockerd");
    }
    wait_until("the swarm to answer again", Duration::from_secs(90), || {
        let info = docker_unchecked(&[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ]);
        let nodes = docker_unchecked(&["node", "ls", "--format", "{{.Status}}"]);
        if info.stdout.trim() == "active true" && nodes.stdout.trim() == "Ready" {
            Ok(())
        } else {
            Err(format!("{} / {}", info.stdout.trim(), nodes.stdout.trim()))
        }
    });
}

#[cfg(test)]
mod tests {
    /// Each test cleans up its cluster by name before and after it runs
    /// (`Cleanup`): two tests sharing a cluster name remove each other's
    /// services mid-run (it happened: a new test took `t-leave`).
    #[test]
    fn every_cleanup_names_a_cluster_no_other_test_uses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut seen: std::collections::BTreeMap<String, String> = Default::default();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("tests/")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("a test file");
            for (_, rest) in text
                .match_indices("Cleanup::new(")
                .map(|(i, _)| ((), &text[i..]))
            {
                let Some(name) = rest
                    .split_once('"')
                    .and_then(|(_, after)| after.split_once('"'))
                    .map(|(name, _)| name.to_string())
                else {
                    continue;
                };
                let file = path.display().to_string();
                if let Some(other) = seen.insert(name.clone(), file.clone()) {
                    panic!("cluster `{name}` is cleaned up by two tests ({other} and {file})");
                }
            }
        }
        assert!(seen.len() > 20, "found only {seen:?}");
    }
}
