//! Configs and secrets: files the spec puts into services' containers.
//!
//! Swarm keeps them immutable, so each content is its own object, named
//! `NAME-<hash of the content>` ([`versioned_name`]). A changed content is a
//! new object; services that use it are updated to the new name (a rolling
//! update, like any other change), and versions no service uses any more are
//! removed afterwards — owned ones only. An external secret is used under its
//! own name and never created or removed.
//!
//! External networks are named the same way: services join them under their
//! Swarm name; they are never created or removed.
//!
//! Services are planned in their *resolved* form ([`resolved`]): their
//! `configs`/`secrets` name the Swarm objects, as Docker reads them back, so
//! comparing and hashing need nothing special.

use std::collections::{BTreeMap, BTreeSet};

use reconciler_spec::{Config, ConfigData, FileRef, Secret, SecretData, Service, Spec};

use super::{owner_text, Action, ObjectKind, Plan, PlanError};
use crate::observed::{Observed, Owner};

/// The Swarm name of one version: the spec name and the first 10 hex
/// digits of the content's sha256 (a changed file is a new object).
pub fn versioned_name(name: &str, content: &[u8]) -> String {
    format!("{name}-{}", content_digest(content))
}

/// The digest of a config's or secret's content, in a version's name and on
/// the object's `io.reconciler.spec-hash` label.
pub fn content_digest(content: &[u8]) -> String {
    crate::digest::sha256_prefix(content, 5)
}

/// What makes a version of a config or secret: its content and, when set,
/// the template driver Swarm reads it with (turning one on is a new
/// version; without one the bytes are the content alone, as before).
pub fn version_of(content: &[u8], template_driver: Option<&str>) -> Vec<u8> {
    let mut bytes = content.to_vec();
    if let Some(driver) = template_driver {
        bytes.extend_from_slice(b"\0template_driver=");
        bytes.extend_from_slice(driver.as_bytes());
    }
    bytes
}

/// A config's version bytes; taken apart without `..` so a new field of
/// [`Config`] is decided here (does it make a new version?).
pub fn config_version(config: &Config) -> Option<Vec<u8>> {
    let Config {
        name: _,
        group: _,
        labels: _,
        fixed_name: _,
        data,
        template_driver,
    } = config;
    match data {
        ConfigData::Content(text) => Some(version_of(text.as_bytes(), template_driver.as_deref())),
        ConfigData::External { .. } => None,
    }
}

/// As [`config_version`], for a secret.
pub fn secret_version(secret: &Secret) -> Option<Vec<u8>> {
    let Secret {
        name: _,
        group: _,
        labels: _,
        fixed_name: _,
        data,
        template_driver,
    } = secret;
    match data {
        SecretData::File { value, .. } => {
            Some(version_of(value.expose(), template_driver.as_deref()))
        }
        SecretData::External { .. } => None,
    }
}

/// The Swarm name of each config and secret of the spec, and of each
/// external network, by spec name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DataNames {
    pub configs: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub networks: BTreeMap<String, String>,
}

impl DataNames {
    pub fn of(spec: &Spec) -> Self {
        Self {
            configs: spec
                .configs
                .values()
                .map(|c| {
                    let swarm_name = match (&c.data, &c.fixed_name, config_version(c)) {
                        (ConfigData::External { name }, _, _) => name.clone(),
                        (_, Some(fixed), _) => fixed.clone(),
                        (_, None, version) => versioned_name(&c.name, &version.unwrap_or_default()),
                    };
                    (c.name.clone(), swarm_name)
                })
                .collect(),
            secrets: spec
                .secrets
                .values()
                .map(|s| {
                    let swarm_name = match (&s.data, &s.fixed_name, secret_version(s)) {
                        (SecretData::External { name }, _, _) => name.clone(),
                        (_, Some(fixed), _) => fixed.clone(),
                        (_, None, version) => versioned_name(&s.name, &version.unwrap_or_default()),
                    };
                    (s.name.clone(), swarm_name)
                })
                .collect(),
            networks: spec
                .networks
                .values()
                .filter_map(|n| Some((n.name.clone(), n.external.clone()?)))
                .collect(),
        }
    }
}

/// The service with its configs and secrets naming Swarm objects.
pub fn resolved(service: &Service, names: &DataNames) -> Service {
    let rename = |refs: &[FileRef], names: &BTreeMap<String, String>| -> Vec<FileRef> {
        let mut refs: Vec<FileRef> = refs
            .iter()
            .map(|r| FileRef {
                source: names
                    .get(&r.source)
                    .cloned()
                    .unwrap_or_else(|| r.source.clone()),
                ..r.clone()
            })
            .collect();
        // As the docker CLI sends them, so the order never reads as a change.
        refs.sort_by(|a, b| a.source.cmp(&b.source).then(a.target.cmp(&b.target)));
        refs
    };
    let network = |n: &String| names.networks.get(n).cloned().unwrap_or_else(|| n.clone());
    Service {
        configs: rename(&service.configs, &names.configs),
        secrets: rename(&service.secrets, &names.secrets),
        networks: service.networks.iter().map(network).collect(),
        network_aliases: service
            .network_aliases
            .iter()
            .map(|(n, aliases)| (network(n), aliases.clone()))
            .collect(),
        ..service.clone()
    }
}

/// Creates the versions that do not exist yet; refuses a name that exists
/// but is not ours, and an external secret that does not exist.
pub fn plan_creations(
    desired: &Spec,
    observed: &Observed,
    names: &DataNames,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    for config in desired.configs.values() {
        let swarm_name = &names.configs[&config.name];
        if let ConfigData::External { name } = &config.data {
            if !observed.configs.contains_key(swarm_name) {
                return Err(PlanError::MissingExternalConfig { name: name.clone() });
            }
            continue;
        }
        match observed.configs.get(swarm_name) {
            None => plan.actions.push(Action::CreateConfig {
                config: Box::new(config.clone()),
                swarm_name: swarm_name.clone(),
            }),
            Some(live) if live.owner != Owner::ThisCluster => {
                return Err(PlanError::NotOurs {
                    kind: ObjectKind::Config,
                    name: swarm_name.clone(),
                    owner: owner_text(&live.owner),
                })
            }
            Some(live) => {
                if let Some(version) = config_version(config) {
                    same_content(ObjectKind::Config, swarm_name, live, &version)?;
                }
            }
        }
    }
    for secret in desired.secrets.values() {
        let swarm_name = &names.secrets[&secret.name];
        let live = observed.secrets.get(swarm_name);
        match (&secret.data, live) {
            (SecretData::External { .. }, Some(_)) => {}
            (SecretData::External { name }, None) => {
                return Err(PlanError::MissingExternalSecret { name: name.clone() })
            }
            (SecretData::File { .. }, None) => plan.actions.push(Action::CreateSecret {
                secret: Box::new(secret.clone()),
                swarm_name: swarm_name.clone(),
            }),
            (SecretData::File { .. }, Some(live)) if live.owner != Owner::ThisCluster => {
                return Err(PlanError::NotOurs {
                    kind: ObjectKind::Secret,
                    name: swarm_name.clone(),
                    owner: owner_text(&live.owner),
                })
            }
            (SecretData::File { .. }, Some(live)) => {
                let version = secret_version(secret).unwrap_or_default();
                same_content(ObjectKind::Secret, swarm_name, live, &version)?;
            }
        }
    }
    Ok(())
}

/// A name the spec fixed must still hold the spec's content: Swarm never
/// changes a config or secret, so a new content under the same name cannot
/// be written (`docker stack deploy` fails the same way). A version's name
/// holds its digest, so only fixed names can differ; objects made before
/// their digest was recorded are taken as they are.
fn same_content(
    kind: ObjectKind,
    swarm_name: &str,
    live: &crate::observed::ObservedData,
    content: &[u8],
) -> Result<(), PlanError> {
    match &live.digest {
        Some(digest) if *digest != content_digest(content) => Err(PlanError::FixedNameChanged {
            kind,
            name: swarm_name.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Removes this cluster's versions that no desired service uses and that no
/// service left in the swarm (another cluster's, or ours kept without
/// `prune`) still names.
pub fn plan_removals(desired: &Spec, observed: &Observed, names: &DataNames, plan: &mut Plan) {
    let removed_services: BTreeSet<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RemoveService { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    // Services that stay as they are name what they name now.
    let staying = observed.services.iter().filter(|(name, _)| {
        !desired.services.contains_key(*name) && !removed_services.contains(name.as_str())
    });
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    for (_, service) in staying {
        in_use.extend(service.config.configs.iter().map(|r| r.source.clone()));
        in_use.extend(service.config.secrets.iter().map(|r| r.source.clone()));
    }
    let wanted_configs: BTreeSet<&String> = names.configs.values().collect();
    let wanted_secrets: BTreeSet<&String> = names.secrets.values().collect();
    for (name, live) in &observed.configs {
        if live.owner == Owner::ThisCluster
            && !wanted_configs.contains(name)
            && !in_use.contains(name)
        {
            plan.actions.push(Action::RemoveConfig {
                name: name.clone(),
                id: live.id.clone(),
            });
        }
    }
    for (name, live) in &observed.secrets {
        if live.owner == Owner::ThisCluster
            && !wanted_secrets.contains(name)
            && !in_use.contains(name)
        {
            plan.actions.push(Action::RemoveSecret {
                name: name.clone(),
                id: live.id.clone(),
            });
        }
    }
}
