//! End-to-end tests of plan and apply against the real local Docker daemon in
//! swarm mode. Each test owns a cluster name and a name prefix, so tests run
//! in parallel without touching each other's objects; the one test that
//! changes the node itself runs alone.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::time::Duration;

use reconciler_tests::proxy::DockerProxy;
use reconciler_tests::*;
use serde_json::{json, Value};

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

fn apply(spec: &SpecDir, host: &str, extra: &[&str]) -> Output {
    let dir = spec.arg();
    let mut args = vec![
        "apply",
        dir.as_str(),
        "--auto-approve",
        "--timeout",
        "90s",
        "--docker-host",
        host,
    ];
    args.extend_from_slice(extra);
    reconciler(&args)
}

fn plan_json(spec: &SpecDir, host: &str) -> Value {
    let dir = spec.arg();
    let output = reconciler(&["plan", &dir, "--json", "--docker-host", host]).expect_code(0);
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("plan --json is not JSON ({e}):\n{}", output.stdout))
}

fn detailed_exit_code(spec: &SpecDir, host: &str) -> i32 {
    reconciler(&[
        "plan",
        &spec.arg(),
        "--detailed-exitcode",
        "--docker-host",
        host,
    ])
    .code
}

fn local() -> String {
    format!("unix://{DOCKER_SOCKET}")
}

fn env_of(service: &Value) -> Vec<String> {
    let mut env: Vec<String> = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    env.sort();
    env
}

fn replicas_of(service: &Value) -> u64 {
    service["Spec"]["Mode"]["Replicated"]["Replicas"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn service_lifecycle_create_update_scale_remove() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-life", "lc-");
    let spec = SpecDir::new("t-life");
    spec.write(
        "services.toml",
        &format!(
            r#"
[network.lc-net]
attachable = true

[service.lc-web]
image = "{IMAGE}"
replicas = 1
command = ["httpd", "-f", "-p", "80", "-h", "/www"]
env = {{ GREETING = "hello" }}
networks = ["lc-net"]
ports = [{{ target = 80, published = 18101, mode = "host" }}]
constraints = ["node.role == manager"]
labels = {{ team = "makers" }}

[service.lc-side]
image = "{IMAGE}"
command = ["sleep", "3600"]
"#
        ),
    );
    let out = apply(&spec, &local(), &[]).expect_code(0);
    assert!(
        out.stdout
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    let web = inspect_service("lc-web");
    assert_eq!(
        web["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].as_str(),
        Some(IMAGE)
    );
    assert_eq!(env_of(&web), ["GREETING=hello"]);
    assert_eq!(replicas_of(&web), 1);
    assert_eq!(web["Spec"]["Labels"]["team"].as_str(), Some("makers"));
    assert_eq!(
        web["Spec"]["Labels"]["io.reconciler.managed-by"].as_str(),
        Some("reconciler")
    );
    assert_eq!(
        web["Spec"]["Labels"]["io.reconciler.cluster"].as_str(),
        Some("t-life")
    );
    assert_eq!(
        web["Spec"]["TaskTemplate"]["Placement"]["Constraints"][0].as_str(),
        Some("node.role == manager")
    );
    assert_eq!(
        web["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"].as_u64(),
        Some(18101)
    );
    assert_eq!(running_tasks("lc-web"), 1);
    // The host-mode port really serves.
    let page = wait_until(
        "the web service to answer on port 18101",
        Duration::from_secs(30),
        || {
            let out = std::process::Command::new("busybox")
                .args(["wget", "-qO-", "http://127.0.0.1:18101/"])
                .output()
                .map_err(|e| e.to_string())?;
            String::from_utf8(out.stdout)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    if s.is_empty() {
                        Err("empty".into())
                    } else {
                        Ok(s)
                    }
                })
        },
    );
    assert!(page.contains("hello from reconciler"), "{page}");
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "lc-net",
            "--format",
            "{{.Driver}} {{.Attachable}}"
        ])
        .trim(),
        "overlay true"
    );

    // Update image, env, replicas, constraints and ports in one go.
    let version_before = service_version("lc-web");
    let side_version = service_version("lc-side");
    spec.write(
        "services.toml",
        &format!(
            r#"
[network.lc-net]
attachable = true

[service.lc-web]
image = "{IMAGE_V2}"
replicas = 2
command = ["httpd", "-f", "-p", "80", "-h", "/www"]
env = {{ GREETING = "bonjour", COLOR = "green" }}
networks = ["lc-net"]
ports = [{{ target = 80, published = 18102, mode = "ingress" }}]
constraints = ["node.role != worker"]
labels = {{ team = "makers" }}

[service.lc-side]
image = "{IMAGE}"
command = ["sleep", "3600"]
"#
        ),
    );
    let plan = plan_json(&spec, &local());
    assert_eq!(plan["summary"]["change"], 1, "{plan:#}");
    let fields: Vec<&str> = plan["actions"][0]["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        [
            "image",
            "replicas",
            "env.COLOR",
            "env.GREETING",
            "ports",
            "constraints"
        ]
    );
    apply(&spec, &local(), &[]).expect_code(0);
    let web = inspect_service("lc-web");
    assert_eq!(
        web["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].as_str(),
        Some(IMAGE_V2)
    );
    assert_eq!(env_of(&web), ["COLOR=green", "GREETING=bonjour"]);
    assert_eq!(replicas_of(&web), 2);
    assert_eq!(
        web["Spec"]["TaskTemplate"]["Placement"]["Constraints"][0].as_str(),
        Some("node.role != worker")
    );
    assert_eq!(
        web["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"].as_u64(),
        Some(18102)
    );
    assert_eq!(
        web["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"].as_str(),
        Some("ingress")
    );
    assert!(service_version("lc-web") > version_before);
    assert_eq!(
        service_version("lc-side"),
        side_version,
        "an unchanged service was written"
    );
    assert_eq!(running_tasks("lc-web"), 2);

    // Scale only.
    spec.write(
        "services.toml",
        &std::fs::read_to_string(spec.path().join("services.toml"))
            .unwrap_or_default()
            .replace("replicas = 2", "replicas = 3"),
    );
    apply(&spec, &local(), &[]).expect_code(0);
    assert_eq!(replicas_of(&inspect_service("lc-web")), 3);
    assert_eq!(running_tasks("lc-web"), 3);

    // Remove the web service and the network from the spec: both are pruned.
    spec.write(
        "services.toml",
        &format!("[service.lc-side]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    let out = apply(&spec, &local(), &[]).expect_code(0);
    assert!(
        out.stdout
            .contains("Plan: 0 to add, 0 to change, 2 to destroy."),
        "{}",
        out.stdout
    );
    assert_ne!(
        docker_unchecked(&["service", "inspect", "lc-web"]).code,
        0,
        "lc-web still exists"
    );
    // The swarm removes the network at once; each node drops its copy when the tasks are gone.
    wait_until(
        "lc-net to disappear",
        Duration::from_secs(30),
        || match docker_unchecked(&["network", "inspect", "lc-net"]).code {
            0 => Err("still there".to_string()),
            _ => Ok(()),
        },
    );
    assert_eq!(
        docker_unchecked(&["service", "inspect", "lc-side"]).code,
        0,
        "lc-side was removed"
    );
}

#[test]
fn second_apply_makes_zero_write_calls() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-noop", "noop-");
    let spec = SpecDir::new("t-noop");
    spec.write(
        "services.toml",
        &format!(
            r#"
[network.noop-net]
[service.noop-a]
image = "{IMAGE}"
replicas = 2
command = ["sleep", "3600"]
env = {{ A = "1", API_TOKEN = "do-not-print-me" }}
networks = ["noop-net"]
constraints = ["node.labels.never-set-by-tests != x"]
preferences = ["spread=node.labels.shelf"]
mounts = [{{ type = "tmpfs", target = "/scratch" }}, {{ type = "bind", source = "/tmp", target = "/host-tmp", readonly = true }}]
resources = {{ limit_memory = "64M", reserve_memory = "16M", limit_cpus = 0.5, reserve_cpus = 0.1 }}
update = {{ parallelism = 1, delay = "2s", failure_action = "rollback", monitor = "5s", max_failure_ratio = 0.2, order = "start-first" }}
rollback = {{ parallelism = 2, order = "stop-first" }}
healthcheck = {{ test = ["CMD", "true"], interval = "5s", timeout = "2s", retries = 2, start_period = "1s" }}
restart = {{ condition = "on-failure", delay = "1s", max_attempts = 3, window = "1m" }}
user = "0"
workdir = "/"
labels = {{ tier = "test" }}

[service.noop-b]
image = "{IMAGE}"
mode = "global"
command = ["sleep", "3600"]
after = ["noop-a"]
"#
        ),
    );
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let first = apply(&spec, &proxy.host(), &[]).expect_code(0);
    assert!(!first.stdout.contains("do-not-print-me") && !first.stderr.contains("do-not-print-me"));
    // (The Swarm object's record of the guard in force is bookkeeping, like
    // the lease: written only when it changes.)
    let first_writes: Vec<String> = proxy
        .writes()
        .into_iter()
        .filter(|w| !w.contains("/swarm/update"))
        .collect();
    assert_eq!(
        first_writes.len(),
        3,
        "network + two services: {first_writes:?}"
    );
    let versions = (service_version("noop-a"), service_version("noop-b"));

    proxy.reset();
    let second = apply(&spec, &proxy.host(), &[]).expect_code(0);
    assert!(second.stdout.contains("No changes."), "{}", second.stdout);
    assert_eq!(proxy.writes(), Vec::<String>::new(), "a no-op apply wrote");
    assert!(
        !proxy.requests().is_empty(),
        "the proxy saw no request at all"
    );
    // The no-op was found from the cluster-labelled services alone: the
    // services list is the filtered one, never every service of the swarm.
    let lists: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/services"))
        .collect();
    assert!(
        lists.iter().any(|r| r.contains("/services?filters=")),
        "{lists:?}"
    );
    assert!(
        !lists.iter().any(|r| r.ends_with("/services")),
        "a no-op listed every service: {lists:?}"
    );
    assert_eq!(
        (service_version("noop-a"), service_version("noop-b")),
        versions
    );
    assert_eq!(detailed_exit_code(&spec, &proxy.host()), 0);
}

#[test]
fn drift_is_shown_exactly_and_corrected() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-drift", "drift-");
    let spec = SpecDir::new("t-drift");
    spec.write(
        "services.toml",
        &format!("[service.drift-web]\nimage = \"{IMAGE}\"\nreplicas = 2\ncommand = [\"sleep\", \"3600\"]\nenv = {{ MODE = \"calm\" }}\n"),
    );
    apply(&spec, &local(), &[]).expect_code(0);
    assert_eq!(detailed_exit_code(&spec, &local()), 0);

    docker(&["service", "scale", "--detach", "drift-web=4"]);
    docker(&[
        "service",
        "update",
        "--detach",
        "--env-add",
        "MODE=wild",
        "drift-web",
    ]);
    let plan = plan_json(&spec, &local());
    assert_eq!(plan["summary"]["change"], 1);
    let action = &plan["actions"][0];
    assert_eq!(action["name"], "drift-web");
    assert_eq!(action["drift"], true);
    assert_eq!(
        action["changes"],
        serde_json::json!([
            { "field": "replicas", "old": "4", "new": "2" },
            { "field": "env.MODE", "old": "\"wild\"", "new": "\"calm\"" }
        ])
    );
    assert_eq!(detailed_exit_code(&spec, &local()), 2);
    let text = reconciler(&["plan", &spec.arg(), "--docker-host", &local()])
        .expect_code(0)
        .stdout;
    assert!(
        text.contains("~ replicas: 4 -> 2") && text.contains("drift: changed outside reconciler"),
        "{text}"
    );

    apply(&spec, &local(), &[]).expect_code(0);
    let web = inspect_service("drift-web");
    assert_eq!(replicas_of(&web), 2);
    assert_eq!(env_of(&web), ["MODE=calm"]);
    assert_eq!(detailed_exit_code(&spec, &local()), 0);
}

/// Regression (CI, 2026-11-24): removing a service and its network in one
/// apply failed with "network ... is in use by task" because swarm still
/// counted the deleted service's task, whose desired state the orchestrator
/// had not lowered yet. That window is milliseconds; a container attached to
/// the network holds a task on it for as long as the test wants, so it stands
/// in for the slow task: the apply must wait for it to leave, then remove.
#[test]
fn removing_a_network_waits_for_tasks_still_leaving_it() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-leave", "lv-");
    let straggler = "lv-straggler";
    let _ = docker_unchecked(&["rm", "-f", straggler]);
    let spec = SpecDir::new("t-leave");
    let keep = format!("[service.lv-keep]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n");
    spec.write(
        "services.toml",
        &format!(
            r#"
[network.lv-net]
attachable = true

[service.lv-web]
image = "{IMAGE}"
command = ["sleep", "3600"]
networks = ["lv-net"]

{keep}"#
        ),
    );
    apply(&spec, &local(), &[]).expect_code(0);
    docker(&[
        "run",
        "-d",
        "--name",
        straggler,
        "--network",
        "lv-net",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let leaver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        docker(&["rm", "-f", straggler]);
    });

    spec.write("services.toml", &keep);
    let out = apply(&spec, &local(), &[]);
    let _ = leaver.join();
    let out = out.expect_code(0);
    assert!(
        out.stdout
            .contains("Plan: 0 to add, 0 to change, 2 to destroy."),
        "{}",
        out.stdout
    );
    assert_ne!(docker_unchecked(&["service", "inspect", "lv-web"]).code, 0);
    wait_until(
        "lv-net to disappear",
        Duration::from_secs(30),
        || match docker_unchecked(&["network", "inspect", "lv-net"]).code {
            0 => Err("still there".to_string()),
            _ => Ok(()),
        },
    );
    assert_eq!(detailed_exit_code(&spec, &local()), 0);
}

/// A service outside the cluster, deployed by `docker stack deploy` with
/// `rollback_config.failure_action: rollback` (which Docker stores although
/// its API lists no such value for a rollback), stopped every plan: the
/// typed list of services could not be read ("unknown variant `rollback`").
#[test]
fn regression_a_service_outside_the_cluster_that_bollard_cannot_type_stops_no_plan() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-untyped", "untyped");
    let stack = tempfile::tempdir().expect("tempdir");
    let file = stack.path().join("docker-stack.yml");
    std::fs::write(
        &file,
        format!(
            "version: \"3.8\"\nservices:\n  outside:\n    image: {IMAGE}\n    command: sleep 3600\n    deploy:\n      rollback_config:\n        failure_action: rollback\n"
        ),
    )
    .expect("write the stack file");
    docker(&[
        "stack",
        "deploy",
        "--detach=true",
        "-c",
        &file.to_string_lossy(),
        "untyped",
    ]);
    assert_eq!(
        docker(&[
            "service",
            "inspect",
            "untyped_outside",
            "--format",
            "{{.Spec.RollbackConfig.FailureAction}}"
        ])
        .trim(),
        "rollback",
        "the daemon stores what the CLI sent"
    );
    let by_hand_version = service_version("untyped_outside");
    let spec = SpecDir::new("t-untyped");
    spec.write(
        "a.toml",
        &format!("[service.untyped-mine]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    let plan = plan_json(&spec, &local());
    assert_eq!(plan["changed"], json!(true), "{plan}");
    assert!(plan.to_string().contains("untyped-mine"), "{plan}");
    apply(&spec, &local(), &[]).expect_code(0);
    assert_eq!(
        service_version("untyped_outside"),
        by_hand_version,
        "the service outside the cluster was written"
    );
    docker(&["stack", "rm", "untyped"]);
}

#[test]
fn unmanaged_objects_survive_a_pruning_apply() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-prune", "prune-");
    docker(&[
        "network",
        "create",
        "--driver",
        "overlay",
        "prune-byhand-net",
    ]);
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        "prune-byhand",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let by_hand_version = service_version("prune-byhand");
    let spec = SpecDir::new("t-prune");
    spec.write(
        "a.toml",
        &format!("[service.prune-a]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n[network.prune-net]\n"),
    );
    spec.write(
        "b.toml",
        &format!("[service.prune-b]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    apply(&spec, &local(), &[]).expect_code(0);
    spec.remove("a.toml");
    let out = apply(&spec, &local(), &[]).expect_code(0);
    assert!(
        out.stdout.contains("- service \"prune-a\"")
            && out.stdout.contains("- network \"prune-net\""),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("prune-byhand"), "{}", out.stdout);
    assert_eq!(
        service_version("prune-byhand"),
        by_hand_version,
        "the hand-made service was written"
    );
    assert_eq!(
        docker_unchecked(&["network", "inspect", "prune-byhand-net"]).code,
        0
    );
    assert_ne!(docker_unchecked(&["service", "inspect", "prune-a"]).code, 0);

    // A spec naming the hand-made service refuses to adopt it: the first
    // look, at the cluster's own services, does not find it, so the plan is
    // made again on every service of the swarm.
    spec.write(
        "c.toml",
        &format!("[service.prune-byhand]\nimage = \"{IMAGE}\"\n"),
    );
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let out = apply(&spec, &proxy.host(), &[]).expect_code(1);
    assert!(
        proxy.requests().iter().any(|r| r.ends_with("/services")),
        "{:?}",
        proxy.requests()
    );
    assert!(
        out.stderr.contains(
            "`prune-byhand` already exists in the swarm but is not managed by this cluster"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(service_version("prune-byhand"), by_hand_version);
}

#[test]
fn mass_delete_needs_the_flag() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-mass", "mass-");
    let spec = SpecDir::new("t-mass");
    for name in ["a", "b", "c"] {
        spec.write(
            &format!("{name}.toml"),
            &format!(
                "[service.mass-{name}]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"
            ),
        );
    }
    apply(&spec, &local(), &["--no-wait"]).expect_code(0);
    spec.remove("a.toml").remove("b.toml");
    let out = apply(&spec, &local(), &[]).expect_code(1);
    assert!(
        out.stderr
            .contains("refusing to delete 2 of 3 managed services"),
        "{}",
        out.stderr
    );
    // Issue 24: the refused plan is shown, as terraform shows it before
    // stopping: what would go, not only how many.
    for line in [
        "The plan refused:",
        "- service \"mass-a\"",
        "- service \"mass-b\"",
        "Plan: 0 to add, 0 to change, 2 to destroy.",
    ] {
        assert!(
            out.stderr.contains(line),
            "{line:?} not in:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("mass-c"), "{}", out.stderr);
    assert_eq!(docker_unchecked(&["service", "inspect", "mass-a"]).code, 0);
    let planned = reconciler(&["plan", &spec.arg(), "--docker-host", &local()]).expect_code(1);
    assert!(
        planned.stderr.contains("- service \"mass-a\""),
        "{}",
        planned.stderr
    );
    // Raising the threshold in the same change does not switch the guard
    // off: the last applied revision's is in force until one with the new
    // value has been applied.
    spec.write("guard.toml", "[controller]\nmax_delete_fraction = 1.0\n");
    let out = apply(&spec, &local(), &[]).expect_code(1);
    assert!(
        out.stderr
            .contains("refusing to delete 2 of 3 managed services")
            && out.stderr.contains("the last applied revision's"),
        "{}",
        out.stderr
    );
    assert_eq!(docker_unchecked(&["service", "inspect", "mass-b"]).code, 0);
    apply(&spec, &local(), &["--allow-mass-delete"]).expect_code(0);
    assert_ne!(docker_unchecked(&["service", "inspect", "mass-a"]).code, 0);
}

/// Issue 24: a task Swarm cannot start for a reason waiting will not change
/// (no such image, a missing bind source, no node that fits, a host-mode
/// port held by another service) fails `apply` with Docker's reason, what
/// to do and, for a port, who holds it, once Swarm has retried, instead of
/// waiting out the timeout (here 5 minutes: this test would take that long).
#[test]
fn a_task_that_cannot_start_fails_apply_at_once_with_the_reason() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-fail", "fail-");
    // A service outside the spec holds host port 18093.
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        "fail-holder",
        "--publish",
        "mode=host,published=18093,target=80",
        IMAGE,
    ]);
    wait_until("fail-holder to run", Duration::from_secs(60), || {
        let ps = docker(&[
            "service",
            "ps",
            "fail-holder",
            "--format",
            "{{.CurrentState}}",
        ]);
        ps.contains("Running").then_some(()).ok_or(ps)
    });
    let cases = [
        (
            "[service.fail-missing]\nimage = \"local/does-not-exist:1\"\n",
            "service `fail-missing` cannot start its tasks: No such image: local/does-not-exist:1",
            "check the image's name and tag",
        ),
        (
            &*format!("[service.fail-bind]\nimage = \"{IMAGE}\"\nmounts = [{{ type = \"bind\", source = \"/no/such/folder\", target = \"/data\" }}]\n"),
            "bind source path does not exist: /no/such/folder",
            "create the folder on every board",
        ),
        (
            &*format!("[service.fail-nowhere]\nimage = \"{IMAGE}\"\nconstraints = [\"node.labels.fail-shelf == z\"]\n"),
            "service `fail-nowhere` cannot start its tasks: no suitable node (scheduling constraints not satisfied on 1 node)",
            "no node meets the service's constraints",
        ),
        (
            &*format!("[service.fail-port]\nimage = \"{IMAGE}\"\nports = [{{ target = 80, published = 18093, mode = \"host\" }}]\n"),
            "host-mode port already in use on 1 node) (held by `fail-holder` (18093/tcp))",
            "another task holds the port",
        ),
    ];
    for (index, (service, reason, hint)) in cases.into_iter().enumerate() {
        // A cluster each: one service replacing another would be a delete.
        let spec = SpecDir::new(&format!("t-fail-{index}"));
        spec.write("s.toml", service);
        let out = reconciler(&[
            "apply",
            &spec.arg(),
            "--auto-approve",
            "--timeout",
            "5m",
            // What pre-flight catches (the held port) is let through: this
            // is about what the tasks say once written.
            "--allow-preflight",
            "port",
            "--docker-host",
            &local(),
        ])
        .expect_code(1);
        assert!(
            out.stderr.contains(reason) && out.stderr.contains(hint),
            "{reason:?} / {hint:?} not in:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("did not converge within"),
            "{}",
            out.stderr
        );
        // The spec is written but does not run: plan never says the swarm
        // matches it, and --detailed-exitcode and --json agree.
        let plan = |extra: &[&str]| {
            let dir = spec.arg();
            let mut args = vec!["plan", dir.as_str(), "--docker-host"];
            let host = local();
            args.push(&host);
            args.extend_from_slice(extra);
            reconciler(&args)
        };
        let text = plan(&["--detailed-exitcode"]).expect_code(2);
        assert!(
            text.stdout
                .starts_with("No changes to write, but the swarm does not run the spec yet:\n")
                && text.stdout.contains(" tasks running; newest task error: ")
                && !text.stdout.contains("matches the spec"),
            "{}",
            text.stdout
        );
        let json: Value =
            serde_json::from_str(&plan(&["--json"]).expect_code(0).stdout).expect("plan --json");
        assert_eq!(json["changed"], json!(true), "{json}");
        assert_eq!(json["not_converged"][0]["running"], json!(0), "{json}");
    }
}

#[test]
fn apply_without_a_terminal_asks_for_auto_approve_and_writes_nothing() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-confirm", "confirm-");
    let spec = SpecDir::new("t-confirm");
    spec.write(
        "s.toml",
        &format!("[service.confirm-web]\nimage = \"{IMAGE}\"\n"),
    );
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let out = reconciler(&["apply", &spec.arg(), "--docker-host", &proxy.host()]).expect_code(1);
    assert!(out.stderr.contains("pass --auto-approve"), "{}", out.stderr);
    assert_eq!(proxy.writes(), Vec::<String>::new());
}

#[test]
fn example_local_applies_converges_and_reapplies_as_a_noop() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("local", "\u{0}never");
    let dir = repo_path("examples/local").display().to_string();
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    reconciler(&[
        "apply",
        &dir,
        "--auto-approve",
        "--timeout",
        "90s",
        "--docker-host",
        &proxy.host(),
    ])
    .expect_code(0);
    assert_eq!(running_tasks("hello"), 1);
    assert_eq!(running_tasks("ticker"), 2);
    proxy.reset();
    let out = reconciler(&[
        "apply",
        &dir,
        "--auto-approve",
        "--docker-host",
        &proxy.host(),
    ])
    .expect_code(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);
    assert_eq!(proxy.writes(), Vec::<String>::new());

    // What its README suggests trying: scale by hand, see the drift, restore it.
    docker(&["service", "scale", "--detach", "ticker=4"]);
    let plan = reconciler(&["plan", &dir, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ replicas: 4 -> 2")
            && plan.stdout.contains("drift: changed outside reconciler"),
        "{}",
        plan.stdout
    );
    reconciler(&["apply", &dir, "--auto-approve", "--timeout", "90s"]).expect_code(0);
    assert_eq!(running_tasks("ticker"), 2);
}

#[test]
fn node_labels_and_availability_are_managed() {
    require_swarm();
    let _node = exclusive_node();
    let address = docker(&["node", "inspect", "self", "--format", "{{.Status.Addr}}"])
        .trim()
        .to_string();
    let id = docker(&["node", "inspect", "self", "--format", "{{.ID}}"])
        .trim()
        .to_string();
    // Restore the node however the test ends.
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            docker_unchecked(&[
                "node",
                "update",
                "--availability",
                "active",
                "--label-rm",
                "e2e-shelf",
                "--label-rm",
                "io.reconciler.labels",
                &self.0,
            ]);
            docker_unchecked(&["node", "update", "--label-rm", "e2e-by-hand", &self.0]);
            docker_unchecked(&[
                "node",
                "update",
                "--label-rm",
                "io.reconciler.cluster",
                &self.0,
            ]);
        }
    }
    let _restore = Restore(id.clone());
    docker(&["node", "update", "--label-add", "e2e-by-hand=keep", &id]);
    // The spec names the node by address so the test does not depend on the machine's hostname.
    let spec = SpecDir::new("t-node");
    let node = |extra: &str| {
        format!("[node.this-machine]\naddress = \"{address}\"\nrole = \"manager\"\n{extra}")
    };
    spec.write(
        "nodes.toml",
        &node("labels = { e2e-shelf = \"a\" }\navailability = \"pause\"\n"),
    );
    let out = apply(&spec, &local(), &[]).expect_code(0);
    assert!(
        out.stdout.contains("~ node \"this-machine\""),
        "{}",
        out.stdout
    );
    let labels = |id: &str| -> Value {
        serde_json::from_str(&docker(&[
            "node",
            "inspect",
            id,
            "--format",
            "{{json .Spec.Labels}}",
        ]))
        .unwrap_or(Value::Null)
    };
    assert_eq!(labels(&id)["e2e-shelf"], "a");
    assert_eq!(labels(&id)["e2e-by-hand"], "keep");
    assert_eq!(
        docker(&["node", "inspect", &id, "--format", "{{.Spec.Availability}}"]).trim(),
        "pause"
    );
    assert_eq!(
        detailed_exit_code(&spec, &local()),
        0,
        "node changes did not settle"
    );

    // Labels the controller set go away when they leave the spec; the hand-made one stays.
    spec.write("nodes.toml", &node("availability = \"active\"\n"));
    apply(&spec, &local(), &[]).expect_code(0);
    assert_eq!(labels(&id).get("e2e-shelf"), None);
    assert_eq!(labels(&id)["e2e-by-hand"], "keep");
    assert_eq!(
        docker(&["node", "inspect", &id, "--format", "{{.Spec.Availability}}"]).trim(),
        "active"
    );

    // Demoting the only manager is refused before any write.
    spec.write(
        "nodes.toml",
        &node("")
            .replace("role = \"manager\"", "role = \"worker\"")
            .replace(
                "[node.this-machine]",
                "[node.other]\naddress = \"192.0.2.1\"\nrole = \"manager\"\n\n[node.this-machine]",
            ),
    );
    let out = apply(&spec, &local(), &[]).expect_code(1);
    assert!(
        out.stderr.contains(
            "refusing to demote node `this-machine`: it would leave the swarm without a manager"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_swarm_rollback_is_reported_as_failure_with_the_reason() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-rollback", "rb-");
    let spec = SpecDir::new("t-rollback");
    let service = |command: &str| {
        format!(
            "[service.rb-web]\nimage = \"{IMAGE}\"\ncommand = {command}\nupdate = {{ parallelism = 1, failure_action = \"rollback\", monitor = \"5s\" }}\nrestart = {{ condition = \"none\" }}\n"
        )
    };
    spec.write("s.toml", &service(r#"["sleep", "3600"]"#));
    apply(&spec, &local(), &[]).expect_code(0);
    // The new version's task exits at once: Swarm's update monitor rolls back.
    spec.write("s.toml", &service(r#"["sh", "-c", "exit 3"]"#));
    let out = apply(&spec, &local(), &[]).expect_code(1);
    assert!(
        out.stderr
            .contains("service `rb-web` failed to converge: Swarm rolled the update back"),
        "{}",
        out.stderr
    );
    let live = inspect_service("rb-web");
    assert_eq!(
        live["Spec"]["TaskTemplate"]["ContainerSpec"]["Command"][0].as_str(),
        Some("sleep"),
        "not rolled back: {live:#}"
    );
}

#[test]
fn charts_and_stacks_apply_converge_and_reapply_as_noops() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-groups", "grp");
    let spec = SpecDir::new("t-groups");
    spec.write(
        "releases.toml",
        &format!(
            r#"
[release.grp-site]
chart = "charts/site"
values = {{ replicas = 2 }}

[release.grp-viz]
chart = "visualizer"
values = {{ image = "{IMAGE}", command = ["httpd", "-f", "-p", "8080", "-h", "/www"], port = 18480 }}

[stack.grpstack]
compose = "stack/docker-stack.yml"
env_file = "stack/.env"
"#
        ),
    );
    spec.write(
        "charts/site/chart.toml",
        "name = \"site\"\nversion = \"0.1.0\"\n",
    );
    spec.write(
        "charts/site/values.toml",
        &format!("image = \"{IMAGE}\"\nreplicas = 1\n"),
    );
    spec.write(
        "charts/site/templates/site.toml",
        "[network.net]\n\n[service.web]\nimage = {{ values.image | toml }}\nreplicas = {{ values.replicas }}\ncommand = [\"sleep\", \"3600\"]\nnetworks = [\"net\"]\n",
    );
    spec.write("stack/.env", "TAG=1\n");
    spec.write(
        "stack/docker-stack.yml",
        "services:\n  api:\n    image: local/busybox:${TAG}\n    command: [\"sleep\", \"3600\"]\n    deploy:\n      replicas: 2\n  worker:\n    image: local/busybox:${TAG}\n    entrypoint: sleep 3600\n    depends_on: [api]\n",
    );
    // Spec warnings reach plan --json too, with their place in the compose file.
    let planned = plan_json(&spec, &local());
    assert!(
        planned["warnings"].to_string().contains(
            "stack/docker-stack.yml:10:5: warning: compose: service `worker`: `depends_on` is ignored by docker stack deploy"
        ),
        "{planned:#}"
    );
    let out = apply(&spec, &local(), &[]).expect_code(0);
    assert!(
        out.stderr
            .contains("`depends_on` is ignored by docker stack deploy"),
        "{}",
        out.stderr
    );
    assert_eq!(running_tasks("grp-site-web"), 2);
    assert_eq!(running_tasks("grp-viz-visualizer"), 1);
    assert_eq!(running_tasks("grpstack_api"), 2);
    assert_eq!(running_tasks("grpstack_worker"), 1);
    let site = inspect_service("grp-site-web");
    assert_eq!(site["Spec"]["Labels"]["io.reconciler.release"], "grp-site");
    let api = inspect_service("grpstack_api");
    assert_eq!(api["Spec"]["Labels"]["io.reconciler.stack"], "grpstack");
    // The Docker CLI sees the stack as its own.
    let services = docker(&["stack", "services", "grpstack", "--format", "{{.Name}}"]);
    assert_eq!(services.lines().count(), 2, "{services}");

    // Their networks carry where they came from, like their services.
    let network_labels = |name: &str| -> Value {
        serde_json::from_str(&docker(&[
            "network",
            "inspect",
            name,
            "--format",
            "{{json .Labels}}",
        ]))
        .unwrap_or(Value::Null)
    };
    assert_eq!(
        network_labels("grp-site-net")["io.reconciler.release"],
        "grp-site"
    );
    assert_eq!(
        network_labels("grpstack_default")["io.reconciler.stack"],
        "grpstack"
    );
    assert_eq!(
        network_labels("grpstack_default")["com.docker.stack.namespace"],
        "grpstack"
    );

    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let again = apply(&spec, &proxy.host(), &[]).expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert_eq!(proxy.writes(), Vec::<String>::new());

    // `render`'s output is the same spec: applied instead of the releases and
    // stacks, it changes nothing (origins, labels and hashes all kept).
    let rendered = reconciler(&["render", &spec.arg()]).expect_code(0).stdout;
    let expanded = SpecDir::new("t-groups");
    expanded.write("cluster.toml", &rendered);
    proxy.reset();
    let from_render = apply(&expanded, &proxy.host(), &[]).expect_code(0);
    assert!(
        from_render
            .stdout
            .contains("No changes. The swarm matches the spec."),
        "{}",
        from_render.stdout
    );
    assert_eq!(proxy.writes(), Vec::<String>::new());
}

/// `--no-wait` returns once the writes are made (a task that never starts
/// does not fail it), but still creates a service only after what it comes
/// `after` has converged.
#[test]
fn no_wait_skips_the_final_wait_but_honours_after() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-nowait", "nowait-");
    let spec = SpecDir::new("t-nowait");
    spec.write(
        "s.toml",
        "[service.nowait-missing]\nimage = \"local/does-not-exist:1\"\n",
    );
    let out = reconciler(&[
        "apply",
        &spec.arg(),
        "--auto-approve",
        "--no-wait",
        "--timeout",
        "10s",
        "--docker-host",
        &local(),
    ])
    .expect_code(0);
    assert!(out.stdout.contains("Apply complete!"), "{}", out.stdout);
    assert_eq!(running_tasks("nowait-missing"), 0);

    spec.write(
        "t.toml",
        // A blocker that crashes: Swarm retries it, so the wait runs to its timeout.
        &format!("[service.nowait-blocker]\nimage = \"{IMAGE}\"\ncommand = [\"sh\", \"-c\", \"exit 1\"]\n[service.nowait-after]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nafter = [\"nowait-blocker\"]\n"),
    );
    let out = reconciler(&[
        "apply",
        &spec.arg(),
        "--auto-approve",
        "--no-wait",
        "--timeout",
        "10s",
        "--docker-host",
        &local(),
    ])
    .expect_code(1);
    assert!(
        out.stderr
            .contains("service `nowait-blocker` did not converge within 10s"),
        "{}",
        out.stderr
    );
    assert_ne!(
        docker_unchecked(&["service", "inspect", "nowait-after"]).code,
        0,
        "nowait-after was created before what it comes after converged"
    );
}

/// Regression: a task that runs for a second and then exits was seen
/// running once and the apply said complete. Like the docker CLI, a
/// service counts as converged only once its tasks have kept running for
/// the monitor period (5 s by default).
#[test]
fn regression_a_task_that_crashes_after_starting_is_not_converged() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-crash", "crash-");
    let spec = SpecDir::new("t-crash");
    spec.write(
        "s.toml",
        &format!("[service.crash-soon]\nimage = \"{IMAGE}\"\ncommand = [\"sh\", \"-c\", \"sleep 1; exit 1\"]\n"),
    );
    let out = reconciler(&[
        "apply",
        &spec.arg(),
        "--auto-approve",
        "--timeout",
        "15s",
        "--docker-host",
        &local(),
    ])
    .expect_code(1);
    assert!(
        out.stderr
            .contains("service `crash-soon` did not converge within 15s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("crash-soon: 1/1 tasks running"),
        "the task was never seen running, so this did not test the regression:\n{}",
        out.stderr
    );
}

/// Regression (issue 24): right after an apply removed services and their
/// networks, Swarm still lists the networks until the removed services'
/// tasks have stopped, and `plan` refused that as "deleting 2 of 2 managed
/// networks". They are reported as leaving; once gone, the swarm matches.
#[test]
fn regression_networks_still_leaving_after_a_removal_are_not_a_mass_delete() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-netgone", "netgone-");
    let spec = SpecDir::new("t-netgone");
    let keep =
        format!("[service.netgone-keep]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n");
    spec.write(
        "s.toml",
        &format!("{keep}[network.netgone-a]\n[network.netgone-b]\n[service.netgone-x]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nnetworks = [\"netgone-a\", \"netgone-b\"]\n[service.netgone-y]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nnetworks = [\"netgone-a\"]\n"),
    );
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", "--auto-approve", "--docker-host"];
        let host = local();
        let dir = spec.arg();
        args.push(&host);
        args.push(&dir);
        args.extend_from_slice(extra);
        reconciler(&args)
    };
    apply(&[]).expect_code(0);
    spec.write("s.toml", &keep);
    // `sleep` ignores SIGTERM: the removed services' tasks take their 10 s
    // grace period to stop, and the networks stay listed meanwhile.
    apply(&["--allow-mass-delete"]).expect_code(0);
    let plan = reconciler(&[
        "plan",
        &spec.arg(),
        "--detailed-exitcode",
        "--docker-host",
        &local(),
    ])
    .expect_code(0);
    assert!(
        plan.stdout.contains("No changes.")
            && plan.stdout.contains("network `netgone-a` is leaving")
            && plan.stdout.contains("network `netgone-b` is leaving"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
    wait_until("the networks to go", Duration::from_secs(60), || {
        let left = docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=io.reconciler.cluster=t-netgone",
        ]);
        left.trim().is_empty().then_some(()).ok_or(left)
    });
    let after = reconciler(&[
        "plan",
        &spec.arg(),
        "--detailed-exitcode",
        "--docker-host",
        &local(),
    ])
    .expect_code(0);
    assert!(
        after
            .stdout
            .contains("No changes. The swarm matches the spec."),
        "{}",
        after.stdout
    );
}

/// At a terminal, `apply` asks; only `yes` applies.
#[test]
fn interactive_approval_applies_only_on_yes() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-ask", "ask-");
    let spec = SpecDir::new("t-ask");
    spec.write(
        "s.toml",
        &format!("[service.ask-web]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    for answer in ["no\n", "y\n", "YES\n", "\n", ""] {
        let out = reconciler_answering(
            &["apply", &spec.arg(), "--docker-host", &proxy.host()],
            answer,
        )
        .expect_code(1);
        assert!(
            out.stdout.contains("Only 'yes' will be accepted")
                && out.stdout.contains("Apply cancelled."),
            "{answer:?}: {}",
            out.stdout
        );
    }
    assert_eq!(
        proxy.writes(),
        Vec::<String>::new(),
        "a refused apply wrote"
    );
    let out = reconciler_answering(
        &[
            "apply",
            &spec.arg(),
            "--docker-host",
            &proxy.host(),
            "--timeout",
            "60s",
        ],
        "yes\n",
    )
    .expect_code(0);
    assert!(out.stdout.contains("Apply complete!"), "{}", out.stdout);
    assert_eq!(running_tasks("ask-web"), 1);
}

/// `suspend = true` in the spec: `apply` shows the plan and writes nothing.
#[test]
fn a_suspended_spec_is_planned_but_never_applied() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-suspend", "suspend-");
    let spec = SpecDir::new("t-suspend");
    spec.write(
        "s.toml",
        &format!("[controller]\nsuspend = true\n[service.suspend-web]\nimage = \"{IMAGE}\"\n"),
    );
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let out = apply(&spec, &proxy.host(), &[]).expect_code(0);
    assert!(
        out.stdout.contains("+ service \"suspend-web\"")
            && out
                .stdout
                .contains("Not applying: the spec sets [controller] suspend = true."),
        "{}",
        out.stdout
    );
    assert_eq!(proxy.writes(), Vec::<String>::new());
    assert_ne!(
        docker_unchecked(&["service", "inspect", "suspend-web"]).code,
        0
    );
}

/// The real binary: `DOCKER_HOST` chooses the socket, `RECONCILER_LOG=debug`
/// says what it does on stderr, and `validate`/`render` never contact Docker.
#[test]
fn the_binary_honours_docker_host_and_reconciler_log() {
    require_swarm();
    let _node = shared_node();
    let dir = repo_path("examples/local").display().to_string();
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let host = proxy.host();
    let out = reconciler_binary(
        &["plan", &dir],
        &[("DOCKER_HOST", &host), ("RECONCILER_LOG", "debug")],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        proxy.requests().iter().any(|r| r.ends_with("/swarm")),
        "DOCKER_HOST was not used: {:?}",
        proxy.requests()
    );
    for line in ["connected to Docker", "observed the swarm", "planned"] {
        assert!(
            out.stderr.contains(line),
            "no debug line {line:?}:\n{}",
            out.stderr
        );
    }
    // Quiet by default.
    let quiet = reconciler_binary(&["plan", &dir], &[("DOCKER_HOST", &host)]);
    assert!(
        !quiet.stderr.contains("observed the swarm"),
        "{}",
        quiet.stderr
    );

    let refusing = DockerProxy::start(None);
    let nowhere = refusing.host();
    for command in ["validate", "render"] {
        let out = reconciler_binary(
            &[command, &dir],
            &[("DOCKER_HOST", &nowhere), ("RECONCILER_LOG", "debug")],
        );
        assert_eq!(out.code, 0, "{command}: {}", out.stderr);
    }
    assert_eq!(
        refusing.connections(),
        0,
        "validate or render contacted Docker"
    );
}

/// Regression: removing a service someone else removed first failed the whole
/// apply with a 404; deletes are idempotent now.
#[test]
fn removing_what_is_already_gone_is_not_an_error() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-gone", "gone-");
    let spec = SpecDir::new("t-gone");
    spec.write("a.toml", &format!("[service.gone-a]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n[network.gone-net]\n"));
    spec.write(
        "b.toml",
        &format!("[service.gone-b]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    apply(&spec, &local(), &["--no-wait"]).expect_code(0);
    spec.remove("a.toml");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let desired = reconciler_spec::load_dir(spec.path()).unwrap();
        let swarm = reconciler::swarm::Swarm::connect(
            &local(),
            "t-gone",
            reconciler::swarm::DEFAULT_DOCKER_CALL_TIMEOUT,
        )
        .await
        .unwrap();
        let observed = swarm
            .observe(reconciler::observed::ServiceScope::All)
            .await
            .unwrap();
        let plan = reconciler::plan::plan(
            &desired,
            &observed,
            reconciler::plan::PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(
            plan.summary().destroy,
            2,
            "{}",
            reconciler::plan::render::text(&plan)
        );
        // Between plan and apply, somebody else removes them.
        docker(&["service", "rm", "gone-a"]);
        wait_until(
            "gone-net to be free",
            Duration::from_secs(30),
            || match docker_unchecked(&["network", "rm", "gone-net"]).code {
                0 => Ok(()),
                _ => Err("busy".to_string()),
            },
        );
        let options = reconciler::apply::ApplyOptions::default();
        let result = reconciler::apply::apply(
            &swarm,
            &plan,
            options,
            None,
            &mut reconciler::progress::Lines::new(std::io::sink()),
        )
        .await;
        assert!(result.is_ok(), "{:?}", result.err());
    });
}

/// Every field of the spec format, applied, then read back with `docker
/// service inspect` and compared with the literal values of the spec (so a
/// conversion wrong the same way in both directions, 64M written as
/// 64 000 000 bytes, is caught), then planned again: nothing may read as
/// changed (the guard against drift forever).
#[test]
fn every_documented_field_is_read_back_from_docker_as_written() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-fields", "fld-");
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let spec = SpecDir::new("t-fields");
    spec.write(
        "services.toml",
        &format!(
            r#"
[network.fld-net]
attachable = true
labels = {{ purpose = "test" }}

[service.fld-all]
image = "{IMAGE}"
replicas = 2
command = ["sh", "-c"]
args = ["sleep 3600"]
env = {{ MODE = "test", API_TOKEN = "do-not-print-me" }}
unset_env = ["HOME_HINT"]
user = "0"
workdir = "/tmp"
hostname = "fld-{{{{.Task.Slot}}}}"
init = true
read_only = true
tty = true
stdin_open = true
stop_signal = "SIGINT"
stop_grace_period = "1m30s"
groups = ["44", "20"]
cap_add = ["net_admin", "CAP_SYS_TIME", "chown"]
cap_drop = ["mknod", "chown"]
sysctls = {{ "net.core.somaxconn" = "1024" }}
extra_hosts = ["gateway.example:10.0.0.1", "db.example:10.0.0.2"]
dns = ["8.8.8.8"]
dns_search = ["example.com"]
ulimits = {{ nproc = 512, nofile = {{ soft = 256, hard = 512 }} }}
logging = {{ driver = "json-file", options = {{ max-size = "10m" }} }}
max_replicas_per_node = 3
networks = ["fld-net"]
network_aliases = {{ fld-net = ["all", "everything"] }}
ports = [{{ target = 80, published = 18301 }}, {{ target = 81, published = 18302, protocol = "udp", mode = "ingress" }}]
constraints = ["node.labels.never-set != x"]
preferences = ["spread=node.labels.shelf"]
mounts = [{{ type = "tmpfs", target = "/scratch", size = "1M" }}, {{ type = "bind", source = "/tmp", target = "/host-tmp", readonly = true }}, {{ type = "volume", source = "fld-data", target = "/data" }}]
resources = {{ limit_memory = "64M", reserve_memory = "16M", limit_cpus = 0.5, reserve_cpus = 0.1 }}
update = {{ parallelism = 1, delay = "2s", failure_action = "rollback", monitor = "5s", max_failure_ratio = 0.2, order = "start-first" }}
rollback = {{ parallelism = 2, delay = "1s", failure_action = "continue", monitor = "3s", max_failure_ratio = 0.1, order = "stop-first" }}
healthcheck = {{ test = ["CMD", "true"], interval = "5s", timeout = "2s", retries = 2, start_period = "1s" }}
restart = {{ condition = "on-failure", delay = "1s", max_attempts = 3, window = "1m" }}
labels = {{ tier = "test" }}
container_labels = {{ team = "makers" }}

[service.fld-global]
image = "{IMAGE}"
mode = "global"
command = ["sleep", "3600"]
ports = [{{ target = 80, published = 18303, protocol = "tcp", mode = "host" }}]
endpoint_mode = "dnsrr"
after = ["fld-all"]

[service.fld-pinned]
image = "{IMAGE}@{digest}"

[service.fld-job]
image = "{IMAGE}"
mode = "replicated-job"
replicas = 2
command = ["true"]

[service.fld-global-job]
image = "{IMAGE}"
mode = "global-job"
command = ["true"]
"#
        ),
    );
    let out = apply(&spec, &local(), &["--no-wait"]).expect_code(0);
    assert!(
        !out.stdout.contains("do-not-print-me") && !out.stderr.contains("do-not-print-me"),
        "a secret-looking value was printed"
    );
    let all = inspect_service("fld-all");
    let spec_of = &all["Spec"];
    let task = &spec_of["TaskTemplate"];
    let container = &task["ContainerSpec"];
    let net_id = docker(&["network", "inspect", "fld-net", "--format", "{{.Id}}"]);
    let expect = |path: &str, actual: &Value, wanted: Value| {
        assert_eq!(actual, &wanted, "{path} as Docker stores it:\n{spec_of:#}");
    };
    expect("Image", &container["Image"], json!(IMAGE));
    expect(
        "Replicas",
        &spec_of["Mode"]["Replicated"]["Replicas"],
        json!(2),
    );
    expect("Command", &container["Command"], json!(["sh", "-c"]));
    expect("Args", &container["Args"], json!(["sleep 3600"]));
    expect(
        "Env",
        &json!(env_of(&all)),
        json!(["API_TOKEN=do-not-print-me", "HOME_HINT", "MODE=test"]),
    );
    expect("User", &container["User"], json!("0"));
    expect("Dir", &container["Dir"], json!("/tmp"));
    expect(
        "Hostname",
        &container["Hostname"],
        json!("fld-{{.Task.Slot}}"),
    );
    expect("Init", &container["Init"], json!(true));
    expect("ReadOnly", &container["ReadOnly"], json!(true));
    expect("TTY", &container["TTY"], json!(true));
    expect("OpenStdin", &container["OpenStdin"], json!(true));
    expect("StopSignal", &container["StopSignal"], json!("SIGINT"));
    expect(
        "StopGracePeriod",
        &container["StopGracePeriod"],
        json!(90_000_000_000_u64),
    );
    expect("Groups", &container["Groups"], json!(["44", "20"]));
    // As the docker CLI sends them: CAP_ prefixed, sorted, added wins over dropped.
    expect(
        "CapabilityAdd",
        &container["CapabilityAdd"],
        json!(["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_TIME"]),
    );
    expect(
        "CapabilityDrop",
        &container["CapabilityDrop"],
        json!(["CAP_MKNOD"]),
    );
    expect(
        "Sysctls",
        &container["Sysctls"],
        json!({ "net.core.somaxconn": "1024" }),
    );
    expect(
        "Hosts",
        &container["Hosts"],
        json!(["10.0.0.1 gateway.example", "10.0.0.2 db.example"]),
    );
    expect(
        "Ulimits",
        &container["Ulimits"],
        json!([
            { "Name": "nofile", "Soft": 256, "Hard": 512 },
            { "Name": "nproc", "Soft": 512, "Hard": 512 }
        ]),
    );
    expect(
        "LogDriver",
        &task["LogDriver"],
        json!({ "Name": "json-file", "Options": { "max-size": "10m" } }),
    );
    expect(
        "EndpointMode",
        &spec_of["EndpointSpec"]["Mode"],
        json!("vip"),
    );
    expect(
        "EndpointMode of fld-global",
        &inspect_service("fld-global")["Spec"]["EndpointSpec"]["Mode"],
        json!("dnsrr"),
    );
    expect("MaxReplicas", &task["Placement"]["MaxReplicas"], json!(3));
    expect(
        "DNSConfig",
        &container["DNSConfig"],
        json!({ "Nameservers": ["8.8.8.8"], "Search": ["example.com"] }),
    );
    expect(
        "Networks",
        &task["Networks"],
        json!([{ "Target": net_id.trim(), "Aliases": ["all", "everything"] }]),
    );
    let mut ports = spec_of["EndpointSpec"]["Ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ports.sort_by_key(|p| p["TargetPort"].as_u64());
    expect(
        "Ports",
        &json!(ports),
        json!([
            { "Protocol": "tcp", "TargetPort": 80, "PublishedPort": 18301, "PublishMode": "ingress" },
            { "Protocol": "udp", "TargetPort": 81, "PublishedPort": 18302, "PublishMode": "ingress" }
        ]),
    );
    expect(
        "Constraints",
        &task["Placement"]["Constraints"],
        json!(["node.labels.never-set != x"]),
    );
    expect(
        "Preferences",
        &task["Placement"]["Preferences"],
        json!([{ "Spread": { "SpreadDescriptor": "node.labels.shelf" } }]),
    );
    let mut mounts = container["Mounts"].as_array().cloned().unwrap_or_default();
    mounts.sort_by_key(|m| m["Target"].as_str().map(str::to_string));
    expect(
        "Mounts",
        &json!(mounts),
        json!([
            { "Type": "volume", "Source": "fld-data", "Target": "/data" },
            { "Type": "bind", "Source": "/tmp", "Target": "/host-tmp", "ReadOnly": true },
            { "Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": { "SizeBytes": 1_048_576 } }
        ]),
    );
    expect(
        "Resources",
        &task["Resources"],
        json!({
            "Limits": { "NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024 },
            "Reservations": { "NanoCPUs": 100_000_000, "MemoryBytes": 16 * 1024 * 1024 }
        }),
    );
    expect(
        "UpdateConfig",
        &spec_of["UpdateConfig"],
        json!({
            "Parallelism": 1, "Delay": 2_000_000_000_u64, "FailureAction": "rollback",
            "Monitor": 5_000_000_000_u64, "MaxFailureRatio": 0.2, "Order": "start-first"
        }),
    );
    expect(
        "RollbackConfig",
        &spec_of["RollbackConfig"],
        json!({
            "Parallelism": 2, "Delay": 1_000_000_000_u64, "FailureAction": "continue",
            "Monitor": 3_000_000_000_u64, "MaxFailureRatio": 0.1, "Order": "stop-first"
        }),
    );
    expect(
        "Healthcheck",
        &container["Healthcheck"],
        json!({
            "Test": ["CMD", "true"], "Interval": 5_000_000_000_u64, "Timeout": 2_000_000_000_u64,
            "Retries": 2, "StartPeriod": 1_000_000_000_u64
        }),
    );
    expect(
        "RestartPolicy",
        &task["RestartPolicy"],
        json!({
            "Condition": "on-failure", "Delay": 1_000_000_000_u64, "MaxAttempts": 3,
            "Window": 60_000_000_000_u64
        }),
    );
    expect("Labels.tier", &spec_of["Labels"]["tier"], json!("test"));
    expect(
        "ContainerSpec.Labels",
        &container["Labels"],
        json!({ "team": "makers" }),
    );
    let network: Value =
        serde_json::from_str(&docker(&["network", "inspect", "fld-net"])).unwrap_or(Value::Null);
    expect("network Attachable", &network[0]["Attachable"], json!(true));
    expect(
        "network Labels.purpose",
        &network[0]["Labels"]["purpose"],
        json!("test"),
    );
    let global = inspect_service("fld-global");
    expect(
        "global Mode",
        &global["Spec"]["Mode"],
        json!({ "Global": {} }),
    );
    expect(
        "global Ports",
        &global["Spec"]["EndpointSpec"]["Ports"],
        json!([{ "Protocol": "tcp", "TargetPort": 80, "PublishedPort": 18303, "PublishMode": "host" }]),
    );
    expect(
        "replicated job Mode",
        &inspect_service("fld-job")["Spec"]["Mode"],
        json!({ "ReplicatedJob": { "MaxConcurrent": 2, "TotalCompletions": 2 } }),
    );
    expect(
        "global job Mode",
        &inspect_service("fld-global-job")["Spec"]["Mode"],
        json!({ "GlobalJob": {} }),
    );
    let pinned = inspect_service("fld-pinned");
    expect(
        "pinned Image",
        &pinned["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        json!(format!("{IMAGE}@{digest}")),
    );

    // Applied again: nothing to change, no write.
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    let again = apply(&spec, &proxy.host(), &["--no-wait"]).expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert_eq!(proxy.writes(), Vec::<String>::new(), "a re-apply wrote");
    drop(_cleanup);
    docker_unchecked(&["volume", "rm", "fld-data"]);
}

/// Configs and secrets: each content is its own Swarm object
/// (`NAME-<hash>`), mounted where the spec says with Docker's defaults; a
/// second apply changes nothing; a changed config is a new version, only the
/// services that use it roll to it, and the old version is removed; the
/// secret's value is never printed, in plans (text or JSON) or in apply.
#[test]
fn configs_and_secrets_are_versioned_mounted_and_pruned() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-data", "data-");
    let secret_value = "not-a-real-secret-7f3a9c";
    let spec = SpecDir::new("t-data");
    spec.write("secrets/token.txt", secret_value);
    let write_services = |greeting: &str| {
        spec.write(
            "services.toml",
            &format!(
                r#"
[config.data-greeting]
content = "{greeting}"

[secret.data-token]
file = "secrets/token.txt"

[service.data-user]
image = "{IMAGE}"
command = ["sleep", "3600"]
configs = [{{ source = "data-greeting", target = "/etc/greeting", mode = 0o440 }}]
secrets = [{{ source = "data-token" }}]

[service.data-bystander]
image = "{IMAGE}"
command = ["sleep", "3600"]
secrets = [{{ source = "data-token", target = "/var/token", uid = "1000" }}]
"#
            ),
        );
    };
    write_services("hello");
    let hidden = |output: &Output, what: &str| {
        assert!(
            !output.stdout.contains(secret_value) && !output.stderr.contains(secret_value),
            "the secret's value was printed by {what}"
        );
    };
    let planned = reconciler(&["plan", &spec.arg(), "--docker-host", &local()]).expect_code(0);
    hidden(&planned, "plan");
    assert!(
        planned.stdout.contains("+ value = (sensitive)"),
        "{}",
        planned.stdout
    );
    let json = reconciler(&["plan", &spec.arg(), "--json", "--docker-host", &local()]);
    hidden(&json, "plan --json");
    let applied = apply(&spec, &local(), &[]).expect_code(0);
    hidden(&applied, "apply");

    let configs = docker(&[
        "config",
        "ls",
        "--filter",
        "label=io.reconciler.cluster=t-data",
        "--format",
        "{{.Name}}",
    ]);
    let first_version = configs.trim().to_string();
    assert!(
        first_version.starts_with("data-greeting-")
            && first_version.len() == "data-greeting-".len() + 10,
        "{configs}"
    );
    let user = running_container("data-user");
    assert_eq!(docker(&["exec", &user, "cat", "/etc/greeting"]), "hello");
    let token = docker_unchecked(&["exec", &user, "cat", "/run/secrets/data-token"]);
    assert!(
        token.code == 0 && token.stdout == secret_value,
        "the secret is not at /run/secrets/data-token"
    );
    let mounted = inspect_service("data-user")["Spec"]["TaskTemplate"]["ContainerSpec"].clone();
    assert_eq!(
        mounted["Configs"][0]["File"],
        json!({ "Name": "/etc/greeting", "UID": "0", "GID": "0", "Mode": 0o440 })
    );
    assert_eq!(mounted["Configs"][0]["ConfigName"], json!(first_version));
    assert_eq!(
        mounted["Secrets"][0]["File"],
        json!({ "Name": "data-token", "UID": "0", "GID": "0", "Mode": 0o444 })
    );
    let bystander = inspect_service("data-bystander");
    assert_eq!(
        bystander["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["File"],
        json!({ "Name": "/var/token", "UID": "1000", "GID": "0", "Mode": 0o444 })
    );
    let again = reconciler(&[
        "plan",
        &spec.arg(),
        "--detailed-exitcode",
        "--docker-host",
        &local(),
    ]);
    assert_eq!(
        again.code, 0,
        "a second plan is not empty:\n{}",
        again.stdout
    );

    // A new greeting: a new version, data-user rolls to it, the bystander
    // (which does not use it) keeps its version, the old version goes.
    write_services("good morning");
    let changed = reconciler(&["plan", &spec.arg(), "--docker-host", &local()]).expect_code(0);
    hidden(&changed, "plan");
    assert!(
        changed
            .stdout
            .contains("Plan: 1 to add, 1 to change, 1 to destroy."),
        "{}",
        changed.stdout
    );
    let bystander_version = bystander["Version"]["Index"].clone();
    apply(&spec, &local(), &[]).expect_code(0);
    assert_eq!(
        inspect_service("data-bystander")["Version"]["Index"],
        bystander_version
    );
    wait_until(
        "data-user to see the new greeting",
        Duration::from_secs(60),
        || {
            let user = running_container("data-user");
            let seen = docker_unchecked(&["exec", &user, "cat", "/etc/greeting"]).stdout;
            (seen == "good morning").then_some(()).ok_or(seen)
        },
    );
    let configs = docker(&[
        "config",
        "ls",
        "--filter",
        "label=io.reconciler.cluster=t-data",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(configs.lines().count(), 1, "{configs}");
    assert_ne!(configs.trim(), first_version);

    // The services leave the spec: their versions go with them.
    spec.write("services.toml", "");
    spec.remove("services.toml");
    spec.write("other.toml", "[network.data-keep]\n");
    apply(&spec, &local(), &["--allow-mass-delete"]).expect_code(0);
    for kind in ["config", "secret"] {
        let left = docker(&[
            kind,
            "ls",
            "--filter",
            "label=io.reconciler.cluster=t-data",
            "--format",
            "{{.Name}}",
        ]);
        assert!(left.trim().is_empty(), "{kind}s left: {left}");
    }
}

/// `--log-format json` (or `RECONCILER_LOG_FORMAT=json`): every line the
/// binary logs is one JSON object with its level, target and message, for
/// log shippers; text stays the default.
#[test]
fn json_logs_are_one_object_per_line() {
    require_swarm();
    let _node = shared_node();
    let dir = repo_path("examples/local").display().to_string();
    let host = local();
    for (args, env) in [
        (
            vec!["--log-format", "json", "plan", &dir, "--docker-host", &host],
            vec![],
        ),
        (
            vec!["plan", &dir, "--docker-host", &host],
            vec![("RECONCILER_LOG_FORMAT", "json")],
        ),
    ] {
        let mut env = env;
        env.push(("RECONCILER_LOG", "debug"));
        let out = reconciler_binary(&args, &env);
        assert!(out.code == 0 || out.code == 2, "{}", out.stderr);
        let mut messages = Vec::new();
        for line in out.stderr.lines() {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
            assert!(
                event["level"].is_string()
                    && event["target"].is_string()
                    && event["timestamp"].is_string(),
                "{line}"
            );
            messages.push(event["message"].as_str().unwrap_or_default().to_string());
        }
        assert!(
            messages.iter().any(|m| m == "connected to Docker"),
            "{messages:?}"
        );
    }
}

/// `apply` on a terminal draws a progress bar per service converging,
/// redrawn in place, and leaves one finished line per service; piped (or
/// with `RECONCILER_PROGRESS=plain`) it writes plain lines and no terminal
/// control codes. `script` gives the command a real pseudo-terminal.
#[test]
fn apply_shows_progress_bars_on_a_terminal_and_plain_lines_elsewhere() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("bars", "bars-");
    let spec = SpecDir::new("bars");
    let service = |replicas: u32| {
        format!("[service.bars-web]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = {replicas}\n")
    };
    let host = local();
    let dir = spec.arg();
    let on_terminal = |env: &[(&str, &str)]| {
        let shown = reconciler_on_terminal(
            &["apply", &dir, "--auto-approve", "--docker-host", &host],
            env,
        );
        assert_eq!(shown.code, 0, "{}", shown.stdout);
        shown.stdout
    };

    spec.write("services.toml", &service(3));
    let text = on_terminal(&[]);
    assert!(
        text.contains("service.bars-web         [--------------------] 0/3 tasks running"),
        "no bar for the starting service: {text:?}"
    );
    assert!(
        text.contains("\x1b[1A\r\x1b[J"),
        "the bar is not redrawn in place: {text:?}"
    );
    assert!(
        text.contains("service.bars-web: 3/3 tasks running"),
        "no finished line: {text:?}"
    );

    spec.write("services.toml", &service(4));
    let piped = reconciler_binary(
        &["apply", &dir, "--auto-approve", "--docker-host", &host],
        &[],
    );
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(
        !piped.stderr.contains('\x1b'),
        "control codes in a pipe: {:?}",
        piped.stderr
    );
    assert!(
        piped
            .stderr
            .lines()
            .any(|l| l == "service.bars-web: 4/4 tasks running"),
        "{}",
        piped.stderr
    );

    spec.write("services.toml", &service(2));
    let plain = on_terminal(&[("RECONCILER_PROGRESS", "plain")]);
    assert!(
        !plain.contains('\x1b'),
        "control codes though plain was asked: {plain:?}"
    );
    assert!(
        plain.contains("service.bars-web: 2/2 tasks running"),
        "{plain:?}"
    );
}

/// Issue 23: a Pi spec planned where `DOCKER_HOST` points at another swarm
/// (here: this machine's, whose one node is not in the spec) was planned
/// against it with a warning per node, and `apply` put the stack there.
/// Now plan and apply refuse, saying which swarm answered; nothing is
/// written. `--allow-other-swarm` plans anyway, with one line for the nodes.
#[test]
fn regression_a_pi_spec_is_not_applied_to_another_swarm() {
    require_swarm();
    let _cleanup = Cleanup::new("t-other", "os-");
    let spec = SpecDir::new("t-other");
    let mut nodes = String::new();
    for i in 1..=4 {
        let role = if i == 1 { "manager" } else { "worker" };
        // Documentation addresses (RFC 5737): never contacted, only compared.
        nodes.push_str(&format!(
            "[node.pi{i}]\naddress = \"192.0.2.{i}\"\nrole = \"{role}\"\n"
        ));
    }
    spec.write("nodes.toml", &nodes);
    spec.write(
        "services.toml",
        &format!("[service.os-web]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    let hostname = docker(&["info", "--format", "{{.Name}}"]);
    let hostname = hostname.trim();

    let planned = reconciler(&["plan", &spec.arg(), "--docker-host", &local()]);
    assert_eq!(planned.code, 1, "{}\n{}", planned.stdout, planned.stderr);
    assert!(
        planned.stderr.contains(&format!(
            "none of the spec's 4 node(s) is in the swarm that was reached (a swarm of 1 node(s): {hostname} ("
        )) && planned.stderr.contains("--allow-other-swarm"),
        "{}",
        planned.stderr
    );
    let applied = apply(&spec, &local(), &[]);
    assert_eq!(applied.code, 1, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        docker(&["service", "ls", "-q", "--filter", "name=os-web"])
            .trim()
            .is_empty(),
        "the refused apply created the service"
    );

    let allowed = reconciler(&[
        "plan",
        &spec.arg(),
        "--docker-host",
        &local(),
        "--allow-other-swarm",
    ])
    .expect_code(0);
    assert!(
        allowed.stdout.contains("+ service \"os-web\""),
        "{}",
        allowed.stdout
    );
    assert_eq!(
        allowed.stdout.matches("Warning:").count(),
        1,
        "{}",
        allowed.stdout
    );
    assert!(
        allowed
            .stdout
            .contains("none of the spec's 4 node(s) is in this swarm"),
        "{}",
        allowed.stdout
    );
}

/// New services that wait for none are created several at a time. One the
/// daemon refuses (its published port is taken) stops what was not started
/// yet; the apply fails naming it, nothing already created is lost, and
/// the next apply creates the rest once the spec is fixed.
#[test]
fn regression_creates_at_once_stop_at_a_refused_one_and_the_next_apply_finishes() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-batch", "batch-");
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        "batch-byhand",
        "--publish",
        "published=18095,target=80",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let spec = SpecDir::new("t-batch");
    let services = |port: bool| {
        (0..12)
            .map(|i| {
                let ports = if port && i == 5 {
                    "ports = [{ target = 80, published = 18095 }]\n"
                } else {
                    ""
                };
                format!("[service.batch-{i:02}]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = 0\n{ports}")
            })
            .collect::<String>()
    };
    spec.write("s.toml", &services(true));
    let proxy = DockerProxy::start(Some(DOCKER_SOCKET));
    // Pre-flight would refuse the held port; let through, Docker refuses it.
    let out = apply(&spec, &proxy.host(), &["--allow-preflight", "port"]).expect_code(1);
    assert!(
        out.stderr.contains("batch-05") && out.stderr.contains("18095"),
        "{}",
        out.stderr
    );
    let creates = proxy
        .writes()
        .iter()
        .filter(|w| w.contains("/services/create"))
        .count();
    assert!((1..=12).contains(&creates), "{creates} creates");
    assert_ne!(
        docker_unchecked(&["service", "inspect", "batch-05"]).code,
        0
    );
    spec.write("s.toml", &services(false));
    let out = apply(&spec, &local(), &[]).expect_code(0);
    assert!(out.stdout.contains("Apply complete!"), "{}", out.stdout);
    for i in 0..12 {
        let name = format!("batch-{i:02}");
        assert_eq!(
            docker_unchecked(&["service", "inspect", &name]).code,
            0,
            "{name} was not created"
        );
    }
    let again = apply(&spec, &local(), &[]).expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
}
