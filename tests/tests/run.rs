//! End-to-end tests of `reconciler run`: the real binary as a child process,
//! a real git repository as the source, real HTTP to its endpoints, and the
//! real local swarm. Each test owns a cluster name and a name prefix; every
//! controller listens on a port the system picks.
//!
//! What a controller wrote is judged from outside: a counting proxy in front
//! of its Docker socket, the objects' versions, and the Swarm object's lease
//! label read from the Docker API, never its own `docker_writes_total`.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::time::Duration;

use reconciler::source::webhook::sign;
use reconciler_tests::controller::{Controller, SecretFrom, SECRET};
use reconciler_tests::git::GitRepo;
use reconciler_tests::http::{self, metric};
use reconciler_tests::proxy::{DockerProxy, HungDocker};
use reconciler_tests::*;

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

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

fn wait_status(controller: &Controller, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    wait_until(what, Duration::from_secs(60), || {
        let status = controller.status();
        check(&status).then_some(()).ok_or(format!("{status:#}"))
    });
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
    wait_status(&controller, "the status to show the new revision", |s| {
        s["revision"].as_str() == Some(second.as_str())
    });
    let metrics = controller.metrics();
    assert_eq!(
        metric(
            &metrics,
            &format!("reconciler_source_revision_info{{revision=\"{second}\"}}")
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(controller.metric("reconciler_source_fetches_total{result=\"success\"}") >= 2.0);
    assert!(
        controller.metric(
            "reconciler_actions_total{kind=\"service\",operation=\"update\",result=\"success\"}"
        ) >= 1.0
    );
    // The status page a person looks at shows the same.
    let page = http::get(controller.address, "/").unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<td>rpush-web</td>") && page.body.contains(&second),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<meta http-equiv=\"refresh\" content=\"10\">"),
        "the page does not refresh itself"
    );
}

/// `--branch` and `--path`: only that branch, only that folder.
#[test]
fn a_branch_and_a_folder_of_the_repository_are_followed() {
    require_swarm();
    let _cleanup = Cleanup::new("r-branch", "rbranch-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster/cluster.toml", &cluster("r-branch")),
            ("cluster/services.toml", &service_spec("rbranch-main", 1)),
            // Outside --path: must never be read (it is not even a valid spec).
            ("notes/todo.toml", "this is not toml ["),
        ],
        "main",
    );
    let prod = repo.commit_on(
        "prod",
        &[("cluster/services.toml", &service_spec("rbranch-prod", 1))],
        "prod",
    );
    let url = repo.url();
    let controller = Controller::start(
        &["--git", &url, "--branch", "prod", "--path", "cluster"],
        &["--interval", "1s"],
    );
    wait_replicas("rbranch-prod", 1, &controller);
    wait_status(&controller, "the prod revision in force", |s| {
        s["revision"].as_str() == Some(prod.as_str()) && s["spec_valid"] == true
    });
    assert_eq!(
        replicas("rbranch-main"),
        None,
        "main's service was deployed"
    );

    // Regression (issue 20): a deleted branch fetched nothing, without an
    // error, and the last fetched commit stayed in force silently. Now it is
    // a missing reference that waits for a person, and the last good
    // revision stays in force.
    repo.delete_branch("prod");
    wait_status(&controller, "the deleted branch reported", |s| {
        s["source_error"]["reason"] == "git_missing_ref"
            && s["source_error"]["class"] == "needs_person"
    });
    let status = controller.status();
    let message = status["source_error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("branch prod does not exist") && message.contains("--branch"),
        "{message}"
    );
    assert_eq!(status["revision"].as_str(), Some(prod.as_str()));
    assert_eq!(replicas("rbranch-prod"), Some(1));
    // Said once in the log, however many resyncs see it again.
    let log = controller.process.log();
    assert_eq!(
        log.matches("branch prod does not exist").count(),
        1,
        "{log}"
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
            (controller.successes() >= 1.0)
                .then_some(())
                .ok_or("not yet".to_string())
        },
    );
    repo.commit(
        &[("services.toml", &service_spec("rhook-web", 2))],
        "scale to 2",
    );
    let fetches = controller.metric("reconciler_source_fetches_total{result=\"success\"}");
    let reconciles = controller.successes();

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
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"unauthorized\"}"),
        3.0
    );
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"ignored\"}"),
        1.0
    );

    // The good push is the only thing that makes it look again: exactly one
    // more fetch and reconcile, so none of the refused hooks triggered one.
    assert_eq!(controller.github_push(body), 202);
    wait_replicas("rhook-web", 2, &controller);
    wait_until("the push's reconcile", Duration::from_secs(20), || {
        (controller.successes() > reconciles)
            .then_some(())
            .ok_or("not yet".to_string())
    });
    // (Docker events from the update start more reconciles, but those never fetch.)
    assert_eq!(
        controller.metric("reconciler_source_fetches_total{result=\"success\"}"),
        fetches + 1.0,
        "a refused hook caused a fetch\n{}",
        controller.process.log()
    );
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"accepted\"}"),
        1.0
    );
    // Regression (issue 22): the same signed body sent again (a captured
    // delivery replayed) is not accepted twice and fetches nothing.
    let response = controller.hook_response(
        &[
            ("X-GitHub-Event", "push"),
            (
                "X-Hub-Signature-256",
                &format!("sha256={}", sign(SECRET.as_bytes(), body)),
            ),
        ],
        body,
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response.body.contains("received before"),
        "{}",
        response.body
    );
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"replayed\"}"),
        1.0
    );
    controller.wait_for_reconciles(1);
    assert_eq!(
        controller.metric("reconciler_source_fetches_total{result=\"success\"}"),
        fetches + 1.0,
        "a replayed push caused a fetch"
    );
    // Regression (issue 22): refused hooks are said once a minute at most,
    // not once each (the metric counted all three).
    assert_eq!(
        controller.process.log().matches("webhook refused").count(),
        1,
        "{}",
        controller.process.log()
    );
}

/// Gitea and GitLab pushes end to end, with the secret from the environment.
#[test]
fn gitea_and_gitlab_pushes_are_accepted_with_the_secret_from_the_environment() {
    require_swarm();
    let _cleanup = Cleanup::new("r-forge", "rforge-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-forge")),
            ("services.toml", &service_spec("rforge-web", 1)),
        ],
        "first",
    );
    let url = repo.url();
    let controller = Controller::start_with(
        &["--git", &url],
        &["--interval", "1h"],
        SecretFrom::Environment,
        &[],
    );
    wait_replicas("rforge-web", 1, &controller);

    // Gitea signs the body with HMAC-SHA256, hex, no prefix.
    repo.commit(&[("services.toml", &service_spec("rforge-web", 2))], "2");
    let body = br#"{"ref":"refs/heads/main","repository":{"full_name":"lab/cluster"}}"#;
    let signature = sign(SECRET.as_bytes(), body);
    let response = controller.hook_response(
        &[("X-Gitea-Event", "push"), ("X-Gitea-Signature", &signature)],
        body,
    );
    assert_eq!(response.status, 202, "{}", response.body);
    wait_replicas("rforge-web", 2, &controller);

    // GitLab sends the secret itself as a token.
    repo.commit(&[("services.toml", &service_spec("rforge-web", 3))], "3");
    let response = controller.hook_response(
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)],
        br#"{"object_kind":"push","ref":"refs/heads/main"}"#,
    );
    assert_eq!(response.status, 202, "{}", response.body);
    wait_replicas("rforge-web", 3, &controller);
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"accepted\"}"),
        2.0
    );
}

/// Without a secret every hook is refused, even a correctly signed one.
#[test]
fn without_a_secret_every_hook_is_refused() {
    require_swarm();
    let _cleanup = Cleanup::new("r-nosecret", "rnosecret-");
    let spec = SpecDir::new("r-nosecret");
    spec.write("services.toml", &service_spec("rnosecret-web", 1));
    let dir = spec.arg();
    let controller = Controller::start_with(
        &["--dir", &dir],
        &["--interval", "1h"],
        SecretFrom::Nowhere,
        &[],
    );
    wait_replicas("rnosecret-web", 1, &controller);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = format!("sha256={}", sign(SECRET.as_bytes(), body));
    let response = controller.hook_response(
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    );
    assert_eq!(response.status, 401);
    assert!(
        response
            .body
            .contains("webhooks are disabled: no secret is configured"),
        "{}",
        response.body
    );
    assert_eq!(
        controller.metric("reconciler_webhook_requests_total{result=\"unauthorized\"}"),
        1.0
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
    wait_status(&controller, "the bad revision to be refused", |s| {
        s["fetched_revision"].as_str() == Some(bad.as_str()) && s["spec_valid"] == false
    });
    let status = controller.status();
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
        Some(200),
        "a refused newer revision does not make a running controller unready"
    );
    // Two more reconciles with the bad revision fetched: the service stays as it was.
    controller.wait_for_reconciles(2);
    assert_eq!(
        service_version("rbad-web"),
        version,
        "an invalid revision changed the service"
    );

    let fixed = repo.commit(&[("services.toml", &service_spec("rbad-web", 2))], "fixed");
    wait_replicas("rbad-web", 2, &controller);
    wait_status(&controller, "the fixed revision to be in force", |s| {
        s["revision"].as_str() == Some(fixed.as_str()) && s["spec_valid"] == true
    });
    assert_eq!(controller.metric("reconciler_spec_valid"), 1.0);
}

/// `/readyz` is 503 with the reason until a valid revision is loaded and
/// Docker answers; the reconciles count as `invalid_spec` and `error`.
#[test]
fn readyz_says_why_it_is_not_ready() {
    require_swarm();
    // No valid revision yet.
    let spec = SpecDir::new("r-ready");
    spec.write("services.toml", "[service.rready-web]\nimage = 3\n");
    let dir = spec.arg();
    let invalid = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    wait_until("an invalid_spec reconcile", Duration::from_secs(20), || {
        (invalid.metric("reconciler_reconciles_total{result=\"invalid_spec\"}") >= 1.0)
            .then_some(())
            .ok_or(invalid.process.log())
    });
    let ready = http::get(invalid.address, "/readyz").unwrap();
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body, "not ready: no valid spec revision loaded yet\n");

    // A valid spec, but no Docker behind the socket.
    let good = SpecDir::new("r-ready");
    good.write("services.toml", &service_spec("rready-web", 1));
    let good_dir = good.arg();
    let no_docker = Controller::start(
        &["--dir", &good_dir],
        &[
            "--interval",
            "1s",
            "--docker-host",
            "unix:///nonexistent/docker.sock",
        ],
    );
    wait_until("an error reconcile", Duration::from_secs(20), || {
        (no_docker.metric("reconciler_reconciles_total{result=\"error\"}") >= 1.0)
            .then_some(())
            .ok_or(no_docker.process.log())
    });
    let ready = http::get(no_docker.address, "/readyz").unwrap();
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body, "not ready: Docker is not reachable\n");
    assert!(no_docker.metric("reconciler_docker_api_errors_total{operation=\"connect\"}") >= 1.0);
    let status = no_docker.status();
    assert!(
        status["last_error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{status:#}"
    );
    assert_eq!(status["last_error"]["class"], "retryable", "{status:#}");
    assert_eq!(status["last_error"]["reason"], "docker_unreachable");
    drop(no_docker);

    // A daemon that accepts and never answers: each call gives up after
    // --docker-timeout, the loop keeps going and /healthz keeps answering.
    let hung = HungDocker::start();
    let hung_host = hung.host();
    let stuck = Controller::start(
        &["--dir", &good_dir],
        &[
            "--interval",
            "1s",
            "--docker-host",
            &hung_host,
            "--docker-timeout",
            "1s",
        ],
    );
    wait_until("two timed-out reconciles", Duration::from_secs(30), || {
        (stuck.metric("reconciler_reconciles_total{result=\"error\"}") >= 2.0)
            .then_some(())
            .ok_or(stuck.process.log())
    });
    assert_eq!(http::get(stuck.address, "/healthz").unwrap().status, 200);
    assert_eq!(http::get(stuck.address, "/readyz").unwrap().status, 503);
    let status = stuck.status();
    assert_eq!(
        status["last_error"]["reason"], "docker_timeout",
        "{status:#}"
    );
    assert_eq!(status["last_error"]["class"], "retryable", "{status:#}");
}

/// A plan that deletes most of the services is refused by the controller
/// too: nothing is removed, and the reconcile counts as `refused`.
#[test]
fn the_controller_refuses_a_mass_delete() {
    require_swarm();
    let _cleanup = Cleanup::new("r-mass", "rmass-");
    let spec = SpecDir::new("r-mass");
    for name in ["a", "b", "c"] {
        spec.write(
            &format!("{name}.toml"),
            &service_spec(&format!("rmass-{name}"), 1),
        );
    }
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    for name in ["rmass-a", "rmass-b", "rmass-c"] {
        wait_replicas(name, 1, &controller);
    }
    spec.remove("a.toml").remove("b.toml");
    wait_until("a refused reconcile", Duration::from_secs(30), || {
        (controller.metric("reconciler_reconciles_total{result=\"refused\"}") >= 1.0)
            .then_some(())
            .ok_or(controller.process.log())
    });
    let status = controller.status();
    assert!(
        status["last_error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("refusing to delete 2 of 3 managed services"),
        "{status:#}"
    );
    // It waits for a person: classified so, and not retried with backoff.
    assert_eq!(status["last_error"]["class"], "needs_person", "{status:#}");
    assert_eq!(status["last_error"]["reason"], "mass_delete");
    assert!(
        controller.metric(
            "reconciler_reconcile_errors_total{class=\"needs_person\",reason=\"mass_delete\"}"
        ) >= 1.0
    );
    controller.wait_for_reconciles(2);
    assert_eq!(
        replicas("rmass-a"),
        Some(1),
        "a refused plan deleted rmass-a"
    );
    assert_eq!(
        replicas("rmass-b"),
        Some(1),
        "a refused plan deleted rmass-b"
    );
}

#[test]
fn drift_is_corrected_without_a_commit() {
    require_swarm();
    let _cleanup = Cleanup::new("r-drift", "rdrift-");
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
}

/// Regression (issue 24): the first look at the page after nobody had
/// looked for a while drew the tasks as the last reconcile saw them (16 s
/// old then). A picture older than a few seconds is read again before it
/// is shown, and carries the time it was read.
#[test]
fn regression_the_first_look_after_an_idle_spell_is_not_stale() {
    require_swarm();
    let _cleanup = Cleanup::new("r-fresh", "rfresh-");
    let spec = SpecDir::new("r-fresh");
    spec.write("services.toml", &service_spec("rfresh-web", 1));
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1h"]);
    wait_replicas("rfresh-web", 1, &controller);
    // Nobody looks (only Docker and /metrics were asked) for longer than
    // the picture stays fresh.
    std::thread::sleep(Duration::from_secs(8));
    let asked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let status = controller.status();
    let picture_at = status["picture_at"].as_u64().unwrap_or(0);
    assert!(
        picture_at + 1 >= asked_at,
        "the picture shown was read at {picture_at}, {} s before it was asked for",
        asked_at.saturating_sub(picture_at)
    );
    let web = status["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "rfresh-web"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(web["running"], 1, "{status}");
    assert_eq!(web["image"], IMAGE, "{status}");
}

/// Observe mode (`--observe` or `mode = "observe"`) and suspension
/// (`--suspend` or `suspend = true`) report drift and write nothing: the
/// proxy in front of each controller's Docker socket sees no write at all.
#[test]
fn observing_and_suspended_controllers_report_drift_and_write_nothing() {
    require_swarm();
    let cases: [(&str, &str, &[&str]); 4] = [
        ("r-watch-flag", "", &["--observe"]),
        ("r-watch-spec", "[controller]\nmode = \"observe\"\n", &[]),
        ("r-pause-flag", "", &["--suspend"]),
        ("r-pause-spec", "[controller]\nsuspend = true\n", &[]),
    ];
    let mut running = Vec::new();
    for (name, settings, flags) in cases {
        let service = format!("{name}-web");
        let cleanup = Cleanup::new(name, &format!("{name}-"));
        let spec = SpecDir::new(name);
        spec.write("services.toml", &service_spec(&service, 1));
        reconciler(&["apply", &spec.arg(), "--auto-approve"]).expect_code(0);
        spec.write(
            "services.toml",
            &format!("{settings}{}", service_spec(&service, 1)),
        );
        let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
        let dir = spec.arg();
        let host = proxy.host();
        let mut extra = vec!["--interval", "1s", "--docker-host", host.as_str()];
        extra.extend_from_slice(flags);
        let controller = Controller::start(&["--dir", &dir], &extra);
        docker(&["service", "scale", "--detach", &format!("{service}=2")]);
        running.push((name, service, controller, proxy, spec, cleanup));
    }
    for (name, service, controller, proxy, _spec, _cleanup) in &running {
        let wanted = format!(
            "service.{service} will be updated in place (drift: changed outside reconciler)"
        );
        wait_status(controller, &format!("{name} to report the drift"), |s| {
            s["pending"].to_string().contains(&wanted)
        });
        assert_eq!(
            controller.metric("reconciler_drift_objects{kind=\"service\"}"),
            1.0
        );
        controller.wait_for_reconciles(2);
        assert_eq!(replicas(service), Some(2), "{name} wrote");
        assert_eq!(proxy.writes(), Vec::<String>::new(), "{name} wrote");
        assert!(!proxy.requests().is_empty(), "{name} never reached Docker");
        let status = controller.status();
        if name.starts_with("r-watch") {
            assert_eq!(status["mode"], "observe", "{status:#}");
        } else {
            assert_eq!(status["suspended"], true, "{status:#}");
        }
        assert_eq!(lease_label(name), None, "{name} took the lease");
    }
}

#[test]
fn two_controllers_on_one_cluster_only_one_writes() {
    require_swarm();
    let _cleanup = Cleanup::new("r-lease", "rlease-");
    let spec = SpecDir::new("r-lease");
    spec.write("services.toml", &service_spec("rlease-web", 1));
    let dir = spec.arg();
    let first_proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let first_host = first_proxy.host();
    let first = Controller::start(
        &["--dir", &dir],
        &[
            "--interval",
            "1s",
            "--holder-id",
            "first",
            "--docker-host",
            &first_host,
        ],
    );
    wait_replicas("rlease-web", 1, &first);
    let second_proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let second_host = second_proxy.host();
    let second = Controller::start(
        &["--dir", &dir],
        &[
            "--interval",
            "1s",
            "--holder-id",
            "second",
            "--docker-host",
            &second_host,
        ],
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
    wait_status(
        &second,
        "the second controller to see the lease taken",
        |s| s["lease"] == "held by first",
    );
    let label = lease_label("r-lease").unwrap_or_default();
    assert!(label.starts_with("first "), "lease label: {label:?}");
    assert_eq!(first.metric("reconciler_lease_held"), 1.0);
    assert_eq!(second.metric("reconciler_lease_held"), 0.0);
    assert!(second.metric("reconciler_reconciles_total{result=\"standby\"}") >= 1.0);
    assert_eq!(
        second_proxy.writes(),
        Vec::<String>::new(),
        "the standby controller wrote"
    );
    assert!(!second_proxy.requests().is_empty());
    assert!(
        first_proxy
            .writes()
            .iter()
            .any(|w| w.contains("/services/") && w.contains("/update")),
        "{:?}",
        first_proxy.writes()
    );
}

#[test]
fn sigterm_exits_cleanly_releases_the_lease_and_a_restart_converges_with_no_local_state() {
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
    let held = lease_label("r-stop").unwrap_or_default();
    assert!(held.starts_with("stop-1 "), "lease label: {held:?}");
    controller.process.terminate();
    let code = controller.process.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "log:\n{}", controller.process.log());
    assert!(
        controller.process.log().contains("reconciler run: stopped"),
        "{}",
        controller.process.log()
    );
    // Released, not left to expire.
    assert_eq!(lease_label("r-stop"), None);

    // Change things while nobody watches; a new controller with a new cache (no local state) converges.
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

/// A holder that crashes keeps its lease until it expires; then a standby takes over.
#[test]
fn a_standby_takes_over_from_a_crashed_holder_once_the_lease_expires() {
    require_swarm();
    let _cleanup = Cleanup::new("r-crash", "rcrash-");
    let spec = SpecDir::new("r-crash");
    spec.write("services.toml", &service_spec("rcrash-web", 1));
    let dir = spec.arg();
    let timing = [
        "--interval",
        "1s",
        "--lease-ttl",
        "20s",
        "--apply-timeout",
        "10s",
    ];
    let mut crashing = Controller::start(
        &["--dir", &dir],
        &[&timing[..], &["--holder-id", "crash-1"]].concat(),
    );
    wait_replicas("rcrash-web", 1, &crashing);
    crashing.process.kill();
    let left = lease_label("r-crash").unwrap_or_default();
    assert!(left.starts_with("crash-1 "), "lease label: {left:?}");
    // Two fields, as controllers before the ttl label read it (they would
    // take a lease they cannot read as free); the ttl has its own label.
    assert_eq!(left.split(' ').count(), 2, "lease label: {left:?}");
    let ttl = docker_api("/swarm")["Spec"]["Labels"]["io.reconciler.lease-ttl.r-crash"].clone();
    assert_eq!(ttl, "20", "lease ttl label");

    docker(&["service", "scale", "--detach", "rcrash-web=3"]);
    let standby = Controller::start(
        &["--dir", &dir],
        &[&timing[..], &["--holder-id", "crash-2"]].concat(),
    );
    wait_replicas("rcrash-web", 1, &standby);
    let taken = lease_label("r-crash").unwrap_or_default();
    assert!(taken.starts_with("crash-2 "), "lease label: {taken:?}");
    // It waited for the crashed holder's lease rather than ignoring it.
    assert!(standby.metric("reconciler_reconciles_total{result=\"standby\"}") >= 1.0);
}

/// The documented metrics, by hand: each is exported by a running controller
/// (`reconciler_reconcile_errors_total` too, from its first failure: see
/// `the_controller_refuses_a_mass_delete`).
const DOCUMENTED_METRICS: [&str; 15] = [
    "reconciler_reconciles_total",
    "reconciler_reconcile_duration_seconds",
    "reconciler_last_success_timestamp_seconds",
    "reconciler_source_revision_info",
    "reconciler_source_fetches_total",
    "reconciler_spec_valid",
    "reconciler_drift_objects",
    "reconciler_actions_total",
    "reconciler_webhook_requests_total",
    "reconciler_docker_api_errors_total",
    "reconciler_docker_writes_total",
    "reconciler_nodes",
    "reconciler_service_replicas_desired",
    "reconciler_service_replicas_running",
    "reconciler_lease_held",
];

#[test]
fn metrics_pass_promtool_move_and_include_every_documented_metric() {
    require_swarm();
    let _cleanup = Cleanup::new("r-metrics", "rmetrics-");
    let spec = SpecDir::new("r-metrics");
    spec.write("services.toml", &service_spec("rmetrics-web", 1));
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    wait_replicas("rmetrics-web", 1, &controller);
    let before = wait_until("a successful reconcile", Duration::from_secs(20), || {
        let n = controller.successes();
        (n >= 1.0).then_some(n).ok_or("none yet".to_string())
    });
    wait_until(
        "the resync timer to reconcile again",
        Duration::from_secs(20),
        || {
            (controller.successes() > before)
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
    for name in DOCUMENTED_METRICS {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not exported:\n{text}"
        );
    }
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
    // The dashboard charts exactly what a running controller exports.
    let dashboard =
        std::fs::read_to_string(repo_path("dashboards/reconciler.json")).expect("dashboard");
    for name in DOCUMENTED_METRICS {
        assert!(
            dashboard.contains(name),
            "the dashboard does not chart {name}"
        );
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run promtool (scripts/setup installs it)");
    if let Some(mut stdin) = promtool.stdin.take() {
        use std::io::Write;
        stdin.write_all(text.as_bytes()).expect("promtool stdin");
    }
    let output = promtool.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A private repository over SSH: the key from `RECONCILER_GIT_SSH_KEY`, the
/// server's host key checked against `~/.ssh/known_hosts` (by libgit2). A
/// real sshd on loopback serves the repository.
#[test]
fn a_repository_over_ssh_is_fetched_with_the_key_and_a_known_host_only() {
    require_swarm();
    let _cleanup = Cleanup::new("r-gitssh", "rgitssh-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-gitssh")),
            ("services.toml", &service_spec("rgitssh-web", 1)),
        ],
        "first",
    );
    let sshd = reconciler_tests::sshd::Sshd::start();
    let url = format!(
        "ssh://root@127.0.0.1:{}{}",
        sshd.port,
        repo.remote_path().display()
    );
    let key = sshd.identity().display().to_string();

    // A home whose known_hosts lacks the server: refused, nothing deployed.
    let stranger_home = tempfile::tempdir().unwrap();
    let stranger_home_path = stranger_home.path().display().to_string();
    let refused = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s"],
        SecretFrom::File,
        &[
            ("HOME", &stranger_home_path),
            ("RECONCILER_GIT_SSH_KEY", &key),
        ],
    );
    wait_until("a failed fetch", Duration::from_secs(30), || {
        (refused.metric("reconciler_source_fetches_total{result=\"error\"}") >= 1.0)
            .then_some(())
            .ok_or(refused.process.log())
    });
    let status = refused.status();
    assert!(status["revision"].is_null(), "{status:#}");
    assert!(
        status["last_error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown remote ssh hostkey"),
        "{status:#}"
    );
    assert_eq!(replicas("rgitssh-web"), None);
    drop(refused);

    // The same with the server's key in ~/.ssh/known_hosts: fetched and applied.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(
        home.path().join(".ssh/known_hosts"),
        sshd.known_hosts_line(),
    )
    .unwrap();
    let home_path = home.path().display().to_string();
    let controller = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s"],
        SecretFrom::File,
        &[("HOME", &home_path), ("RECONCILER_GIT_SSH_KEY", &key)],
    );
    wait_replicas("rgitssh-web", 1, &controller);
    assert!(
        !controller
            .process
            .log()
            .contains("BEGIN OPENSSH PRIVATE KEY"),
        "the key reached the log"
    );
}

/// A private repository over HTTP: user from `RECONCILER_GIT_USERNAME`,
/// password from the file `RECONCILER_GIT_PASSWORD_FILE` names; a wrong
/// password is refused and the password is never shown.
#[test]
fn a_repository_over_http_is_fetched_with_a_user_and_password_file() {
    require_swarm();
    let _cleanup = Cleanup::new("r-githttp", "rgithttp-");
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-githttp")),
            ("services.toml", &service_spec("rgithttp-web", 1)),
        ],
        "first",
    );
    let password = "correct-horse-battery";
    let server = reconciler_tests::git::GitHttp::start(repo.root(), "deploy", password);
    let url = format!("http://127.0.0.1:{}/remote.git", server.port);
    let files = tempfile::tempdir().unwrap();
    let wrong_file = files.path().join("wrong");
    std::fs::write(&wrong_file, "not-the-password\n").unwrap();
    let right_file = files.path().join("right");
    std::fs::write(&right_file, format!("{password}\n")).unwrap();

    let wrong_path = wrong_file.display().to_string();
    let refused = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s"],
        SecretFrom::File,
        &[
            ("RECONCILER_GIT_USERNAME", "deploy"),
            ("RECONCILER_GIT_PASSWORD_FILE", &wrong_path),
        ],
    );
    wait_until("a failed fetch", Duration::from_secs(30), || {
        (refused.metric("reconciler_source_fetches_total{result=\"error\"}") >= 1.0)
            .then_some(())
            .ok_or(refused.process.log())
    });
    assert!(refused.status()["revision"].is_null());
    // Regression (issue 20): a refused password was classified retryable
    // and retried with backoff forever; it needs a person, who is told what
    // to set.
    wait_status(&refused, "the refused password reported", |s| {
        s["source_error"]["reason"] == "git_auth"
    });
    let status = refused.status();
    let source_error = &status["source_error"];
    assert_eq!(source_error["class"], "needs_person", "{source_error:#}");
    let message = source_error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused the credentials")
            && message.contains("RECONCILER_GIT_PASSWORD_FILE"),
        "{message}"
    );
    wait_until("the refusal counted", Duration::from_secs(30), || {
        let sample =
            "reconciler_reconcile_errors_total{class=\"needs_person\",reason=\"git_auth\"}";
        metric(&refused.metrics(), sample)
            .filter(|count| *count >= 1.0)
            .map(|_| ())
            .ok_or(refused.metrics())
    });
    assert_eq!(replicas("rgithttp-web"), None);
    drop(refused);

    let right_path = right_file.display().to_string();
    let controller = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s"],
        SecretFrom::File,
        &[
            ("RECONCILER_GIT_USERNAME", "deploy"),
            ("RECONCILER_GIT_PASSWORD_FILE", &right_path),
        ],
    );
    wait_replicas("rgithttp-web", 1, &controller);
    let shown = format!("{}{}", controller.process.log(), controller.status());
    assert!(!shown.contains(password), "the password was shown");
}

/// The lease used to be checked once before an apply and never again, so a
/// writer whose lease was taken kept writing through its waits. Now a keeper
/// renews it while the apply runs and the apply stops the moment it is
/// another controller's: here while it waits for `slow`, before `late`.
#[test]
fn regression_an_apply_that_lost_the_lease_stops_writing() {
    require_swarm();
    let _cleanup = Cleanup::new("r-lost", "rlost-");
    set_lease_label("r-lost", None);
    let spec = SpecDir::new("r-lost");
    spec.write(
        "services.toml",
        &format!(
            "[service.rlost-slow]\nimage = \"{IMAGE}\"\ncommand = [\"sh\", \"-c\", \"sleep 30; touch /tmp/ok; sleep 3600\"]\nhealthcheck = {{ test = [\"CMD\", \"test\", \"-f\", \"/tmp/ok\"], interval = \"1s\", timeout = \"1s\", retries = 60 }}\n\n[service.rlost-late]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nafter = [\"rlost-slow\"]\n"
        ),
    );
    let dir = spec.arg();
    let controller = Controller::start(
        &["--dir", &dir],
        &[
            "--interval",
            "1s",
            "--lease-ttl",
            "8s",
            "--apply-timeout",
            "6s",
            "--holder-id",
            "lost-1",
        ],
    );
    wait_until(
        "the controller to take the lease",
        Duration::from_secs(30),
        || {
            lease_label("r-lost")
                .filter(|label| label.starts_with("lost-1 "))
                .map(|_| ())
                .ok_or(format!("{:#}", controller.status()))
        },
    );
    let intruder = "intruder-1 0 3600";
    set_lease_label("r-lost", Some(intruder));
    // (A standby reconcile clears `last_error`: the metric and the log keep it.)
    wait_until(
        "the apply to stop on the lost lease",
        Duration::from_secs(30),
        || {
            let text = controller.metrics();
            let lost = metric(
                &text,
                "reconciler_reconcile_errors_total{class=\"retryable\",reason=\"lease_lost\"}",
            );
            lost.filter(|n| *n >= 1.0).map(|_| ()).ok_or(text)
        },
    );
    let log = controller.process.log();
    assert!(
        log.contains("stopped at the wait for service.rlost-slow"),
        "{log}"
    );
    wait_until(
        "the controller to stand by",
        Duration::from_secs(30),
        || {
            let status = controller.status();
            (status["last_reconcile"]["result"] == "standby"
                && status["lease"] == "held by intruder-1")
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    assert_ne!(
        docker_unchecked(&["service", "inspect", "rlost-late"]).code,
        0,
        "rlost-late was written after the lease was lost"
    );
    assert_eq!(lease_label("r-lost").as_deref(), Some(intruder));
    set_lease_label("r-lost", None);
}

/// Anyone who can push writes the compose files `run` loads: they must not
/// read the controller's own environment (its webhook secret, its age
/// identity) into a service. Only `--allow-env` names are readable.
#[test]
fn regression_a_pushed_compose_file_cannot_read_the_controllers_environment() {
    require_swarm();
    let _cleanup = Cleanup::new("r-env", "renv_");
    let age_key = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    let stack = format!(
        r#"version: "3.8"
services:
  app:
    image: {IMAGE}
    command: ["sleep", "3600"]
    environment:
      - RECONCILER_WEBHOOK_SECRET
      - HOOK=${{RECONCILER_WEBHOOK_SECRET}}
      - KEY=${{RECONCILER_AGE_IDENTITY:-none}}
      - DOMAIN=${{PI_DOMAIN}}
      - PI_DOMAIN
    labels:
      - RECONCILER_WEBHOOK_SECRET
"#
    );
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-env")),
            (
                "stacks.toml",
                "[stack.renv]\ncompose = \"docker-stack.yml\"\n",
            ),
            ("docker-stack.yml", &stack),
        ],
        "a stack that reaches for the controller's environment",
    );
    let url = repo.url();
    let controller = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s", "--allow-env", "PI_DOMAIN"],
        SecretFrom::Environment,
        &[
            ("RECONCILER_AGE_IDENTITY", age_key),
            ("PI_DOMAIN", "pi.lan"),
        ],
    );
    wait_replicas("renv_app", 1, &controller);
    let spec = inspect_service("renv_app")["Spec"].clone();
    let text = spec.to_string();
    assert!(
        !text.contains(SECRET),
        "the webhook secret reached the service: {text}"
    );
    assert!(
        !text.contains(age_key),
        "the age identity reached the service"
    );
    let env = &spec["TaskTemplate"]["ContainerSpec"]["Env"];
    for expected in ["DOMAIN=pi.lan", "PI_DOMAIN=pi.lan", "KEY=none", "HOOK="] {
        assert!(
            env.as_array()
                .is_some_and(|list| list.iter().any(|v| v == expected)),
            "{expected} missing from {env}"
        );
    }
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Labels"]["RECONCILER_WEBHOOK_SECRET"], "",
        "a bare label is empty, as docker stack deploy makes it"
    );
}

/// A link committed to the repository reads as the file it names when that
/// file is in the spec; a link out of it (to the controller's own
/// environment, say) refuses the revision instead of being read.
#[test]
fn regression_a_committed_link_out_of_the_spec_refuses_the_revision() {
    use reconciler::source::{GitRef, GitSource};
    let repo = GitRepo::new();
    repo.commit(
        &[("cluster.toml", &cluster("r-link")), ("app.env", "A=1\n")],
        "good",
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let mut source = GitSource::new(repo.url(), GitRef::Branch("main".into()), "", cache.path());
    repo.commit_symlink("inner.env", "app.env", "a link inside");
    let snapshot = source.snapshot().unwrap_or_else(|e| panic!("{e}"));
    let inner = snapshot
        .files
        .iter()
        .find(|(path, _)| path.as_os_str() == "inner.env")
        .map(|(_, bytes)| bytes.as_slice());
    assert_eq!(inner, Some(b"A=1\n".as_slice()));
    for target in ["/proc/self/environ", "../../../../etc/passwd"] {
        repo.commit_symlink("outer.env", target, "a link out");
        match source.snapshot() {
            Err(error) => {
                let text = error.to_string();
                assert!(
                    text.contains("outer.env") && text.contains("outside the spec"),
                    "{text}"
                );
            }
            Ok(_) => panic!("a link to {target} was read"),
        }
    }
}

/// Known secret values in a spec never appear on any channel: the plan
/// and apply output, the controller's log, `/metrics`, `/api/status` and
/// the status page — also when a revision is refused for a broken value.
#[test]
fn secret_values_reach_no_channel() {
    require_swarm();
    let _cleanup = Cleanup::new("r-sens", "rsens-");
    let secrets = [
        "pw-7d2e-not-real",
        "tok-51aa-not-real",
        "url-pass-90fe",
        "arg-pass-3c11",
        "label-auth-77b0",
        "4815162342",
    ];
    let body = format!(
        r#"[service.rsens-app]
image = "{IMAGE}"
command = ["sleep"]
args = ["3600", "--db-password=arg-pass-3c11", "postgres://app:url-pass-90fe@db/app"]
env = {{ DB_PASSWORD = "pw-7d2e-not-real", API_TOKEN = "tok-51aa-not-real", DATABASE_URL = "postgres://app:url-pass-90fe@db/app" }}
labels = {{ "traefik.http.middlewares.x.basicauth.users" = "label-auth-77b0" }}
"#
    );
    let spec = SpecDir::new("r-sens");
    spec.write("services.toml", &body);
    let mut shown = String::new();
    for json in [false, true] {
        let mut args = vec!["plan".to_string(), spec.arg()];
        if json {
            args.push("--json".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = reconciler(&args);
        shown.push_str(&out.stdout);
        shown.push_str(&out.stderr);
    }
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster("r-sens")),
            ("services.toml", &body),
        ],
        "secrets in values",
    );
    let url = repo.url();
    let controller = Controller::start(&["--git", &url], &["--interval", "1s"]);
    wait_replicas("rsens-app", 1, &controller);
    // A refused revision whose broken value is a password.
    let broken = format!(
        "[service.rsens-app]\nimage = \"{IMAGE}\"\nenv = {{ POSTGRES_PASSWORD = 4815162342 }}\n"
    );
    let bad = repo.commit(
        &[("services.toml", &broken)],
        "a password of the wrong type",
    );
    wait_status(&controller, "the broken revision to be refused", |s| {
        s["fetched_revision"].as_str() == Some(bad.as_str()) && s["spec_valid"] == false
    });
    let status = controller.status();
    assert!(
        status["spec_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid type: integer, expected a string")),
        "{status:#}"
    );
    shown.push_str(&controller.process.log());
    shown.push_str(&status.to_string());
    shown.push_str(&controller.metrics());
    shown.push_str(
        &http::get(controller.address, "/")
            .map(|r| r.body)
            .unwrap_or_default(),
    );
    for secret in secrets {
        assert!(!shown.contains(secret), "`{secret}` was shown");
    }
}

/// A remote that accepts the connection and then says nothing: the fetch is
/// given up after `--fetch-timeout` (the loop goes on, the reason shows on
/// `/api/status`), and SIGTERM still ends the controller promptly.
#[test]
fn regression_a_stalled_remote_neither_freezes_the_loop_nor_holds_up_sigterm() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // Accept, read nothing, answer nothing, close nothing.
            if let Ok(mut kept) = keep.lock() {
                kept.push(stream);
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}/stalled.git");
    let mut controller = Controller::start(
        &["--git", &url],
        &["--interval", "1s", "--fetch-timeout", "2s"],
    );
    wait_status(&controller, "the stalled fetch to be given up", |s| {
        s["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did not finish within 2s"))
    });
    // The loop is alive: it keeps trying (and counting).
    let first = controller.metric("reconciler_source_fetches_total{result=\"error\"}");
    wait_until("another fetch attempt", Duration::from_secs(60), || {
        let now = controller.metric("reconciler_source_fetches_total{result=\"error\"}");
        (now > first).then_some(()).ok_or(format!("{now}"))
    });
    controller.process.terminate();
    let exited = controller.process.wait(Duration::from_secs(30));
    assert!(
        exited.is_some(),
        "SIGTERM did not end the controller:\n{}",
        controller.process.log()
    );
    drop(held);
}

/// An empty webhook secret would let an empty `X-Gitlab-Token` through:
/// the controller refuses to start with one, from a file or the environment.
#[test]
fn regression_an_empty_webhook_secret_is_refused_at_start() {
    let spec = SpecDir::new("r-empty");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), " \n").expect("write");
    let path = file.path().display().to_string();
    let from_file = reconciler_binary(
        &[
            "run",
            "--dir",
            &spec.arg(),
            "--listen",
            "127.0.0.1:0",
            "--webhook-secret-file",
            &path,
        ],
        &[],
    );
    assert_eq!(from_file.code, 1, "{}", from_file.stderr);
    assert!(
        from_file.stderr.contains("webhook secret") && from_file.stderr.contains("is empty"),
        "{}",
        from_file.stderr
    );
    let from_env = reconciler_binary(
        &["run", "--dir", &spec.arg(), "--listen", "127.0.0.1:0"],
        &[("RECONCILER_WEBHOOK_SECRET", "   ")],
    );
    assert_eq!(from_env.code, 1, "{}", from_env.stderr);
    assert!(
        from_env
            .stderr
            .contains("$RECONCILER_WEBHOOK_SECRET is empty"),
        "{}",
        from_env.stderr
    );
}

/// A client that opens a connection and sends half a request is cut off
/// after the connection deadline instead of holding it forever (slowloris).
#[test]
fn regression_a_client_that_never_finishes_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let spec = SpecDir::new("r-slow");
    let controller = Controller::start(&["--dir", &spec.arg()], &["--interval", "1h"]);
    let mut stream = std::net::TcpStream::connect(controller.address).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("read timeout");
    let mut buf = [0u8; 64];
    let started = std::time::Instant::now();
    // The server closes (0 bytes) or resets; a read that times out on our
    // side means it kept the connection open.
    match stream.read(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the connection was still open after {:?}: {e}",
            started.elapsed()
        ),
    }
    println!("cut off after {:?}", started.elapsed());
    // Still serving others.
    assert_eq!(
        http::get(controller.address, "/healthz")
            .map(|r| r.status)
            .ok(),
        Some(200)
    );
}

/// Regression (issue 14): the status said `lease: unknown` while its
/// controller was the only one, because a reconcile with nothing to write
/// never looked at the lease. Now it reads whom the label names: `free`,
/// then `held by` another controller that took it.
#[test]
fn regression_the_lease_is_reported_when_nothing_needed_writing() {
    require_swarm();
    let cluster = "r-leasesee";
    let _cleanup = Cleanup::new(cluster, "rleasesee-");
    let spec = SpecDir::new(cluster);
    spec.write("services.toml", &service_spec("rleasesee-web", 1));
    reconciler(&["apply", &spec.arg(), "--auto-approve"]).expect_code(0);
    let set = |value: Option<&str>| {
        // Other tests' controllers write the Swarm object too: retry on a moved version.
        wait_until(
            "the lease label to be written",
            Duration::from_secs(30),
            || try_set_lease_label(cluster, value),
        );
    };
    set(None);
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    wait_status(&controller, "the lease to be reported free", |s| {
        s["lease"] == "free" && s["last_reconcile"]["writes"] == 0
    });
    set(Some("other-controller 99999999999"));
    wait_status(&controller, "the lease to be reported as another's", |s| {
        s["lease"] == "held by other-controller"
    });
    let page = http::get(controller.address, "/").expect("GET /");
    assert!(
        page.body.contains("lease held by other-controller"),
        "{}",
        page.body
    );
    drop(controller);
    set(None);
}

/// Bytes no compressor can shrink (a pack carries them as they are).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()[0]
        })
        .collect()
}

/// A single commit could stop the controller (issue 22): folders nested
/// ~30 000 deep overflowed the stack of the tree walk, and a large file
/// anywhere in history was fetched whole. Now folders past the limit and a
/// fetch past its byte cap each refuse the revision with the reason, the
/// last good revision stays in force and drift is still corrected; once
/// they are gone the next commit is applied, the large file left in
/// history costing no fetch (only the followed commit is fetched).
#[test]
fn regression_a_commit_too_deep_or_too_large_refuses_the_revision_and_reconciling_goes_on() {
    require_swarm();
    let _cleanup = Cleanup::new("r-bound", "rbound-");
    let repo = GitRepo::new();
    let good = repo.commit(
        &[
            ("cluster.toml", &cluster("r-bound")),
            ("services.toml", &service_spec("rbound-web", 1)),
        ],
        "good",
    );
    let password = "bound-password";
    let server = reconciler_tests::git::GitHttp::start(repo.root(), "deploy", password);
    let url = format!("http://127.0.0.1:{}/remote.git", server.port);
    let files = tempfile::tempdir().expect("temp dir");
    let password_file = files.path().join("password");
    std::fs::write(&password_file, password).expect("write");
    let password_path = password_file.display().to_string();
    let controller = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s"],
        SecretFrom::File,
        &[
            ("RECONCILER_GIT_USERNAME", "deploy"),
            ("RECONCILER_GIT_PASSWORD_FILE", &password_path),
        ],
    );
    wait_replicas("rbound-web", 1, &controller);

    let still_reconciling = |controller: &Controller, last_good: &str| {
        docker(&["service", "scale", "--detach", "rbound-web=3"]);
        wait_replicas("rbound-web", 1, controller);
        assert_eq!(
            controller.status()["revision"].as_str(),
            Some(last_good),
            "the last good revision must stay in force"
        );
    };

    let deep = format!("{}/x.txt", vec!["d"; 40].join("/"));
    repo.commit(&[(deep.as_str(), "x")], "folders 40 deep");
    wait_status(&controller, "the deep revision refused", |s| {
        s["source_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nested more than 32 deep"))
    });
    still_reconciling(&controller, &good);
    let flat = repo.commit_removing(&[deep.as_str()], "flat again");
    wait_status(&controller, "the flat revision in force", |s| {
        s["revision"].as_str() == Some(flat.as_str())
    });

    let big = noise(reconciler_spec::MAX_SPEC_BYTES * 2 + 8 * 1024 * 1024);
    repo.commit_bytes(&[("assets/big.bin", big.as_slice())], "a large file");
    drop(big);
    wait_status(&controller, "the large revision refused", |s| {
        s["source_error"]["reason"] == "git_too_large"
    });
    let message = controller.status()["source_error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("passed 128 MiB"), "{message}");
    still_reconciling(&controller, &flat);

    repo.commit_removing(&["assets/big.bin"], "the large file removed");
    let fixed = repo.commit(&[("services.toml", &service_spec("rbound-web", 2))], "two");
    wait_replicas("rbound-web", 2, &controller);
    wait_status(&controller, "the fixed revision in force", |s| {
        s["revision"].as_str() == Some(fixed.as_str()) && s["source_error"].is_null()
    });
}

/// A chart template that doubles a string a few times asked for gigabytes
/// within its step budget, and the failed allocation aborted the
/// controller (issue 22). Each new revision is now loaded first in a child
/// process under a memory limit: this one is refused with what stopped it,
/// the controller goes on correcting drift with the last good revision,
/// and takes the next good one.
#[test]
fn regression_a_chart_that_asks_for_gigabytes_is_refused_and_the_controller_lives_on() {
    require_swarm();
    let _cleanup = Cleanup::new("r-sandbox", "rsandbox-");
    let spec = SpecDir::new("r-sandbox");
    spec.write("services.toml", &service_spec("rsandbox-web", 1));
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    wait_replicas("rsandbox-web", 1, &controller);
    let good = controller.status()["revision"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    spec.write(
        "charts/big/chart.toml",
        "name = \"big\"\nversion = \"0.1.0\"\n",
    );
    // 1 MiB doubled twelve times: 4 GiB in a dozen steps.
    let mut template = String::from("{% set s0 = \"x\" * 1048576 %}");
    for i in 1..=12 {
        template.push_str(&format!("{{% set s{i} = s{} ~ s{} %}}", i - 1, i - 1));
    }
    template.push_str("# {{ s12 | length }}\n");
    spec.write("charts/big/templates/big.toml", &template);
    spec.write("releases.toml", "[release.big]\nchart = \"charts/big\"\n");
    wait_status(&controller, "the revision refused", |s| {
        s["spec_valid"] == false
            && s["spec_error"]
                .as_str()
                .is_some_and(|e| e.contains("loading this revision was stopped"))
    });
    let error = controller.status()["spec_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("memory allocation"), "{error}");
    assert_eq!(
        controller.status()["revision"].as_str(),
        Some(good.as_str())
    );
    // The same spec at the terminal (the real binary: the child is the
    // binary itself): validate and plan are stopped too, with the reason,
    // instead of aborting or taking gigabytes.
    for command in ["validate", "plan"] {
        let out = reconciler_binary(&[command, &dir], &[]).expect_code(1);
        assert!(
            out.stderr.contains("loading the spec was stopped")
                && out.stderr.contains("memory allocation"),
            "{command}: {}",
            out.stderr
        );
    }
    docker(&["service", "scale", "--detach", "rsandbox-web=3"]);
    wait_replicas("rsandbox-web", 1, &controller);

    spec.remove("releases.toml");
    spec.remove("charts/big/templates/big.toml");
    spec.remove("charts/big/chart.toml");
    spec.write("services.toml", &service_spec("rsandbox-web", 2));
    wait_replicas("rsandbox-web", 2, &controller);
    wait_status(&controller, "a good revision in force", |s| {
        s["spec_valid"] == true
    });
}

/// `run --git http://…` of another machine was fetched without a word:
/// whoever is on the path serves the spec, which is root on every board
/// (issue 22). It is refused at start, before any connection, unless the
/// operator says the network is theirs; loopback needs no flag (the other
/// tests fetch from a server on 127.0.0.1).
#[test]
fn regression_a_plaintext_git_url_of_another_machine_is_refused_at_start() {
    for url in ["http://git.invalid/spec.git", "git://git.invalid/spec"] {
        let out = reconciler(&["run", "--git", url, "--listen", "127.0.0.1:0"]).expect_code(1);
        assert!(
            out.stderr.contains("fetched without encryption")
                && out.stderr.contains("--allow-plaintext-git"),
            "{}",
            out.stderr
        );
    }
}

/// A page of another site could read `/api/status` (environment values, the
/// cluster's layout) through DNS rebinding: its name, pointed at 127.0.0.1,
/// arrives as the `Host` (issue 22). Such names are refused on the page,
/// `/api/*` and `/metrics` unless given with `--allow-host`; addresses,
/// `localhost` and one-label LAN names pass, and health and hooks are not
/// concerned.
#[test]
fn regression_another_sites_name_cannot_read_the_status_by_dns_rebinding() {
    require_swarm();
    let _cleanup = Cleanup::new("r-host", "rhost-");
    let spec = SpecDir::new("r-host");
    spec.write("services.toml", &service_spec("rhost-web", 1));
    let dir = spec.arg();
    let controller = Controller::start(
        &["--dir", &dir],
        &["--interval", "1h", "--allow-host", "reconciler.lab.example"],
    );
    let port = controller.address.port();
    for path in ["/api/status", "/api/page", "/", "/metrics"] {
        let refused = http::get_as(controller.address, &format!("evil.example:{port}"), path)
            .expect("an answer");
        assert_eq!(refused.status, 421, "{path}: {}", refused.body);
        assert!(
            refused.body.contains("--allow-host evil.example"),
            "{}",
            refused.body
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("pi1:{port}"),
        format!("reconciler.lab.example:{port}"),
    ] {
        let answer = http::get_as(controller.address, &host, "/api/status").expect("an answer");
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
    }
    let health = http::get_as(controller.address, "evil.example", "/healthz").expect("an answer");
    assert_eq!(health.status, 200);
}

/// 1 100 idle HTTP connections used up the controller's files (systemd's
/// soft limit is 1 024) and every reconcile failed with "Too many open
/// files" (issue 22). The controller now serves at most 256 connections at
/// once (the rest wait in the kernel's backlog) and raises its own limit:
/// while 600 idle connections are open its open files stay bounded and a
/// changed spec is still applied; once they go, it answers again.
#[test]
fn regression_idle_connections_cannot_use_up_the_controllers_files() {
    require_swarm();
    let _cleanup = Cleanup::new("r-conns", "rconns-");
    let spec = SpecDir::new("r-conns");
    spec.write("services.toml", &service_spec("rconns-web", 1));
    let dir = spec.arg();
    let controller = Controller::start(&["--dir", &dir], &["--interval", "1s"]);
    wait_replicas("rconns-web", 1, &controller);
    let open_files = || {
        std::fs::read_dir(format!("/proc/{}/fd", controller.process.id()))
            .map(Iterator::count)
            .unwrap_or(0)
    };
    let idle: Vec<std::net::TcpStream> = (0..600)
        .filter_map(|_| std::net::TcpStream::connect(controller.address).ok())
        .collect();
    assert!(idle.len() > 500, "only {} connections opened", idle.len());
    std::thread::sleep(Duration::from_secs(1));
    let during = open_files();
    assert!(
        during < 256 + 100,
        "the controller holds {during} files with {} idle connections",
        idle.len()
    );
    spec.write("services.toml", &service_spec("rconns-web", 2));
    wait_replicas("rconns-web", 2, &controller);
    drop(idle);
    wait_until(
        "the controller to answer again",
        Duration::from_secs(40),
        || {
            http::get(controller.address, "/healthz")
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    );
}

/// Push access is root on every board (issue 22): a service may mount the
/// Docker socket or the controller's own folder. A policy file that lives
/// with the controller (`--policy`) refuses a revision that asks for what
/// it denies — the last good revision stays and reconciling goes on — and
/// `plan --policy` refuses the same spec before contacting anything;
/// without a policy `plan` says what the spec may do.
#[test]
fn the_controllers_policy_refuses_what_it_denies_and_plan_says_what_push_access_allows() {
    require_swarm();
    let _cleanup = Cleanup::new("r-pol", "rpol-");
    let folder = tempfile::tempdir().expect("temporary folder");
    let policy = folder.path().join("policy.toml");
    std::fs::write(
        &policy,
        "deny = [\"docker-socket\", \"controller-folder\", \"all-capabilities\", \"board-commands\"]\n",
    )
    .expect("policy written");
    let policy = policy.display().to_string();
    let repo = GitRepo::new();
    let good = repo.commit(
        &[
            ("cluster.toml", &cluster("r-pol")),
            ("services.toml", &service_spec("rpol-web", 1)),
        ],
        "good",
    );
    let url = repo.url();
    let controller =
        Controller::start(&["--git", &url], &["--interval", "1s", "--policy", &policy]);
    wait_replicas("rpol-web", 1, &controller);
    let version = service_version("rpol-web");

    let socket = format!(
        "{}mounts = [{{ type = \"bind\", source = \"/var/run/../run/docker.sock\", target = \"/var/run/docker.sock\" }}]\n",
        service_spec("rpol-web", 1)
    );
    let bad = repo.commit(&[("services.toml", &socket)], "mount the socket");
    wait_status(
        &controller,
        "the revision to be refused by the policy",
        |s| s["fetched_revision"].as_str() == Some(bad.as_str()) && s["spec_valid"] == false,
    );
    let status = controller.status();
    let error = status["spec_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("service \"rpol-web\" mounts /var/run/docker.sock")
            && error.contains("the policy denies docker-socket"),
        "{error}"
    );
    assert_eq!(status["revision"].as_str(), Some(good.as_str()));
    controller.wait_for_reconciles(2);
    assert_eq!(
        service_version("rpol-web"),
        version,
        "a denied revision was applied"
    );
    assert!(
        controller.metric("reconciler_reconciles_total{result=\"success\"}") >= 1.0,
        "reconciling stopped"
    );
    // Issue 24: while the newest revision is refused, a reconcile of the
    // last good one counts as refused, not as a success.
    assert!(
        controller.metric("reconciler_reconciles_total{result=\"refused\"}") >= 2.0,
        "{}",
        controller.metrics()
    );
    let fixed = repo.commit(&[("services.toml", &service_spec("rpol-web", 2))], "fixed");
    wait_replicas("rpol-web", 2, &controller);
    wait_status(&controller, "the fixed revision to be in force", |s| {
        s["revision"].as_str() == Some(fixed.as_str())
    });

    // The same spec at the terminal.
    let spec = SpecDir::new("r-pol");
    spec.write("services.toml", &socket);
    let refused = reconciler(&["plan", &spec.arg(), "--policy", &policy]).expect_code(1);
    assert!(
        refused.stderr.contains("denies")
            && refused.stderr.contains("mounts /var/run/docker.sock")
            && refused.stdout.is_empty(),
        "{refused:?}"
    );
    let warned = reconciler(&["plan", &spec.arg()]).expect_code(0);
    assert!(
        warned
            .stderr
            .contains("warning: push access: service \"rpol-web\" mounts /var/run/docker.sock")
            && warned.stderr.contains("deny = [\"docker-socket\"]"),
        "{warned:?}"
    );
    // A policy the controller cannot read stops it at start, not later.
    std::fs::write(
        folder.path().join("typo.toml"),
        "deny = [\"docker-sockets\"]\n",
    )
    .expect("written");
    let typo = folder.path().join("typo.toml").display().to_string();
    let out = reconciler(&[
        "run",
        "--dir",
        &spec.arg(),
        "--policy",
        &typo,
        "--listen",
        "127.0.0.1:0",
    ])
    .expect_code(1);
    assert!(out.stderr.contains("docker-sockets"), "{}", out.stderr);
}

/// The page and `/api/status` were readable by whoever reached the
/// listener (issue 22). With `--page-token-file` they answer only a request
/// carrying the token — as a bearer token, or the cookie `/?token=` sets —
/// while `/metrics` and the health checks stay open for Prometheus and systemd.
#[test]
fn with_a_page_token_only_its_holder_reads_the_page_and_the_status() {
    require_swarm();
    let _cleanup = Cleanup::new("r-tok", "rtok-");
    let spec = SpecDir::new("r-tok");
    spec.write("services.toml", &service_spec("rtok-web", 1));
    let dir = spec.arg();
    let folder = tempfile::tempdir().expect("temporary folder");
    let token = "3f9c2a7d51e84b06a1c9e2f4d8b7a605";
    let file = folder.path().join("page-token");
    std::fs::write(&file, format!("{token}\n")).expect("token written");
    let file = file.display().to_string();
    let controller = Controller::start(
        &["--dir", &dir],
        &["--interval", "1h", "--page-token-file", &file],
    );
    let address = controller.address;
    for path in [
        "/",
        "/api/status",
        "/api/page",
        &format!("/?token={token}x"),
    ] {
        let refused = http::get(address, path).expect("an answer");
        assert_eq!(refused.status, 401, "{path}: {}", refused.body);
        assert!(refused.body.contains("page token"), "{}", refused.body);
    }
    let wrong = http::request(
        address,
        "GET",
        "/api/status",
        &[("Authorization", "Bearer 0000000000000000000000000000000")],
        b"",
    )
    .expect("an answer");
    assert_eq!(wrong.status, 401);
    let bearer = format!("Bearer {token}");
    let status = http::request(
        address,
        "GET",
        "/api/status",
        &[("Authorization", &bearer)],
        b"",
    )
    .expect("an answer");
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(status.body.contains("\"spec_valid\""), "{}", status.body);
    // The link to bookmark: the token moves into a cookie, out of the URL.
    let link = http::get(address, &format!("/?token={token}")).expect("an answer");
    assert_eq!(link.status, 303, "{}", link.head);
    assert_eq!(link.header("location"), Some("./"));
    let cookie = link.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        cookie.starts_with(&format!("reconciler_token={token};"))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let jar = format!("other=1; reconciler_token={token}");
    for path in ["/", "/api/page"] {
        let page =
            http::request(address, "GET", path, &[("Cookie", &jar)], b"").expect("an answer");
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains("rtok-web"), "{}", page.body);
    }
    for path in ["/metrics", "/healthz", "/readyz"] {
        let open = http::get(address, path).expect("an answer");
        assert_ne!(open.status, 401, "{path}");
    }
    // A guessable token is refused at start.
    std::fs::write(folder.path().join("short"), "secret\n").expect("written");
    let short = folder.path().join("short").display().to_string();
    let out = reconciler(&[
        "run",
        "--dir",
        &dir,
        "--page-token-file",
        &short,
        "--listen",
        "127.0.0.1:0",
    ])
    .expect_code(1);
    assert!(out.stderr.contains("at least 16"), "{}", out.stderr);
}

/// Commits were not verified (issue 22): whoever could push, or serve the
/// remote, chose what runs as root on every board. With
/// `--verify-signatures FILE` the controller follows only commits signed
/// with SSH by a key the allowed-signers file lists (as `git verify-commit`
/// accepts them: tests/signatures.rs compares the verdicts with git). An
/// unsigned or foreign-signed commit waits for a person, the last good
/// revision stays in force, and the next signed commit is applied.
#[test]
fn with_verify_signatures_only_commits_signed_by_an_allowed_key_are_followed() {
    require_swarm();
    let _cleanup = Cleanup::new("r-sig", "rsig-");
    let keys = tempfile::tempdir().expect("temporary folder");
    let keygen = |name: &str| {
        let path = keys.path().join(name);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen runs");
        assert!(out.status.success(), "{out:?}");
        let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
        (path.display().to_string(), public)
    };
    let (alice, alice_public) = keygen("alice");
    let (mallory, _) = keygen("mallory");
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("alice@example.com namespaces=\"git\" {alice_public}"),
    )
    .expect("written");
    let allowed = allowed.display().to_string();
    let repo = GitRepo::new();
    repo.configure("gpg.format", "ssh");
    repo.configure("commit.gpgsign", "true");
    repo.configure("user.signingkey", &alice);
    let signed = repo.commit(
        &[
            ("cluster.toml", &cluster("r-sig")),
            ("services.toml", &service_spec("rsig-web", 1)),
        ],
        "signed by alice",
    );
    let url = repo.url();
    let controller = Controller::start(
        &["--git", &url, "--verify-signatures", &allowed],
        &["--interval", "1s"],
    );
    wait_replicas("rsig-web", 1, &controller);
    wait_status(&controller, "the signed revision in force", |s| {
        s["revision"].as_str() == Some(signed.as_str())
    });

    for (key, expected) in [
        (None, "the commit is not signed"),
        (
            Some(&mallory),
            "which the allowed signers file does not list",
        ),
    ] {
        match key {
            None => repo.configure("commit.gpgsign", "false"),
            Some(key) => {
                repo.configure("commit.gpgsign", "true");
                repo.configure("user.signingkey", key);
            }
        }
        let refused = repo.commit(&[("services.toml", &service_spec("rsig-web", 3))], "scale");
        wait_status(&controller, "the commit to be refused", |s| {
            s["source_error"]["reason"] == "git_unverified"
                && s["source_error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&refused) && m.contains(expected))
        });
        let status = controller.status();
        assert_eq!(status["source_error"]["class"], "needs_person");
        assert_eq!(status["revision"].as_str(), Some(signed.as_str()));
        controller.wait_for_reconciles(2);
        assert_eq!(
            replicas("rsig-web"),
            Some(1),
            "an unverified commit was applied"
        );
    }

    repo.configure("user.signingkey", &alice);
    let next = repo.commit(
        &[("services.toml", &service_spec("rsig-web", 2))],
        "signed again",
    );
    wait_replicas("rsig-web", 2, &controller);
    wait_status(&controller, "the signed revision in force", |s| {
        s["revision"].as_str() == Some(next.as_str()) && s["source_error"].is_null()
    });
    // A file that is no allowed-signers file stops the controller at start.
    let broken = keys.path().join("broken");
    std::fs::write(
        &broken,
        "alice@example.com valid-after=\"20240101\" ssh-ed25519 AAAA\n",
    )
    .expect("written");
    let broken = broken.display().to_string();
    let out = reconciler(&[
        "run",
        "--git",
        &url,
        "--verify-signatures",
        &broken,
        "--listen",
        "127.0.0.1:0",
    ])
    .expect_code(1);
    assert!(
        out.stderr.contains("broken:1:") && out.stderr.contains("trailing Z"),
        "{}",
        out.stderr
    );
}

/// Two controllers started with the same `--holder-id` both counted the
/// lease as theirs and both wrote (issue 22). The lease now names the
/// writing process too: the second waits as a standby, writes nothing, and
/// says why.
#[test]
fn regression_two_controllers_with_the_same_holder_id_do_not_both_write() {
    require_swarm();
    let _cleanup = Cleanup::new("r-twin", "rtwin-");
    let spec = SpecDir::new("r-twin");
    spec.write("services.toml", &service_spec("rtwin-web", 1));
    let dir = spec.arg();
    let first_proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let first_host = first_proxy.host();
    let first = Controller::start(
        &["--dir", &dir],
        &[
            "--interval",
            "1s",
            "--holder-id",
            "twin",
            "--docker-host",
            &first_host,
        ],
    );
    wait_replicas("rtwin-web", 1, &first);
    let second_proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let second_host = second_proxy.host();
    let second = Controller::start(
        &["--dir", &dir],
        &[
            "--interval",
            "1s",
            "--holder-id",
            "twin",
            "--docker-host",
            &second_host,
        ],
    );
    wait_status(&second, "the second controller to stand by", |s| {
        s["lease"] == "held by twin (another controller with this holder id)"
    });
    docker(&["service", "scale", "--detach", "rtwin-web=3"]);
    wait_replicas("rtwin-web", 1, &first);
    second.wait_for_reconciles(2);
    assert_eq!(second.metric("reconciler_lease_held"), 0.0);
    assert_eq!(first.metric("reconciler_lease_held"), 1.0);
    assert_eq!(
        second_proxy.writes(),
        Vec::<String>::new(),
        "the second controller under the same holder id wrote"
    );
}
