//! Tests that need no swarm: spec checking through the real CLI.

use reconciler_tests::proxy::DockerProxy;
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

#[test]
fn validate_reports_every_error_with_its_place_and_exits_1() {
    let dir = repo_path("spec/tests/bad-specs/many-errors-many-files")
        .display()
        .to_string();
    let output = reconciler(&["validate", &dir]).expect_code(1);
    for place in [
        "cluster.toml:5:12",
        "nodes/pis.toml:4:12",
        "services.toml:5:25",
        "services.toml:9:10",
    ] {
        assert!(
            output.stderr.contains(place),
            "missing {place} in:\n{}",
            output.stderr
        );
    }
    assert!(
        output.stderr.ends_with("spec is invalid: 4 errors\n"),
        "{}",
        output.stderr
    );
}

#[test]
fn every_example_validates() {
    let examples = repo_path("examples");
    let mut count = 0;
    for entry in
        std::fs::read_dir(&examples).unwrap_or_else(|e| panic!("cannot read examples: {e}"))
    {
        let path = entry.unwrap_or_else(|e| panic!("bad entry: {e}")).path();
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
