//! Reading nodes, networks and services into the observed model.

use std::collections::HashMap;

use bollard::models::{NodeSpecAvailabilityEnum, NodeSpecRoleEnum, Reachability};
use reconciler_spec::{Availability, Network, Role};

use super::convert::{owner_of, service_from_spec, user_labels};
use super::{api, DockerCall, EarlyServices, Swarm, SwarmError};
use crate::labels;
use crate::observed::{
    Observed, ObservedData, ObservedNetwork, ObservedNode, ObservedService, ServiceScope,
};

impl Swarm {
    /// One consistent-enough snapshot of the swarm: five list calls and the
    /// Swarm object's recorded guard, no writes; the services of `scope`.
    pub async fn observe(&self, scope: ServiceScope) -> Result<Observed, SwarmError> {
        self.observe_with(scope, None).await
    }

    /// [`Swarm::observe`] of the managed services, with the list `early`
    /// asked for when it asked this manager.
    pub async fn observe_managed(
        &self,
        early: Option<EarlyServices>,
    ) -> Result<Observed, SwarmError> {
        self.observe_with(ServiceScope::Managed, early).await
    }

    async fn observe_with(
        &self,
        scope: ServiceScope,
        early: Option<EarlyServices>,
    ) -> Result<Observed, SwarmError> {
        let services = async {
            if let Some(early) = early {
                if let Some(services) = early.take(&self.socket).await {
                    return Ok(services);
                }
            }
            self.list_services(scope).await
        };
        // Six independent reads, asked at once: a no-op reconcile waits
        // for the slowest (the services), not for their sum.
        let (nodes, networks, services, configs, secrets, applied_max_delete_fraction) = tokio::try_join!(
            async {
                self.docker
                    .list_nodes(None)
                    .await
                    .map_err(api(DockerCall::ListNodes))
            },
            async {
                self.docker
                    .list_networks(None)
                    .await
                    .map_err(api(DockerCall::ListNetworks))
            },
            services,
            async {
                self.docker
                    .list_configs(None)
                    .await
                    .map_err(api(DockerCall::ListConfigs))
            },
            async {
                self.docker
                    .list_secrets(None)
                    .await
                    .map_err(api(DockerCall::ListSecrets))
            },
            self.applied_max_delete_fraction(),
        )?;
        let data = |id: Option<String>,
                    spec_name: Option<String>,
                    labels: Option<HashMap<String, String>>| {
            let labels = labels.unwrap_or_default();
            Some((
                spec_name?,
                ObservedData {
                    id: id?,
                    owner: owner_of(&labels, self.cluster()),
                    digest: labels.get(crate::labels::SPEC_HASH).cloned(),
                },
            ))
        };

        let mut observed = Observed {
            nodes: nodes.iter().map(observed_node).collect(),
            observed_at: Some(std::time::SystemTime::now()),
            applied_max_delete_fraction,
            service_scope: scope,
            configs: configs
                .into_iter()
                .filter_map(|c| {
                    let spec = c.spec.unwrap_or_default();
                    data(c.id, spec.name, spec.labels)
                })
                .collect(),
            secrets: secrets
                .into_iter()
                .filter_map(|s| {
                    let spec = s.spec.unwrap_or_default();
                    data(s.id, spec.name, spec.labels)
                })
                .collect(),
            ..Observed::default()
        };
        let mut network_names = self.observe_networks(networks, &mut observed);
        self.name_unlisted_networks(&services, &mut network_names)
            .await;
        self.observe_services(services, &network_names, &mut observed);
        self.mark_leaving_networks(&mut observed).await?;
        tracing::debug!(
            nodes = observed.nodes.len(),
            networks = observed.networks.len(),
            services = observed.services.len(),
            "observed the swarm"
        );
        Ok(observed)
    }
}

impl Swarm {
    /// Marks this cluster's networks that no service uses but tasks of
    /// removed services still reference (see `ObservedNetwork::leaving`).
    /// Costs one task list, and only when such a network exists.
    async fn mark_leaving_networks(&self, observed: &mut Observed) -> Result<(), SwarmError> {
        let used: std::collections::BTreeSet<&str> = observed
            .services
            .values()
            .flat_map(|s| s.config.networks.iter().map(String::as_str))
            .collect();
        let unused: Vec<String> = observed
            .networks
            .iter()
            .filter(|(name, n)| {
                n.owner == crate::observed::Owner::ThisCluster && !used.contains(name.as_str())
            })
            .map(|(_, n)| n.id.clone())
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        let live: std::collections::BTreeSet<&str> =
            observed.services.values().map(|s| s.id.as_str()).collect();
        let referenced: std::collections::BTreeSet<String> = self
            .tasks(&[])
            .await?
            .into_iter()
            .filter(|t| t.service_id.as_deref().is_some_and(|id| !live.contains(id)))
            .flat_map(|t| {
                t.spec
                    .and_then(|s| s.networks)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|n| n.target)
            })
            .collect();
        for network in observed.networks.values_mut() {
            if unused.contains(&network.id) && referenced.contains(&network.id) {
                network.leaving = true;
            }
        }
        Ok(())
    }
}

/// One node as the planner sees it.
pub(super) fn observed_node(node: &bollard::models::Node) -> ObservedNode {
    let spec = node.spec.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let manager = node.manager_status.clone();
    ObservedNode {
        id: node.id.clone().unwrap_or_default(),
        version: node.version.as_ref().and_then(|v| v.index).unwrap_or(0),
        hostname: node
            .description
            .as_ref()
            .and_then(|d| d.hostname.clone())
            .unwrap_or_default(),
        address: status.addr.clone().unwrap_or_default(),
        architecture: node
            .description
            .as_ref()
            .and_then(|d| d.platform.as_ref())
            .and_then(|p| p.architecture.clone())
            .unwrap_or_default(),
        engine_version: node
            .description
            .as_ref()
            .and_then(|d| d.engine.as_ref())
            .and_then(|e| e.engine_version.clone())
            .unwrap_or_default(),
        role: match spec.role {
            Some(NodeSpecRoleEnum::MANAGER) => Role::Manager,
            _ => Role::Worker,
        },
        availability: match spec.availability {
            Some(NodeSpecAvailabilityEnum::PAUSE) => Availability::Pause,
            Some(NodeSpecAvailabilityEnum::DRAIN) => Availability::Drain,
            _ => Availability::Active,
        },
        labels: spec
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        state: super::convert::node_state(status.state),
        manager_reachable: manager
            .as_ref()
            .map(|m| m.reachability == Some(Reachability::REACHABLE)),
        leader: manager.as_ref().and_then(|m| m.leader).unwrap_or(false),
        updated_at: node
            .updated_at
            .as_deref()
            .and_then(crate::timestamp::parse_rfc3339),
    }
}

impl Swarm {
    /// The swarm-scoped networks; returns every network's name by id (services refer to ids).
    fn observe_networks(
        &self,
        networks: Vec<bollard::models::Network>,
        observed: &mut Observed,
    ) -> HashMap<String, String> {
        let mut network_names = HashMap::new();
        for network in networks {
            let (Some(id), Some(name)) = (network.id.clone(), network.name.clone()) else {
                continue;
            };
            network_names.insert(id.clone(), name.clone());
            if network.scope.as_deref() != Some("swarm") {
                continue;
            }
            let all_labels = network.labels.clone().unwrap_or_default();
            observed.networks.insert(
                name.clone(),
                ObservedNetwork {
                    id,
                    owner: owner_of(&all_labels, &self.cluster),
                    spec_hash: all_labels.get(labels::SPEC_HASH).cloned(),
                    leaving: false,
                    config: Network {
                        name,
                        group: crate::labels::group_of(&all_labels),
                        driver: network.driver.clone().unwrap_or_default(),
                        attachable: network.attachable.unwrap_or(false),
                        internal: network.internal.unwrap_or(false),
                        labels: user_labels(&all_labels),
                        options: network
                            .options
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .collect(),
                        ipam: reconciler_spec::Ipam {
                            driver: network.ipam.as_ref().and_then(|i| i.driver.clone()),
                            subnets: network
                                .ipam
                                .as_ref()
                                .and_then(|i| i.config.as_ref())
                                .into_iter()
                                .flatten()
                                .filter_map(|c| c.subnet.clone())
                                .collect(),
                        },
                        external: None,
                    },
                },
            );
        }

        network_names
    }

    /// Docker's own networks (`host`, `bridge`) have swarm ids that the
    /// network list does not show, and a service attached to one names that
    /// id: ask Docker for the name of each id no listed network has (one
    /// call each, only for such services). An id Docker cannot name stays an
    /// id, which reads as drift rather than a guess.
    async fn name_unlisted_networks(
        &self,
        services: &[bollard::models::Service],
        network_names: &mut HashMap<String, String>,
    ) {
        let unlisted: std::collections::BTreeSet<String> = services
            .iter()
            .filter_map(|s| s.spec.as_ref())
            .flat_map(|spec| {
                let task = spec.task_template.as_ref().and_then(|t| t.networks.clone());
                task.or_else(|| spec.networks.clone()).unwrap_or_default()
            })
            .filter_map(|attachment| attachment.target)
            .filter(|id| !network_names.contains_key(id))
            .collect();
        for id in unlisted {
            match self.docker.inspect_network(&id, None).await {
                Ok(network) => {
                    if let Some(name) = network.name {
                        network_names.insert(id, name);
                    }
                }
                Err(error) => {
                    tracing::debug!(%id, %error, "a service names a network Docker cannot name");
                }
            }
        }
    }

    fn observe_services(
        &self,
        services: Vec<bollard::models::Service>,
        network_names: &HashMap<String, String>,
        observed: &mut Observed,
    ) {
        let no_labels = HashMap::new();
        for service in services {
            let Some(spec) = service.spec.as_ref() else {
                continue;
            };
            let Some(name) = spec.name.clone() else {
                continue;
            };
            let all_labels = spec.labels.as_ref().unwrap_or(&no_labels);
            observed.services.insert(
                name.clone(),
                ObservedService {
                    id: service.id.clone().unwrap_or_default(),
                    version: service.version.as_ref().and_then(|v| v.index).unwrap_or(0),
                    owner: owner_of(all_labels, &self.cluster),
                    spec_hash: all_labels.get(labels::SPEC_HASH).cloned(),
                    update_state: super::convert::update_state(service.update_status.as_ref()),
                    config: service_from_spec(&name, spec, network_names),
                },
            );
        }
    }
}
