//! Commit signatures judged as `git verify-commit` judges them: commits
//! signed with SSH keys of three types (and one unlisted key, unsigned and
//! altered commits, two committer dates), against allowed-signers files
//! that vary the listed key's options (namespaces, validity, cert-authority,
//! the line's shape). Each verdict of `reconciler::source::signature` must
//! be real git's (`gpg.ssh.allowedSignersFile`, which runs ssh-keygen).

use std::path::{Path, PathBuf};
use std::process::Command;

use reconciler::source::signature::{verify_commit_at, AllowedSigners};

fn run(cwd: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ok(output: &std::process::Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A new key pair; returns the private key's path and the public key line.
fn key(dir: &Path, name: &str, kind: &[&str]) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut args = vec!["-q", "-N", "", "-C", name, "-f"];
    let file = path.display().to_string();
    args.push(&file);
    args.extend_from_slice(kind);
    ok(&run(dir, "ssh-keygen", &args, &[]), "ssh-keygen");
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("public key");
    (path, public.trim().to_string())
}

/// A commit in `repo` at `date`, signed with `key` when given.
fn commit(repo: &Path, key: Option<&Path>, date: &str, message: &str) -> String {
    let mut args = vec!["-c".to_string(), "gpg.format=ssh".to_string()];
    if let Some(key) = key {
        args.extend(["-c".into(), format!("user.signingkey={}", key.display())]);
    }
    args.extend(["commit", "--quiet", "--allow-empty", "-m", message].map(String::from));
    if key.is_some() {
        args.push("-S".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(
        &run(repo, "git", &args, &[("GIT_COMMITTER_DATE", date)]),
        "git commit",
    );
    ok(&run(repo, "git", &["rev-parse", "HEAD"], &[]), "rev-parse")
}

/// `commit`'s object with its message changed, signature kept.
fn altered(repo: &Path, commit: &str) -> String {
    let raw = ok(
        &run(repo, "git", &["cat-file", "commit", commit], &[]),
        "cat-file",
    );
    let changed = format!("{raw}\nand one more line\n");
    let file = repo.join("altered-commit");
    std::fs::write(&file, changed).expect("written");
    let file = file.display().to_string();
    ok(
        &run(
            repo,
            "git",
            &["hash-object", "-t", "commit", "-w", &file],
            &[],
        ),
        "hash-object",
    )
}

fn git_accepts(repo: &Path, signers: &Path, commit: &str) -> bool {
    let file = format!("gpg.ssh.allowedSignersFile={}", signers.display());
    run(repo, "git", &["-c", &file, "verify-commit", commit], &[])
        .status
        .success()
}

#[test]
fn commit_signatures_are_judged_as_git_verify_commit_judges_them() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let dir = dir.path();
    let (k1, p1) = key(dir, "alice", &["-t", "ed25519"]);
    let (k2, p2) = key(dir, "bob", &["-t", "ecdsa", "-b", "256"]);
    let (k3, p3) = key(dir, "carol", &["-t", "rsa", "-b", "2048"]);
    let (k4, _) = key(dir, "mallory", &["-t", "ed25519"]);
    let repo = dir.join("repo");
    ok(
        &run(dir, "git", &["init", "--quiet", "repo"], &[]),
        "git init",
    );
    let now = "2026-06-01T12:00:00Z";
    let old = "2021-06-01T12:00:00Z";
    let alice_now = commit(&repo, Some(&k1), now, "alice now");
    let commits = [
        ("alice in 2021", commit(&repo, Some(&k1), old, "alice then")),
        ("alice in 2026", alice_now.clone()),
        ("bob (ecdsa)", commit(&repo, Some(&k2), now, "bob")),
        ("carol (rsa)", commit(&repo, Some(&k3), now, "carol")),
        (
            "mallory (unlisted)",
            commit(&repo, Some(&k4), now, "mallory"),
        ),
        ("unsigned", commit(&repo, None, now, "nobody")),
        ("altered after signing", altered(&repo, &alice_now)),
    ];
    let alice_lines = [
        format!("alice@example.com {p1}"),
        format!("\"alice@example.com\" {p1}"),
        format!("alice@example.com,al@example.com {p1} a comment"),
        format!("alice@example.com namespaces=\"git\" {p1}"),
        format!("alice@example.com namespaces=\"file\" {p1}"),
        format!("alice@example.com namespaces=\"file,g?t\" {p1}"),
        format!("alice@example.com namespaces=\"*,!git\" {p1}"),
        format!("alice@example.com valid-after=\"20250101Z\" {p1}"),
        format!("alice@example.com valid-before=\"20250101Z\" {p1}"),
        format!("alice@example.com valid-after=\"20200101Z\",valid-before=\"20300101Z\" {p1}"),
        format!("alice@example.com valid-after=\"20260601120000Z\" {p1}"),
        format!("alice@example.com valid-before=\"20210601120000Z\" {p1}"),
        format!("alice@example.com cert-authority {p1}"),
        format!("alice@example.com namespaces=\"git\",valid-after=\"202606011201Z\" {p1}"),
    ];
    let mut accepted = 0;
    let mut refused = 0;
    let mut differences = Vec::new();
    for (index, alice) in alice_lines.iter().enumerate() {
        let text = format!(
            "# generated case {index}\n{alice}\nbob@example.com {p2}\ncarol@example.com namespaces=\"git\" {p3}\n"
        );
        let file = dir.join(format!("allowed-{index}"));
        std::fs::write(&file, &text).expect("written");
        let signers = AllowedSigners::load(&file).expect("the allowed signers file is read");
        for (what, commit) in &commits {
            let git = git_accepts(&repo, &file, commit);
            let ours = verify_commit_at(&repo, commit, &signers);
            if git {
                accepted += 1;
            } else {
                refused += 1;
            }
            if git != ours.is_ok() {
                differences.push(format!(
                    "{what} with `{alice}`: git {}, reconciler {ours:?}",
                    if git { "accepts" } else { "refuses" }
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "verdicts that differ from git verify-commit:\n{}",
        differences.join("\n")
    );
    // Both verdicts occur, so the comparison can fail either way.
    assert!(
        accepted >= 20 && refused >= 40,
        "{accepted} accepted, {refused} refused"
    );
    println!("{accepted} accepted and {refused} refused, as git verify-commit");
}
