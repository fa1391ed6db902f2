//! `reconciler install` end to end on the test bed: a bare board (logs in as
//! `pi` with sudo, no systemd, like the other simulated boards) is brought
//! into a one-node swarm with `apply --ssh`; the controller is installed on
//! it following a repository served over HTTP on the boards' network; a push
//! is applied by the controller on the board; install again changes nothing;
//! a newer binary is replaced and restarted; uninstall removes it.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::time::Duration;

use reconciler_tests::boards::{Boards, Registry, GATEWAY, REGISTRY};
use reconciler_tests::git::{GitHttp, GitRepo};
use reconciler_tests::*;

fn cluster_toml(boards: &Boards) -> String {
    format!(
        r#"[cluster]
name = "installed"

[ssh]
user = "pi"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
hostname = true
hosts_file = true
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null"
start_docker = "nohup dockerd --insecure-registry {REGISTRY} >/var/log/dockerd.log 2>&1 </dev/null &"

[node.rci1]
address = "{address}"
role = "manager"
"#,
        identity = boards.identity().display(),
        known = boards.known_hosts().display(),
        address = boards.address(0),
    )
}

fn service_toml(replicas: u32) -> String {
    format!(
        "[service.ins-web]\nimage = \"{REGISTRY}/busybox:1\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = {replicas}\n"
    )
}

/// `docker service inspect` on the board: the service's replicas.
fn replicas_on_board(boards: &Boards) -> Option<u64> {
    let out = boards.exec(
        0,
        "docker service inspect ins-web --format '{{.Spec.Mode.Replicated.Replicas}}'",
    );
    out.stdout.trim().parse().ok()
}

#[test]
fn install_puts_the_controller_on_a_board_that_then_applies_a_push() {
    require_swarm();
    let boards = Boards::start("rci-", 51, 1);
    let _registry = Registry::start();
    let spec = SpecDir::new("installed");
    spec.write("cluster.toml", &cluster_toml(&boards));
    spec.write("services.toml", &service_toml(1));
    let dir = spec.arg();

    // The board becomes a one-node swarm, as a user would start it at a
    // terminal: a progress bar for the board's steps, then for the service.
    let shown = reconciler_on_terminal(
        &["apply", &dir, "--ssh", "--auto-approve", "--timeout", "3m"],
        &[],
    );
    assert_eq!(shown.code, 0, "{}", shown.stdout);
    for part in [
        "node rci1                [--------------------] 0/",
        "node rci1: steps done",
        "service.ins-web: 1/1 tasks running",
    ] {
        assert!(
            shown.stdout.contains(part),
            "{part:?} not shown:\n{:?}",
            shown.stdout
        );
    }
    assert_eq!(replicas_on_board(&boards), Some(1));

    // The same spec in a repository the board reaches over HTTP.
    let repo = GitRepo::new();
    repo.commit(
        &[
            ("cluster.toml", &cluster_toml(&boards)),
            ("services.toml", &service_toml(1)),
        ],
        "first",
    );
    let server = GitHttp::start_on(repo.root(), "ops", "s3cret-pw", GATEWAY);
    let url = format!("http://{GATEWAY}:{}/remote.git", server.port);
    let password = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(password.path(), "s3cret-pw\n").expect("write");
    let webhook = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(webhook.path(), "hook-secret-on-the-board").expect("write");
    // The owner's limits travel with the controller, never in the repository.
    let policy = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(policy.path(), "deny = [\"docker-socket\"]\n").expect("write");
    let token = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(token.path(), "0123456789abcdef0123456789abcdef\n").expect("write");
    let binary = reconciler_tests::process::binary().display().to_string();
    let password_file = password.path().display().to_string();
    let webhook_file = webhook.path().display().to_string();
    let policy_file = policy.path().display().to_string();
    let token_file = token.path().display().to_string();
    let install_args = |binary: &str| -> Vec<String> {
        [
            "install",
            &dir,
            "--git",
            &url,
            "--git-username",
            "ops",
            "--git-password-file",
            &password_file,
            "--webhook-secret-file",
            &webhook_file,
            "--policy",
            &policy_file,
            "--page-token-file",
            &token_file,
            "--binary",
            binary,
            "--run-arg=--interval=2s",
            // The test bed's own network: plain HTTP is allowed on purpose.
            "--run-arg=--allow-plaintext-git",
            "--ready-timeout",
            "90s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let install = |binary: &str| {
        let args = install_args(binary);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        reconciler(&args)
    };

    let first = install(&binary).expect_code(0);
    assert!(
        first.stdout.contains("node rci1 (x86_64, plain): /usr/local/bin/reconciler, /etc/reconciler/webhook-secret, /etc/reconciler/git-password, /etc/reconciler/policy.toml, /etc/reconciler/page-token, /etc/reconciler/run.sh; controller (re)started"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("the controller is ready"),
        "{}",
        first.stdout
    );
    // Secrets are on the board for root only, and never in what install printed.
    let modes = boards.exec(
        0,
        "stat -c '%a %U' /etc/reconciler/webhook-secret /etc/reconciler/git-password /etc/reconciler/policy.toml /etc/reconciler/page-token",
    );
    assert_eq!(modes.stdout, "600 root\n".repeat(4), "{}", modes.stderr);
    let script = boards.exec(0, "cat /etc/reconciler/run.sh").stdout;
    assert!(
        script.contains("'--policy' '/etc/reconciler/policy.toml'")
            && script.contains("'--page-token-file' '/etc/reconciler/page-token'"),
        "{script}"
    );
    assert!(!first.stdout.contains("s3cret-pw") && !first.stderr.contains("s3cret-pw"));

    // Again: nothing changes, nothing restarts.
    let pid = boards.exec(0, "cat /run/reconciler.pid").stdout;
    let again = install(&binary).expect_code(0);
    assert!(
        again
            .stdout
            .contains("node rci1 (x86_64, plain): no changes\n"),
        "{}",
        again.stdout
    );
    assert_eq!(boards.exec(0, "cat /run/reconciler.pid").stdout, pid);

    // A push is applied by the controller on the board.
    repo.commit(&[("services.toml", &service_toml(2))], "scale to 2");
    wait_until(
        "the board's controller to scale ins-web",
        Duration::from_secs(120),
        || match replicas_on_board(&boards) {
            Some(2) => Ok(()),
            other => Err(format!(
                "replicas {other:?}; log:\n{}",
                boards.exec(0, "tail -20 /var/log/reconciler.log").stdout
            )),
        },
    );

    // The board's controller refuses what its policy denies: a push that
    // mounts the Docker socket changes nothing.
    let socket = format!(
        "{}mounts = [{{ type = \"bind\", source = \"/var/run/docker.sock\", target = \"/s\" }}]\n",
        service_toml(3)
    );
    repo.commit(&[("services.toml", &socket)], "mount the socket");
    wait_until(
        "the board's controller to refuse the revision",
        Duration::from_secs(120),
        || {
            let log = boards.exec(0, "cat /var/log/reconciler.log").stdout;
            log.contains("the policy denies docker-socket")
                .then_some(())
                .ok_or(log)
        },
    );
    assert_eq!(replicas_on_board(&boards), Some(2));
    // (A controller restarted now would have no good revision to fall back
    // on: it keeps no state. The next commit is good again.)
    let fixed = repo.commit(&[("services.toml", &service_toml(2))], "no socket");
    wait_until(
        "the board's controller to take the good revision",
        Duration::from_secs(120),
        || {
            let log = boards.exec(0, "cat /var/log/reconciler.log").stdout;
            log.contains(&format!("spec loaded revision={fixed}"))
                .then_some(())
                .ok_or(log)
        },
    );

    // A newer binary (here: the same program with bytes appended) replaces
    // the old one and restarts the controller.
    let newer = tempfile::NamedTempFile::new().expect("temp file");
    let mut bytes = std::fs::read(reconciler_tests::process::binary()).expect("the binary");
    bytes.extend_from_slice(b"\0newer build\0");
    std::fs::write(newer.path(), bytes).expect("write");
    let newer_path = newer.path().display().to_string();
    let replaced = install(&newer_path).expect_code(0);
    assert!(
        replaced.stdout.contains(
            "node rci1 (x86_64, plain): /usr/local/bin/reconciler; controller (re)started"
        ),
        "{}",
        replaced.stdout
    );
    assert_ne!(boards.exec(0, "cat /run/reconciler.pid").stdout, pid);

    // Uninstall stops it and removes its files; the swarm and the
    // membership record stay; a second uninstall has nothing to do.
    let running = "pgrep -f '^/usr/local/bin/reconciler run'";
    assert_eq!(
        boards.exec(0, running).code,
        0,
        "the controller is not running"
    );
    let removed = reconciler(&["uninstall", &dir]).expect_code(0);
    assert!(
        removed.stdout.contains("node rci1 (x86_64, plain): stopped, /usr/local/bin/reconciler, /etc/reconciler/webhook-secret, /etc/reconciler/git-password, /etc/reconciler/policy.toml, /etc/reconciler/page-token, /etc/reconciler/run.sh"),
        "{}",
        removed.stdout
    );
    assert_ne!(boards.exec(0, running).code, 0, "still running");
    assert_eq!(boards.exec(0, "test -f /etc/reconciler/membership").code, 0);
    assert_eq!(replicas_on_board(&boards), Some(2));
    let nothing = reconciler(&["uninstall", &dir]).expect_code(0);
    assert!(
        nothing
            .stdout
            .contains("node rci1 (x86_64, plain): no changes"),
        "{}",
        nothing.stdout
    );
}

/// `install --git https://user:token@...` wrote the token into the board's
/// run script and the controller's command line (`ps`), and an `http://`
/// URL of another machine was installed as it was (issue 22): both are
/// refused before any board is contacted.
#[test]
fn regression_install_refuses_a_url_with_credentials_or_without_encryption() {
    let spec = SpecDir::new("rci-url");
    let dir = spec.arg();
    for (url, said) in [
        (
            "https://deploy:token@git.example.org/spec.git",
            "carries credentials",
        ),
        (
            "http://git.example.org/spec.git",
            "fetched without encryption",
        ),
    ] {
        let out = reconciler(&["install", &dir, "--git", url]).expect_code(1);
        assert!(out.stderr.contains(said), "{url}: {}", out.stderr);
        assert!(!out.stderr.contains("token@"), "{}", out.stderr);
    }
}
