//! Tests that need no swarm: spec checking through the real CLI.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use reconciler_tests::proxy::{DockerProxy, HungDocker};
use reconciler_tests::{reconciler, repo_path};

/// Every case of the bad-spec corpus is refused by `plan` before any Docker
/// call: the proxy standing in for the Docker socket sees no connection.
#[test]
fn bad_specs_never_reach_docker() {
    let proxy = DockerProxy::start(None);
    let corpus = repo_path("spec/tests/bad-specs");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", corpus.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "corpus has only {} cases", cases.len());
    for case in &cases {
        let dir = case.display().to_string();
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap_or_default();
        for command in ["plan", "apply"] {
            let mut args = vec![command, dir.as_str(), "--docker-host"];
            let host = proxy.host();
            args.push(&host);
            if command == "apply" {
                args.push("--auto-approve");
            }
            let output = reconciler(&args).expect_code(1);
            assert_eq!(
                output.stderr.trim_end(),
                expected.trim_end(),
                "{command} {dir}"
            );
            assert!(
                output.stdout.is_empty(),
                "{command} {dir} printed a plan: {}",
                output.stdout
            );
        }
    }
    assert_eq!(
        proxy.connections(),
        0,
        "a bad spec reached Docker: {:?}",
        proxy.requests()
    );
}

/// Every error at once, checked against a list written by hand from the
/// files (not a blessed copy of what the product prints): one broken entry
/// does not hide its other keys' problems or another file's.
#[test]
fn validate_reports_every_error_with_its_place_and_exits_1() {
    let dir = repo_path("spec/tests/bad-specs/many-errors-many-files")
        .display()
        .to_string();
    let output = reconciler(&["validate", &dir]).expect_code(1);
    let places: Vec<&str> = output
        .stderr
        .lines()
        .filter(|l| l.contains(": error: "))
        .filter_map(|l| l.split(": error: ").next())
        .collect();
    assert_eq!(
        places,
        [
            "cluster.toml:5:12",   // interval = "soon"
            "nodes/pis.toml:4:12", // "bad key"
            "services.toml:4:13",  // networks = ["front"], undefined
            "services.toml:5:25",  // condition = "always"
            "services.toml:9:10",  // after = ["wbe"], undefined
        ],
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.ends_with("spec is invalid: 5 errors\n"),
        "{}",
        output.stderr
    );
}

/// `--parallel N`: never more than N boards at once, and N at once when
/// there are more. Six "boards" accept TCP and never answer (a board stuck
/// at boot). The test lets the oldest go (closes it) once no new connection
/// has come for a while, so every connection the command opens at once is
/// held, and counted, at the same time.
#[test]
fn parallel_bounds_how_many_boards_are_worked_on_at_once() {
    use std::sync::{Arc, Condvar, Mutex};
    const BOARDS: usize = 6;
    #[derive(Default)]
    struct Held {
        open: Vec<std::net::TcpStream>,
        accepted: usize,
        most: usize,
    }
    let held = Arc::new((Mutex::new(Held::default()), Condvar::new()));
    let mut ports = Vec::new();
    for _ in 0..BOARDS {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        ports.push(listener.local_addr().map(|a| a.port()).unwrap_or(0));
        let held = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (lock, changed) = &*held;
                let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                state.open.push(stream);
                state.accepted += 1;
                state.most = state.most.max(state.open.len());
                changed.notify_all();
            }
        });
    }
    // Lets the oldest held connection go after a quiet second (the quiet
    // only paces the test; the bound is checked at every accept).
    let releaser = {
        let held = Arc::clone(&held);
        std::thread::spawn(move || {
            let (lock, changed) = &*held;
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut idle = 0;
            loop {
                let (next, waited) = changed
                    .wait_timeout(state, std::time::Duration::from_secs(1))
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                if !waited.timed_out() {
                    idle = 0;
                    continue;
                }
                if state.open.is_empty() {
                    idle += 1;
                    if state.accepted == BOARDS || idle > 60 {
                        return;
                    }
                    continue;
                }
                let stream = state.open.remove(0);
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        })
    };
    let spec = reconciler_tests::SpecDir::new("parallel");
    let key = spec.path().join("id_ed25519");
    reconciler_tests::sshd::keygen(&key);
    let nodes: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                "[node.stuck{i}]\naddress = \"127.0.0.1\"\nrole = \"{}\"\nssh = {{ port = {port}, identity = \"{}\", known_hosts = \"/nonexistent\" }}\n",
                if i == 0 { "manager" } else { "worker" },
                key.display()
            )
        })
        .collect();
    spec.write("nodes.toml", &nodes);
    let output = reconciler(&[
        "facts",
        &spec.arg(),
        "--parallel",
        "2",
        "--connect-timeout",
        "60s",
    ]);
    assert_eq!(output.code, 1, "{output:?}");
    let _ = releaser.join();
    let state = held.0.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(state.accepted, BOARDS);
    assert_eq!(state.most, 2, "boards worked on at once with --parallel 2");
    assert_eq!(
        output.stdout.matches("unreachable (node stuck").count(),
        6,
        "{}",
        output.stdout
    );
}

#[test]
fn every_example_validates() {
    let examples = repo_path("examples");
    let mut count = 0;
    for entry in std::fs::read_dir(&examples).expect("cannot read examples") {
        let path = entry.expect("bad entry").path();
        if path.is_dir() {
            let output = reconciler(&["validate", &path.display().to_string()]);
            assert_eq!(
                output.code,
                0,
                "{} is invalid:\n{}",
                path.display(),
                output.stderr
            );
            assert!(
                output.stdout.starts_with("Spec is valid"),
                "{}",
                output.stdout
            );
            count += 1;
        }
    }
    assert!(count >= 1, "no examples found");
}

#[test]
fn validate_counts_in_words() {
    let spec = reconciler_tests::SpecDir::new("counts");
    spec.write(
        "s.toml",
        "[network.front]\n[service.web]\nimage = \"local/busybox:1\"\n[service.db]\nimage = \"local/busybox:1\"\n",
    );
    let output = reconciler(&["validate", &spec.arg()]).expect_code(0);
    assert_eq!(
        output.stdout,
        "Spec is valid: cluster `counts`, 0 nodes, 1 network, 2 services.\n"
    );
}

#[test]
fn an_unreachable_docker_is_a_clear_error() {
    let dir = repo_path("examples/local").display().to_string();
    let output = reconciler(&[
        "plan",
        &dir,
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    ])
    .expect_code(1);
    assert!(
        output
            .stderr
            .contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{}",
        output.stderr
    );
    let output =
        reconciler(&["plan", &dir, "--docker-host", "tcp://127.0.0.1:2375"]).expect_code(1);
    assert!(
        output.stderr.contains("unsupported Docker host"),
        "{}",
        output.stderr
    );
}

/// A holder id with a space was written into the lease label and read back
/// as another holder with an unreadable expiry: the lease looked free to
/// every controller. Such ids (and ttls a standby could not wait out) are
/// refused before anything starts.
#[test]
fn regression_a_holder_id_with_a_space_is_refused() {
    let proxy = DockerProxy::start(None);
    let host = proxy.host();
    let dir = repo_path("examples/local").display().to_string();
    for (flag, value, says) in [
        ("--holder-id", "ops laptop", "holder id"),
        ("--holder-id", "", "holder id"),
        ("--lease-ttl", "2h", "between 2s and 1h"),
    ] {
        let output =
            reconciler(&["run", "--dir", &dir, "--docker-host", &host, flag, value]).expect_code(2);
        assert!(
            output.stderr.contains(says),
            "{flag} {value:?}: {}",
            output.stderr
        );
    }
    assert_eq!(proxy.connections(), 0, "nothing may reach Docker");
}

/// A daemon that accepts the connection and never answers (hung on a full
/// SD card, say) must not freeze a command: each Docker call gives up after
/// `--docker-timeout` with an error that says what to do.
#[test]
fn a_docker_daemon_that_never_answers_times_out() {
    let hung = HungDocker::start();
    let spec = repo_path("examples/local").display().to_string();
    let host = hung.host();
    let output = reconciler(&[
        "plan",
        &spec,
        "--docker-host",
        &host,
        "--docker-timeout",
        "1s",
    ])
    .expect_code(1);
    assert!(
        output
            .stderr
            .contains("Docker did not answer `connect` within --docker-timeout"),
        "{}",
        output.stderr
    );
    for bad in ["0s", "500ms", "2h", "soon"] {
        let output = reconciler(&["plan", &spec, "--docker-timeout", bad]).expect_code(2);
        assert!(
            output.stderr.contains("--docker-timeout"),
            "{bad}: {}",
            output.stderr
        );
    }
}

/// `init` writes a starter repository that validates, refuses to write into
/// a folder that has files, and writes nothing when the arguments make an
/// invalid spec (no half-written folder, no staging folder left behind).
#[test]
fn init_writes_a_starter_repository_that_validates_or_nothing() {
    let parent = tempfile::tempdir().expect("temp dir");
    let dir = parent.path().join("cluster");
    let dir_arg = dir.display().to_string();
    let out = reconciler(&[
        "init",
        &dir_arg,
        "--cluster",
        "lab",
        "--node",
        "pi1=192.168.1.21",
        "--node",
        "pi2=192.168.1.22",
        "--user",
        "anna",
    ])
    .expect_code(0);
    assert!(
        out.stdout
            .contains("The boards are logged in as `anna`: given with --user."),
        "{}",
        out.stdout
    );
    let cluster = std::fs::read_to_string(dir.join("cluster.toml")).expect("cluster.toml");
    assert!(cluster.contains("[ssh]\nuser = \"anna\"\n"), "{cluster}");
    for name in ["cluster.toml", "nodes.toml", "services.toml", "README.md"] {
        assert!(dir.join(name).is_file(), "{name} missing:\n{}", out.stdout);
    }
    let valid = reconciler(&["validate", &dir_arg]).expect_code(0);
    assert_eq!(
        valid.stdout,
        "Spec is valid: cluster `lab`, 2 nodes, 0 networks, 1 service.\n"
    );
    let nodes = std::fs::read_to_string(dir.join("nodes.toml")).expect("nodes.toml");
    assert!(nodes.contains("[node.pi1]\naddress = \"192.168.1.21\"\nrole = \"manager\""));
    assert!(nodes.contains("[node.pi2]\naddress = \"192.168.1.22\"\nrole = \"worker\""));

    // An existing folder with files is left alone.
    let before = std::fs::read_to_string(dir.join("cluster.toml")).expect("cluster.toml");
    let again = reconciler(&["init", &dir_arg, "--cluster", "other"]).expect_code(1);
    assert!(
        again.stderr.contains("exists and is not empty"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("cluster.toml")).expect("cluster.toml"),
        before
    );

    // Arguments that make an invalid spec write nothing at all.
    let bad = parent.path().join("bad");
    let bad_arg = bad.display().to_string();
    let refused = reconciler(&["init", &bad_arg, "--cluster", "Bad Name"]).expect_code(1);
    assert!(
        refused.stderr.contains("nothing was written") && refused.stderr.contains("cluster.toml:"),
        "{}",
        refused.stderr
    );
    assert!(!bad.exists());
    let left: Vec<_> = std::fs::read_dir(parent.path())
        .expect("parent")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        left,
        vec!["cluster".to_string()],
        "something was left behind"
    );
    reconciler(&["init", &bad_arg, "--node", "pi1"]).expect_code(2);
}

/// The bash completion script, loaded by a real bash, completes the
/// subcommands; zsh and fish scripts name them too.
#[test]
fn completions_complete_the_commands_in_a_real_bash() {
    let script = reconciler(&["completions", "bash"]).expect_code(0);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &script.stdout).expect("write");
    let probe = format!(
        "source {}; COMP_WORDS=(reconciler in); COMP_CWORD=1; COMP_LINE='reconciler in'; COMP_POINT=${{#COMP_LINE}}; _reconciler reconciler in reconciler; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.path().display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let offered = String::from_utf8_lossy(&output.stdout);
    let mut offered: Vec<&str> = offered.split_whitespace().collect();
    offered.sort_unstable();
    assert_eq!(
        offered,
        ["init", "install"],
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for shell in ["zsh", "fish"] {
        let script = reconciler(&["completions", shell]).expect_code(0);
        assert!(
            script.stdout.contains("install") && script.stdout.contains("uninstall"),
            "{shell}"
        );
    }
}
