//! A 1000-service stack file deployed by `docker stack deploy` and by
//! `reconciler apply`, on the same daemon in the same run: creating the
//! services, then deploying the unchanged file again (the no-op).
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench stack_deploy`.
//! Needs `scripts/setup` first. The services ask for 0 replicas: what is
//! compared is the control plane (reading, planning, writing services),
//! not 2 000 containers on one machine. Both are timed as the processes a
//! user runs: `docker` and the release build of `reconciler`. Stacks `bsd`
//! (the CLI's) and `brc` (reconciler's) are removed at the start and the end.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use reconciler_tests::process::release_binary;
use reconciler_tests::{docker, docker_unchecked, require_swarm, SpecDir, IMAGE};

const SERVICES: usize = 1000;
const ROUNDS: usize = 11;

fn stack_file() -> String {
    let mut text = String::from("version: \"3.8\"\nservices:\n");
    for i in 0..SERVICES {
        let _ = write!(
            text,
            "  s{i}:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    environment:\n      INDEX: \"{i}\"\n    deploy:\n      replicas: 0\n      labels:\n        tier: bench\n"
        );
    }
    text
}

fn remove(stack: &str) {
    docker_unchecked(&["stack", "rm", stack]);
    for _ in 0..120 {
        let left = docker_unchecked(&[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
        ]);
        if left.stdout.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn timed(what: &str, run: impl Fn()) -> Duration {
    let started = Instant::now();
    run();
    let took = started.elapsed();
    println!("{what}: {took:.2?}");
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    require_swarm();
    remove("bsd");
    remove("brc");
    let spec = SpecDir::new("bench-stack");
    spec.write("stack/docker-stack.yml", &stack_file());
    spec.write(
        "stacks.toml",
        "[controller]\nmax_delete_fraction = 1.0\n[stack.brc]\ncompose = \"stack/docker-stack.yml\"\n",
    );
    let file = spec.path().join("stack/docker-stack.yml");
    let file = file.display().to_string();
    let dir = spec.arg();
    let cli = || {
        docker(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "--detach=true",
            "-c",
            &file,
            "bsd",
        ]);
    };
    let binary = release_binary();
    let ours = || {
        let out = std::process::Command::new(&binary)
            .args(["apply", &dir, "--auto-approve", "--no-wait"])
            .output()
            .expect("cannot run reconciler");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let cli_create = timed("docker stack deploy, creating 1000 services", cli);
    let our_create = timed("reconciler apply, creating 1000 services", ours);
    // Ours first: the CLI's "unchanged" deploy still updates every service,
    // and the swarm works through those updates for a while after it exits.
    // Creating 2000 services leaves the managers busy for a while too: the
    // no-ops are timed once it has settled (a steady cluster is what a
    // no-op meets), after one untimed run.
    std::thread::sleep(Duration::from_secs(20));
    ours();
    let our_noop = median(
        (0..ROUNDS)
            .map(|_| timed("  reconciler apply, unchanged", ours))
            .collect(),
    );
    let cli_noop = median(
        (0..ROUNDS)
            .map(|_| timed("  docker stack deploy, unchanged", cli))
            .collect(),
    );
    println!(
        "create: CLI {cli_create:.2?}, reconciler {our_create:.2?} ({:.2}x)",
        cli_create.as_secs_f64() / our_create.as_secs_f64()
    );
    println!(
        "no-op (median of {ROUNDS}): CLI {cli_noop:.2?}, reconciler {our_noop:.2?} ({:.1}x faster)",
        cli_noop.as_secs_f64() / our_noop.as_secs_f64()
    );
    remove("bsd");
    remove("brc");
}
