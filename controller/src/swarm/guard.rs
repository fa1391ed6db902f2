//! The last applied revision's `max_delete_fraction`, kept on the Swarm
//! object as `io.reconciler.max-delete-fraction.<cluster>`.
//!
//! The mass-delete guard uses the stricter of this and the revision being
//! planned, so a bad commit cannot switch its own guard off by raising the
//! threshold in the same change that deletes everything.

use super::{is_out_of_sequence, DockerCall, Swarm, SwarmError};

impl Swarm {
    fn guard_label(&self) -> String {
        format!("io.reconciler.max-delete-fraction.{}", self.cluster)
    }

    /// The threshold recorded by the last apply (`None` before the first, or
    /// when the label is unreadable).
    pub async fn applied_max_delete_fraction(&self) -> Result<Option<f64>, SwarmError> {
        let (spec, _) = self.swarm_spec().await?;
        Ok(spec
            .labels
            .and_then(|l| l.get(&self.guard_label()).cloned())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|f| (0.0..=1.0).contains(f)))
    }

    /// Records the threshold of the revision just applied, if it differs
    /// (a bookkeeping write, counted with the lease's).
    pub async fn record_max_delete_fraction(&self, fraction: f64) -> Result<(), SwarmError> {
        let value = fraction.to_string();
        for _ in 0..super::WRITE_ATTEMPTS {
            let (mut spec, version) = self.swarm_spec().await?;
            let labels = spec.labels.get_or_insert_with(Default::default);
            if labels.get(&self.guard_label()) == Some(&value) {
                return Ok(());
            }
            labels.insert(self.guard_label(), value.clone());
            match self.write_swarm_spec(spec, version).await {
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
