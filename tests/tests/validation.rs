//! Validation as strict as Docker's, asked of Docker itself: each rule of
//! `reconciler validate` about service names, resources, ports, mounts,
//! durations and replicas is paired with the same service sent to the
//! Engine API (`POST /services/create`, swarmkit's own validation).
//!
//! * **Docker refuses it**: reconciler must refuse it too, offline, so a
//!   spec that validates is never refused at the write.
//! * **Docker takes it, but it cannot work**: reconciler refuses it on
//!   purpose; the test shows why with Docker's own answer (the tasks are
//!   rejected, or the value is nonsense Docker stores anyway).
//! * **Both accept** the edge just inside each rule.

#![allow(
    clippy::too_many_lines,
    reason = "the table of cases reads best as one list"
)]

use std::time::Duration;

use reconciler_tests::*;
use serde_json::{json, Value};

/// What Docker does with a service, and so what reconciler must do.
#[derive(Debug)]
enum Docker {
    /// Refuses the write with a message containing this.
    Refuses(&'static str),
    /// Takes the write; every task is then rejected with this error.
    RejectsTasks(&'static str),
    /// Takes the write and stores a value that cannot work; why we refuse.
    StoresNonsense(&'static str),
    /// Has no limit: reconciler's is deliberate, and the case is not sent
    /// (Swarm would really create that many tasks); why we refuse.
    NoLimit(&'static str),
    /// Takes it, and so does reconciler.
    Accepts,
}

struct Case {
    what: &'static str,
    /// The service's name and TOML body (`image` and `command` are added).
    name: String,
    toml: String,
    /// The same service as the Engine API takes it: (task template additions,
    /// top-level additions).
    task: Value,
    top: Value,
    docker: Docker,
    /// What reconciler's refusal says (unused when both accept).
    ours: &'static str,
}

fn case(
    what: &'static str,
    toml: &str,
    task: Value,
    top: Value,
    docker: Docker,
    ours: &'static str,
) -> Case {
    Case {
        what,
        name: "vd-svc".to_string(),
        toml: toml.to_string(),
        task,
        top,
        docker,
        ours,
    }
}

fn named(what: &'static str, name: &str, docker: Docker, ours: &'static str) -> Case {
    Case {
        what,
        name: name.to_string(),
        toml: String::new(),
        task: json!({}),
        top: json!({}),
        docker,
        ours,
    }
}

fn cases() -> Vec<Case> {
    let long = format!("vd-{}", "a".repeat(60));
    let too_long = format!("vd-{}", "a".repeat(61));
    let tmpfs = |target: &str| json!({"Type": "tmpfs", "Target": target});
    vec![
        named(
            "a name with a dot",
            "vd-a.b",
            Docker::Refuses("DNS name component"),
            "invalid service name",
        ),
        named(
            "a name ending in -",
            "vd-a-",
            Docker::Refuses("DNS name component"),
            "invalid service name",
        ),
        named(
            "a name ending in _",
            "vd-a_",
            Docker::Refuses("DNS name component"),
            "invalid service name",
        ),
        named(
            "a 64-character name",
            &too_long,
            Docker::Refuses("63 characters or fewer"),
            "at most 63 characters",
        ),
        named("a 63-character name", &long, Docker::Accepts, ""),
        named(
            "a name with - and _ inside",
            "vd-a_b-c",
            Docker::Accepts,
            "",
        ),
        case(
            "two mounts at one target",
            r#"mounts = [{ type = "tmpfs", target = "/a" }, { type = "tmpfs", target = "/a" }]"#,
            json!({"ContainerSpec": {"Mounts": [tmpfs("/a"), tmpfs("/a")]}}),
            json!({}),
            Docker::Refuses("duplicate mount point"),
            "two mounts at `/a`",
        ),
        case(
            "CPUs below 0.001",
            "resources = { limit_cpus = 0.0009 }",
            json!({"Resources": {"Limits": {"NanoCPUs": 900_000}}}),
            json!({}),
            Docker::Refuses("Must be at least 0.001"),
            "below Swarm's minimum of 0.001",
        ),
        case(
            "0.001 CPUs",
            "resources = { reserve_cpus = 0.001 }",
            json!({"Resources": {"Reservations": {"NanoCPUs": 1_000_000}}}),
            json!({}),
            Docker::Accepts,
            "",
        ),
        case(
            "a memory reservation below 4 MiB",
            r#"resources = { reserve_memory = "3M" }"#,
            json!({"Resources": {"Reservations": {"MemoryBytes": 3 << 20}}}),
            json!({}),
            Docker::Refuses("Must be at least 4MiB"),
            "below Docker's minimum of 4M",
        ),
        case(
            "a memory reservation of 4 MiB",
            r#"resources = { reserve_memory = "4M" }"#,
            json!({"Resources": {"Reservations": {"MemoryBytes": 4 << 20}}}),
            json!({}),
            Docker::Accepts,
            "",
        ),
        case(
            "a memory limit of 5 MiB",
            r#"resources = { limit_memory = "5M" }"#,
            json!({"Resources": {"Limits": {"MemoryBytes": 5 << 20}}}),
            json!({}),
            Docker::RejectsTasks("Minimum memory limit allowed is 6MB"),
            "below Docker's minimum of 6M",
        ),
        case(
            "a memory limit of 6 MiB",
            r#"resources = { limit_memory = "6M" }"#,
            json!({"Resources": {"Limits": {"MemoryBytes": 6 << 20}}}),
            json!({}),
            Docker::Accepts,
            "",
        ),
        case(
            "a stop grace period past Docker's nanosecond field",
            r#"stop_grace_period = "3000000h""#,
            json!({"ContainerSpec": {"StopGracePeriod": 3_000_000u64 * 3600 * 1_000_000_000}}),
            json!({}),
            Docker::Refuses("cannot unmarshal number"),
            "does not fit Docker's nanosecond fields",
        ),
        case(
            "a stop grace period of 2 000 000 hours",
            r#"stop_grace_period = "2000000h""#,
            json!({"ContainerSpec": {"StopGracePeriod": 2_000_000u64 * 3600 * 1_000_000_000}}),
            json!({}),
            Docker::Accepts,
            "",
        ),
        case(
            "one published port twice",
            "ports = [{ target = 80, published = 18971 }, { target = 81, published = 18971 }]",
            json!({}),
            json!({"EndpointSpec": {"Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 18971},
                {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 18971}]}}),
            Docker::Refuses("duplicate published ports"),
            "already published",
        ),
        case(
            "target port 0",
            "ports = [{ target = 0, published = 18972 }]",
            json!({}),
            json!({"EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 0, "PublishedPort": 18972}]}}),
            Docker::StoresNonsense("no process listens on port 0"),
            "port 0 is not a port",
        ),
        case(
            "a relative bind source",
            r#"mounts = [{ type = "bind", source = "data", target = "/data" }]"#,
            json!({"ContainerSpec": {"Mounts": [{"Type": "bind", "Source": "data", "Target": "/data"}]}}),
            json!({}),
            Docker::RejectsTasks("must be an absolute path"),
            "must be an absolute path on the node",
        ),
        case(
            "a relative mount target",
            r#"mounts = [{ type = "tmpfs", target = "data" }]"#,
            json!({"ContainerSpec": {"Mounts": [tmpfs("data")]}}),
            json!({}),
            Docker::RejectsTasks("must be an absolute path"),
            "must be an absolute path in the container",
        ),
        case(
            "a nameserver with a newline",
            r#"dns = ["10.0.0.54\nnameserver 10.0.0.66"]"#,
            json!({"ContainerSpec": {"DNSConfig": {"Nameservers": ["10.0.0.54\nnameserver 10.0.0.66"]}}}),
            json!({}),
            Docker::StoresNonsense(
                "the newline becomes a second `nameserver` line in the containers' resolv.conf",
            ),
            "is not an IP address",
        ),
        case(
            "a nameserver that is a name",
            r#"dns = ["dns.example.com"]"#,
            json!({"ContainerSpec": {"DNSConfig": {"Nameservers": ["dns.example.com"]}}}),
            json!({}),
            Docker::StoresNonsense(
                "resolv.conf takes IP addresses only; the CLI's --dns refuses a name",
            ),
            "is not an IP address",
        ),
        case(
            "a nameserver",
            r#"dns = ["10.0.0.53", "fd00::53"]"#,
            json!({"ContainerSpec": {"DNSConfig": {"Nameservers": ["10.0.0.53", "fd00::53"]}}}),
            json!({}),
            Docker::Accepts,
            "",
        ),
        case(
            "a search domain with a blank",
            r#"dns_search = ["bad domain"]"#,
            json!({"ContainerSpec": {"DNSConfig": {"Search": ["bad domain"]}}}),
            json!({}),
            Docker::StoresNonsense(
                "resolv.conf reads two domains; the CLI's --dns-search refuses it",
            ),
            "is not a domain",
        ),
        case(
            "an extra host without an IP address",
            r#"extra_hosts = ["cache:not-an-ip"]"#,
            json!({"ContainerSpec": {"Hosts": ["not-an-ip cache"]}}),
            json!({}),
            Docker::StoresNonsense(
                "/etc/hosts gets a line no resolver reads; the CLI's --add-host refuses it",
            ),
            "is not `host:ip` with an IP address",
        ),
        case(
            "extra hosts",
            r#"extra_hosts = ["db:10.0.0.5", "v6:fd00::6"]"#,
            json!({"ContainerSpec": {"Hosts": ["10.0.0.5 db", "fd00::6 v6"]}}),
            json!({}),
            Docker::Accepts,
            "",
        ),
        case(
            "100 000 replicas",
            "replicas = 100000",
            json!({}),
            json!({"Mode": {"Replicated": {"Replicas": 100_000}}}),
            Docker::NoLimit("a typo: Swarm would try to schedule every one"),
            "more than the 10000 a service may ask for",
        ),
    ]
}

/// The service `case` describes, as the Engine API takes it.
fn api_spec(case: &Case) -> Value {
    let mut task = json!({"ContainerSpec": {"Image": IMAGE, "Args": ["sleep", "3600"]}});
    merge(&mut task, &case.task);
    let mut spec = json!({"Name": case.name, "TaskTemplate": task});
    merge(&mut spec, &case.top);
    // Replicas are not what these cases are about: keep Docker's work small.
    if spec.get("Mode").is_none() {
        spec["Mode"] = json!({"Replicated": {"Replicas": 1}});
    }
    spec
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (into, from) => *into = from.clone(),
    }
}

/// The first error of the service's tasks, once one is rejected.
fn task_error(id: &str) -> Result<String, String> {
    let tasks = docker_unchecked(&["service", "ps", id, "--no-trunc", "--format", "{{.Error}}"]);
    tasks
        .stdout
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
        .ok_or(format!("no task error yet: {}", tasks.stderr))
}

#[test]
fn every_validation_rule_agrees_with_docker_or_says_why_it_is_stricter() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("t-validate", "vd-");
    let mut wrong = Vec::new();
    for case in cases() {
        // Reconciler, offline.
        let spec = SpecDir::new("t-validate");
        spec.write(
            "services.toml",
            &format!(
                "[service.\"{}\"]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\n{}\n",
                case.name, case.toml
            ),
        );
        let ours = reconciler(&["validate", &spec.arg()]);
        let we_accept = ours.code == 0;

        if let Docker::NoLimit(why) = case.docker {
            if we_accept || !ours.stderr.contains(case.ours) {
                wrong.push(format!(
                    "{}: not refused with `{}`:\n{}",
                    case.what, case.ours, ours.stderr
                ));
            }
            eprintln!("deliberately stricter than Docker: {} ({why})", case.what);
            continue;
        }
        // Docker, through swarmkit's validation.
        let (status, answer) = docker_api_post("/services/create", &api_spec(&case));
        let created = answer["ID"].as_str().map(str::to_string);
        let message = answer["message"].as_str().unwrap_or_default().to_string();
        let docker_says = match (&case.docker, &created) {
            (Docker::Refuses(text), None) if message.contains(text) => Ok(()),
            (Docker::Refuses(_), _) => Err(format!("Docker answered {status}: {answer}")),
            (Docker::RejectsTasks(text), Some(id)) => {
                let error = wait_until(
                    &format!("a rejected task of `{}`", case.what),
                    Duration::from_secs(60),
                    || task_error(id),
                );
                if error.contains(text) {
                    Ok(())
                } else {
                    Err(format!("the task error is `{error}`"))
                }
            }
            (Docker::StoresNonsense(_) | Docker::Accepts | Docker::NoLimit(_), Some(_)) => Ok(()),
            (_, None) => Err(format!("Docker refused ({status}): {message}")),
        };
        if let Some(id) = &created {
            docker_unchecked(&["service", "rm", id]);
        }
        if let Err(problem) = docker_says {
            wrong.push(format!(
                "{}: Docker did not do what the case says: {problem}",
                case.what
            ));
        }
        match (&case.docker, we_accept) {
            (Docker::Accepts, true) => {}
            (Docker::Accepts, false) => wrong.push(format!(
                "{}: Docker accepts it, reconciler refused it:\n{}",
                case.what, ours.stderr
            )),
            (_, true) => wrong.push(format!(
                "{}: reconciler accepted what Docker refuses or cannot run",
                case.what
            )),
            (_, false) if !ours.stderr.contains(case.ours) => wrong.push(format!(
                "{}: refused, but not with `{}`:\n{}",
                case.what, case.ours, ours.stderr
            )),
            (Docker::StoresNonsense(why), false) => {
                eprintln!("deliberately stricter than Docker: {} ({why})", case.what);
            }
            (_, false) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n---\n"));
}
