//! Wall time to gather facts from 20 sshd-only hosts (real sshd servers on
//! loopback ports), at a few fan-out bounds.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench facts_fanout`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reconciler::node::{gather_facts, SshOptions};
use reconciler_tests::sshd::Sshd;

const HOSTS: usize = 20;
const ROUNDS: usize = 5;

fn main() {
    let (_servers, targets) = Sshd::fleet(HOSTS, "host");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for parallel in [1, 8, 20] {
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..ROUNDS {
            let sink: Arc<Mutex<dyn std::io::Write + Send>> = Arc::new(Mutex::new(std::io::sink()));
            let started = Instant::now();
            let results = runtime.block_on(gather_facts(
                targets.clone(),
                SshOptions::default(),
                parallel,
                sink,
            ));
            times.push(started.elapsed());
            let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
            assert!(failed.is_empty(), "{failed:?}");
        }
        times.sort();
        println!(
            "facts from {HOSTS} hosts, {parallel} at a time: median {:.0?} (min {:.0?}, max {:.0?}) over {ROUNDS} rounds",
            times[ROUNDS / 2],
            times[0],
            times[ROUNDS - 1]
        );
    }
}
