//! What each board still needs: spec + the facts boards report → the steps,
//! in order (hostname, /etc/hosts, repair packages, install Docker, start
//! Docker, docker group, then `swarm init` on the first manager or `join`).
//! Pure, like the rest of `plan`: every step is check-then-apply, so a board
//! that already has it gets no step and a second run changes nothing. The
//! steps are run over SSH by `node::bootstrap`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use reconciler_spec::{Role, Spec};
use serde::Serialize;

use crate::observed::{BootFile, Facts, FileOrigin, LocalSwarm};

/// One thing a board still needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    SetHostname {
        hostname: String,
    },
    WriteHosts,
    /// `dpkg --configure -a`: a package installation was cut off (power,
    /// a killed apt-get), and apt refuses to run until it is finished.
    RepairPackages,
    InstallDocker,
    StartDocker,
    AddDockerUsers {
        users: Vec<String>,
    },
    /// `docker swarm init` on the first manager.
    InitSwarm {
        advertise: String,
    },
    /// `docker swarm join` (token read from a manager at execution time).
    Join {
        role: Role,
        manager: String,
    },
    /// Declared packages the board lacks (`[board] packages`).
    InstallPackages {
        packages: BTreeSet<String>,
    },
    /// Packages declared absent, or that the cluster installed and the
    /// spec no longer declares.
    RemovePackages {
        packages: BTreeSet<String>,
    },
    /// A declared file the board lacks or has otherwise.
    WriteFile {
        path: String,
        change: FileChange,
        /// What the board's record says of it already (`None`: not yet the cluster's).
        origin: Option<FileOrigin>,
    },
    /// A file the cluster wrote that the spec no longer declares.
    RemoveFile {
        path: String,
        origin: FileOrigin,
    },
    /// `cmdline.txt` or `config.txt` with the declared options or lines
    /// added and those the spec dropped (that the cluster added) taken out;
    /// a reboot applies it.
    EditBootFile {
        file: BootFile,
        path: String,
        /// The whole new text.
        #[serde(skip)]
        text: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// Mount what /etc/fstab already holds for these declared points.
    Mount {
        points: Vec<String>,
    },
}

/// How a file's content differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentDiff {
    /// The changed lines with their context (`plan::text_diff`).
    Lines(Vec<String>),
    /// Why no diff is shown: a secret, a binary or large file.
    NotShown(String),
}

/// How a declared file differs on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FileChange {
    /// The board has none.
    Create { mode: u32, owner: String },
    /// The board's differs.
    Update {
        /// The content differs, and how.
        content: Option<ContentDiff>,
        /// `(board's, spec's)` when they differ.
        mode: Option<(u32, u32)>,
        owner: Option<(String, String)>,
    },
}

impl Step {
    /// How a plan shows the step (never with a token).
    pub fn describe(&self) -> String {
        match self {
            Step::SetHostname { hostname } => format!("set hostname to {hostname:?}"),
            Step::WriteHosts => "write the managed block of /etc/hosts".into(),
            Step::RepairPackages => {
                "finish the interrupted package installation (dpkg --configure -a)".into()
            }
            Step::InstallDocker => "install Docker".into(),
            Step::StartDocker => "start Docker".into(),
            Step::AddDockerUsers { users } => {
                format!("add {} to the docker group", users.join(", "))
            }
            Step::InitSwarm { advertise } => {
                format!("initialize the swarm (advertise {advertise})")
            }
            Step::Join { role, manager } => {
                format!("join the swarm as {} via {manager}", role.as_str())
            }
            Step::InstallPackages { packages } => format!(
                "install package(s) {}",
                packages.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Step::RemovePackages { packages } => format!(
                "remove package(s) {}",
                packages.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Step::WriteFile { path, change, .. } => match change {
                FileChange::Create { mode, owner } => {
                    format!("create {path} ({mode:04o} {owner})")
                }
                FileChange::Update {
                    content,
                    mode,
                    owner,
                } => {
                    let mut what = Vec::new();
                    if content.is_some() {
                        what.push("content".to_string());
                    }
                    if let Some((from, to)) = mode {
                        what.push(format!("mode {from:04o} → {to:04o}"));
                    }
                    if let Some((from, to)) = owner {
                        what.push(format!("owner {from} → {to}"));
                    }
                    format!("update {path}: {}", what.join(", "))
                }
            },
            Step::EditBootFile {
                file,
                added,
                removed,
                ..
            } => {
                let mut what = Vec::new();
                if !added.is_empty() {
                    what.push(format!("add {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    what.push(format!("take out {}", removed.join(", ")));
                }
                let when = if *file == BootFile::Fstab {
                    "mounted now and at every boot"
                } else {
                    "applied at the next reboot: `reconciler upgrade` takes the board"
                };
                format!("{}: {} ({when})", file.file_name(), what.join("; "))
            }
            Step::Mount { points } => format!("mount {}", points.join(", ")),
            Step::RemoveFile { path, origin } => match origin {
                FileOrigin::Created => format!("remove {path} (the cluster created it)"),
                FileOrigin::Replaced => {
                    format!("put the board's own {path} back (the cluster had replaced it)")
                }
            },
        }
    }

    /// Whether the step is the board's declared configuration (`[board]`)
    /// rather than making it a swarm member.
    pub fn is_board_config(&self) -> bool {
        matches!(
            self,
            Step::InstallPackages { .. }
                | Step::RemovePackages { .. }
                | Step::WriteFile { .. }
                | Step::RemoveFile { .. }
                | Step::EditBootFile { .. }
                | Step::Mount { .. }
        )
    }

    /// Lines a plan shows under the step: a file's diff.
    pub fn detail(&self) -> Vec<String> {
        match self {
            Step::WriteFile {
                change:
                    FileChange::Update {
                        content: Some(diff),
                        ..
                    },
                ..
            } => match diff {
                ContentDiff::Lines(lines) if lines.is_empty() => {
                    vec!["(only line endings differ)".into()]
                }
                ContentDiff::Lines(lines) => lines.clone(),
                ContentDiff::NotShown(why) => vec![format!("(content not shown: {why})")],
            },
            _ => Vec::new(),
        }
    }
}

/// The steps of one board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    pub node: String,
    pub steps: Vec<Step>,
}

/// Why the boards cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// A board is not what the spec says (`arch`): probably the wrong address.
    #[error("node {node}: the spec expects architecture {expected}, the board reports {found}")]
    ArchMismatch {
        node: String,
        expected: String,
        found: String,
    },
    /// No manager of the spec answered: nobody to form the swarm or join through.
    #[error("no manager of the spec is reachable, so the swarm cannot be formed or joined")]
    NoManager,
    /// No reached manager is in a swarm, but a manager was not reached: it
    /// may hold the swarm, and a new one would split the cluster.
    #[error("refusing to initialize a new swarm: manager(s) {} could not be reached (see above), and if they are in a swarm a new one would split the cluster; bring them back (or fix their SSH access) and apply again", .managers.join(", "))]
    ManagersUnreached { managers: Vec<String> },
    /// Boards of the spec are in a swarm that no reachable manager of the spec
    /// is in (their manager was re-flashed, or it is another cluster's swarm).
    #[error("refusing to initialize a new swarm: node(s) {} are already in a swarm that no reachable manager of the spec is in; if their manager was lost, run `docker swarm leave` on them (the next apply joins them to the new swarm), or restore the manager", .nodes.join(", "))]
    InAnotherSwarm { nodes: Vec<String> },
}

/// The managed block of /etc/hosts: every node of the spec.
pub fn hosts_block(spec: &Spec) -> String {
    let mut block = String::from("# BEGIN reconciler (managed by reconciler: do not edit)\n");
    for node in spec.nodes.values() {
        let _ = writeln!(block, "{} {}", node.address, node.name);
    }
    block.push_str("# END reconciler\n");
    block
}

/// The hash a board reports of its managed /etc/hosts block (`Facts::hosts_block`).
pub(crate) fn sha256_hex(text: &str) -> String {
    crate::digest::sha256_hex(text.as_bytes())
}

/// What `[maintenance]` will do to a board under `run --ssh`: the packages
/// it upgrades in the window (known when the facts counted them), a
/// critical condition `drain_on` drains it for.
fn maintenance_notes(spec: &Spec, node: &str, facts: &Facts) -> Vec<String> {
    let mut notes = Vec::new();
    if let (Some(count), Some(window)) = (
        facts.upgradable_packages.filter(|n| *n > 0),
        spec.maintenance.window,
    ) {
        notes.push(format!(
            "node.{node}: {count} package(s) can be upgraded: `reconciler run --ssh` takes it in the window {window} (drain, upgrade, reboot when required, back), or now: `reconciler upgrade`"
        ));
    }
    let drain_on = &spec.maintenance.drain_on;
    for condition in crate::health::conditions(facts) {
        let named = match condition.kind {
            crate::health::ConditionKind::DiskFull => reconciler_spec::DrainCondition::DiskFull,
            crate::health::ConditionKind::UnderVoltage => {
                reconciler_spec::DrainCondition::UnderVoltage
            }
            _ => continue,
        };
        if condition.severity == crate::health::Severity::Critical && drain_on.contains(&named) {
            notes.push(format!(
                "node.{node}: {}: `reconciler run --ssh` drains it until that clears (drain_on)",
                condition.message
            ));
        }
    }
    notes
}

/// What the boards cannot be given and a person should know: a
/// `docker_users` entry that is no user of the board (bootstrap adds users
/// to the docker group; it does not create them).
pub fn notes(spec: &Spec, facts: &BTreeMap<String, Facts>) -> Vec<String> {
    let mut notes = Vec::new();
    for (node, f) in facts {
        if let Some(declared) = spec.nodes.get(node) {
            notes.extend(super::board_config::notes(node, &declared.board, &f.config));
        }
        notes.extend(maintenance_notes(spec, node, f));
        if f.reboot_required {
            let when = spec.maintenance.window.map_or_else(
                || "`reconciler upgrade` reboots the boards that need it, one at a time".to_string(),
                |w| format!("`reconciler run --ssh` reboots it in the window {w}, one board at a time (or now: `reconciler upgrade`)"),
            );
            notes.push(format!(
                "node.{node}: a reboot is pending (/var/run/reboot-required); {when}"
            ));
        }
        let Some(users) = &f.users else { continue };
        for user in &spec.bootstrap.docker_users {
            if !users.contains(user) {
                notes.push(format!(
                    "node.{node}: user {user:?} does not exist on this board, so it is not added to the docker group; create it (Raspberry Pi Imager or cloud-init's user-data) or remove it from [bootstrap] docker_users"
                ));
            }
        }
    }
    notes
}

/// What every reachable board needs. `facts` holds the boards that answered;
/// the others are skipped (reported by the caller) and handled next time.
pub fn plan(spec: &Spec, facts: &BTreeMap<String, Facts>) -> Result<Vec<NodePlan>, BootstrapError> {
    let hosts = hosts_block(spec);
    let hosts_hash = sha256_hex(&hosts);
    let swarm_member = |f: &Facts| matches!(f.local_swarm(), Some(LocalSwarm::Active { .. }));
    // The manager everyone joins through: one already in a swarm, else the first manager.
    let existing = spec
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager)
        .find(|n| facts.get(&n.name).is_some_and(swarm_member));
    let first_manager = spec
        .nodes
        .values()
        .find(|n| n.role == Role::Manager && facts.contains_key(&n.name));
    let needs_swarm = facts
        .values()
        .any(|f| !swarm_member(f) && !returns_to_its_swarm(f));
    if existing.is_none() && needs_swarm {
        check_safe_to_form(spec, facts)?;
    }
    let anchor = existing.or(first_manager);
    let mut plans = Vec::new();
    for node in spec.nodes.values() {
        let Some(f) = facts.get(&node.name) else {
            continue;
        };
        if let Some(expected) = &node.arch {
            if !f.arch_matches(expected) {
                return Err(BootstrapError::ArchMismatch {
                    node: node.name.clone(),
                    expected: expected.clone(),
                    found: f.arch.clone(),
                });
            }
        }
        let mut steps = Vec::new();
        if spec.bootstrap.hostname && f.hostname != node.name {
            steps.push(Step::SetHostname {
                hostname: node.name.clone(),
            });
        }
        if spec.bootstrap.hosts_file && f.hosts_block != hosts_hash {
            steps.push(Step::WriteHosts);
        }
        if f.packages_interrupted {
            steps.push(Step::RepairPackages);
        }
        if !f.docker_installed() {
            steps.push(Step::InstallDocker);
        }
        if !f.docker_running() {
            steps.push(Step::StartDocker);
        }
        // A user the board does not have cannot be added (the step would
        // be planned again on every reconcile): it is a note instead.
        let missing: Vec<String> = spec
            .bootstrap
            .docker_users
            .iter()
            .filter(|u| !f.docker_group.contains(u))
            .filter(|u| f.users.as_ref().is_none_or(|users| users.contains(u)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            steps.push(Step::AddDockerUsers { users: missing });
        }
        steps.extend(super::board_config::steps(
            &node.board,
            &f.config,
            spec.controller.prune,
        ));
        if !swarm_member(f) && !returns_to_its_swarm(f) {
            let anchor = anchor.ok_or(BootstrapError::NoManager)?;
            if anchor.name == node.name && existing.is_none() {
                steps.push(Step::InitSwarm {
                    advertise: node.address.clone(),
                });
            } else {
                steps.push(Step::Join {
                    role: node.role,
                    manager: anchor.address.clone(),
                });
            }
        }
        if !steps.is_empty() {
            plans.push(NodePlan {
                node: node.name.clone(),
                steps,
            });
        }
    }
    // The swarm is initialized before anyone joins it.
    plans.sort_by_key(|p| !p.steps.iter().any(|s| matches!(s, Step::InitSwarm { .. })));
    Ok(plans)
}

/// A board whose Docker is stopped but keeps swarm state on disk (a power
/// cut, a crash): starting Docker brings it back into its swarm, so it gets
/// no `init` or `join` now; the next apply sees what it is.
pub(crate) fn returns_to_its_swarm(facts: &Facts) -> bool {
    !facts.docker_running() && facts.swarm_on_disk
}

/// A new swarm is formed only when every manager of the spec answered and
/// none of the spec's boards is in any swarm: otherwise the swarm may exist
/// where we cannot see it, and a second one would split the cluster.
fn check_safe_to_form(spec: &Spec, facts: &BTreeMap<String, Facts>) -> Result<(), BootstrapError> {
    let unreached: Vec<String> = spec
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager && !facts.contains_key(&n.name))
        .map(|n| n.name.clone())
        .collect();
    if !unreached.is_empty() {
        return Err(BootstrapError::ManagersUnreached {
            managers: unreached,
        });
    }
    let in_a_swarm: Vec<String> = facts
        .iter()
        .filter(|(_, f)| {
            returns_to_its_swarm(f) || !matches!(f.local_swarm(), None | Some(LocalSwarm::Inactive))
        })
        .map(|(name, _)| name.clone())
        .collect();
    if !in_a_swarm.is_empty() {
        return Err(BootstrapError::InAnotherSwarm { nodes: in_a_swarm });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two boards, a manager and an arm64 worker (also used by
    /// `node::bootstrap`'s tests of the steps' scripts).
    pub(crate) fn spec() -> Spec {
        let text = "[cluster]\nname = \"b\"\n[bootstrap]\ndocker_users = [\"pi\"]\n[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\narch = \"arm64\"\n";
        match reconciler_spec::load_files(vec![("s.toml".into(), text.to_string())]) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        }
    }

    fn bare(hostname: &str, arch: &str) -> Facts {
        Facts {
            hostname: hostname.into(),
            arch: arch.into(),
            ..Facts::default()
        }
    }

    fn ready(spec: &Spec, name: &str, arch: &str) -> Facts {
        Facts {
            hostname: name.into(),
            arch: arch.into(),
            docker: crate::observed::BoardDocker::Running {
                version: None,
                swarm: LocalSwarm::Active { node_id: None },
            },
            hosts_block: sha256_hex(&hosts_block(spec)),
            docker_group: vec!["pi".into()],
            ..Facts::default()
        }
    }

    /// Regression (issue 22): a `docker_users` entry the board does not
    /// have was a root step on every board on every reconcile, and `plan`
    /// never said "no changes". It is now a note; a board that could not
    /// list its users gets the step as before.
    #[test]
    fn regression_a_docker_user_the_board_does_not_have_is_a_note_not_a_step_forever() {
        let spec = spec();
        let mut board = ready(&spec, "pi1", "aarch64");
        board.docker_group = Vec::new();
        board.users = Some(vec!["root".into(), "alice".into()]);
        let facts = BTreeMap::from([("pi1".to_string(), board.clone())]);
        assert_eq!(plan(&spec, &facts).unwrap_or_default(), Vec::new());
        let notes = notes(&spec, &facts);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("node.pi1: user \"pi\" does not exist"),
            "{notes:?}"
        );
        board.users = None;
        let facts = BTreeMap::from([("pi1".to_string(), board)]);
        assert_eq!(
            plan(&spec, &facts).unwrap_or_default()[0].steps,
            vec![Step::AddDockerUsers {
                users: vec!["pi".into()]
            }]
        );
        assert!(super::notes(&spec, &facts).is_empty());
    }

    /// A board cut off in the middle of apt-get: apt refuses every install
    /// until dpkg finishes, so that comes first (and alone on a board that
    /// is otherwise ready).
    #[test]
    fn an_interrupted_package_installation_is_finished_first() {
        let spec = spec();
        let mut cut_off = bare("pi1", "aarch64");
        cut_off.packages_interrupted = true;
        let facts = BTreeMap::from([("pi1".to_string(), cut_off)]);
        let plans = plan(&spec, &facts).unwrap_or_default();
        let steps = plans.first().map(|p| p.steps.clone()).unwrap_or_default();
        assert_eq!(
            steps.get(1..3),
            Some(&[Step::RepairPackages, Step::InstallDocker][..]),
            "{steps:?}"
        );
    }

    #[test]
    fn bare_boards_get_everything_and_the_manager_inits_first() {
        let spec = spec();
        let facts = BTreeMap::from([
            ("pi2".to_string(), bare("raspberrypi", "aarch64")),
            ("pi1".to_string(), bare("raspberrypi", "aarch64")),
        ]);
        let plans = plan(&spec, &facts).unwrap_or_default();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].node, "pi1");
        assert_eq!(
            plans[0].steps,
            vec![
                Step::SetHostname {
                    hostname: "pi1".into()
                },
                Step::WriteHosts,
                Step::InstallDocker,
                Step::StartDocker,
                Step::AddDockerUsers {
                    users: vec!["pi".into()]
                },
                Step::InitSwarm {
                    advertise: "10.0.0.1".into()
                },
            ]
        );
        assert_eq!(
            plans[1].steps.last(),
            Some(&Step::Join {
                role: Role::Worker,
                manager: "10.0.0.1".into()
            })
        );
    }

    #[test]
    fn ready_boards_need_nothing() {
        let spec = spec();
        let facts = BTreeMap::from([
            ("pi1".to_string(), ready(&spec, "pi1", "x86_64")),
            ("pi2".to_string(), ready(&spec, "pi2", "aarch64")),
        ]);
        assert_eq!(plan(&spec, &facts), Ok(Vec::new()));
    }

    #[test]
    fn a_new_board_joins_through_the_existing_manager_and_arch_is_checked() {
        let spec = spec();
        let facts = BTreeMap::from([
            ("pi1".to_string(), ready(&spec, "pi1", "x86_64")),
            ("pi2".to_string(), bare("pi2", "armv7l")),
        ]);
        assert_eq!(
            plan(&spec, &facts),
            Err(BootstrapError::ArchMismatch {
                node: "pi2".into(),
                expected: "arm64".into(),
                found: "armv7l".into()
            })
        );
        let facts = BTreeMap::from([
            ("pi1".to_string(), ready(&spec, "pi1", "x86_64")),
            ("pi2".to_string(), bare("pi2", "aarch64")),
        ]);
        let plans = plan(&spec, &facts).unwrap_or_default();
        assert_eq!(
            plans[0].steps.last(),
            Some(&Step::Join {
                role: Role::Worker,
                manager: "10.0.0.1".into()
            })
        );
    }

    /// Regression (issue 10): with the existing manager down (or its host key
    /// changed) and another spec manager fresh, `swarm init` ran on the fresh
    /// one and the workers joined a new, empty swarm: a split cluster.
    #[test]
    fn regression_a_new_swarm_is_never_formed_while_a_spec_manager_is_unreached() {
        let text = "[cluster]\nname = \"b\"\n[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n[node.pi3]\naddress = \"10.0.0.3\"\nrole = \"manager\"\n";
        let spec = match reconciler_spec::load_files(vec![("s.toml".into(), text.to_string())]) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        // pi1 did not answer; pi3 is a fresh manager, pi2 a fresh worker.
        let facts = BTreeMap::from([
            ("pi2".to_string(), bare("pi2", "aarch64")),
            ("pi3".to_string(), bare("pi3", "aarch64")),
        ]);
        let refused = plan(&spec, &facts);
        assert_eq!(
            refused,
            Err(BootstrapError::ManagersUnreached {
                managers: vec!["pi1".into()]
            })
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(
                "refusing to initialize a new swarm: manager(s) pi1 could not be reached"
            ),
            "{message}"
        );
        // Every manager answered and nobody is in a swarm: formed as before.
        let facts = BTreeMap::from([
            ("pi1".to_string(), bare("pi1", "aarch64")),
            ("pi2".to_string(), bare("pi2", "aarch64")),
            ("pi3".to_string(), bare("pi3", "aarch64")),
        ]);
        let plans = plan(&spec, &facts).unwrap_or_default();
        assert!(plans[0]
            .steps
            .iter()
            .any(|s| matches!(s, Step::InitSwarm { .. })));
        // With the swarm's manager up, a missing second manager does not stop a join.
        let facts = BTreeMap::from([
            ("pi1".to_string(), ready(&spec, "pi1", "aarch64")),
            ("pi2".to_string(), bare("pi2", "aarch64")),
        ]);
        let plans = plan(&spec, &facts).unwrap_or_default();
        assert!(matches!(plans[0].steps.last(), Some(Step::Join { .. })));
    }

    /// Regression (issue 10): a re-flashed manager would initialize a new swarm
    /// while the workers still sat in the old one.
    #[test]
    fn regression_boards_in_a_swarm_no_reachable_manager_is_in_are_never_given_a_new_one() {
        let spec = spec();
        let facts = BTreeMap::from([
            ("pi1".to_string(), bare("pi1", "x86_64")),
            ("pi2".to_string(), ready(&spec, "pi2", "aarch64")),
        ]);
        assert_eq!(
            plan(&spec, &facts),
            Err(BootstrapError::InAnotherSwarm {
                nodes: vec!["pi2".into()]
            })
        );
    }

    /// Found by the power-cut test: a manager whose Docker had stopped got a
    /// `join` planned (it looked like a fresh board), and would have got an
    /// `init` had it been the only manager. A stopped Docker with swarm state
    /// on disk only gets started; the swarm takes it back.
    #[test]
    fn a_board_whose_docker_stopped_is_started_not_joined_or_initialized() {
        let spec = spec();
        let mut stopped = ready(&spec, "pi2", "aarch64");
        stopped.docker = crate::observed::BoardDocker::Stopped;
        stopped.swarm_on_disk = true;
        let facts = BTreeMap::from([
            ("pi1".to_string(), ready(&spec, "pi1", "x86_64")),
            ("pi2".to_string(), stopped.clone()),
        ]);
        let plans = plan(&spec, &facts).unwrap_or_default();
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].steps, vec![Step::StartDocker]);
        // The only manager stopped: started, never a new swarm.
        let mut manager = stopped;
        manager.hostname = "pi1".into();
        manager.arch = "x86_64".into();
        let facts = BTreeMap::from([
            ("pi1".to_string(), manager),
            ("pi2".to_string(), bare("pi2", "aarch64")),
        ]);
        assert_eq!(
            plan(&spec, &facts),
            Err(BootstrapError::InAnotherSwarm {
                nodes: vec!["pi1".into()]
            })
        );
    }
}
