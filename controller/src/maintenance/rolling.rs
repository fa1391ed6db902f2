//! Batches taken one after the other, each judged again on the live swarm
//! right before its turn: shared by `reconciler upgrade` (every batch) and
//! `reconciler run` (one batch per reconcile, in the window).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reconciler_spec::{Availability, Spec};

use super::order::{self, PlacedTask, Turn};
use super::{Board, MaintenanceError, SwarmLink};
use crate::node::{Session, SshOptions};
use crate::observed::Observed;
use crate::progress::SharedProgress;
use crate::swarm::lease::LeaseGuard;
use crate::swarm::{Swarm, SwarmError};

/// What every board's turn shares.
pub struct Rolling<'a> {
    pub spec: &'a Spec,
    pub link: &'a SwarmLink,
    /// The boards' sessions as they were looked at (a board missing here,
    /// rebooting in a cut-off upgrade, is waited for).
    pub sessions: &'a BTreeMap<String, Arc<Session>>,
    pub ssh: SshOptions,
    pub lease: LeaseGuard,
    pub progress: SharedProgress,
}

impl std::fmt::Debug for Rolling<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rolling").finish_non_exhaustive()
    }
}

impl Rolling<'_> {
    /// Every batch in order, the boards of one together; stops at the
    /// first failure.
    pub async fn take(&self, batches: &[Vec<Turn>]) -> Result<(), MaintenanceError> {
        for batch in batches {
            // Judged again on the swarm as it is now (an earlier board back?).
            let now = live_check(&self.link.get(), batch).await?;
            let mut boards = Vec::new();
            for turn in batch {
                let Some(node) = self.spec.nodes.get(&turn.node) else {
                    continue;
                };
                let availability = now
                    .nodes
                    .iter()
                    .find(|n| n.id == turn.node_id)
                    .map_or(Availability::Active, |n| n.availability);
                boards.push(
                    Board {
                        spec: self.spec,
                        link: self.link,
                        turn,
                        session: self.sessions.get(&turn.node).cloned(),
                        target: crate::node::target_for(node),
                        ssh: self.ssh,
                        availability,
                        progress: self.progress.clone(),
                        lease: self.lease.clone(),
                    }
                    .maintain(),
                );
            }
            for outcome in futures_util::future::join_all(boards).await {
                outcome?;
            }
        }
        Ok(())
    }
}

/// How long the swarm may take to settle before a batch is refused: a
/// manager just back from its reboot reports the other nodes `unknown`
/// until they check in again.
const SETTLE: Duration = Duration::from_secs(90);

/// The swarm as it is now, once `batch` may go down in it (waiting up to
/// [`SETTLE`] for it to allow that).
async fn live_check(swarm: &Swarm, batch: &[Turn]) -> Result<Observed, MaintenanceError> {
    // Resumed boards are already down: only the others are judged.
    let fresh: Vec<Turn> = batch
        .iter()
        .filter(|t| t.resume.is_none())
        .cloned()
        .collect();
    let started = Instant::now();
    loop {
        let now = swarm.observe(crate::observed::ServiceScope::All).await?;
        let placed = placed_tasks(swarm, &now).await?;
        match order::check_batch(&fresh, &now, &placed) {
            Ok(()) => return Ok(now),
            Err(refused) if started.elapsed() > SETTLE => return Err(refused.into()),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// The running tasks of the swarm's services, by service name and node.
pub async fn placed_tasks(
    swarm: &Swarm,
    observed: &Observed,
) -> Result<Vec<PlacedTask>, SwarmError> {
    let names: BTreeMap<&str, &str> = observed
        .services
        .iter()
        .map(|(name, s)| (s.id.as_str(), name.as_str()))
        .collect();
    Ok(swarm
        .tasks(&[("desired-state", "running")])
        .await?
        .into_iter()
        .filter_map(|t| {
            let service = names.get(t.service_id.as_deref()?)?;
            Some(PlacedTask {
                service: (*service).to_string(),
                node_id: t.node_id?,
            })
        })
        .collect())
}
