//! `plan(desired, observed) -> Plan`: the pure heart of the controller.
//!
//! No I/O happens here. The same function is behind `plan`, `apply` and the
//! long-running loop, so what `plan` prints is exactly what `apply` does.
//! Actions come out in the safe order: node changes (promotions first,
//! demotions last), network creations, service creations and updates (in
//! `after` order), service removals, network removals.

pub mod board_config;
pub mod boards;
pub mod data;

pub use data::content_digest;
pub mod fields;
mod matching;
mod nodes;
pub mod render;
pub mod text_diff;

use crate::failure::{Classify, ErrorClass};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use reconciler_spec::{Config, Network, Secret, Service, Spec};
use serde::Serialize;

use crate::observed::{Observed, Owner};
pub use fields::FieldChange;
pub use nodes::NodeUpdate;

/// Knobs of planning that come from the command line rather than the spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Allow deleting more than `max_delete_fraction` of the managed services.
    pub allow_mass_delete: bool,
    /// The node layer is active (`--ssh`): boards this cluster joined that
    /// left the spec are drained, leave the swarm and are removed.
    pub manage_membership: bool,
    /// Plan against a swarm none of the spec's nodes is in (refused otherwise).
    pub allow_other_swarm: bool,
}

/// One write the controller intends to make.
#[derive(Debug, Clone)]
pub enum Action {
    UpdateNode(NodeUpdate),
    CreateNetwork {
        network: Network,
        hash: String,
    },
    RemoveNetwork {
        name: String,
        id: String,
    },
    CreateService {
        service: Box<Service>,
        hash: String,
    },
    UpdateService {
        id: String,
        version: u64,
        service: Box<Service>,
        hash: String,
        changes: Vec<FieldChange>,
        /// `true` when the spec is unchanged and the live object drifted.
        drift: bool,
    },
    RemoveService {
        name: String,
        id: String,
    },
    /// One version of a config (see [`data`]).
    CreateConfig {
        config: Box<Config>,
        swarm_name: String,
    },
    RemoveConfig {
        name: String,
        id: String,
    },
    /// One version of a secret; its value is never shown.
    CreateSecret {
        secret: Box<Secret>,
        swarm_name: String,
    },
    RemoveSecret {
        name: String,
        id: String,
    },
    /// A node of this cluster that no spec node is: see [`Departure`].
    RemoveNode {
        name: String,
        id: String,
        address: String,
        manager: bool,
        departure: Departure,
    },
}

/// How a node leaves the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Departure {
    /// The board is up: drain, wait for its tasks to move, demote a manager,
    /// `docker swarm leave` over SSH once the board confirms it is this node
    /// ID, then remove the object.
    Leave,
    /// The node has been down for `down_node_grace`: drain, demote, remove
    /// the object. The board is never contacted: whatever answers at its old
    /// address may be another board now.
    Forget,
}

/// What an action does, for summaries and rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Create,
    Update,
    Remove,
}

impl Operation {
    /// Every operation, for metrics that report each one (also at zero).
    pub const ALL: [Operation; 3] = [Operation::Create, Operation::Update, Operation::Remove];

    /// The one spelling used in text, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Remove => "remove",
        }
    }

    /// How progress reads while it happens: `creating`, `updating`, `removing`.
    pub fn progressive(self) -> &'static str {
        match self {
            Operation::Create => "creating",
            Operation::Update => "updating",
            Operation::Remove => "removing",
        }
    }
}

/// The kind of object an action writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Node,
    Network,
    Service,
    Config,
    Secret,
}

impl ObjectKind {
    /// Every kind, for metrics that report each one (also at zero).
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Node,
        ObjectKind::Network,
        ObjectKind::Service,
        ObjectKind::Config,
        ObjectKind::Secret,
    ];

    /// The one spelling used in text, JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Node => "node",
            ObjectKind::Network => "network",
            ObjectKind::Service => "service",
            ObjectKind::Config => "config",
            ObjectKind::Secret => "secret",
        }
    }
}

impl Action {
    pub fn operation(&self) -> Operation {
        match self {
            Action::CreateNetwork { .. }
            | Action::CreateService { .. }
            | Action::CreateConfig { .. }
            | Action::CreateSecret { .. } => Operation::Create,
            Action::UpdateNode(_) | Action::UpdateService { .. } => Operation::Update,
            Action::RemoveNetwork { .. }
            | Action::RemoveService { .. }
            | Action::RemoveConfig { .. }
            | Action::RemoveSecret { .. }
            | Action::RemoveNode { .. } => Operation::Remove,
        }
    }

    pub fn kind(&self) -> ObjectKind {
        match self {
            Action::UpdateNode(_) | Action::RemoveNode { .. } => ObjectKind::Node,
            Action::CreateNetwork { .. } | Action::RemoveNetwork { .. } => ObjectKind::Network,
            Action::CreateService { .. }
            | Action::UpdateService { .. }
            | Action::RemoveService { .. } => ObjectKind::Service,
            Action::CreateConfig { .. } | Action::RemoveConfig { .. } => ObjectKind::Config,
            Action::CreateSecret { .. } | Action::RemoveSecret { .. } => ObjectKind::Secret,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Action::UpdateNode(update) => &update.name,
            Action::CreateNetwork { network, .. } => &network.name,
            Action::CreateService { service, .. } | Action::UpdateService { service, .. } => {
                &service.name
            }
            Action::CreateConfig { swarm_name, .. } | Action::CreateSecret { swarm_name, .. } => {
                swarm_name
            }
            Action::RemoveNetwork { name, .. }
            | Action::RemoveService { name, .. }
            | Action::RemoveConfig { name, .. }
            | Action::RemoveSecret { name, .. }
            | Action::RemoveNode { name, .. } => name,
        }
    }

    /// Field-level changes, as shown to users (sensitive values masked).
    pub fn changes(&self) -> Vec<FieldChange> {
        let all_new = |fields: Vec<fields::Field>| {
            fields
                .into_iter()
                .map(|f| FieldChange {
                    new: Some(f.display()),
                    field: f.name,
                    old: None,
                })
                .collect()
        };
        match self {
            Action::UpdateNode(update) => update.changes.clone(),
            Action::CreateNetwork { network, .. } => all_new(fields::network_fields(network)),
            Action::CreateService { service, .. } => all_new(fields::service_fields(service)),
            Action::UpdateService { changes, .. } => changes.clone(),
            // What a version is: its spec entry and size; a secret's value never.
            Action::CreateConfig { config, .. } => vec![
                FieldChange {
                    field: "config".into(),
                    old: None,
                    new: Some(format!("{:?}", config.name)),
                },
                FieldChange {
                    field: "size".into(),
                    old: None,
                    new: Some(match &config.data {
                        reconciler_spec::ConfigData::Content(text) => {
                            format!("{} bytes", text.len())
                        }
                        reconciler_spec::ConfigData::External { name } => {
                            format!("external {name:?}")
                        }
                    }),
                },
            ],
            Action::CreateSecret { secret, .. } => vec![
                FieldChange {
                    field: "secret".into(),
                    old: None,
                    new: Some(format!("{:?}", secret.name)),
                },
                FieldChange {
                    field: "value".into(),
                    old: None,
                    new: Some("(sensitive)".into()),
                },
            ],
            Action::RemoveNetwork { .. }
            | Action::RemoveService { .. }
            | Action::RemoveConfig { .. }
            | Action::RemoveSecret { .. }
            | Action::RemoveNode { .. } => Vec::new(),
        }
    }
}

/// The ordered actions that make the swarm match the spec.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Things the plan cannot do anything about but the user should know.
    pub warnings: Vec<String>,
}

/// Counts for the `Plan: N to add, N to change, N to destroy.` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for action in &self.actions {
            match action.operation() {
                Operation::Create => summary.add += 1,
                Operation::Update => summary.change += 1,
                Operation::Remove => summary.destroy += 1,
            }
        }
        summary
    }
}

/// Why no plan can be made; nothing is written when planning fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The spec names an object that exists but belongs to somebody else.
    #[error("{kind:?} `{name}` already exists in the swarm but is not managed by this cluster ({owner}); rename it in the spec, or remove the existing one")]
    NotOurs {
        kind: ObjectKind,
        name: String,
        owner: String,
    },
    /// A config or secret whose Swarm name the spec fixed exists with another
    /// content: Swarm cannot change it, and the services using it would not move.
    #[error("{} `{name}` already exists with other content, and Swarm never changes a {}; give the new content a new `name` (e.g. bump a version in it) or remove the old one once no service uses it", kind.as_str(), kind.as_str())]
    FixedNameChanged { kind: ObjectKind, name: String },
    /// Too many managed objects would be deleted at once.
    #[error("refusing to delete {deletes} of {total} managed {}s (more than max_delete_fraction = {fraction}{}); if this is intended, apply it once with `reconciler apply --allow-mass-delete` (a running controller then goes on from there) or raise max_delete_fraction in the spec", kind.as_str(), if *from_last_applied { ", the last applied revision's: a higher value takes effect once a revision carrying it has been applied" } else { "" })]
    MassDelete {
        kind: ObjectKind,
        deletes: usize,
        total: usize,
        fraction: f64,
        /// The last applied revision's threshold was stricter than this one's.
        from_last_applied: bool,
    },
    /// A managed network's settings changed; Docker cannot update networks in place.
    #[error("network `{name}` changed ({fields}) but networks cannot be changed in place; give it a new name in the spec (services move to the new one, the old one is pruned)")]
    NetworkChanged { name: String, fields: String },
    /// The spec has nodes and none of them is in the swarm that was reached:
    /// most likely another swarm (a laptop's `DOCKER_HOST`), which an apply
    /// would fill with the cluster's services.
    #[error("none of the spec's {spec_nodes} node(s) is in the swarm that was reached ({swarm}), so this is not the cluster's swarm. Reach one of its managers: plan with `--ssh` (through the boards), or on a manager (`reconciler install` puts the controller there); to plan against this swarm anyway, pass --allow-other-swarm")]
    OtherSwarm { spec_nodes: usize, swarm: String },
    /// Demoting would leave the swarm without any manager.
    #[error("refusing to demote node `{node}`: it would leave the swarm without a manager")]
    LastManager { node: String },
    /// Two live swarm nodes answer to one spec node.
    #[error("node `{node}` matches two live swarm nodes by {evidence}: {first} and {second}; remove the stale one (`docker node rm ID` on a manager), or plan with --ssh so the board says which it is")]
    AmbiguousNode {
        node: String,
        evidence: &'static str,
        first: String,
        second: String,
    },
    /// One swarm node answers to two spec nodes.
    #[error("swarm node {swarm_node} is node `{first}` (by {first_evidence}) and node `{second}` (by {second_evidence}); correct the address of one of them in the spec")]
    SharedSwarmNode {
        swarm_node: String,
        first: String,
        first_evidence: &'static str,
        second: String,
        second_evidence: &'static str,
    },
    /// An `external = true` network that the swarm does not have.
    #[error("network `{name}` is external but the swarm has no such network; create it first (`docker network create --driver overlay --attachable {name}`)")]
    MissingExternalNetwork { name: String },
    /// An `external = true` config that the swarm does not have.
    #[error("config `{name}` is external but the swarm has no config of that name; create it first (`docker config create {name} FILE`), or give it a `file` in the spec")]
    MissingExternalConfig { name: String },
    /// An `external = true` secret that the swarm does not have.
    #[error("secret `{name}` is external but the swarm has no secret of that name; create it first (`docker secret create {name} FILE`), or give it a `file` in the spec")]
    MissingExternalSecret { name: String },
    /// A spec node is a member of another cluster sharing the swarm.
    #[error("node `{node}` is a member of cluster `{cluster}` (its io.reconciler.cluster label); refusing to manage it. Remove it from this spec, or if the board really moved here, remove that label by hand (`docker node update --label-rm io.reconciler.cluster ID`)")]
    NodeOfOtherCluster { node: String, cluster: String },
    /// Role changes would leave fewer reachable managers than a raft majority.
    #[error("refusing role changes that leave {reachable} reachable of {managers} managers, below quorum ({quorum}); fix unreachable managers first")]
    Quorum {
        managers: usize,
        reachable: usize,
        quorum: usize,
    },
}

/// Computes the actions that turn `observed` into `desired`. Pure.
pub fn plan(desired: &Spec, observed: &Observed, options: PlanOptions) -> Result<Plan, PlanError> {
    plan_prepared(desired, &Prepared::of(desired), observed, options)
}

/// What planning takes from the spec alone: its services as they are
/// written to Docker (configs, secrets and networks named as in Swarm), in
/// `after` order, each with its spec hash. Most of a no-op plan's work, so
/// `apply` prepares it while Docker is still answering.
#[derive(Debug)]
pub struct Prepared {
    names: data::DataNames,
    services: Vec<(Service, String)>,
}

impl Prepared {
    pub fn of(desired: &Spec) -> Self {
        let names = data::DataNames::of(desired);
        let services = after_order(&desired.services)
            .iter()
            .filter_map(|name| desired.services.get(name))
            .map(|service| {
                let service = data::resolved(service, &names);
                let hash = fields::service_hash(&service);
                (service, hash)
            })
            .collect();
        Self { names, services }
    }
}

/// [`plan`] with the spec's side [`Prepared`] already (from this `desired`).
pub fn plan_prepared(
    desired: &Spec,
    prepared: &Prepared,
    observed: &Observed,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let (node_updates, node_removals) =
        nodes::plan_nodes(desired, observed, options, &mut plan.warnings)?;
    plan.actions
        .extend(node_updates.into_iter().map(Action::UpdateNode));
    plan_network_creations(desired, observed, &mut plan)?;
    let names = &prepared.names;
    data::plan_creations(desired, observed, names, &mut plan)?;
    plan_services(&prepared.services, observed, &mut plan)?;
    if desired.controller.prune {
        plan_service_removals(desired, observed, &mut plan);
        data::plan_removals(desired, observed, names, &mut plan);
        plan_network_removals(desired, observed, &mut plan);
    } else {
        warn_kept_leftovers(desired, observed, &mut plan.warnings);
    }
    plan.actions.extend(node_removals);
    check_mass_delete(desired, observed, options, &plan)?;
    Ok(plan)
}

fn owner_text(owner: &Owner) -> String {
    match owner {
        Owner::ThisCluster => "this cluster".into(),
        Owner::OtherCluster(name) => format!("managed by cluster `{name}`"),
        Owner::Unmanaged => "created outside reconciler".into(),
    }
}

fn plan_network_creations(
    desired: &Spec,
    observed: &Observed,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    for network in desired.networks.values() {
        if let Some(swarm_name) = &network.external {
            // Docker's own networks exist on every node (the CLI's
            // `IsUserDefined` skips them too); any other must exist in the swarm.
            if !reconciler_spec::is_predefined_network(swarm_name)
                && !observed.networks.contains_key(swarm_name)
            {
                return Err(PlanError::MissingExternalNetwork {
                    name: swarm_name.clone(),
                });
            }
            continue;
        }
        let hash = fields::network_hash(network);
        match observed.networks.get(&network.name) {
            None => plan.actions.push(Action::CreateNetwork {
                network: network.clone(),
                hash,
            }),
            Some(live) if live.owner != Owner::ThisCluster => {
                return Err(PlanError::NotOurs {
                    kind: ObjectKind::Network,
                    name: network.name.clone(),
                    owner: owner_text(&live.owner),
                })
            }
            Some(live) => {
                let changes = fields::diff(
                    &fields::network_fields(&fields::network_as_desired(&live.config, network)),
                    &fields::network_fields(network),
                );
                if !changes.is_empty() {
                    let names: Vec<String> = changes.iter().map(|c| c.field.clone()).collect();
                    return Err(PlanError::NetworkChanged {
                        name: network.name.clone(),
                        fields: names.join(", "),
                    });
                }
            }
        }
    }
    Ok(())
}

fn plan_services(
    services: &[(Service, String)],
    observed: &Observed,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    for (service, hash) in services {
        match observed.services.get(&service.name) {
            None => plan.actions.push(Action::CreateService {
                service: Box::new(service.clone()),
                hash: hash.clone(),
            }),
            Some(live) if live.owner != Owner::ThisCluster => {
                return Err(PlanError::NotOurs {
                    kind: ObjectKind::Service,
                    name: service.name.clone(),
                    owner: owner_text(&live.owner),
                })
            }
            Some(live) => {
                let live_config = comparable(&live.config, service);
                // Equal services have equal fields: listing them (most of a
                // no-op's planning) is only for those that differ.
                let mut changes = if *live_config == *service {
                    Vec::new()
                } else {
                    fields::diff(
                        &fields::service_fields(&live_config),
                        &fields::service_fields(service),
                    )
                };
                let spec_changed = live.spec_hash.as_deref() != Some(hash.as_str());
                if changes.is_empty() && spec_changed {
                    changes.push(FieldChange {
                        field: "spec-hash".into(),
                        old: live.spec_hash.clone(),
                        new: Some(hash.clone()),
                    });
                }
                if !changes.is_empty() {
                    plan.actions.push(Action::UpdateService {
                        id: live.id.clone(),
                        version: live.version,
                        service: Box::new(service.clone()),
                        hash: hash.clone(),
                        changes,
                        drift: !spec_changed,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The live service in the form it is compared in. Docker (or `docker
/// service create`) pins a tag to a digest (`x:1@sha256:...`); when the spec
/// names only the tag, the digest is not part of what it asks for. A spec that
/// pins a digest itself is compared with the digest. Borrowed when nothing
/// needs changing (most services of a no-op).
fn comparable<'a>(live: &'a Service, desired: &Service) -> Cow<'a, Service> {
    let unpin = !desired.image.contains('@') && live.image.contains('@');
    // Not a Docker field: the order of work, never observed.
    if !unpin && live.after == desired.after {
        return Cow::Borrowed(live);
    }
    let mut live = live.clone();
    live.after.clone_from(&desired.after);
    if unpin {
        if let Some((tag, _digest)) = live.image.split_once('@') {
            live.image = tag.to_string();
        }
    }
    Cow::Owned(live)
}

/// Service names so that every service comes after the ones in its `after`.
/// The spec is validated acyclic; ties go alphabetically for stable plans.
pub fn after_order(services: &BTreeMap<String, Service>) -> Vec<String> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(services.len());
    while order.len() < services.len() {
        let ready: Vec<&str> = services
            .values()
            .filter(|s| !done.contains(s.name.as_str()))
            .filter(|s| {
                s.after
                    .iter()
                    .all(|d| done.contains(d.as_str()) || !services.contains_key(d))
            })
            .map(|s| s.name.as_str())
            .collect();
        if ready.is_empty() {
            // Only reachable with a cycle, which validation refuses; keep the rest in name order.
            order.extend(
                services
                    .keys()
                    .filter(|n| !done.contains(n.as_str()))
                    .cloned(),
            );
            break;
        }
        for name in ready {
            done.insert(name);
            order.push(name.to_string());
        }
    }
    order
}

fn plan_service_removals(desired: &Spec, observed: &Observed, plan: &mut Plan) {
    let owned: Vec<_> = observed
        .services
        .iter()
        .filter(|(_, s)| s.owner == Owner::ThisCluster)
        .collect();
    let removals: Vec<Action> = owned
        .iter()
        .filter(|(name, _)| !desired.services.contains_key(*name))
        .map(|(name, s)| Action::RemoveService {
            name: (*name).clone(),
            id: s.id.clone(),
        })
        .collect();
    plan.actions.extend(removals);
    warn_kept_volumes(desired, &owned, plan);
}

/// Removing a service (a stack's, a release's) keeps its named volumes on
/// the nodes that ran it, as `docker stack rm` does: the plan says so, so
/// nobody believes the data is gone, or that the disk was freed.
fn warn_kept_volumes(
    desired: &Spec,
    owned: &[(&String, &crate::observed::ObservedService)],
    plan: &mut Plan,
) {
    let still_used: BTreeSet<&str> = desired.services.values().flat_map(volume_sources).collect();
    let mut kept: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, service) in owned {
        if desired.services.contains_key(*name) {
            continue;
        }
        for volume in volume_sources(&service.config) {
            if !still_used.contains(volume) {
                kept.entry(volume).or_default().push(name.as_str());
            }
        }
    }
    for (volume, services) in kept {
        plan.warnings.push(format!(
            "volume `{volume}` of removed service(s) {} is kept, with its data, on each node that ran them; remove it there with `docker volume rm {volume}` once it is no longer wanted",
            services.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        ));
    }
}

/// The named volumes a service mounts.
fn volume_sources(service: &Service) -> impl Iterator<Item = &str> {
    service
        .mounts
        .iter()
        .filter(|m| m.kind == reconciler_spec::MountKind::Volume)
        .filter_map(|m| m.source.as_deref())
}

/// Refuses a plan that removes more than `max_delete_fraction` of this
/// cluster's services, of its nodes, or of its networks, each kind counted
/// apart (a commit that empties a file takes a whole kind). One object of
/// a kind leaving is routine (a board retired, the network of a removed
/// service, the only service of a small cluster replaced), so each kind
/// counts from two removals on.
fn check_mass_delete(
    desired: &Spec,
    observed: &Observed,
    options: PlanOptions,
    plan: &Plan,
) -> Result<(), PlanError> {
    if options.allow_mass_delete {
        return Ok(());
    }
    let spec_fraction = desired.controller.max_delete_fraction;
    let applied = observed
        .applied_max_delete_fraction
        .filter(|applied| *applied < spec_fraction);
    let fraction = applied.unwrap_or(spec_fraction);
    let owned = |kind: ObjectKind| match kind {
        ObjectKind::Service => observed
            .services
            .values()
            .filter(|s| s.owner == Owner::ThisCluster)
            .count(),
        ObjectKind::Network => observed
            .networks
            .values()
            .filter(|n| n.owner == Owner::ThisCluster && !n.leaving)
            .count(),
        ObjectKind::Node => observed
            .nodes
            .iter()
            .filter(|n| n.labels.get(crate::labels::CLUSTER) == Some(&desired.cluster.name))
            .count(),
        // Versions of configs and secrets are not guarded: removing one no
        // service uses loses nothing, and Swarm refuses one still in use.
        ObjectKind::Config | ObjectKind::Secret => 0,
    };
    for kind in [ObjectKind::Service, ObjectKind::Node, ObjectKind::Network] {
        let deletes = plan
            .actions
            .iter()
            .filter(|a| a.kind() == kind && a.operation() == Operation::Remove)
            .count();
        let total = owned(kind);
        #[allow(
            clippy::cast_precision_loss,
            reason = "counts of objects are far below f64's exact integer range"
        )]
        let share = deletes as f64 / total.max(1) as f64;
        if deletes >= 2 && share > fraction {
            return Err(PlanError::MassDelete {
                kind,
                deletes,
                total,
                fraction,
                from_last_applied: applied.is_some(),
            });
        }
    }
    Ok(())
}

/// With `prune = false`, objects of this cluster that left the spec stay;
/// the plan says so instead of claiming the swarm matches the spec.
fn warn_kept_leftovers(desired: &Spec, observed: &Observed, warnings: &mut Vec<String>) {
    let services = observed
        .services
        .iter()
        .filter(|(name, s)| s.owner == Owner::ThisCluster && !desired.services.contains_key(*name))
        .map(|(name, _)| ("service", name));
    let networks = observed
        .networks
        .iter()
        .filter(|(name, n)| n.owner == Owner::ThisCluster && !desired.networks.contains_key(*name))
        .map(|(name, _)| ("network", name));
    for (kind, name) in services.chain(networks) {
        warnings.push(format!(
            "{kind} `{name}` is no longer in the spec but is kept: [controller] prune = false"
        ));
    }
}

fn plan_network_removals(desired: &Spec, observed: &Observed, plan: &mut Plan) {
    for (name, network) in &observed.networks {
        if network.owner == Owner::ThisCluster && !desired.networks.contains_key(name) {
            if network.leaving {
                plan.warnings.push(format!(
                    "network `{name}` is leaving: tasks of removed services are still detaching from it; Swarm removes it once they have stopped (the next plan removes it if it is still there)"
                ));
                continue;
            }
            plan.actions.push(Action::RemoveNetwork {
                name: name.clone(),
                id: network.id.clone(),
            });
        }
    }
}

impl Classify for PlanError {
    /// Every refused plan waits for a person: that is why it was refused.
    fn class(&self) -> ErrorClass {
        ErrorClass::NeedsPerson
    }

    fn reason(&self) -> &'static str {
        match self {
            PlanError::NotOurs { .. } => "not_ours",
            PlanError::FixedNameChanged { .. } => "fixed_name_changed",
            PlanError::MassDelete { .. } => "mass_delete",
            PlanError::NetworkChanged { .. } => "network_changed",
            PlanError::LastManager { .. } => "last_manager",
            PlanError::OtherSwarm { .. } => "other_swarm",
            PlanError::Quorum { .. } => "quorum",
            PlanError::AmbiguousNode { .. } => "ambiguous_node",
            PlanError::SharedSwarmNode { .. } => "shared_swarm_node",
            PlanError::NodeOfOtherCluster { .. } => "node_of_other_cluster",
            PlanError::MissingExternalSecret { .. } => "missing_external_secret",
            PlanError::MissingExternalConfig { .. } => "missing_external_config",
            PlanError::MissingExternalNetwork { .. } => "missing_external_network",
        }
    }
}

#[cfg(test)]
mod tests;
