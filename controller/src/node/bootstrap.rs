//! Doing the steps `plan::boards` planned: each step's root script, run in
//! order over the board's SSH session. Join tokens are read from a manager
//! over SSH just before joining and never appear in plans, logs or errors.

use reconciler_spec::{Role, Spec};

use super::shell::quote;
use super::ssh::redact;
use super::{NodeError, Session};
use crate::plan::boards::{hosts_block, NodePlan, Step};

/// Where a board records which cluster made it a swarm member, as which node.
pub const MEMBERSHIP_FILE: &str = "/etc/reconciler/membership";

/// Appended to `swarm init` and `join`: records the membership on the board
/// (so the cluster may claim the node later, even if this apply dies now) and
/// prints the node ID the board became.
fn record_membership(spec: &Spec) -> String {
    format!(
        "id=$(docker info --format '{{{{.Swarm.NodeID}}}}')\nmkdir -p /etc/reconciler\nprintf 'cluster=%s\\nnode_id=%s\\n' {} \"$id\" > {MEMBERSHIP_FILE}\necho \"node_id=$id\"\n",
        quote(&spec.cluster.name)
    )
}

/// Shell lines that replace `target` with what `write` puts in `$tmp`, a
/// new file beside it: written, flushed, then renamed over the old one, so
/// a power cut (a Pi's usual end) leaves the old file or the new, never a
/// truncated one. Mode and owner are the old file's. A file that cannot be
/// renamed over (a container's bind-mounted `/etc/hosts`) is rewritten in
/// place. `set -e` is the caller's.
fn replace_file(target: &str, write: &str) -> String {
    let target = quote(target);
    format!(
        "tmp=$(mktemp \"$(dirname {target})/.reconciler.XXXXXX\")\ntrap 'rm -f \"$tmp\"' EXIT\n{write}\nchmod --reference={target} \"$tmp\" 2>/dev/null || chmod 644 \"$tmp\"\nchown --reference={target} \"$tmp\" 2>/dev/null || true\nsync \"$tmp\" 2>/dev/null || sync\nmv -f \"$tmp\" {target} 2>/dev/null || cat \"$tmp\" > {target}\n"
    )
}

/// A step's shell script on board `node`. `secret` is the join token for
/// [`Step::Join`]. Every value from the spec is quoted: the script runs as
/// root.
fn script(step: &Step, node: &str, spec: &Spec, secret: Option<&str>) -> String {
    match step {
        Step::SetHostname { hostname } => {
            let hostname = quote(hostname);
            let write = replace_file("/etc/hostname", &format!("echo {hostname} > \"$tmp\""));
            format!(
                "set -e\n{write}if command -v hostnamectl >/dev/null 2>&1 && hostnamectl status >/dev/null 2>&1; then hostnamectl set-hostname {hostname}; else hostname {hostname}; fi\n"
            )
        }
        Step::WriteHosts => {
            let block = hosts_block(spec);
            let write = replace_file(
                "/etc/hosts",
                &format!("sed '/^# BEGIN reconciler/,/^# END reconciler/d' /etc/hosts > \"$tmp\"\ncat >> \"$tmp\" <<'RECONCILER_HOSTS'\n{block}RECONCILER_HOSTS"),
            );
            format!("set -e\n{write}")
        }
        Step::RepairPackages => {
            "set -e\nexport DEBIAN_FRONTEND=noninteractive\ndpkg --configure -a\n".to_string()
        }
        Step::InstallDocker => format!("set -e\nexport DEBIAN_FRONTEND=noninteractive\n{}\n", spec.bootstrap.install_docker),
        Step::StartDocker => format!(
            "{}\nfor i in $(seq 1 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done\necho 'Docker did not start within 60 s' >&2\nexit 1\n",
            spec.bootstrap.start_docker
        ),
        Step::AddDockerUsers { users } => users
            .iter()
            .map(|u| {
                let u = quote(u);
                format!("if id {u} >/dev/null 2>&1; then usermod -aG docker {u}; else echo no user {u} >&2; fi\n")
            })
            .collect(),
        Step::InitSwarm { advertise } => format!(
            "set -e\ndocker swarm init --advertise-addr {} >/dev/null\n{}",
            quote(advertise),
            record_membership(spec)
        ),
        Step::Join { manager, .. } => format!(
            "set -e\ndocker swarm join --token {} {} >/dev/null\n{}",
            quote(secret.unwrap_or_default()),
            quote(&reconciler_spec::address::host_port(manager, 2377)),
            record_membership(spec)
        ),
        Step::InstallPackages { packages } => super::config::install_packages(packages),
        Step::RemovePackages { packages } => super::config::remove_packages(packages),
        Step::WriteFile { path, origin, .. } => {
            match spec.nodes.get(node).and_then(|n| n.board.all_files().remove(path)) {
                Some(file) => super::config::write_file(path, &file, *origin),
                None => format!(
                    "echo {} >&2\nexit 1\n",
                    quote(&format!("the spec no longer declares {path}"))
                ),
            }
        }
        Step::RemoveFile { path, origin } => super::config::remove_file(path, *origin),
        Step::EditBootFile {
            file,
            path,
            text,
            added,
            removed,
        } => super::config::edit_boot_file(*file, path, text, added, removed),
        Step::Mount { points } => super::config::mount_now(points),
    }
}

/// Runs one board's steps in order over its session; `manager` is a session
/// to the anchor manager, used to read a join token right before joining.
/// Returns the swarm node ID the board became, when it initialized or joined.
pub async fn execute(
    plan: &NodePlan,
    spec: &Spec,
    session: &Session,
    manager: Option<&Session>,
    progress: &mut (dyn FnMut(usize, &str) + Send),
) -> Result<Option<String>, NodeError> {
    let mut joined_as = None;
    for (done, step) in plan.steps.iter().enumerate() {
        progress(done, &step.describe());
        let token = match step {
            Step::Join { role, .. } => {
                let manager = manager.unwrap_or(session);
                let kind = match role {
                    Role::Manager => "manager",
                    Role::Worker => "worker",
                };
                let output = manager
                    .run_as_root(
                        "read the join token",
                        &format!("docker swarm join-token -q {kind}\n"),
                    )
                    .await?;
                if !output.success() {
                    return Err(failed(
                        &plan.node,
                        "read the join token",
                        &output.stderr,
                        &[],
                    ));
                }
                Some(output.stdout.trim().to_string())
            }
            _ => None,
        };
        let secrets: Vec<&str> = token.iter().map(String::as_str).collect();
        let output = session
            .run_as_root(
                &step.describe(),
                &script(step, &plan.node, spec, token.as_deref()),
            )
            .await?;
        if !output.success() {
            return Err(failed(
                &plan.node,
                &step.describe(),
                &output.stderr,
                &secrets,
            ));
        }
        if let Some(id) = output
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("node_id="))
            .filter(|id| !id.is_empty())
        {
            joined_as = Some(id.to_string());
        }
    }
    Ok(joined_as)
}

fn failed(node: &str, what: &str, stderr: &str, secrets: &[&str]) -> NodeError {
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    NodeError::Failed {
        node: node.to_string(),
        what: what.to_string(),
        stderr: redact(&tail.join(" | "), secrets),
    }
}

#[cfg(test)]
mod tests {
    /// Regression (issue 22): /etc/hosts was truncated, then written, so a
    /// power cut in between left it empty or cut. The script is run by the
    /// real `sh` on a scratch file: the file is replaced (a new inode)
    /// with the new content, keeps its mode, and no temporary file stays.
    #[test]
    fn regression_board_files_are_replaced_atomically_not_rewritten_in_place() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().expect("temporary folder");
        let target = dir.path().join("hosts");
        std::fs::write(&target, "127.0.0.1 localhost\n").expect("written");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640))
            .expect("mode set");
        let before = std::fs::metadata(&target).expect("metadata").ino();
        let script = format!(
            "set -e\n{}",
            super::replace_file(
                &target.display().to_string(),
                &format!(
                    "cat {} > \"$tmp\"\necho '10.0.0.2 pi2' >> \"$tmp\"",
                    target.display()
                )
            )
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        let after = std::fs::metadata(&target).expect("metadata");
        assert_ne!(after.ino(), before, "the file was rewritten in place");
        assert_eq!(after.mode() & 0o777, 0o640);
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "127.0.0.1 localhost\n10.0.0.2 pi2\n"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("hosts")]);
    }

    use super::*;
    use crate::plan::boards::tests::spec;

    /// The join script needs the token; a failing join's error, which quotes
    /// the board's stderr (where `docker swarm join` may echo its arguments),
    /// must not carry it.
    #[test]
    fn a_failed_join_never_reports_its_token() {
        let spec = spec();
        let token =
            "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
        let step = Step::Join {
            role: Role::Worker,
            manager: "10.0.0.1".into(),
        };
        assert!(script(&step, "pi2", &spec, Some(token)).contains(token));
        let stderr = format!(
            "Error response from daemon: rejected join --token {token} 10.0.0.1:2377\ntimeout\n"
        );
        let error = failed("pi2", &step.describe(), &stderr, &[token]).to_string();
        assert!(!error.contains(token), "{error}");
        assert!(!error.contains("SWMTKN-1-3pu6"), "{error}");
        assert!(
            error.contains("rejected join --token [redacted] 10.0.0.1:2377"),
            "{error}"
        );
    }
}
