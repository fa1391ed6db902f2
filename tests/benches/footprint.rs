//! What the controller costs a board: the stripped size of each release
//! binary that exists (native `target/release`, and what `scripts/cross`
//! built), and the resident memory of `reconciler run` (release build,
//! observe mode against the local swarm) idle with a small spec and with a
//! 1000-service spec loaded and planned.
//!
//! Run by hand: `scripts/cross x86_64` (and `aarch64`, `armv7` for their
//! sizes), then `cargo bench -p reconciler-tests --bench footprint`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reconciler_tests::http;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn sizes() {
    let root = reconciler_tests::repo_path("");
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let mut candidates = vec![(
        "x86_64 (cargo build --release, system OpenSSL)",
        root.join("target/release/reconciler"),
    )];
    for (name, triple) in [
        ("x86_64 (static)", "x86_64-unknown-linux-gnu"),
        ("aarch64 (static)", "aarch64-unknown-linux-gnu"),
        ("armv7 (static)", "armv7-unknown-linux-gnueabihf"),
    ] {
        for dir in [
            root.join("target/cross"),
            home.join(".cache/reconciler/cross"),
        ] {
            candidates.push((name, dir.join(triple).join("release/reconciler")));
        }
    }
    for (name, path) in candidates {
        if let Ok(meta) = std::fs::metadata(&path) {
            println!("{name:>16}: {} ({})", mib(meta.len()), path.display());
        }
    }
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Starts the release binary on `dir`, waits for two reconciles, then
/// samples its memory for a few seconds: the highest resident size.
fn resident(binary: &Path, dir: &Path) -> u64 {
    let dir = dir.display().to_string();
    let mut child = std::process::Command::new(binary)
        .args([
            "run",
            "--dir",
            &dir,
            "--observe",
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RECONCILER_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the release binary");
    let stderr = child.stderr.take().expect("stderr");
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let address: std::net::SocketAddr = address
        .recv_timeout(Duration::from_secs(30))
        .expect("the controller says where it listens")
        .parse()
        .expect("an address");
    let reconciles = || {
        http::get(address, "/metrics")
            .ok()
            .and_then(|r| http::metric(&r.body, "reconciler_reconciles_total{result=\"success\"}"))
            .unwrap_or(0.0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while reconciles() < 2.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut highest = 0;
    for _ in 0..10 {
        highest = highest.max(rss(child.id()));
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = child.kill();
    let _ = child.wait();
    highest
}

/// The board binary for this machine: scripts/cross x86_64's, else a plain release build.
fn release_binary() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    [
        home.join(".cache/reconciler/cross/x86_64-unknown-linux-gnu/release/reconciler"),
        reconciler_tests::repo_path("target/cross/x86_64-unknown-linux-gnu/release/reconciler"),
        reconciler_tests::repo_path("target/release/reconciler"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn main() {
    sizes();
    let Some(binary) = release_binary() else {
        println!("no release binary: run scripts/cross x86_64 (or cargo build --release) for the memory figures");
        return;
    };
    println!("memory of {}", binary.display());
    let small = reconciler_tests::repo_path("examples/local");
    println!(
        "RSS idle, examples/local: {}",
        mib(resident(&binary, &small))
    );
    let big = tempfile::tempdir().expect("temp dir");
    let mut services = String::from("[cluster]\nname = \"footprint\"\n");
    for i in 0..1000 {
        let _ = write!(
            services,
            "\n[service.fp-{i}]\nimage = \"local/busybox:1\"\ncommand = [\"sleep\", \"3600\"]\nenv = {{ INDEX = \"{i}\" }}\n"
        );
    }
    std::fs::write(big.path().join("services.toml"), services).expect("write");
    println!(
        "RSS with 1000 services loaded and planned (observe mode): {}",
        mib(resident(&binary, big.path()))
    );
}
