//! One writer per cluster: a lease kept as a label on the Swarm object.
//!
//! The label `io.reconciler.lease.<cluster>` holds `"<holder> <expiry unix seconds>"`.
//! It is written with the swarm's version index, so two controllers racing for
//! it cannot both win; a holder that dies stops renewing and the lease expires.
//! Lease writes are counted apart from reconcile writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::SwarmSpec;
use bollard::query_parameters::UpdateSwarmOptions;

use super::{api, is_out_of_sequence, DockerCall, Swarm, SwarmError};

/// The state of the lease after an attempt to take or renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// We hold it until the given unix time.
    Held { until: u64 },
    /// Another controller holds it.
    HeldBy { holder: String, until: u64 },
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse(value: &str) -> Option<(String, u64)> {
    let (holder, until) = value.split_once(' ')?;
    Some((holder.to_string(), until.parse().ok()?))
}

impl Swarm {
    fn lease_label(&self) -> String {
        format!("io.reconciler.lease.{}", self.cluster)
    }

    /// The swarm's spec, its version, and the lease recorded in it (holder, expiry).
    async fn read_lease(&self) -> Result<(SwarmSpec, i64, Option<(String, u64)>), SwarmError> {
        let swarm = self
            .docker
            .inspect_swarm()
            .await
            .map_err(api(DockerCall::InspectSwarm))?;
        let index = swarm.version.and_then(|v| v.index).unwrap_or(0);
        let version =
            i64::try_from(index).map_err(|_| SwarmError::VersionOverflow(index, "swarm".into()))?;
        let spec = swarm.spec.unwrap_or_default();
        let lease = spec
            .labels
            .as_ref()
            .and_then(|l| l.get(&self.lease_label()))
            .and_then(|v| parse(v));
        Ok((spec, version, lease))
    }

    /// Writes the swarm's spec back with the version it was read at.
    async fn write_lease(
        &self,
        spec: SwarmSpec,
        version: i64,
    ) -> Result<(), bollard::errors::Error> {
        self.lease_writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let options = UpdateSwarmOptions {
            version,
            ..Default::default()
        };
        self.docker.update_swarm(spec, options).await
    }

    /// Takes the lease if it is free or expired, renews it if it is ours and
    /// less than half of `ttl` is left, and otherwise reports who holds it.
    pub async fn acquire_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseState, SwarmError> {
        for _ in 0..super::WRITE_ATTEMPTS {
            let (mut spec, version, current) = self.read_lease().await?;
            let now = now_unix();
            match &current {
                Some((other, until)) if other != holder && *until > now => {
                    return Ok(LeaseState::HeldBy {
                        holder: other.clone(),
                        until: *until,
                    })
                }
                Some((_, until)) if *until > now + ttl.as_secs() / 2 => {
                    return Ok(LeaseState::Held { until: *until })
                }
                _ => {}
            }
            let until = now + ttl.as_secs();
            spec.labels
                .get_or_insert_with(Default::default)
                .insert(self.lease_label(), format!("{holder} {until}"));
            match self.write_lease(spec, version).await {
                Ok(()) => return Ok(LeaseState::Held { until }),
                // Another controller (or an operator) wrote the swarm in between: read again.
                Err(error) if is_out_of_sequence(&error) => continue,
                Err(source) => {
                    return Err(SwarmError::Api {
                        operation: DockerCall::UpdateSwarm,
                        source,
                    })
                }
            }
        }
        Err(SwarmError::OutOfSequence("swarm (lease)".into()))
    }

    /// Gives the lease up on shutdown, so a standby controller takes over at once.
    pub async fn release_lease(&self, holder: &str) -> Result<(), SwarmError> {
        let (mut spec, version, current) = self.read_lease().await?;
        if current.is_none_or(|(h, _)| h != holder) {
            return Ok(());
        }
        if let Some(labels) = spec.labels.as_mut() {
            labels.remove(&self.lease_label());
        }
        self.write_lease(spec, version)
            .await
            .map_err(api(DockerCall::UpdateSwarm))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn lease_values() {
        assert_eq!(
            parse("host-1.abc 1700000000"),
            Some(("host-1.abc".into(), 1_700_000_000))
        );
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse("a b"), None);
    }
}
