//! Executing plan actions: one Docker write per action (plus retries).

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::{NetworkCreateRequest, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum};
use bollard::query_parameters::{UpdateNodeOptions, UpdateServiceOptions};
use reconciler_spec::{Availability, Network, Role, SecretData, Service};

use super::convert::{ownership_labels, service_spec, DataIds};
use super::{api, is_out_of_sequence, DockerCall, Swarm, SwarmError};
use crate::observed::NodeState;
use crate::plan::{Action, NodeUpdate};

/// One step of taking a node out of service.
#[derive(Debug, Clone, Copy)]
enum Retire {
    /// Availability `drain`: its tasks move elsewhere.
    Drain,
    /// Role `worker`: it leaves the raft group.
    Demote,
}

impl Swarm {
    /// Performs one action of a plan.
    pub async fn execute(&self, action: &Action) -> Result<(), SwarmError> {
        tracing::debug!(
            operation = action.operation().as_str(),
            kind = action.kind().as_str(),
            name = action.name(),
            "docker write"
        );
        match action {
            Action::UpdateNode(update) => self.update_node(update).await,
            Action::CreateNetwork { network, hash } => self.create_network(network, hash).await,
            Action::RemoveNetwork { id, .. } => self.remove_network(id).await,
            Action::CreateService { service, hash } => self.create_service(service, hash).await,
            Action::UpdateService {
                id, service, hash, ..
            } => self.update_service(id, service, hash).await,
            Action::RemoveService { id, .. } => {
                self.count_write();
                already_gone(self.docker.delete_service(id).await)
                    .map_err(api(DockerCall::DeleteService))
            }
            Action::CreateConfig { config, swarm_name } => {
                let reconciler_spec::ConfigData::Content(text) = &config.data else {
                    // External configs are never planned for creation.
                    return Ok(());
                };
                let spec = bollard::models::ConfigSpec {
                    name: Some(swarm_name.clone()),
                    labels: Some(self.data_labels(
                        &config.name,
                        &config.labels,
                        config.group.as_ref(),
                        &crate::plan::data::config_version(config).unwrap_or_default(),
                    )),
                    data: Some(base64_encode(text.as_bytes())),
                    templating: config.template_driver.clone().map(|name| {
                        bollard::models::Driver {
                            name,
                            options: None,
                        }
                    }),
                };
                self.count_write();
                self.docker
                    .create_config(spec)
                    .await
                    .map(drop)
                    .map_err(api(DockerCall::CreateConfig))
            }
            Action::CreateSecret { secret, swarm_name } => {
                let SecretData::File { value, .. } = &secret.data else {
                    // External secrets are never planned for creation.
                    return Ok(());
                };
                let spec = bollard::models::SecretSpec {
                    name: Some(swarm_name.clone()),
                    labels: Some(self.data_labels(
                        &secret.name,
                        &secret.labels,
                        secret.group.as_ref(),
                        &crate::plan::data::secret_version(secret).unwrap_or_default(),
                    )),
                    data: Some(base64_encode(value.expose())),
                    templating: secret.template_driver.clone().map(|name| {
                        bollard::models::Driver {
                            name,
                            options: None,
                        }
                    }),
                    ..Default::default()
                };
                self.count_write();
                self.docker
                    .create_secret(spec)
                    .await
                    .map(drop)
                    .map_err(api(DockerCall::CreateSecret))
            }
            Action::RemoveConfig { id, .. } => {
                self.count_write();
                already_gone(self.docker.delete_config(id).await)
                    .map_err(api(DockerCall::DeleteConfig))
            }
            Action::RemoveSecret { id, .. } => {
                self.count_write();
                already_gone(self.docker.delete_secret(id).await)
                    .map_err(api(DockerCall::DeleteSecret))
            }
            // Needs SSH between its Docker calls: `apply` drives it step by step.
            Action::RemoveNode { name, .. } => Err(SwarmError::NeedsSsh(name.clone())),
        }
    }

    /// Sets a node's availability to drain, keeping the rest of its spec.
    pub async fn drain(&self, id: &str) -> Result<(), SwarmError> {
        self.retire(id, Retire::Drain).await
    }

    /// Makes a manager a worker, keeping the rest of its spec.
    pub async fn demote(&self, id: &str) -> Result<(), SwarmError> {
        self.retire(id, Retire::Demote).await
    }

    async fn retire(&self, id: &str, step: Retire) -> Result<(), SwarmError> {
        self.edit_node(id, |spec| match step {
            Retire::Demote => spec.role = Some(NodeSpecRoleEnum::WORKER),
            Retire::Drain => spec.availability = Some(NodeSpecAvailabilityEnum::DRAIN),
        })
        .await
    }

    /// Reads a node, changes its spec with `edit` and writes it back at the
    /// version read; a write that lost the race to a status change (which
    /// moves the version too) is read and tried again.
    async fn edit_node(
        &self,
        id: &str,
        edit: impl Fn(&mut bollard::models::NodeSpec),
    ) -> Result<(), SwarmError> {
        for _ in 0..super::WRITE_ATTEMPTS {
            let live = self
                .docker
                .inspect_node(id)
                .await
                .map_err(api(DockerCall::InspectNode))?;
            let index = live.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let version = i64::try_from(index)
                .map_err(|_| SwarmError::VersionOverflow(index, id.to_string()))?;
            let mut spec = live.spec.unwrap_or_default();
            edit(&mut spec);
            self.count_write();
            match self
                .docker
                .update_node(id, spec, UpdateNodeOptions { version })
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if is_out_of_sequence(&error) => continue,
                Err(source) => {
                    return Err(SwarmError::Api {
                        operation: DockerCall::UpdateNode,
                        source,
                    })
                }
            }
        }
        Err(SwarmError::OutOfSequence(id.to_string()))
    }

    /// Sets or clears a node's maintenance mark ([`crate::labels::MAINTENANCE`])
    /// and its availability in one write, keeping the rest of its spec.
    pub async fn mark_maintenance(
        &self,
        id: &str,
        mark: Option<&str>,
        availability: reconciler_spec::Availability,
    ) -> Result<(), SwarmError> {
        self.mark_node(id, crate::labels::MAINTENANCE, mark, availability)
            .await
    }

    /// Sets (or, with `None`, removes) the controller's label `key` on a
    /// node together with its availability, in one write.
    pub async fn mark_node(
        &self,
        id: &str,
        key: &str,
        mark: Option<&str>,
        availability: reconciler_spec::Availability,
    ) -> Result<(), SwarmError> {
        self.edit_node(id, |spec| {
            let labels = spec.labels.get_or_insert_with(Default::default);
            match mark {
                Some(mark) => {
                    labels.insert(key.to_string(), mark.to_string());
                }
                None => {
                    labels.remove(key);
                }
            }
            spec.availability = Some(availability_enum(availability));
        })
        .await
    }

    /// Tasks still meant to run on a node.
    pub async fn tasks_on_node(&self, id: &str) -> Result<usize, SwarmError> {
        Ok(self
            .tasks(&[("node", id), ("desired-state", "running")])
            .await?
            .len())
    }

    /// A node's state, as the manager sees it now.
    pub async fn node_state(&self, id: &str) -> Result<NodeState, SwarmError> {
        let node = self
            .docker
            .inspect_node(id)
            .await
            .map_err(api(DockerCall::InspectNode))?;
        Ok(super::convert::node_state(
            node.status.and_then(|s| s.state),
        ))
    }

    /// Removes a node object. Never by force: Docker removes only a node
    /// that is down, so a live board is never cut off.
    pub async fn remove_node(&self, id: &str) -> Result<(), SwarmError> {
        self.count_write();
        self.docker
            .delete_node(
                id,
                Some(bollard::query_parameters::DeleteNodeOptions { force: false }),
            )
            .await
            .map_err(api(DockerCall::DeleteNode))
    }

    /// Read-overlay-write: the node's own name and anything else Docker stores
    /// are kept; role, availability and labels come from the plan. If the node
    /// changed since planning only in ways Docker makes itself (its version
    /// moves with status updates), the write is retried; if its role,
    /// availability or labels changed, it is refused and the next reconcile
    /// plans again.
    async fn update_node(&self, update: &NodeUpdate) -> Result<(), SwarmError> {
        for _ in 0..super::WRITE_ATTEMPTS {
            let live = self
                .docker
                .inspect_node(&update.id)
                .await
                .map_err(api(DockerCall::InspectNode))?;
            let live_spec = live.spec.clone().unwrap_or_default();
            let (role, availability, labels) = &update.before;
            let unchanged = live_spec.role.map(|r| r == NodeSpecRoleEnum::MANAGER)
                == Some(*role == Role::Manager)
                && live_spec.availability == Some(availability_enum(*availability))
                && live_spec
                    .labels
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
                    == *labels;
            let index = if unchanged {
                live.version
                    .as_ref()
                    .and_then(|v| v.index)
                    .unwrap_or(update.version)
            } else {
                update.version
            };
            let version = i64::try_from(index)
                .map_err(|_| SwarmError::VersionOverflow(index, update.name.clone()))?;
            let spec = NodeSpec {
                labels: Some(update.labels.clone().into_iter().collect()),
                role: Some(match update.role {
                    Role::Manager => NodeSpecRoleEnum::MANAGER,
                    Role::Worker => NodeSpecRoleEnum::WORKER,
                }),
                availability: Some(availability_enum(update.availability)),
                ..live_spec
            };
            self.count_write();
            match self
                .docker
                .update_node(&update.id, spec, UpdateNodeOptions { version })
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if unchanged && is_out_of_sequence(&error) => continue,
                Err(source) => {
                    return Err(SwarmError::Api {
                        operation: DockerCall::UpdateNode,
                        source,
                    })
                }
            }
        }
        Err(SwarmError::OutOfSequence(update.name.clone()))
    }

    /// Removes a network once the tasks of just-removed services have left it.
    ///
    /// Swarm refuses to remove a network while any task still references it,
    /// and the tasks of a service deleted a moment ago linger until their
    /// containers stop (up to the service's stop grace period). The CLI's
    /// `docker stack rm` fails there; an apply waits, bounded, and polls.
    async fn remove_network(&self, id: &str) -> Result<(), SwarmError> {
        let deadline = tokio::time::Instant::now() + NETWORK_RELEASE_WAIT;
        loop {
            self.count_write();
            match network_already_gone(self.docker.remove_network(id).await) {
                Err(error)
                    if is_in_use_by_task(&error) && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(
                        network = id,
                        "network still in use by a leaving task; waiting"
                    );
                    tokio::time::sleep(NETWORK_RELEASE_POLL).await;
                }
                result => return result.map_err(api(DockerCall::RemoveNetwork)),
            }
        }
    }

    async fn create_network(&self, network: &Network, hash: &str) -> Result<(), SwarmError> {
        let mut all_labels: HashMap<String, String> = network.labels.clone().into_iter().collect();
        all_labels.extend(ownership_labels(
            &self.cluster,
            hash,
            self.revision.as_deref(),
        ));
        all_labels.extend(crate::labels::group_label(network.group.as_ref()));
        let request = NetworkCreateRequest {
            name: network.name.clone(),
            driver: Some(network.driver.clone()),
            scope: Some("swarm".into()),
            attachable: Some(network.attachable),
            internal: Some(network.internal),
            labels: Some(all_labels),
            options: (!network.options.is_empty())
                .then(|| network.options.clone().into_iter().collect()),
            ipam: (!network.ipam.is_default()).then(|| bollard::models::Ipam {
                driver: network.ipam.driver.clone(),
                config: Some(
                    network
                        .ipam
                        .subnets
                        .iter()
                        .map(|subnet| bollard::models::IpamConfig {
                            subnet: Some(subnet.clone()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                options: None,
            }),
            ..Default::default()
        };
        self.count_write();
        self.docker
            .create_network(request)
            .await
            .map_err(api(DockerCall::CreateNetwork))?;
        Ok(())
    }

    /// Labels of a config or secret version: ownership, the spec entry it
    /// is a version of, its release or stack, and the user's.
    fn data_labels(
        &self,
        name: &str,
        user: &std::collections::BTreeMap<String, String>,
        group: Option<&reconciler_spec::Group>,
        version: &[u8],
    ) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = user.clone().into_iter().collect();
        // The content's digest: what a fixed name is checked against.
        labels.extend(ownership_labels(
            &self.cluster,
            &crate::plan::content_digest(version),
            self.revision.as_deref(),
        ));
        labels.insert(crate::labels::DATA_NAME.into(), name.into());
        labels.extend(crate::labels::group_label(group));
        labels
    }

    /// The IDs of the configs and secrets `service` names (none asked when it names none).
    async fn data_ids(&self, service: &Service) -> Result<DataIds, SwarmError> {
        let mut ids = DataIds::default();
        if !service.configs.is_empty() {
            for config in self
                .docker
                .list_configs(None)
                .await
                .map_err(api(DockerCall::ListConfigs))?
            {
                if let (Some(id), Some(name)) = (config.id, config.spec.and_then(|s| s.name)) {
                    ids.configs.insert(name, id);
                }
            }
        }
        if !service.secrets.is_empty() {
            for secret in self
                .docker
                .list_secrets(None)
                .await
                .map_err(api(DockerCall::ListSecrets))?
            {
                if let (Some(id), Some(name)) = (secret.id, secret.spec.and_then(|s| s.name)) {
                    ids.secrets.insert(name, id);
                }
            }
        }
        Ok(ids)
    }

    async fn create_service(&self, service: &Service, hash: &str) -> Result<(), SwarmError> {
        let labels = ownership_labels(&self.cluster, hash, self.revision.as_deref());
        let ids = self.data_ids(service).await?;
        let spec = service_spec(service, labels, None, &ids);
        self.count_write();
        self.docker
            .create_service(spec, None)
            .await
            .map_err(api(DockerCall::CreateService))?;
        Ok(())
    }

    /// Read the live spec, overlay the managed fields, write with the version
    /// just read; if someone else wrote in between, read again and retry.
    async fn update_service(
        &self,
        id: &str,
        service: &Service,
        hash: &str,
    ) -> Result<(), SwarmError> {
        let ids = self.data_ids(service).await?;
        for _ in 0..super::WRITE_ATTEMPTS {
            let live = self.inspect_service(id).await?;
            let index = live.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let version = i32::try_from(index)
                .map_err(|_| SwarmError::VersionOverflow(index, service.name.clone()))?;
            let labels = ownership_labels(&self.cluster, hash, self.revision.as_deref());
            let spec = service_spec(service, labels, live.spec, &ids);
            let options = UpdateServiceOptions {
                version,
                ..Default::default()
            };
            self.count_write();
            match self.docker.update_service(id, spec, options, None).await {
                Ok(_) => return Ok(()),
                Err(error) if is_out_of_sequence(&error) => {
                    tracing::debug!(service = %service.name, "update out of sequence; re-reading");
                    continue;
                }
                Err(source) => {
                    return Err(SwarmError::Api {
                        operation: DockerCall::UpdateService,
                        source,
                    })
                }
            }
        }
        Err(SwarmError::OutOfSequence(service.name.clone()))
    }
}

/// How long a network removal waits for leaving tasks: Docker's default stop
/// grace period (10 s) plus time for the task reaper, with room to spare.
const NETWORK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const NETWORK_RELEASE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Swarmkit's answer when a task (not a service) still references a network
/// (`controlapi.RemoveNetwork`: "network %s is in use by task %s"). A
/// *service* using it is a different message and is not waited for.
fn is_in_use_by_task(error: &BollardError) -> bool {
    matches!(error, BollardError::DockerResponseServerError { message, .. } if message.contains("in use by task"))
}

/// Deleting what is already gone is success: the goal state holds (someone
/// removed it first, or Docker was still dropping a removed network's copy).
fn already_gone(result: Result<(), BollardError>) -> Result<(), BollardError> {
    match result {
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        other => other,
    }
}

/// Like [`already_gone`], and also Docker 20.10's 500 "network ... not
/// found": a network whose removal Swarm accepted earlier (pending until
/// the tasks of removed services stopped) is still listed for a moment
/// after the store dropped it, and removing it then answers so.
fn network_already_gone(result: Result<(), BollardError>) -> Result<(), BollardError> {
    match already_gone(result) {
        Err(BollardError::DockerResponseServerError {
            status_code: 500,
            message,
        }) if message.starts_with("network ") && message.ends_with(" not found") => Ok(()),
        other => other,
    }
}

fn availability_enum(availability: Availability) -> NodeSpecAvailabilityEnum {
    match availability {
        Availability::Active => NodeSpecAvailabilityEnum::ACTIVE,
        Availability::Pause => NodeSpecAvailabilityEnum::PAUSE,
        Availability::Drain => NodeSpecAvailabilityEnum::DRAIN,
    }
}

/// Standard base64 with padding, as the Engine API takes config and secret data.
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
