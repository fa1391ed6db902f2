//! The SSH executor against real sshd servers on loopback.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::time::Duration;

use reconciler::node::fanout::for_each;
use reconciler::node::{NodeError, Session, SshOptions};
use reconciler::observed::Facts;
use reconciler_tests::sshd::Sshd;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn known_hosts(sshd: &Sshd, body: &str) -> std::path::PathBuf {
    let path = sshd.dir().join("known_hosts");
    std::fs::write(&path, body).expect("known_hosts");
    path
}

#[test]
fn scripts_run_on_stdin_with_output_and_exit_status() {
    let sshd = Sshd::start();
    let target = sshd.target("pi1", &known_hosts(&sshd, &sshd.known_hosts_line()));
    runtime().block_on(async {
        let session = Session::connect(&target, SshOptions::default())
            .await
            .unwrap();
        let script = "name='it'\"'\"'s'\necho \"out: $name\"\necho err >&2\nexit 3\n";
        let output = session.run("test script", script).await.unwrap();
        assert_eq!(output.status, 3);
        assert!(!output.success());
        assert_eq!(output.stdout, "out: it's\n");
        assert_eq!(output.stderr, "err\n");
        let big = session
            .run("big output", "head -c 300000 /dev/zero | tr '\\0' x")
            .await
            .unwrap();
        assert!(big.success());
        assert_eq!(big.status, 0);
        assert_eq!(
            big.stdout.len(),
            300_000,
            "output lost before the exit status"
        );
        session.close().await;
    });
}

#[test]
fn an_unknown_host_key_is_refused_by_name_and_nothing_runs() {
    let sshd = Sshd::start();
    let target = sshd.target("pi-unknown", &known_hosts(&sshd, ""));
    let error = runtime()
        .block_on(Session::connect(&target, SshOptions::default()))
        .err();
    match &error {
        Some(NodeError::UnknownHostKey {
            node, fingerprint, ..
        }) => {
            assert_eq!(node, "pi-unknown");
            assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
        }
        other => panic!("expected UnknownHostKey, got {other:?}"),
    }
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("node pi-unknown: unknown host key SHA256:"),
        "{message}"
    );
    // A missing known_hosts file is the same: nothing is known.
    let mut missing = target.clone();
    missing.known_hosts = sshd.dir().join("does-not-exist");
    let error = runtime()
        .block_on(Session::connect(&missing, SshOptions::default()))
        .err();
    assert!(
        matches!(error, Some(NodeError::UnknownHostKey { .. })),
        "{error:?}"
    );
}

#[test]
fn a_changed_host_key_is_refused_naming_the_line() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    // The known_hosts entry for this address holds another server's key: a re-flashed board, or worse.
    let line = format!("[127.0.0.1]:{} {}\n", sshd.port, other.host_key());
    let path = known_hosts(&sshd, &line);
    let error = runtime()
        .block_on(Session::connect(
            &sshd.target("pi2", &path),
            SshOptions::default(),
        ))
        .err();
    match error {
        Some(NodeError::HostKeyChanged { node, recorded, .. }) => {
            assert_eq!(node, "pi2");
            assert!(recorded.starts_with("known_hosts line 1 of "), "{recorded}");
        }
        other => panic!("expected HostKeyChanged, got {other:?}"),
    }
}

#[test]
fn a_pinned_key_replaces_known_hosts_and_a_wrong_pin_is_refused() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let mut target = sshd.target("pi3", &known_hosts(&sshd, ""));
    target.pinned_key = Some(sshd.host_key());
    let rt = runtime();
    let session = rt.block_on(Session::connect(&target, SshOptions::default()));
    assert!(session.is_ok(), "{:?}", session.err());
    target.pinned_key = Some(other.host_key());
    let error = rt
        .block_on(Session::connect(&target, SshOptions::default()))
        .err();
    assert!(
        matches!(&error, Some(NodeError::HostKeyChanged { recorded, .. }) if recorded == "the key pinned in the spec"),
        "{error:?}"
    );
}

#[test]
fn accept_new_host_keys_records_the_key_once() {
    let sshd = Sshd::start();
    let path = known_hosts(&sshd, "");
    let target = sshd.target("pi4", &path);
    let options = SshOptions {
        accept_new_host_keys: true,
        ..SshOptions::default()
    };
    let rt = runtime();
    assert!(rt.block_on(Session::connect(&target, options)).is_ok());
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(recorded.contains(&sshd.host_key()), "{recorded}");
    // From now on the recorded key is checked without the flag.
    assert!(rt
        .block_on(Session::connect(&target, SshOptions::default()))
        .is_ok());
}

/// With `--accept-new-host-keys` and no known_hosts file at all (a fresh
/// machine), the file and its folder are created with the board's key.
#[test]
fn accept_new_host_keys_creates_a_missing_known_hosts_file() {
    let sshd = Sshd::start();
    let path = sshd.dir().join("fresh/.ssh/known_hosts");
    let target = sshd.target("pi7", &path);
    let options = SshOptions {
        accept_new_host_keys: true,
        ..SshOptions::default()
    };
    let session = runtime().block_on(Session::connect(&target, options));
    assert!(session.is_ok(), "{:?}", session.err());
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(recorded.contains(&sshd.host_key()), "{recorded:?}");
}

/// `--accept-new-host-keys` records only keys never seen: a board whose key
/// changed is still refused, and known_hosts is left exactly as it was.
#[test]
fn accept_new_host_keys_never_records_a_changed_key() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let recorded = format!("[127.0.0.1]:{} {}\n", sshd.port, other.host_key());
    let path = known_hosts(&sshd, &recorded);
    let options = SshOptions {
        accept_new_host_keys: true,
        ..SshOptions::default()
    };
    let error = runtime()
        .block_on(Session::connect(&sshd.target("pi6", &path), options))
        .err();
    assert!(
        matches!(&error, Some(NodeError::HostKeyChanged { node, .. }) if node == "pi6"),
        "{error:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        recorded,
        "known_hosts was changed"
    );
    // A pinned key that does not match is refused with the flag too.
    let mut pinned = sshd.target("pi6", &known_hosts(&sshd, ""));
    pinned.pinned_key = Some(other.host_key());
    let error = runtime().block_on(Session::connect(&pinned, options)).err();
    assert!(
        matches!(&error, Some(NodeError::HostKeyChanged { .. })),
        "{error:?}"
    );
}

#[test]
fn a_command_past_its_timeout_is_an_error() {
    let sshd = Sshd::start();
    let target = sshd.target("pi5", &known_hosts(&sshd, &sshd.known_hosts_line()));
    let options = SshOptions {
        command_timeout: Duration::from_secs(1),
        ..SshOptions::default()
    };
    let error = runtime().block_on(async {
        let session = Session::connect(&target, options).await.unwrap();
        session.run("sleep", "sleep 10").await.err()
    });
    assert!(
        matches!(&error, Some(NodeError::Timeout { node, .. }) if node == "pi5"),
        "{error:?}"
    );
}

#[test]
fn facts_describe_the_host() {
    let sshd = Sshd::start();
    let target = sshd.target("here", &known_hosts(&sshd, &sshd.known_hosts_line()));
    let facts = runtime().block_on(async {
        let session = Session::connect(&target, SshOptions::default())
            .await
            .unwrap();
        let output = session
            .run("facts", reconciler::node::facts::SCRIPT)
            .await
            .unwrap();
        Facts::parse(&output.stdout)
    });
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_eq!(facts.hostname, hostname.trim());
    assert_eq!(facts.arch, std::env::consts::ARCH);
    assert!(!facts.os.is_empty());
    // The local daemon is a swarm manager (scripts/setup): the board's own
    // view of it, as `docker info` gives it.
    let asked = |args: &[&str]| reconciler_tests::docker(args).trim().to_string();
    let node_id = asked(&["info", "--format", "{{.Swarm.NodeID}}"]);
    assert_eq!(
        facts.docker,
        reconciler::observed::BoardDocker::Running {
            version: Some(asked(&["version", "--format", "{{.Server.Version}}"])),
            swarm: reconciler::observed::LocalSwarm::Active {
                node_id: Some(node_id)
            },
        },
        "{facts:?}"
    );
}

#[test]
fn fan_out_reports_a_down_board_and_finishes_the_others() {
    let mut servers: Vec<Sshd> = (0..6).map(|_| Sshd::start()).collect();
    servers[2].stop();
    let targets: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| s.target(&format!("board{i}"), &known_hosts(s, &s.known_hosts_line())))
        .collect();
    let options = SshOptions {
        connect_timeout: Duration::from_secs(3),
        ..SshOptions::default()
    };
    let results = runtime().block_on(for_each(targets, 4, move |target| async move {
        let session = Session::connect(&target, options).await?;
        let output = session
            .run("facts", reconciler::node::facts::SCRIPT)
            .await?;
        Ok::<_, NodeError>(Facts::parse(&output.stdout))
    }));
    assert_eq!(results.len(), 6);
    for (i, result) in results.iter().enumerate() {
        if i == 2 {
            assert!(
                matches!(result, Err(NodeError::Unreachable { node, address, .. })
                    if node == "board2" && *address == format!("127.0.0.1:{}", servers[2].port)),
                "{result:?}"
            );
        } else {
            assert!(
                result.as_ref().is_ok_and(|f| !f.hostname.is_empty()),
                "board{i}: {result:?}"
            );
        }
    }
}

/// `reconciler facts` over a spec whose boards are sshd servers: one answers,
/// one is down, one presents a key nobody recorded.
#[test]
fn the_facts_command_reports_each_board() {
    let good = Sshd::start();
    let mut down = Sshd::start();
    let stranger = Sshd::start();
    down.stop();
    let known = good.dir().join("known_hosts_all");
    std::fs::write(
        &known,
        format!("{}{}", good.known_hosts_line(), down.known_hosts_line()),
    )
    .unwrap();
    let spec = reconciler_tests::SpecDir::new("facts");
    let node = |name: &str, sshd: &Sshd, role: &str| {
        // The good board is declared arm64: facts must flag what it really is.
        let arch = if name == "good" {
            "arch = \"arm64\"\n"
        } else {
            ""
        };
        format!(
            "[node.{name}]\naddress = \"127.0.0.1\"\nrole = \"{role}\"\n{arch}ssh = {{ user = \"root\", port = {}, identity = \"{}\", known_hosts = \"{}\" }}\n",
            sshd.port,
            good.identity().display(),
            known.display()
        )
    };
    // Every server accepts only its own client key, so copy the good one's to the others' authorized_keys.
    let authorized =
        std::fs::read_to_string(good.dir().join("authorized_keys")).unwrap_or_default();
    std::fs::write(stranger.dir().join("authorized_keys"), &authorized).unwrap();
    spec.write(
        "nodes.toml",
        &format!(
            "{}\n{}\n{}",
            node("good", &good, "manager"),
            node("down", &down, "worker"),
            node("stranger", &stranger, "worker")
        ),
    );
    let output =
        reconciler_tests::reconciler(&["facts", &spec.arg(), "--json", "--connect-timeout", "3s"]);
    assert_eq!(
        output.code, 1,
        "a failed board must fail the command: {output:?}"
    );
    let facts: serde_json::Value =
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", output.stdout));
    assert_eq!(
        facts["good"]["facts"]["arch"].as_str(),
        Some(std::env::consts::ARCH),
        "{facts:#}"
    );
    assert_eq!(facts["down"]["kind"], "unreachable", "{facts:#}");
    assert_eq!(facts["stranger"]["kind"], "host_key", "{facts:#}");
    assert!(
        facts["stranger"]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("node stranger: unknown host key"),
        "{facts:#}"
    );

    // The table a person reads: a column per fact, aligned, the failures below.
    let table = reconciler_tests::reconciler(&["facts", &spec.arg(), "--connect-timeout", "3s"]);
    assert_eq!(table.code, 1);
    let lines: Vec<&str> = table.stdout.lines().collect();
    let header = lines.first().copied().unwrap_or_default();
    assert!(
        header.starts_with("NODE")
            && ["HOSTNAME", "ARCH", "OS", "DOCKER", "SWARM"]
                .iter()
                .all(|c| header.contains(c)),
        "{}",
        table.stdout
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let row = lines.get(1).copied().unwrap_or_default();
    assert!(row.starts_with("good "), "{}", table.stdout);
    assert!(
        row.contains(&format!("{} (spec: arm64!)", std::env::consts::ARCH)),
        "the architecture mismatch is not flagged: {}",
        table.stdout
    );
    assert_eq!(
        row.find(hostname.trim()),
        header.find("HOSTNAME"),
        "the hostname is not under its heading:\n{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("  down: unreachable (node down: cannot connect")
            && table
                .stdout
                .contains("  stranger: host_key (node stranger: unknown host key"),
        "{}",
        table.stdout
    );
}

/// Without an identity file, the keys of the ssh-agent at SSH_AUTH_SOCK are
/// used. The real binary runs with the agent in its own environment (no
/// process-global `set_var` in this parallel test binary).
#[test]
fn the_ssh_agent_is_used_when_there_is_no_identity_file() {
    let sshd = Sshd::start();
    let agent_socket = sshd.dir().join("agent.sock");
    let started = std::process::Command::new("ssh-agent")
        .arg("-a")
        .arg(&agent_socket)
        .output()
        .expect("cannot start ssh-agent (openssh-client)");
    assert!(started.status.success());
    let pid = String::from_utf8_lossy(&started.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default()
        .to_string();
    struct KillAgent(String);
    impl Drop for KillAgent {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").arg(&self.0).status();
        }
    }
    let _agent = KillAgent(pid);
    let agent = agent_socket.display().to_string();
    let added = std::process::Command::new("ssh-add")
        .arg(sshd.identity())
        .env("SSH_AUTH_SOCK", &agent)
        .output()
        .expect("ssh-add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let known = known_hosts(&sshd, &sshd.known_hosts_line());
    let spec = reconciler_tests::SpecDir::new("agent");
    spec.write(
        "nodes.toml",
        &format!(
            "[node.pi-agent]\naddress = \"127.0.0.1\"\nrole = \"manager\"\nssh = {{ user = \"root\", port = {}, identity = \"{}\", known_hosts = \"{}\" }}\n",
            sshd.port,
            sshd.dir().join("no-such-key").display(),
            known.display()
        ),
    );
    let output = reconciler_tests::reconciler_binary(
        &["facts", &spec.arg(), "--json"],
        &[("SSH_AUTH_SOCK", &agent)],
    );
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    let facts: serde_json::Value =
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", output.stdout));
    assert_eq!(
        facts["pi-agent"]["facts"]["arch"].as_str(),
        Some(std::env::consts::ARCH),
        "{facts:#}"
    );
    // An agent holding only a key the board does not accept: refused, by name.
    let stranger_key = sshd.dir().join("stranger_ed25519");
    reconciler_tests::sshd::keygen(&stranger_key);
    let other_socket = sshd.dir().join("other-agent.sock");
    let other_started = std::process::Command::new("ssh-agent")
        .arg("-a")
        .arg(&other_socket)
        .output()
        .expect("ssh-agent");
    let _other_agent = KillAgent(
        String::from_utf8_lossy(&other_started.stdout)
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_default()
            .to_string(),
    );
    let other = other_socket.display().to_string();
    let added = std::process::Command::new("ssh-add")
        .arg(&stranger_key)
        .env("SSH_AUTH_SOCK", &other)
        .output()
        .expect("ssh-add");
    assert!(added.status.success());
    let refused = reconciler_tests::reconciler_binary(
        &["facts", &spec.arg(), "--json"],
        &[("SSH_AUTH_SOCK", &other)],
    );
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let rejected = format!(
        "node pi-agent: 127.0.0.1:{} refused the login as `root` with the keys of the ssh-agent (SSH_AUTH_SOCK).",
        sshd.port
    );
    assert!(refused.stdout.contains(&rejected), "{}", refused.stdout);
    assert!(
        refused.stdout.contains("`ssh-copy-id root@127.0.0.1`"),
        "{}",
        refused.stdout
    );
    // An identity file that exists wins over any agent (the same board, now
    // with the accepted key in a file, and the wrong agent still set).
    let with_agent = std::fs::read_to_string(spec.path().join("nodes.toml")).unwrap_or_default();
    spec.write(
        "nodes.toml",
        &with_agent.replace(
            &sshd.dir().join("no-such-key").display().to_string(),
            &sshd.identity().display().to_string(),
        ),
    );
    let file_wins = reconciler_tests::reconciler_binary(
        &["facts", &spec.arg(), "--json"],
        &[("SSH_AUTH_SOCK", &other)],
    );
    assert_eq!(
        file_wins.code, 0,
        "{}\n{}",
        file_wins.stdout, file_wins.stderr
    );
    spec.write("nodes.toml", &with_agent);

    // Without the agent the missing identity file is the error, naming the node.
    let without = reconciler_tests::reconciler_binary(
        &["facts", &spec.arg(), "--json"],
        &[("SSH_AUTH_SOCK", "")],
    );
    assert_eq!(without.code, 1);
    assert!(
        without
            .stdout
            .contains("node pi-agent: cannot load the SSH key"),
        "{}",
        without.stdout
    );
}

/// russh compares a server's key only with recorded keys of the same
/// algorithm, so a board known by its ed25519 key that suddenly offered an
/// ECDSA key read as "never seen" and `--accept-new-host-keys` recorded it:
/// anyone answering at the board's address was let in. A host with any
/// recorded key is now refused, named, and known_hosts stays as it was.
#[test]
fn regression_accept_new_host_keys_never_records_a_key_of_another_algorithm() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let key = dir.path().join("other_ecdsa");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}"));
    assert!(status.success());
    let ecdsa = std::fs::read_to_string(key.with_extension("pub")).unwrap_or_default();
    let ecdsa: Vec<&str> = ecdsa.split_whitespace().take(2).collect();
    let recorded = format!("[127.0.0.1]:{} {}\n", sshd.port, ecdsa.join(" "));
    let path = known_hosts(&sshd, &recorded);
    let options = SshOptions {
        accept_new_host_keys: true,
        ..SshOptions::default()
    };
    let error = runtime()
        .block_on(Session::connect(&sshd.target("pi7", &path), options))
        .err();
    assert!(
        matches!(&error, Some(NodeError::HostKeyChanged { node, .. }) if node == "pi7"),
        "{error:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        recorded,
        "known_hosts was changed"
    );
}

/// Issue 23: `plan --ssh` that reached no board printed each problem twice
/// (stdout and stderr), claimed "the swarm does not exist yet" and exited
/// 0 (`--json` said `"changed": false` while `--detailed-exitcode` said 2).
/// Against real sshd servers: a board whose SSH is off, one that knows no
/// `pi` user, two whose key file is missing. Nothing is planned, the exit
/// code is 1 in every form, each problem is said once with what to run.
#[test]
fn plan_and_apply_that_reach_no_board_fail_saying_why_once() {
    let off = {
        let mut sshd = Sshd::start();
        sshd.stop();
        sshd
    };
    let no_pi = Sshd::start();
    let known = no_pi.dir().join("known_hosts_all");
    std::fs::write(
        &known,
        format!("{}{}", no_pi.known_hosts_line(), off.known_hosts_line()),
    )
    .unwrap_or_else(|e| panic!("known_hosts: {e}"));
    let missing_key = no_pi.dir().join("no-such-key");
    // A key that cannot be read stops before any connection, so those
    // boards may sit at loopback addresses where nothing listens.
    let node = |name: &str, role: &str, port: u16, user: &str, identity: &std::path::Path| {
        let address = match name {
            "pi3" => "127.0.0.3",
            "pi4" => "127.0.0.4",
            _ => "127.0.0.1",
        };
        format!(
            "[node.{name}]\naddress = \"{address}\"\nrole = \"{role}\"\nssh = {{ user = \"{user}\", port = {port}, identity = \"{}\", known_hosts = \"{}\" }}\n",
            identity.display(),
            known.display()
        )
    };
    let spec = reconciler_tests::SpecDir::new("first-contact");
    spec.write(
        "nodes.toml",
        &[
            node("pi1", "manager", off.port, "root", &no_pi.identity()),
            node("pi2", "worker", no_pi.port, "pi", &no_pi.identity()),
            node("pi3", "worker", no_pi.port, "root", &missing_key),
            node("pi4", "worker", no_pi.port, "root", &missing_key),
        ]
        .join("\n"),
    );
    let no_agent = [("SSH_AUTH_SOCK", "")];
    let text = reconciler_tests::reconciler_binary(&["plan", &spec.arg(), "--ssh"], &no_agent);
    assert_eq!(text.code, 1, "{}\n{}", text.stdout, text.stderr);
    let all = format!("{}{}", text.stdout, text.stderr);
    assert!(
        !all.contains("does not exist yet") && !all.contains("No changes"),
        "{all}"
    );
    assert!(
        all.contains(
            "none of the spec's 4 board(s) could be reached over SSH, so nothing was planned"
        ),
        "{all}"
    );
    let refused = format!(
        "node pi1: cannot connect to 127.0.0.1:{}: connection refused: something answers at this address but no SSH server listens on the port. Turn SSH on",
        off.port
    );
    let missing = format!(
        "nodes pi3, pi4: cannot load the SSH key {key}: there is no such file. Make a key with `ssh-keygen -t ed25519 -f {key}`, then put it on each board: `ssh-copy-id -i {key}.pub root@ADDRESS`",
        key = missing_key.display()
    );
    let wrong_user = format!(
        "node pi2: 127.0.0.1:{} refused the login as `pi` with the key {}. If `pi` is not the board's user, set `user` under [ssh] in the spec",
        no_pi.port,
        no_pi.identity().display()
    );
    for problem in [&refused, &missing, &wrong_user] {
        assert_eq!(
            all.matches(problem.as_str()).count(),
            1,
            "{problem}\n---\n{all}"
        );
    }

    // --json and the exit code agree; --detailed-exitcode says error, not "changes".
    let json = reconciler_tests::reconciler_binary(
        &[
            "plan",
            &spec.arg(),
            "--ssh",
            "--json",
            "--detailed-exitcode",
        ],
        &no_agent,
    );
    assert_eq!(json.code, 1, "{}\n{}", json.stdout, json.stderr);
    let document: serde_json::Value =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", json.stdout));
    assert_eq!(document["changed"], false, "{document:#}");
    assert_eq!(document["swarm_planned"], false, "{document:#}");
    assert_eq!(
        document["boards"]["unreachable"].as_array().map(Vec::len),
        Some(4),
        "{document:#}"
    );

    // apply stops before asking anything of Docker or the boards.
    let apply = reconciler_tests::reconciler_binary(
        &["apply", &spec.arg(), "--ssh", "--auto-approve"],
        &no_agent,
    );
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("nothing was planned") && apply.stderr.contains(&missing),
        "{}\n{}",
        apply.stdout,
        apply.stderr
    );

    // One board answering but no manager: the swarm is not claimed either way.
    spec.write(
        "nodes.toml",
        &[
            node("pi1", "manager", off.port, "root", &no_pi.identity()),
            node("pi2", "worker", no_pi.port, "root", &no_pi.identity()),
        ]
        .join("\n"),
    );
    let no_manager =
        reconciler_tests::reconciler_binary(&["plan", &spec.arg(), "--ssh"], &no_agent);
    assert_eq!(
        no_manager.code, 1,
        "{}\n{}",
        no_manager.stdout, no_manager.stderr
    );
    assert!(
        no_manager.stderr.contains(
            "no manager of the spec answered (pi1: why is above), so the swarm was not looked at"
        ),
        "{}",
        no_manager.stderr
    );
    assert!(
        !no_manager.stdout.contains("does not exist yet")
            && no_manager.stdout.contains(&format!(
                "Warning: node pi1: cannot connect to 127.0.0.1:{}",
                off.port
            )),
        "{}",
        no_manager.stdout
    );
}

/// One HTTP `GET /_ping` to the Docker behind `socket`: its status line.
async fn ping_through(stream: &mut tokio::net::UnixStream) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        .await
        .expect("write the request");
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("Docker answered in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Regression: through `apply --ssh`, a second Docker client's connections
/// ran past the board's sshd `MaxSessions` ("Failed to open channel") and
/// the Docker call failed. A channel refused while others are open is now
/// tried again, and gets through once one of them closes.
#[test]
fn regression_a_tunnel_channel_refused_past_max_sessions_is_tried_again() {
    reconciler_tests::require_swarm();
    let sshd = Sshd::start_with("MaxSessions 1\n");
    let target = sshd.target("pi-tunnel", &known_hosts(&sshd, &sshd.known_hosts_line()));
    runtime().block_on(async {
        let session = std::sync::Arc::new(
            Session::connect(&target, SshOptions::default())
                .await
                .expect("connect"),
        );
        let tunnel = reconciler::node::tunnel::Tunnel::open(std::sync::Arc::clone(&session))
            .expect("tunnel");
        // The first connection takes the one session sshd allows.
        let mut first = tokio::net::UnixStream::connect(tunnel.socket())
            .await
            .expect("first connection");
        assert!(
            ping_through(&mut first).await.contains("200"),
            "no answer through the tunnel"
        );
        // The second one's channel is refused until the first closes.
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            drop(first);
        });
        let mut second = tokio::net::UnixStream::connect(tunnel.socket())
            .await
            .expect("second connection");
        let status = ping_through(&mut second).await;
        assert!(
            status.contains("200"),
            "the second connection got no answer once the first closed: {status:?}"
        );
        closer.await.expect("closer");
    });
}
