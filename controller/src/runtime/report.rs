//! What a reconcile tells: the status document and page, the metrics, and
//! the log (one event per change, with its fields).

use reconciler_spec::Spec;

use super::step::Controller;
use crate::apply::ApplyError;
use crate::metrics::Completion;
use crate::plan::{render, ObjectKind, Plan};
use crate::progress::{Event, Progress};
use crate::status::{BoardStatus, PictureContext};
use crate::swarm::placement::Placement;
use crate::swarm::Swarm;

impl Controller {
    /// Draws the cluster into the status and metrics, with what only the
    /// controller knows: the spec's services and the boards' facts.
    pub(super) fn record_cluster(&self, spec: &Spec, placement: &Placement) {
        let boards = self
            .fleet
            .known_facts()
            .filter_map(|(node, facts)| {
                Some((
                    facts
                        .swarm_node_id()
                        .filter(|id| !id.is_empty())?
                        .to_string(),
                    BoardStatus {
                        node: node.to_string(),
                        model: facts.model.clone(),
                        os: facts.os.clone(),
                        temperature: facts.temperature.clone(),
                        throttled: facts.throttled.clone(),
                        throttling: facts
                            .throttled
                            .as_deref()
                            .map(crate::health::throttling_in_words)
                            .unwrap_or_default(),
                        health: crate::health::Measurements::of(facts),
                        conditions: crate::health::conditions(facts),
                    },
                ))
            })
            .collect();
        self.shared.metrics.boards.record(self.fleet.known_facts());
        if let Ok(mut context) = self.shared.picture.write() {
            *context = PictureContext {
                cluster: spec.cluster.name.clone(),
                spec_services: spec.services.keys().cloned().collect(),
                boards,
            };
        }
        self.shared.record_placement(placement);
    }

    /// Everything pending was just applied: the status says so, and shows
    /// the tasks the apply started at once, not at the next look.
    pub(super) async fn record_applied(&self, swarm: &Swarm) {
        {
            let mut status = self.status();
            status.pending.clear();
            status.pending_plan = None;
        }
        if let Ok(placement) = swarm.placement().await {
            self.shared.record_placement(&placement);
        }
    }

    /// Who holds the lease when this reconcile did not need it: free, still
    /// ours from an earlier write, or another controller's.
    pub(super) async fn record_lease(&self, swarm: &Swarm) {
        let lease = match self.writer.observe(swarm).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::debug!(%error, "could not read the lease for the status");
                return;
            }
        };
        self.status().lease = lease;
    }

    pub(super) fn record_plan(&self, plan: &Plan) {
        let metrics = &self.shared.metrics;
        for kind in ObjectKind::ALL {
            let count = plan.actions.iter().filter(|a| a.kind() == kind).count();
            metrics
                .drift
                .with_label_values(&[kind.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut status = self.status();
        status.pending = self
            .board_needs
            .iter()
            .cloned()
            .chain(plan.actions.iter().map(render::describe))
            .collect();
        status.pending_plan = match (&self.board_plan, plan.is_empty()) {
            (None, true) => None,
            (None, false) => Some(render::text_without_env_values(plan)),
            (Some(boards), true) => Some(boards.clone()),
            (Some(boards), false) => Some(format!(
                "{boards}\n{}",
                render::text_without_env_values(plan)
            )),
        };
    }

    pub(super) fn count_actions(&self, plan: &Plan, error: Option<&ApplyError>) {
        let failed_at = match error {
            Some(ApplyError::Action { kind, name, .. }) => plan
                .actions
                .iter()
                .position(|a| a.kind() == *kind && a.name() == name),
            _ => None,
        };
        let done = failed_at.unwrap_or(plan.actions.len());
        for (index, action) in plan
            .actions
            .iter()
            .enumerate()
            .take(done + usize::from(failed_at.is_some()))
        {
            let result = if Some(index) == failed_at {
                Completion::Error
            } else {
                Completion::Success
            };
            self.shared
                .metrics
                .actions
                .with_label_values(&[
                    action.kind().as_str(),
                    action.operation().as_str(),
                    result.as_str(),
                ])
                .inc();
        }
    }
}

/// Progress goes to the log in the long-running controller: one log event
/// per change, with the object, operation, board, step, service and counts
/// as fields, and the revision being applied.
#[derive(Debug, Default)]
pub(super) struct LogProgress {
    pub(super) revision: Option<String>,
}

impl Progress for LogProgress {
    fn report(&mut self, event: Event<'_>) {
        let revision = self.revision.as_deref().unwrap_or("");
        match event {
            Event::Note(line) => tracing::info!(revision, "{line}"),
            Event::Write {
                kind,
                name,
                operation,
            } => tracing::info!(
                object = %format_args!("{}.{name}", kind.as_str()),
                operation = operation.as_str(),
                revision,
                "{}.{name}: {}",
                kind.as_str(),
                operation.progressive()
            ),
            Event::BoardStep {
                node,
                done,
                total,
                step,
            } => tracing::info!(node, step, done, total, revision, "node {node}: {step}"),
            Event::BoardDone { node, ok } => {
                tracing::debug!(node, ok, revision, "node {node}: steps finished");
            }
            Event::Tasks {
                service,
                running,
                desired,
            } => tracing::info!(
                service,
                running,
                desired,
                revision,
                "service.{service}: {running}/{desired} tasks running"
            ),
        }
    }
}
