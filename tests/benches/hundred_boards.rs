//! A hundred cheap boards (a rack: one bare-board container with an address
//! and an sshd per board, logging in as `pi` with sudo like Raspberry Pi
//! OS), looked at the way `run --ssh` looks at them, through the real
//! [`Fleet`]:
//!
//! * first pass: a new fleet — connect, check the host key, log in, run the
//!   facts script through sudo — on every board;
//! * unchanged re-check: the same fleet again, as each reconcile of a
//!   cluster in steady state does — every kept session checked with a
//!   keepalive round trip, facts from the cache (they are fresh);
//! * facts re-learned on kept sessions: what the `--facts-max-age` timer
//!   costs when it expires for every board at once.
//!
//! The boards' sshd and facts scripts share this machine's cores with the
//! controller, unlike real boards, so the first pass is pessimistic.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench hundred_boards`.
//! It prints the figures; it asserts only that every board answered.

use std::time::{Duration, Instant};

use reconciler::node::fleet::Fleet;
use reconciler::node::SshOptions;
use reconciler_tests::rack::Rack;

const BOARDS: usize = 100;
const ROUNDS: usize = 5;

fn median(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

fn report(what: &str, times: Vec<Duration>) {
    let (mid, low, high) = median(times);
    println!("{what}: median {mid:.2?} (min {low:.2?}, max {high:.2?})");
}

fn main() {
    let started = Instant::now();
    let addresses: Vec<String> = (1..=BOARDS).map(|i| format!("10.78.9.{i}")).collect();
    let rack = Rack::start("rc-rack-bench", &addresses);
    println!("{BOARDS} boards started in {:.1?}", started.elapsed());
    let mut spec = format!(
        "[cluster]\nname = \"bench\"\n[ssh]\nuser = \"pi\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n",
        rack.identity().display(),
        rack.known_hosts().display()
    );
    for (i, address) in addresses.iter().enumerate() {
        let role = if i == 0 { "manager" } else { "worker" };
        spec.push_str(&format!(
            "[node.pi{:03}]\naddress = \"{address}\"\nrole = \"{role}\"\n",
            i + 1
        ));
    }
    let spec = reconciler_spec::load_files(vec![("bench.toml".into(), spec)])
        .unwrap_or_else(|e| panic!("the bench spec: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let options = SshOptions::default();
    let answered = |looked: &reconciler::node::fleet::Looked| {
        assert!(looked.failures.is_empty(), "{:?}", looked.failures);
        assert_eq!(looked.facts.len(), BOARDS);
    };
    for parallel in [8, 32] {
        let mut first = Vec::new();
        let mut fleet = Fleet::new(Duration::from_secs(3600));
        for _ in 0..ROUNDS {
            fleet = Fleet::new(Duration::from_secs(3600));
            let started = Instant::now();
            let looked = runtime.block_on(fleet.look(&spec, options, parallel));
            first.push(started.elapsed());
            answered(&looked);
            assert_eq!(looked.learned_now.len(), BOARDS);
        }
        report(
            &format!("first pass over {BOARDS} boards, {parallel} at a time"),
            first,
        );

        let mut again = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let looked = runtime.block_on(fleet.look(&spec, options, parallel));
            again.push(started.elapsed());
            answered(&looked);
            assert!(looked.learned_now.is_empty(), "facts were learned again");
        }
        report(
            &format!("unchanged re-check of {BOARDS} boards, {parallel} at a time"),
            again,
        );

        let mut relearned = Vec::new();
        for _ in 0..ROUNDS {
            // The same sessions, every fact expired.
            fleet = fleet.with_facts_max_age(Duration::ZERO);
            let started = Instant::now();
            let looked = runtime.block_on(fleet.look(&spec, options, parallel));
            relearned.push(started.elapsed());
            answered(&looked);
            assert_eq!(looked.learned_now.len(), BOARDS);
            fleet = fleet.with_facts_max_age(Duration::from_secs(3600));
        }
        report(
            &format!("facts re-learned on {BOARDS} kept sessions, {parallel} at a time"),
            relearned,
        );
    }
}
