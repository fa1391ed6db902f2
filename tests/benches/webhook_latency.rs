//! From a verified push webhook to the controller's first Docker write: the
//! latency `reconciler run` adds between `git push` and the swarm changing.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench webhook_latency`.
//! Needs `scripts/setup`. The controller's Docker socket goes through the
//! counting proxy, which timestamps each request.

use std::time::{Duration, Instant};

use reconciler_tests::controller::Controller;
use reconciler_tests::git::GitRepo;
use reconciler_tests::proxy::DockerProxy;
use reconciler_tests::{require_swarm, wait_until, Cleanup, IMAGE};

const ROUNDS: u32 = 15;

fn spec(replicas: u32) -> String {
    format!("[service.bench-hook]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = {replicas}\n")
}

fn main() {
    require_swarm();
    let _cleanup = Cleanup::new("bench-hook", "bench-hook");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", "[cluster]\nname = \"bench-hook\"\n"),
            ("s.toml", &spec(1)),
        ],
        "start",
    );
    let proxy = DockerProxy::start(Some("/var/run/docker.sock"));
    let host = proxy.host();
    let url = repo.url();
    // The hour-long interval leaves the webhook as the only trigger.
    let controller = Controller::start(
        &["--git", &url],
        &["--interval", "1h", "--docker-host", &host],
    );
    wait_until("the first apply", Duration::from_secs(60), || {
        (controller.metric("reconciler_docker_writes_total") >= 1.0)
            .then_some(())
            .ok_or("no write yet".to_string())
    });
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        repo.commit(&[("s.toml", &spec(2 + round % 2))], "scale");
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        assert_eq!(controller.github_push(br#"{"ref":"refs/heads/main"}"#), 202);
        let written = wait_until("the write after the hook", Duration::from_secs(30), || {
            proxy
                .first_write_after(sent)
                .ok_or("no write yet".to_string())
        });
        latencies.push(written.duration_since(sent));
    }
    latencies.sort();
    let n = latencies.len();
    println!(
        "webhook -> first Docker write over {n} pushes: median {:.1?}, min {:.1?}, max {:.1?}",
        latencies[n / 2],
        latencies[0],
        latencies[n - 1]
    );
}
