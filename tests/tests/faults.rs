//! Faults, end to end: the controller (`reconciler run`) against a real
//! daemon that restarts, its own crash, a git remote that disappears, a burst
//! of webhooks and a huge spec file. After each the swarm converges to the
//! spec, and objects the cluster does not own are never written.
//!
//! The dockerd restart stops every container on this machine, so that test
//! holds [`exclusive_node`] and the others [`shared_node`]; cargo runs test
//! binaries one after another, so no other binary sees the restart.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::time::Duration;

use reconciler_tests::controller::Controller;
use reconciler_tests::git::GitRepo;
use reconciler_tests::http;
use reconciler_tests::*;

fn cluster(name: &str) -> String {
    format!("[cluster]\nname = \"{name}\"\n")
}

/// A chain of services, each created only once the one before it runs: an
/// apply of the whole chain takes several seconds, long enough to be hit.
fn chain(prefix: &str, links: usize) -> String {
    let mut spec = String::new();
    for i in 0..links {
        spec.push_str(&format!(
            "[service.{prefix}{i}]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"
        ));
        if i > 0 {
            spec.push_str(&format!("after = [\"{prefix}{}\"]\n", i - 1));
        }
        spec.push('\n');
    }
    spec
}

fn exists(service: &str) -> bool {
    docker_unchecked(&["service", "inspect", service]).code == 0
}

/// A service the cluster does not own, made by hand: its spec version, which
/// any write would move.
fn unmanaged_service(name: &str) -> u64 {
    docker(&[
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        name,
        "--label",
        "made-by=hand",
        IMAGE,
        "sleep",
        "3600",
    ]);
    service_version(name)
}

/// Every link of the chain exists and runs, and `plan` finds nothing to do.
fn wait_converged(spec: &SpecDir, prefix: &str, links: usize, controller: &Controller) {
    wait_until("the chain to converge", Duration::from_secs(180), || {
        let missing: Vec<String> = (0..links)
            .map(|i| format!("{prefix}{i}"))
            .filter(|s| !exists(s) || running_tasks(s) != 1)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "not running: {missing:?}\n--- log\n{}",
                controller.process.log()
            ))
        }
    });
    let dir = spec.arg();
    let plan = reconciler(&["plan", &dir, "--detailed-exitcode"]);
    assert_eq!(
        plan.code, 0,
        "plan wants changes:\n{}{}",
        plan.stdout, plan.stderr
    );
}

#[test]
fn dockerd_restarted_in_the_middle_of_an_apply_converges() {
    require_swarm();
    let _node = exclusive_node();
    let _cleanup = Cleanup::new("f-restart", "frs-");
    let by_hand = unmanaged_service("frs-by-hand");
    let spec = SpecDir::new("f-restart");
    spec.write("services.toml", &chain("frs-c", 5));
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "2s"]);
    // The apply is under way: the first link exists, the last does not.
    wait_until("the first link", Duration::from_secs(60), || {
        exists("frs-c0")
            .then_some(())
            .ok_or(controller.process.log())
    });
    assert!(!exists("frs-c4"), "the apply finished before the restart");
    restart_dockerd();

    wait_converged(&spec, "frs-c", 5, &controller);
    // It went through failures, and they were retried, not left for a person.
    let metrics = controller.metrics();
    let failures = |class: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "reconciler_reconcile_errors_total{{class=\"{class}\""
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        failures("retryable") >= 1.0,
        "no retried failure:\n{metrics}"
    );
    assert_eq!(failures("needs_person"), 0.0, "{metrics}");
    assert_eq!(failures("bug"), 0.0, "{metrics}");
    wait_until(
        "a successful reconcile after the restart",
        Duration::from_secs(60),
        || {
            let status = controller.status();
            (status["last_reconcile"]["result"] == "success" && status["docker_reachable"] == true)
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    assert_eq!(
        service_version("frs-by-hand"),
        by_hand,
        "the unmanaged service was written"
    );
}

#[test]
fn the_controller_killed_in_the_middle_of_an_apply_converges_after_a_restart() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("f-kill", "fkl-");
    let by_hand = unmanaged_service("fkl-by-hand");
    let spec = SpecDir::new("f-kill");
    spec.write("services.toml", &chain("fkl-c", 5));
    let dir = spec.arg();
    let timing = [
        "--interval",
        "2s",
        "--apply-timeout",
        "5s",
        "--lease-ttl",
        "10s",
    ];
    let mut first = Controller::start(
        &["--dir", &dir],
        &[&timing[..], &["--holder-id", "kill-1"]].concat(),
    );
    wait_until("the first link", Duration::from_secs(60), || {
        exists("fkl-c0").then_some(()).ok_or(first.process.log())
    });
    assert!(!exists("fkl-c4"), "the apply finished before the kill");
    first.process.kill();
    // Its lease stays behind (no chance to release it); a new controller
    // waits it out, then finishes the job from what the swarm shows.
    assert!(
        lease_label("f-kill").is_some_and(|l| l.starts_with("kill-1 ")),
        "{:?}",
        lease_label("f-kill")
    );
    let second = Controller::start(
        &["--dir", &dir],
        &[&timing[..], &["--holder-id", "kill-2"]].concat(),
    );
    wait_converged(&spec, "fkl-c", 5, &second);
    assert!(lease_label("f-kill").is_some_and(|l| l.starts_with("kill-2 ")));
    assert_eq!(
        service_version("fkl-by-hand"),
        by_hand,
        "the unmanaged service was written"
    );
}

#[test]
fn a_git_remote_removed_then_restored_converges_and_the_failure_stays_visible() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("f-gone", "fgn-");
    let by_hand = unmanaged_service("fgn-by-hand");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("f-gone")),
            ("services.toml", &chain("fgn-c", 1)),
        ],
        "first",
    );
    let url = repo.url();
    let controller = Controller::start(&["--git", &url], &["--interval", "1s"]);
    wait_until("the service", Duration::from_secs(60), || {
        (exists("fgn-c0") && running_tasks("fgn-c0") == 1)
            .then_some(())
            .ok_or(controller.process.log())
    });

    // The remote disappears.
    let moved = repo.root().join("moved.git");
    std::fs::rename(repo.remote_path(), &moved).expect("move the remote away");
    wait_until(
        "the fetch failure on the status",
        Duration::from_secs(60),
        || {
            let status = controller.status();
            status["source_error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    // The last good revision is still reconciled, and a successful reconcile
    // does not hide that the source is out of reach.
    let successes = controller.successes();
    wait_until(
        "a successful reconcile meanwhile",
        Duration::from_secs(60),
        || {
            (controller.successes() > successes)
                .then_some(())
                .ok_or(controller.process.log())
        },
    );
    let status = controller.status();
    assert!(
        status["source_error"].is_object(),
        "the fetch failure was erased: {status:#}"
    );
    assert!(controller.metric("reconciler_source_fetches_total{result=\"error\"}") >= 1.0);
    let page = http::get(controller.address, "/").expect("GET /");
    assert!(
        page.body.contains("The source cannot be fetched"),
        "{}",
        page.body
    );
    assert_eq!(running_tasks("fgn-c0"), 1);

    // Back, with a new commit.
    std::fs::rename(&moved, repo.remote_path()).expect("restore the remote");
    let second = repo.commit(&[("services.toml", &chain("fgn-c", 2))], "second");
    wait_until(
        "the new commit to be deployed",
        Duration::from_secs(90),
        || {
            let status = controller.status();
            (status["revision"].as_str() == Some(second.as_str())
                && exists("fgn-c1")
                && status["source_error"].is_null())
            .then_some(())
            .ok_or(format!("{status:#}"))
        },
    );
    assert_eq!(service_version("fgn-by-hand"), by_hand);
}

#[test]
fn a_burst_of_webhooks_is_answered_and_coalesced() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("f-burst", "fbu-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("f-burst")),
            ("services.toml", &chain("fbu-c", 1)),
        ],
        "first",
    );
    let url = repo.url();
    // A long interval: only the hooks make it fetch.
    let controller =
        std::sync::Arc::new(Controller::start(&["--git", &url], &["--interval", "1h"]));
    wait_until("the service", Duration::from_secs(60), || {
        exists("fbu-c0")
            .then_some(())
            .ok_or(controller.process.log())
    });
    let second = repo.commit(&[("services.toml", &chain("fbu-c", 2))], "second");
    let fetches_before = controller.metric("reconciler_source_fetches_total{result=\"success\"}");

    const SENDERS: usize = 8;
    const HOOKS_EACH: usize = 25;
    // Each delivery its own body, as the forge's are (one body sent twice
    // is a replay, which triggers nothing).
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let controller = std::sync::Arc::clone(&controller);
            std::thread::spawn(move || {
                (0..HOOKS_EACH)
                    .map(|hook| {
                        let body =
                            format!(r#"{{"ref":"refs/heads/main","delivery":"{sender}-{hook}"}}"#);
                        controller.github_push(body.as_bytes())
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let answers: Vec<u16> = senders
        .into_iter()
        .flat_map(|s| s.join().expect("a sender panicked"))
        .collect();
    assert_eq!(answers.len(), SENDERS * HOOKS_EACH);
    assert!(answers.iter().all(|&a| a == 202), "{answers:?}");

    wait_until("the pushed commit", Duration::from_secs(60), || {
        let status = controller.status();
        (status["revision"].as_str() == Some(second.as_str()) && exists("fbu-c1"))
            .then_some(())
            .ok_or(format!("{status:#}"))
    });
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"accepted\"}"),
        (SENDERS * HOOKS_EACH) as f64
    );
    // Hooks that arrive while a reconcile runs are one trigger: the burst
    // costs far fewer fetches than hooks. One more hook after it makes the
    // reconcile to wait for, so every queued trigger has been served.
    assert_eq!(
        controller.github_push(br#"{"ref":"refs/heads/main","delivery":"last"}"#),
        202
    );
    controller.wait_for_reconciles(1);
    let fetches =
        controller.metric("reconciler_source_fetches_total{result=\"success\"}") - fetches_before;
    assert!(
        fetches >= 1.0 && fetches < (SENDERS * HOOKS_EACH / 2) as f64,
        "{fetches} fetches for {} hooks",
        SENDERS * HOOKS_EACH
    );
    assert_eq!(
        http::get(controller.address, "/healthz")
            .expect("GET /healthz")
            .status,
        200
    );
}

#[test]
fn a_50_mb_spec_file_is_refused_and_the_last_good_revision_stays() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("f-huge", "fhg-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("f-huge")),
            ("services.toml", &chain("fhg-c", 1)),
        ],
        "first",
    );
    let url = repo.url();
    let controller = Controller::start(&["--git", &url], &["--interval", "1s"]);
    wait_until("the service", Duration::from_secs(60), || {
        (exists("fhg-c0") && running_tasks("fhg-c0") == 1)
            .then_some(())
            .ok_or(controller.process.log())
    });
    let version = service_version("fhg-c0");

    // 50 MB of valid TOML comments next to a change that must not be applied.
    let line = format!("# {}\n", "x".repeat(98));
    let huge = line.repeat(50 * 1024 * 1024 / line.len());
    let big = repo.commit(
        &[("huge.toml", &huge), ("services.toml", &chain("fhg-c", 2))],
        "50 MB",
    );
    wait_until(
        "the huge revision to be refused",
        Duration::from_secs(60),
        || {
            let status = controller.status();
            let said = format!(
                "{} {}",
                status["source_error"]["message"]
                    .as_str()
                    .unwrap_or_default(),
                status["spec_error"].as_str().unwrap_or_default()
            );
            (said.contains("huge.toml") && said.contains("4 MiB"))
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    let status = controller.status();
    assert_ne!(
        status["revision"].as_str(),
        Some(big.as_str()),
        "{status:#}"
    );
    assert!(
        !exists("fhg-c1"),
        "a change of the refused revision was applied"
    );
    assert_eq!(service_version("fhg-c0"), version);

    // The next commit removes it and is deployed.
    let fixed = repo.commit_removing(&["huge.toml"], "remove the huge file");
    wait_until("the fixed revision", Duration::from_secs(60), || {
        let status = controller.status();
        (status["revision"].as_str() == Some(fixed.as_str()) && exists("fhg-c1"))
            .then_some(())
            .ok_or(format!("{status:#}"))
    });
}
