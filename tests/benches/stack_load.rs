//! Loading a 1000-service compose stack, against the same services written
//! in TOML (the stack's `reconciler render`): how much translating costs.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench stack_load`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

const SERVICES: usize = 1000;
/// Many short rounds: one load takes ~30 ms, and a shared machine's noise
/// comes in bursts longer than that.
const ROUNDS: usize = 31;

fn stack_file() -> String {
    let mut text = String::from("version: \"3.8\"\nservices:\n");
    for i in 0..SERVICES {
        let _ = write!(
            text,
            "  svc{i}:\n    image: local/busybox:1\n    command: [\"sleep\", \"3600\"]\n    environment:\n      MODE: bench\n      INDEX: \"{i}\"\n    networks: [back]\n    deploy:\n      replicas: 2\n      labels:\n        tier: bench\n      resources:\n        limits: {{ memory: 32M }}\n      update_config:\n        parallelism: 1\n        delay: 5s\n"
        );
    }
    text.push_str("networks:\n  back:\n");
    text
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("cluster.toml"),
        "[cluster]\nname = \"bench\"\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("stack.yml"), stack_file()).expect("write");
    std::fs::write(
        dir.path().join("stacks.toml"),
        "[stack.big]\ncompose = \"stack.yml\"\n",
    )
    .expect("write");
    let files = reconciler_spec::read_dir_files(dir.path()).expect("read");
    let mut times = Vec::new();
    let mut rendered = String::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let spec = reconciler_spec::load_files(files.clone()).expect("the stack loads");
        times.push(started.elapsed());
        assert_eq!(spec.services.len(), SERVICES);
        rendered = reconciler_spec::render::to_toml(&spec);
    }
    let fastest = times.iter().min().copied().unwrap_or_default();
    println!(
        "{SERVICES}-service stack file: median {:.1?} to load (fastest {fastest:.1?})",
        median(times)
    );
    let toml_files = vec![("spec.toml".into(), rendered)];
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let spec = reconciler_spec::load_files(toml_files.clone()).expect("the TOML loads");
        times.push(started.elapsed());
        assert_eq!(spec.services.len(), SERVICES);
    }
    println!(
        "the same {SERVICES} services in TOML: median {:.1?} to load",
        median(times)
    );
}
