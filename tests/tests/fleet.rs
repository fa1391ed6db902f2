//! The boards `run --ssh` keeps between reconciles (`node/fleet.rs`), on a
//! rack of two real boards (bare Debian, `pi` with sudo): sessions kept and
//! replaced when cut, facts cached and asked again when forgotten or
//! expired, and — the safety rule — steps planned only from facts learned
//! in the same pass.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reconciler::node::fleet::Fleet;
use reconciler::node::provision::BoardWork;
use reconciler::node::provision::{provision, Progress};
use reconciler::node::SshOptions;
use reconciler_tests::rack::Rack;

fn spec_for(rack: &Rack) -> reconciler_spec::Spec {
    let text = format!(
        "[cluster]\nname = \"fleet\"\n[ssh]\nuser = \"pi\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n[bootstrap]\ndocker_users = [\"pi\"]\n[node.b1]\naddress = \"{}\"\nrole = \"manager\"\n[node.b2]\naddress = \"{}\"\nrole = \"worker\"\n",
        rack.identity().display(),
        rack.known_hosts().display(),
        rack.addresses()[0],
        rack.addresses()[1],
    );
    reconciler_spec::load_files(vec![("fleet.toml".into(), text)]).unwrap_or_else(|e| panic!("{e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn quiet() -> Progress {
    Arc::new(Mutex::new(
        reconciler::progress::Lines::new(std::io::sink()),
    ))
}

fn learned(looked: &reconciler::node::fleet::Looked) -> Vec<&str> {
    assert!(looked.failures.is_empty(), "{:?}", looked.failures);
    looked.learned_now.iter().map(String::as_str).collect()
}

#[test]
fn kept_sessions_and_cached_facts_are_used_until_something_says_otherwise() {
    let rack = Rack::start(
        "rc-rack-fleet",
        &["10.78.8.1".to_string(), "10.78.8.2".to_string()],
    );
    let spec = spec_for(&rack);
    let runtime = runtime();
    let options = SshOptions::default();
    let mut fleet = Fleet::new(Duration::from_secs(3600));
    let sessions = |rack: &Rack| rack.exec("pgrep -c -f 'sshd: p[i]'").stdout;

    let first = runtime.block_on(fleet.look(&spec, options, 4));
    assert_eq!(learned(&first), ["b1", "b2"]);
    let open = sessions(&rack);
    // Unchanged: the same sessions, and the facts from the cache.
    let again = runtime.block_on(fleet.look(&spec, options, 4));
    assert_eq!(learned(&again), Vec::<&str>::new());
    assert_eq!(again.facts, first.facts);
    assert_eq!(sessions(&rack), open, "a look opened new sessions");
    // A board whose facts were forgotten (steps ran, its node is not ready) is asked again.
    fleet.forget_facts("b2");
    assert_eq!(
        learned(&runtime.block_on(fleet.look(&spec, options, 4))),
        ["b2"]
    );
    // Cut connections are replaced, and facts learned over the new ones.
    rack.exec("pkill -f 'sshd: p[i]'").expect_code(0);
    let reconnected = runtime.block_on(fleet.look(&spec, options, 4));
    assert_eq!(learned(&reconnected), ["b1", "b2"]);
    // Expired facts are asked again over the kept sessions.
    let mut fleet = fleet.with_facts_max_age(Duration::ZERO);
    let open = sessions(&rack);
    assert_eq!(
        learned(&runtime.block_on(fleet.look(&spec, options, 4))),
        ["b1", "b2"]
    );
    assert_eq!(sessions(&rack), open, "expired facts opened new sessions");
}

/// Steps are planned only from facts learned in the same pass: a board
/// changed by hand since its facts were cached is planned as it is now.
#[test]
fn regression_steps_are_never_planned_from_cached_facts() {
    let rack = Rack::start(
        "rc-rack-fresh",
        &["10.78.8.11".to_string(), "10.78.8.12".to_string()],
    );
    let spec = spec_for(&rack);
    let runtime = runtime();
    let mut fleet = Fleet::new(Duration::from_secs(3600));
    let plan = |fleet: &mut Fleet| {
        let provisioned = runtime
            .block_on(provision(
                &spec,
                fleet,
                SshOptions::default(),
                4,
                BoardWork::PlanOnly,
                quiet(),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            provisioned.failures.is_empty(),
            "{:?}",
            provisioned.failures
        );
        provisioned
            .plans
            .iter()
            .map(|p| {
                (
                    p.node.clone(),
                    p.steps.iter().map(|s| s.describe()).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    let group_step = "add pi to the docker group".to_string();
    let before = plan(&mut fleet);
    assert_eq!(before.len(), 2);
    assert!(
        before.iter().all(|(_, steps)| steps.contains(&group_step)),
        "{before:?}"
    );
    // By hand, while the facts are cached: pi joins the docker group.
    rack.exec("groupadd docker && usermod -aG docker pi")
        .expect_code(0);
    let after = plan(&mut fleet);
    assert!(
        after.iter().all(|(_, steps)| !steps.contains(&group_step)),
        "a step was planned from cached facts: {after:?}"
    );
}
