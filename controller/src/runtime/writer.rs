//! This controller as the cluster's one writer: the lease is taken before
//! any write and renewed while writing, timed by this controller's own clock.

use std::sync::Arc;
use std::time::Duration;

use crate::http::Shared;
use crate::status::LeaseStatus;
use crate::swarm::lease::{LeaseClock, LeaseKeeper, LeaseState};
use crate::swarm::{Swarm, SwarmError};

/// The lease as this controller holds it (or not), apart from the rest of
/// the controller so a reconcile can ask for it while the boards are borrowed.
pub(super) struct Writer {
    /// This controller's name in the lease.
    holder: String,
    ttl: Duration,
    /// What this controller has seen of the lease, by its own clock.
    clock: LeaseClock,
    /// Where the lease's state is shown (metrics, status).
    shared: Arc<Shared>,
}

impl Writer {
    pub(super) fn new(holder: String, ttl: Duration, shared: Arc<Shared>) -> Self {
        Writer {
            holder,
            ttl,
            clock: LeaseClock::default(),
            shared,
        }
    }

    /// Takes or renews the lease: `None` when we hold it, else its holder.
    pub(super) async fn take(&mut self, swarm: &Swarm) -> Result<Option<String>, SwarmError> {
        let state = swarm
            .acquire_lease(&self.holder, self.ttl, &mut self.clock)
            .await?;
        let (held, shown, holder) = match state {
            LeaseState::Held => (1, LeaseStatus::Held, None),
            LeaseState::HeldBy { holder } => (0, LeaseStatus::HeldBy(holder.clone()), Some(holder)),
        };
        self.shared.metrics.lease_held.set(held);
        self.shared
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .lease = shown;
        Ok(holder)
    }

    /// Keeps the lease just taken renewed while this reconcile writes.
    pub(super) fn keep(&mut self, swarm: Swarm) -> LeaseKeeper {
        LeaseKeeper::start(
            swarm,
            self.holder.clone(),
            self.ttl,
            std::mem::take(&mut self.clock),
        )
    }

    /// Keeps the lease just taken renewed through a rolling upgrade, over
    /// whatever connection `swarm` gives at each renewal (a lapse while the
    /// only manager reboots is taken back).
    pub(super) fn keep_recovering(
        &mut self,
        swarm: Arc<dyn Fn() -> Swarm + Send + Sync>,
    ) -> LeaseKeeper {
        LeaseKeeper::start_recovering(
            swarm,
            self.holder.clone(),
            self.ttl,
            std::mem::take(&mut self.clock),
        )
    }

    /// Who holds the lease, read only: for the status when this reconcile
    /// did not need it.
    pub(super) async fn observe(&self, swarm: &Swarm) -> Result<LeaseStatus, SwarmError> {
        Ok(match swarm.lease_holder(&self.holder, &self.clock).await? {
            None => LeaseStatus::Free,
            Some(LeaseState::Held) => LeaseStatus::Held,
            Some(LeaseState::HeldBy { holder }) => LeaseStatus::HeldBy(holder),
        })
    }

    /// Gives the lease up (on shutdown) when this process holds it.
    pub(super) async fn release(&self, swarm: &Swarm) -> Result<(), SwarmError> {
        swarm.release_lease(&self.holder, &self.clock).await
    }

    /// Stops renewing; what the keeper saw of the lease is ours again.
    pub(super) async fn stop(&mut self, keeper: LeaseKeeper) {
        self.clock = keeper.stop().await;
    }
}
