//! The last applied revision's `max_delete_fraction`, kept on the Swarm
//! object as `io.reconciler.max-delete-fraction.<cluster>`.
//!
//! The mass-delete guard uses the stricter of this and the revision being
//! planned, so a bad commit cannot switch its own guard off by raising the
//! threshold in the same change that deletes everything.

use bollard::query_parameters::UpdateSwarmOptions;

use super::{api, is_out_of_sequence, DockerCall, Swarm, SwarmError};

impl Swarm {
    fn guard_label(&self) -> String {
        format!("io.reconciler.max-delete-fraction.{}", self.cluster)
    }

    /// The threshold recorded by the last apply (`None` before the first, or
    /// when the label is unreadable).
    pub async fn applied_max_delete_fraction(&self) -> Result<Option<f64>, SwarmError> {
        let swarm = self
            .docker
            .inspect_swarm()
            .await
            .map_err(api(DockerCall::InspectSwarm))?;
        Ok(swarm
            .spec
            .and_then(|s| s.labels)
            .and_then(|l| l.get(&self.guard_label()).cloned())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|f| (0.0..=1.0).contains(f)))
    }

    /// Records the threshold of the revision just applied, if it differs
    /// (a bookkeeping write, counted with the lease's).
    pub async fn record_max_delete_fraction(&self, fraction: f64) -> Result<(), SwarmError> {
        let value = fraction.to_string();
        for _ in 0..super::WRITE_ATTEMPTS {
            let swarm = self
                .docker
                .inspect_swarm()
                .await
                .map_err(api(DockerCall::InspectSwarm))?;
            let index = swarm.version.and_then(|v| v.index).unwrap_or(0);
            let version = i64::try_from(index)
                .map_err(|_| SwarmError::VersionOverflow(index, "swarm".into()))?;
            let mut spec = swarm.spec.unwrap_or_default();
            let labels = spec.labels.get_or_insert_with(Default::default);
            if labels.get(&self.guard_label()) == Some(&value) {
                return Ok(());
            }
            labels.insert(self.guard_label(), value.clone());
            self.lease_writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let options = UpdateSwarmOptions {
                version,
                ..Default::default()
            };
            match self.docker.update_swarm(spec, options).await {
                Ok(()) => return Ok(()),
                Err(error) if is_out_of_sequence(&error) => continue,
                Err(source) => {
                    return Err(SwarmError::Api {
                        operation: DockerCall::UpdateSwarm,
                        source,
                    })
                }
            }
        }
        Err(SwarmError::OutOfSequence(
            "swarm (max_delete_fraction)".into(),
        ))
    }
}
