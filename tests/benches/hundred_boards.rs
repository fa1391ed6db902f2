//! A hundred cheap boards (sshd-only servers on loopback ports, logging in
//! as the test user with sudo as root would): how long a first pass takes
//! (connect, host key check, login, the facts script) and how long an
//! unchanged re-check takes over sessions kept open, and how much of that is
//! SSH (a trivial command per session) rather than the facts script, which
//! here runs on this machine's cores for all hundred boards at once.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench hundred_boards`.
//! It prints the figures; it asserts only that every board answered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reconciler::node::facts::SCRIPT;
use reconciler::node::fanout::for_each;
use reconciler::node::{gather_facts, Session, SshOptions};
use reconciler_tests::sshd::Sshd;

const BOARDS: usize = 100;
const ROUNDS: usize = 3;

fn median(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

fn main() {
    let started = Instant::now();
    let (_servers, targets) = Sshd::fleet(BOARDS, "pi");
    println!("{BOARDS} sshd boards started in {:.1?}", started.elapsed());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for parallel in [8, 32] {
        // First pass: what every reconcile of `run --ssh` does today.
        let mut first = Vec::new();
        for _ in 0..ROUNDS {
            let sink: Arc<Mutex<dyn std::io::Write + Send>> = Arc::new(Mutex::new(std::io::sink()));
            let started = Instant::now();
            let results = runtime.block_on(gather_facts(
                targets.clone(),
                SshOptions::default(),
                parallel,
                sink,
            ));
            first.push(started.elapsed());
            let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
            assert!(failed.is_empty(), "{failed:?}");
        }
        let (mid, low, high) = median(first);
        println!("first pass over {BOARDS} boards, {parallel} at a time: median {mid:.2?} (min {low:.2?}, max {high:.2?})");

        // Unchanged re-check: the facts script again over sessions kept open.
        let sessions: Vec<Arc<Session>> = runtime
            .block_on(for_each(targets.clone(), parallel, |target| async move {
                Session::connect(&target, SshOptions::default())
                    .await
                    .map(Arc::new)
            }))
            .into_iter()
            .map(|r| r.expect("connect"))
            .collect();
        let mut again = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let results =
                runtime.block_on(for_each(sessions.clone(), parallel, |session| async move {
                    session.run_as_root("gather facts", SCRIPT).await
                }));
            again.push(started.elapsed());
            assert!(results.iter().all(Result::is_ok), "a re-check failed");
        }
        let (mid, low, high) = median(again);
        println!("unchanged re-check over kept sessions, {parallel} at a time: median {mid:.2?} (min {low:.2?}, max {high:.2?})");

        // The SSH side alone: one trivial command per kept session. What is
        // left of the re-check above is the facts script running on the
        // boards, which here share this machine's two cores.
        let mut trivial = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let results =
                runtime.block_on(for_each(sessions.clone(), parallel, |session| async move {
                    session.run("check", "true").await
                }));
            trivial.push(started.elapsed());
            assert!(results.iter().all(Result::is_ok), "a check failed");
        }
        let (mid, low, high) = median(trivial);
        println!("one trivial command per kept session, {parallel} at a time: median {mid:.2?} (min {low:.2?}, max {high:.2?})");
        if parallel == 8 {
            // Latency, not throughput: twenty commands one after another.
            let few: Vec<Arc<Session>> = sessions.iter().take(20).cloned().collect();
            let started = Instant::now();
            let results = runtime.block_on(for_each(few, 1, |session| async move {
                session.run("check", "true").await
            }));
            assert!(results.iter().all(Result::is_ok), "a check failed");
            println!(
                "one trivial command on a kept session, one at a time: {:.0?} each",
                started.elapsed() / 20
            );
        }
    }
}
