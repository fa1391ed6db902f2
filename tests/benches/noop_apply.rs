//! How long a no-op `apply` of 100 services takes against the local daemon,
//! and how many Docker writes it makes (it must be zero).
//!
//! Run by hand, not in CI: `cargo bench -p reconciler-tests --bench noop_apply`.
//! Needs `scripts/setup` first. Creates services `bench-000`..`bench-099`
//! (one `sleep` task each) and removes them at the end.

use std::time::{Duration, Instant};

use reconciler_tests::proxy::DockerProxy;
use reconciler_tests::{reconciler, require_swarm, Cleanup, SpecDir, IMAGE};

const SERVICES: usize = 100;
const ROUNDS: usize = 10;

fn main() {
    require_swarm();
    let _cleanup = Cleanup::new("bench", "bench-");
    let spec = SpecDir::new("bench");
    let mut body = String::from("[controller]\nmax_delete_fraction = 1.0\n");
    for i in 0..SERVICES {
        body.push_str(&format!(
            "[service.bench-{i:03}]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"86400\"]\nenv = {{ INDEX = \"{i}\" }}\nlabels = {{ bench = \"noop\" }}\nresources = {{ limit_memory = \"16M\" }}\n\n"
        ));
    }
    spec.write("services.toml", &body);
    let dir = spec.arg();
    let proxy = DockerProxy::start(Some("/var/run/docker.sock"));
    let host = proxy.host();

    let started = Instant::now();
    reconciler(&[
        "apply",
        &dir,
        "--auto-approve",
        "--timeout",
        "10m",
        "--docker-host",
        &host,
    ])
    .expect_code(0);
    println!(
        "first apply of {SERVICES} services (create + wait for tasks): {:.1?}",
        started.elapsed()
    );
    println!("  Docker writes: {}", proxy.writes().len());

    let mut times: Vec<Duration> = Vec::new();
    let mut writes = 0;
    let mut requests = 0;
    for _ in 0..ROUNDS {
        proxy.reset();
        let started = Instant::now();
        let out =
            reconciler(&["apply", &dir, "--auto-approve", "--docker-host", &host]).expect_code(0);
        times.push(started.elapsed());
        assert!(
            out.stdout.contains("No changes."),
            "not a no-op:\n{}",
            out.stdout
        );
        writes += proxy.writes().len();
        requests += proxy.requests().len();
    }
    times.sort();
    println!(
        "no-op apply of {SERVICES} services over {ROUNDS} rounds: median {:.1?}, min {:.1?}, max {:.1?}",
        times[ROUNDS / 2],
        times[0],
        times[ROUNDS - 1]
    );
    println!(
        "  Docker writes in all no-op rounds: {writes}; requests per round: {}",
        requests / ROUNDS
    );
    // The figure the bench exists for: a no-op apply never writes.
    assert_eq!(writes, 0, "a no-op apply wrote to Docker");
}
