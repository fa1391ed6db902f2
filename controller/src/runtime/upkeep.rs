//! Looking after the boards under `reconciler run --ssh`, once a reconcile
//! found nothing else to do (`[maintenance]`): old images pruned hourly
//! (`prune_images`), boards drained for a critical condition and given
//! back (`drain_on`), and rolling upgrades. Inside `[maintenance]
//! window`, after the reconcile's own work, the first batch of the order
//! `reconciler upgrade` would take (one batch per reconcile, so a push
//! waits for at most one board's turn). A board whose upgrade was cut off
//! (its node carries the maintenance mark) is finished whatever the time:
//! leaving it drained would be worse than finishing late. Outside the
//! window, and without one, boards are only looked at.

use std::sync::Arc;

use reconciler_spec::Spec;

use super::report::LogProgress;
use super::step::{Controller, ReconcileError};
use crate::maintenance::order::{self, Order, Reason};
use crate::maintenance::rolling::{placed_tasks, Rolling};
use crate::maintenance::SwarmLink;
use crate::maintenance::{health_drain, prune};
use crate::observed::Observed;
use crate::pipeline::Reach;
use crate::swarm::Swarm;

/// What looking after the boards remembers between reconciles (lost on a
/// restart, which costs one early prune and one repeated log line).
#[derive(Debug, Default)]
pub(super) struct Memory {
    /// Boards `drain_on` would drain but may not, as last said in the log
    /// (said again only when it changes).
    held: Vec<String>,
    /// When each board's old images were last pruned (`prune_images`).
    pruned_at: std::collections::BTreeMap<String, std::time::Instant>,
}

/// What upkeep decided this reconcile, for the status and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// No window and nothing cut off: upgrades are `reconciler upgrade`'s.
    Off,
    /// Every board is up to date.
    UpToDate,
    /// Boards wait for the window.
    Waiting { boards: usize, window: String },
    /// The order cannot be taken now (a board unreachable, quorum, a
    /// service with nowhere to go): said, and looked at again next time.
    Held(String),
    /// This batch is taken now (its boards, named).
    Take(String),
}

impl Controller {
    /// Takes one batch of the rolling upgrade when the window (or a cut-off
    /// upgrade) says so, under the one-writer lease.
    pub(super) async fn upkeep(
        &mut self,
        spec: &Spec,
        swarm: &Swarm,
        observed: &Observed,
    ) -> Result<(), ReconcileError> {
        let Reach::Boards(access) = self.options.reach.clone() else {
            return Ok(());
        };
        // Where a drained board's tasks may go is judged on every service.
        debug_assert_eq!(observed.service_scope, crate::observed::ServiceScope::All);
        let now = crate::timestamp::unix_now();
        let in_window = spec.maintenance.window.is_some_and(|w| w.contains(now));
        let cut_off = observed
            .nodes
            .iter()
            .any(|n| n.labels.contains_key(crate::labels::MAINTENANCE));
        let health = !spec.maintenance.drain_on.is_empty()
            || (observed.nodes.iter()).any(|n| n.labels.contains_key(crate::labels::HEALTH_DRAIN));
        let upgrades = cut_off || spec.maintenance.window.is_some();
        if !upgrades {
            self.say_upkeep(&Decision::Off);
        }
        let prune = spec.maintenance.prune_images.is_some();
        if !upgrades && !health && !prune {
            return Ok(());
        }
        let looked = self.fleet.look(spec, access.ssh, access.parallel).await;
        if let Some(older_than) = spec.maintenance.prune_images {
            self.prune_images(swarm, &looked, older_than, access.parallel)
                .await?;
        }
        if !health && !upgrades {
            return Ok(());
        }
        let placed = placed_tasks(swarm, observed).await?;
        if health {
            let actions = health_drain::decide(spec, observed, &looked.facts, &placed);
            if self.drain_for_health(swarm, &actions).await? {
                // The swarm changed: upgrades are judged on the next pass.
                let _ = self.shared.triggers.send(crate::reconcile::Trigger::Upkeep);
                return Ok(());
            }
        }
        if !upgrades {
            return Ok(());
        }
        let (decision, order) = match order::order(spec, observed, &looked.facts, &placed, &[]) {
            Err(refused) => (Decision::Held(refused.to_string()), None),
            Ok(order) => decide(order, in_window, spec),
        };
        self.say_upkeep(&decision);
        let Some(batch) = order.and_then(|o| o.batches.into_iter().next()) else {
            return Ok(());
        };
        let link = Arc::new(SwarmLink::new(
            swarm.clone(),
            &spec.cluster.name,
            self.options.docker_timeout,
        ));
        let current = Arc::clone(&link);
        let keeper = match self.writer.take(swarm).await? {
            Some(holder) => {
                self.status().maintenance =
                    Some(format!("upgrades are left to the lease holder {holder}"));
                return Ok(());
            }
            None => self.writer.keep_recovering(Arc::new(move || current.get())),
        };
        let rolling = Rolling {
            spec,
            link: &link,
            sessions: &looked.sessions,
            ssh: access.ssh,
            lease: keeper.guard(),
            progress: Arc::new(std::sync::Mutex::new(LogProgress {
                revision: self.good_revision.clone(),
            })),
        };
        let result = rolling.take(std::slice::from_ref(&batch)).await;
        self.writer.stop(keeper).await;
        // The boards changed under the fleet (a manager may have rebooted
        // under its tunnel): looked at afresh next time.
        for turn in &batch {
            self.fleet.forget_facts(&turn.node);
        }
        self.fleet.drop_tunnel();
        self.swarm = None;
        result?;
        let names: Vec<&str> = batch.iter().map(|t| t.node.as_str()).collect();
        tracing::info!(nodes = %names.join(","), "rolling upgrade: {} done", names.join(", "));
        // The next batch (or the end) is looked at now, not at the resync.
        let _ = self.shared.triggers.send(crate::reconcile::Trigger::Upkeep);
        Ok(())
    }

    /// Removes old unused images from the boards not pruned for
    /// [`prune::EVERY`], under the lease; a board that fails is said in
    /// the log and tried again next time.
    async fn prune_images(
        &mut self,
        swarm: &Swarm,
        looked: &crate::node::fleet::Looked,
        older_than: std::time::Duration,
        parallel: usize,
    ) -> Result<(), ReconcileError> {
        let due: Vec<(String, Arc<crate::node::Session>)> = looked
            .sessions
            .iter()
            .filter(|(node, _)| {
                looked.facts.get(*node).is_some_and(|f| f.docker_running())
                    && (self.upkeep.pruned_at.get(*node))
                        .is_none_or(|at| at.elapsed() >= prune::EVERY)
            })
            .map(|(node, session)| (node.clone(), Arc::clone(session)))
            .collect();
        if due.is_empty() || self.writer.take(swarm).await?.is_some() {
            return Ok(());
        }
        let keeper = self.writer.keep(swarm.clone());
        let guard = keeper.guard();
        let script = prune::script(older_than);
        let results = crate::node::fanout::for_each(due, parallel, |(node, session)| {
            let script = script.clone();
            let guard = guard.clone();
            async move {
                if !guard.held() {
                    return (node, None);
                }
                let output = session.run_as_root("prune old images", &script).await;
                (node, Some(output))
            }
        })
        .await;
        self.writer.stop(keeper).await;
        for (node, output) in results {
            match output {
                Some(Ok(output)) if output.success() => {
                    self.upkeep
                        .pruned_at
                        .insert(node.clone(), std::time::Instant::now());
                    let removed = prune::untagged(&output.stdout);
                    let freed = prune::reclaimed(&output.stdout).unwrap_or("0B");
                    if removed.is_empty() {
                        tracing::debug!(node, freed, "node {node}: no old images to prune");
                    } else {
                        let named: Vec<&str> = removed.iter().take(10).copied().collect();
                        let more = if removed.len() > named.len() {
                            ", ..."
                        } else {
                            ""
                        };
                        tracing::info!(
                            node,
                            freed,
                            "node {node}: pruned {} old image(s) ({}{more}), {freed} freed",
                            removed.len(),
                            named.join(", ")
                        );
                    }
                }
                Some(Ok(output)) => {
                    tracing::warn!(
                        node,
                        "node {node}: pruning old images failed: {}",
                        output.stderr.trim()
                    );
                }
                Some(Err(error)) => {
                    tracing::warn!(node, %error, "node {node}: pruning old images failed");
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Drains and gives back boards for their health, under the lease;
    /// whether anything was written.
    async fn drain_for_health(
        &mut self,
        swarm: &Swarm,
        actions: &[health_drain::Action],
    ) -> Result<bool, ReconcileError> {
        use crate::labels::HEALTH_DRAIN;
        use health_drain::Action;
        let held: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Held { node, why } => Some(format!("node.{node}: {why}")),
                _ => None,
            })
            .collect();
        for line in held.iter().filter(|l| !self.upkeep.held.contains(l)) {
            tracing::warn!("{line}");
        }
        self.upkeep.held = held;
        let writes: Vec<&Action> = actions
            .iter()
            .filter(|a| !matches!(a, Action::Held { .. }))
            .collect();
        if writes.is_empty() {
            return Ok(false);
        }
        if self.writer.take(swarm).await?.is_some() {
            return Ok(false);
        }
        let keeper = self.writer.keep(swarm.clone());
        let guard = keeper.guard();
        let mut result = Ok(());
        for action in writes {
            if !guard.held() {
                break;
            }
            result = match action {
                Action::Drain {
                    node,
                    node_id,
                    condition,
                    before,
                    why,
                } => {
                    tracing::warn!(
                        node,
                        condition = condition.as_str(),
                        "node {node} drained for its health: {why}"
                    );
                    let mark = health_drain::mark(*condition, *before);
                    swarm
                        .mark_node(
                            node_id,
                            HEALTH_DRAIN,
                            Some(&mark),
                            reconciler_spec::Availability::Drain,
                        )
                        .await
                }
                Action::Restore {
                    node,
                    node_id,
                    before,
                } => {
                    tracing::info!(
                        node,
                        "node {node} is healthy again: {} again",
                        before.as_str()
                    );
                    swarm.mark_node(node_id, HEALTH_DRAIN, None, *before).await
                }
                Action::Held { .. } => Ok(()),
            };
            if result.is_err() {
                break;
            }
        }
        self.writer.stop(keeper).await;
        result?;
        Ok(true)
    }

    /// The decision on the status (and in the log when it changes).
    fn say_upkeep(&self, decision: &Decision) {
        let line = match decision {
            Decision::Off => None,
            Decision::UpToDate => Some("every board is up to date".to_string()),
            Decision::Waiting { boards, window } => Some(format!(
                "{boards} board(s) to upgrade in the window {window}"
            )),
            Decision::Held(why) => Some(format!("upgrades wait: {why}")),
            Decision::Take(nodes) => Some(format!("upgrading {nodes}")),
        };
        let mut status = self.status();
        if line.is_some() && status.maintenance != line {
            if let Some(line) = &line {
                tracing::info!("rolling upgrade: {line}");
            }
        }
        status.maintenance = line;
    }
}

/// Whether the order's first batch is taken now: a cut-off board always,
/// others only inside the window.
fn decide(order: Order, in_window: bool, spec: &Spec) -> (Decision, Option<Order>) {
    let Some(first) = order.batches.first() else {
        return (Decision::UpToDate, None);
    };
    let resumes = first.iter().any(|t| matches!(t.reason, Reason::Resume(_)));
    if resumes || in_window {
        let nodes: Vec<String> = first.iter().map(|t| format!("node.{}", t.node)).collect();
        return (Decision::Take(nodes.join(", ")), Some(order));
    }
    match spec.maintenance.window {
        Some(window) => (
            Decision::Waiting {
                boards: order.batches.iter().map(Vec::len).sum(),
                window: window.to_string(),
            },
            None,
        ),
        None => (Decision::Off, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maintenance::order::{Mark, Stage, Turn};
    use reconciler_spec::{Availability, Role};

    fn spec(maintenance: &str) -> Spec {
        let text = format!("[cluster]\nname = \"lab\"\n[maintenance]\n{maintenance}\n[node.m1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n");
        match reconciler_spec::load_files(vec![("spec.toml".into(), text)]) {
            Ok(spec) => spec,
            Err(error) => panic!("test spec is invalid: {error}"),
        }
    }

    fn turn(node: &str, reason: Reason) -> Turn {
        let resume = match reason {
            Reason::Resume(stage) => Some(Mark {
                stage,
                before: Availability::Active,
            }),
            _ => None,
        };
        Turn {
            node: node.into(),
            node_id: format!("id-{node}"),
            role: Role::Worker,
            reason,
            resume,
        }
    }

    fn order(batches: Vec<Vec<Turn>>) -> Order {
        Order {
            batches,
            up_to_date: Vec::new(),
        }
    }

    #[test]
    fn boards_wait_for_the_window_and_say_how_many() {
        let spec = spec("window = \"Sat 02:00-05:00\"");
        let pending = order(vec![
            vec![turn("w1", Reason::Updates(3))],
            vec![turn("m1", Reason::RebootPending)],
        ]);
        let (decision, taken) = decide(pending.clone(), false, &spec);
        assert_eq!(
            decision,
            Decision::Waiting {
                boards: 2,
                window: "Sat 02:00-05:00 UTC".into()
            }
        );
        assert!(taken.is_none());
        let (decision, taken) = decide(pending, true, &spec);
        assert_eq!(decision, Decision::Take("node.w1".into()));
        assert!(taken.is_some());
    }

    #[test]
    fn a_cut_off_board_is_finished_outside_the_window_and_without_one() {
        for maintenance in ["window = \"Sat 02:00-05:00\"", ""] {
            let spec = spec(maintenance);
            let cut_off = order(vec![vec![turn("w1", Reason::Resume(Stage::Reboot))]]);
            let (decision, taken) = decide(cut_off, false, &spec);
            assert_eq!(decision, Decision::Take("node.w1".into()), "{maintenance}");
            assert!(taken.is_some());
        }
    }

    #[test]
    fn nothing_to_upgrade_is_said_and_without_a_window_nothing_starts() {
        let (decision, _) = decide(order(Vec::new()), true, &spec(""));
        assert_eq!(decision, Decision::UpToDate);
        let pending = order(vec![vec![turn("w1", Reason::Updates(1))]]);
        let (decision, taken) = decide(pending, false, &spec(""));
        assert_eq!(decision, Decision::Off);
        assert!(taken.is_none());
    }
}
