//! How long each case of the bad-spec corpus takes to be refused (issue:
//! every case refused with file:line:col in under a second). Loads each case
//! the way `validate` does, a few rounds, and prints the slowest cases.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench bad_specs`.

use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn main() {
    let corpus = reconciler_tests::repo_path("spec/tests/bad-specs");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("the corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut times: Vec<(Duration, String)> = Vec::new();
    for case in &cases {
        let mut slowest = Duration::ZERO;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let result = reconciler_spec::load_dir(case);
            slowest = slowest.max(started.elapsed());
            assert!(result.is_err(), "{} loaded", case.display());
        }
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        times.push((slowest, name));
    }
    times.sort();
    let total: Duration = times.iter().map(|(t, _)| *t).sum();
    println!(
        "{} bad-spec cases, each loaded {ROUNDS} times: slowest round per case summed {:.1?}",
        times.len(),
        total
    );
    for (time, name) in times.iter().rev().take(5) {
        println!("  {time:>10.1?}  {name}");
    }
}
