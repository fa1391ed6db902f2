//! End-to-end tests of `reconciler run`: the real binary as a child process,
//! a real git repository as the source, real HTTP to its endpoints, and the
//! real local swarm. Each test owns a cluster name, a name prefix and a port.

use std::time::{Duration, Instant};

use reconciler::source::webhook::sign;
use reconciler_tests::controller::{Controller, SECRET};
use reconciler_tests::git::GitRepo;
use reconciler_tests::http::{self, metric};
use reconciler_tests::*;

fn service_spec(name: &str, replicas: u32) -> String {
    format!("[service.{name}]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = {replicas}\n")
}

fn cluster(name: &str) -> String {
    format!("[cluster]\nname = \"{name}\"\n")
}

fn replicas(name: &str) -> Option<u64> {
    let out = docker_unchecked(&[
        "service",
        "inspect",
        name,
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
    ]);
    (out.code == 0)
        .then(|| out.stdout.trim().parse().ok())
        .flatten()
}

fn wait_replicas(name: &str, want: u64, controller: &Controller) {
    wait_until(
        &format!("{name} to have {want} replicas"),
        Duration::from_secs(60),
        || match replicas(name) {
            Some(n) if n == want => Ok(()),
            other => Err(format!(
                "replicas {other:?}\n--- log\n{}",
                controller.process.log()
            )),
        },
    );
}

#[test]
fn a_pushed_commit_changes_the_swarm_without_any_other_action() {
    require_swarm();
    let _cleanup = Cleanup::new("r-push", "rpush-");
    let repo = GitRepo::new();
    let first = repo.commit(
        &[
            ("cluster.toml", &cluster("r-push")),
            ("services.toml", &service_spec("rpush-web", 1)),
        ],
        "first",
    );
    let url = repo.url();
    let controller = Controller::start(&["--git", &url], &["--interval", "1s"]);
    wait_replicas("rpush-web", 1, &controller);
    let revision = inspect_service("rpush-web")["Spec"]["Labels"]["io.reconciler.revision"].clone();
    assert_eq!(revision.as_str(), Some(first.as_str()));

    let second = repo.commit(
        &[("services.toml", &service_spec("rpush-web", 2))],
        "scale to 2",
    );
    wait_replicas("rpush-web", 2, &controller);
    wait_until(
        "the status to show the new revision",
        Duration::from_secs(10),
        || {
            let status = controller.status();
            (status["revision"].as_str() == Some(second.as_str()))
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    let metrics = controller.metrics();
    assert_eq!(
        metric(
            &metrics,
            &format!("reconciler_source_revision_info{{revision=\"{second}\"}}")
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "reconciler_source_fetches_total{result=\"success\"}"
        )
        .unwrap_or(0.0)
            >= 2.0
    );
    assert!(
        metric(
            &metrics,
            "reconciler_actions_total{kind=\"service\",operation=\"update\",result=\"success\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    // The status page a person looks at shows the same.
    let page = http::get(controller.address, "/").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<td>rpush-web</td>") && page.body.contains(&second),
        "{}",
        page.body
    );
}

#[test]
fn webhooks_trigger_an_immediate_fetch_and_bad_signatures_trigger_nothing() {
    require_swarm();
    let _cleanup = Cleanup::new("r-hook", "rhook-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-hook")),
            ("services.toml", &service_spec("rhook-web", 1)),
        ],
        "first",
    );
    let url = repo.url();
    // A resync interval of an hour: only the webhook can make it look again.
    let controller = Controller::start(&["--git", &url], &["--interval", "1h"]);
    wait_replicas("rhook-web", 1, &controller);
    wait_until(
        "the first reconcile to finish",
        Duration::from_secs(20),
        || {
            (controller.metric("reconciler_reconciles_total{result=\"success\"}") >= 1.0)
                .then_some(())
                .ok_or("not yet".to_string())
        },
    );
    repo.commit(
        &[("services.toml", &service_spec("rhook-web", 2))],
        "scale to 2",
    );
    let fetches = controller.metric("reconciler_source_fetches_total{result=\"success\"}");

    let body = br#"{"ref":"refs/heads/main"}"#;
    let wrong = format!("sha256={}", sign(b"not-the-secret", body));
    assert_eq!(
        controller.hook(
            &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &wrong)],
            body
        ),
        401
    );
    assert_eq!(controller.hook(&[("X-GitHub-Event", "push")], body), 401);
    assert_eq!(
        controller.hook(
            &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "guess")],
            body
        ),
        401
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        controller.metric("reconciler_source_fetches_total{result=\"success\"}"),
        fetches,
        "a refused hook caused a fetch"
    );
    assert_eq!(replicas("rhook-web"), Some(1));
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"unauthorized\"}"),
        3.0
    );

    let sent = Instant::now();
    assert_eq!(controller.github_push(body), 202);
    wait_replicas("rhook-web", 2, &controller);
    let latency = sent.elapsed();
    assert!(
        latency < Duration::from_secs(10),
        "the hook took {latency:?} to act"
    );
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"accepted\"}"),
        1.0
    );
    assert!(controller.metric("reconciler_source_fetches_total{result=\"success\"}") > fetches);
    // A GitHub ping is authentic but not a push: 200, nothing fetched.
    let signature = format!("sha256={}", sign(SECRET.as_bytes(), b"{}"));
    assert_eq!(
        controller.hook(
            &[
                ("X-GitHub-Event", "ping"),
                ("X-Hub-Signature-256", &signature)
            ],
            b"{}"
        ),
        200
    );
}

#[test]
fn an_invalid_commit_is_refused_and_the_last_good_state_stays() {
    require_swarm();
    let _cleanup = Cleanup::new("r-bad", "rbad-");
    let repo = GitRepo::new();
    let good = repo.commit(
        &[
            ("cluster.toml", &cluster("r-bad")),
            ("services.toml", &service_spec("rbad-web", 1)),
        ],
        "good",
    );
    let url = repo.url();
    let controller = Controller::start(&["--git", &url], &["--interval", "1s"]);
    wait_replicas("rbad-web", 1, &controller);
    let version = service_version("rbad-web");

    let bad_body = format!("[service.rbad-web]\nimage = \"{IMAGE}\"\nreplica = 3\n");
    let bad = repo.commit(&[("services.toml", &bad_body)], "typo");
    let status = wait_until(
        "the bad revision to be refused",
        Duration::from_secs(20),
        || {
            let status = controller.status();
            (status["fetched_revision"].as_str() == Some(bad.as_str())
                && status["spec_valid"] == false)
                .then_some(status.clone())
                .ok_or(format!("{status:#}"))
        },
    );
    let error = status["spec_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("services.toml:3:1: error: service `rbad-web`: unknown field `replica`"),
        "{error}"
    );
    assert!(error.contains("did you mean `replicas`?"), "{error}");
    assert_eq!(
        status["revision"].as_str(),
        Some(good.as_str()),
        "the last good revision must stay in force"
    );
    assert_eq!(controller.metric("reconciler_spec_valid"), 0.0);
    assert_eq!(
        http::get(controller.address, "/readyz")
            .map(|r| r.status)
            .ok(),
        Some(200)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        service_version("rbad-web"),
        version,
        "an invalid revision changed the service"
    );

    let fixed = repo.commit(&[("services.toml", &service_spec("rbad-web", 2))], "fixed");
    wait_replicas("rbad-web", 2, &controller);
    wait_until(
        "the fixed revision to be in force",
        Duration::from_secs(10),
        || {
            let status = controller.status();
            (status["revision"].as_str() == Some(fixed.as_str()) && status["spec_valid"] == true)
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    assert_eq!(controller.metric("reconciler_spec_valid"), 1.0);
}

#[test]
fn drift_is_corrected_without_a_commit_and_only_reported_in_observe_mode() {
    require_swarm();
    let _cleanup = Cleanup::new("r-drift", "rdrift-");
    let _cleanup_observe = Cleanup::new("r-watch", "rwatch-");
    let spec = SpecDir::new("r-drift");
    spec.write("services.toml", &service_spec("rdrift-web", 1));
    let dir = spec.arg();
    // A long resync interval: the Docker event is what notices the drift.
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1h"]);
    wait_replicas("rdrift-web", 1, &controller);
    docker(&["service", "scale", "--detach", "rdrift-web=3"]);
    wait_replicas("rdrift-web", 1, &controller);
    assert!(
        controller.metric(
            "reconciler_actions_total{kind=\"service\",operation=\"update\",result=\"success\"}"
        ) >= 1.0
    );

    // The directory source: a file change is applied without a commit or restart.
    spec.write("services.toml", &service_spec("rdrift-web", 2));
    wait_replicas("rdrift-web", 2, &controller);

    // Observe mode only reports.
    let watched = SpecDir::new("r-watch");
    watched.write("services.toml", &service_spec("rwatch-web", 1));
    reconciler(&["apply", &watched.arg(), "--auto-approve"]).expect_code(0);
    let watched_dir = watched.arg();
    let observer = Controller::start(&["--dir", &watched_dir], &["--interval", "1s", "--observe"]);
    docker(&["service", "scale", "--detach", "rwatch-web=2"]);
    let status = wait_until(
        "the observer to report the drift",
        Duration::from_secs(20),
        || {
            let status = observer.status();
            let pending = status["pending"].to_string();
            pending
            .contains("service.rwatch-web will be updated in place (drift: changed outside reconciler)")
            .then_some(status.clone())
            .ok_or(format!("{status:#}"))
        },
    );
    assert_eq!(status["mode"], "observe");
    assert_eq!(
        observer.metric("reconciler_drift_objects{kind=\"service\"}"),
        1.0
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replicas("rwatch-web"), Some(2), "observe mode wrote");
    assert_eq!(observer.metric("reconciler_docker_writes_total"), 0.0);
}

#[test]
fn two_controllers_on_one_cluster_only_one_writes() {
    require_swarm();
    let _cleanup = Cleanup::new("r-lease", "rlease-");
    let spec = SpecDir::new("r-lease");
    spec.write("services.toml", &service_spec("rlease-web", 1));
    let dir = spec.arg();
    let first = Controller::start(
        &["--dir", &dir],
        &["--interval", "1s", "--holder-id", "first"],
    );
    wait_replicas("rlease-web", 1, &first);
    let second = Controller::start(
        &["--dir", &dir],
        &["--interval", "1s", "--holder-id", "second"],
    );
    for round in 0..3 {
        docker(&[
            "service",
            "scale",
            "--detach",
            &format!("rlease-web={}", 4 + round),
        ]);
        wait_replicas("rlease-web", 1, &first);
    }
    wait_until(
        "the second controller to see the lease taken",
        Duration::from_secs(20),
        || {
            let status = second.status();
            (status["lease"] == "held by first")
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    assert_eq!(first.metric("reconciler_lease_held"), 1.0);
    assert_eq!(second.metric("reconciler_lease_held"), 0.0);
    assert_eq!(
        second.metric("reconciler_docker_writes_total"),
        0.0,
        "the standby controller wrote"
    );
    assert!(first.metric("reconciler_docker_writes_total") >= 1.0);
}

#[test]
fn sigterm_exits_cleanly_and_a_restart_converges_with_no_local_state() {
    require_swarm();
    let _cleanup = Cleanup::new("r-stop", "rstop-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-stop")),
            ("services.toml", &service_spec("rstop-web", 1)),
        ],
        "first",
    );
    let url = repo.url();
    let mut controller = Controller::start(
        &["--git", &url],
        &["--interval", "1s", "--holder-id", "stop-1"],
    );
    wait_replicas("rstop-web", 1, &controller);
    controller.process.terminate();
    let code = controller.process.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "log:\n{}", controller.process.log());
    assert!(
        controller.process.log().contains("reconciler run: stopped"),
        "{}",
        controller.process.log()
    );

    // Change things while nobody watches; a new controller with a new cache (no local state) converges,
    // and takes the lease at once because the first one released it.
    repo.commit(
        &[("services.toml", &service_spec("rstop-web", 2))],
        "scale to 2",
    );
    let restarted = Controller::start(
        &["--git", &url],
        &["--interval", "1s", "--holder-id", "stop-2"],
    );
    wait_replicas("rstop-web", 2, &restarted);
    assert_eq!(restarted.metric("reconciler_lease_held"), 1.0);
}

#[test]
fn metrics_pass_promtool_and_move() {
    require_swarm();
    let _cleanup = Cleanup::new("r-metrics", "rmetrics-");
    let spec = SpecDir::new("r-metrics");
    spec.write("services.toml", &service_spec("rmetrics-web", 1));
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    wait_replicas("rmetrics-web", 1, &controller);
    let before = wait_until("a successful reconcile", Duration::from_secs(20), || {
        let n = controller.metric("reconciler_reconciles_total{result=\"success\"}");
        (n >= 1.0).then_some(n).ok_or("none yet".to_string())
    });
    wait_until(
        "the resync timer to reconcile again",
        Duration::from_secs(20),
        || {
            (controller.metric("reconciler_reconciles_total{result=\"success\"}") > before)
                .then_some(())
                .ok_or("no".to_string())
        },
    );
    let text = wait_until(
        "the replicas gauges to settle",
        Duration::from_secs(30),
        || {
            let text = controller.metrics();
            (metric(
                &text,
                "reconciler_service_replicas_running{service=\"rmetrics-web\"}",
            ) == Some(1.0))
            .then_some(text.clone())
            .ok_or(text)
        },
    );
    for sample in [
        "reconciler_spec_valid",
        "reconciler_last_success_timestamp_seconds",
        "reconciler_reconcile_duration_seconds_count",
        "reconciler_service_replicas_desired{service=\"rmetrics-web\"}",
        "reconciler_nodes{role=\"manager\",state=\"ready\"}",
        "reconciler_drift_objects{kind=\"service\"}",
    ] {
        assert!(
            metric(&text, sample).is_some(),
            "{sample} missing from:\n{text}"
        );
    }
    assert!(metric(&text, "reconciler_last_success_timestamp_seconds").unwrap_or(0.0) > 1.6e9);
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool (scripts/setup installs it): {e}"));
    if let Some(mut stdin) = promtool.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("promtool stdin: {e}"));
    }
    let output = promtool
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
