//! The labels the controller writes on the Docker objects it owns.

use reconciler_spec::RESERVED_LABEL_PREFIX;

/// Present on every object the controller created; value [`MANAGED_BY_VALUE`].
pub const MANAGED_BY: &str = "io.reconciler.managed-by";
pub const MANAGED_BY_VALUE: &str = "reconciler";
/// The spec's `[cluster] name`: two clusters sharing a swarm never prune each other.
pub const CLUSTER: &str = "io.reconciler.cluster";
/// Hash of the canonical desired spec of the object: a changed spec is seen even
/// when the fields that changed are ones Docker does not echo back.
pub const SPEC_HASH: &str = "io.reconciler.spec-hash";
/// The source revision (git commit) that last wrote the object, when known.
pub const REVISION: &str = "io.reconciler.revision";
/// The `[release.NAME]` a service or network was rendered from.
pub const RELEASE: &str = "io.reconciler.release";
/// The `[stack.NAME]` a service or network was translated from.
pub const STACK: &str = "io.reconciler.stack";
/// On a config or secret version: the `[config.*]`/`[secret.*]` entry it is a version of.
pub const DATA_NAME: &str = "io.reconciler.name";
/// On nodes this cluster claimed: the spec node the swarm node is, so a board
/// keeps its identity when its hostname or address changes.
pub const NODE: &str = "io.reconciler.node";
/// On nodes: the label keys the controller set, so it can remove them again
/// without touching labels somebody else set.
pub const NODE_LABEL_KEYS: &str = "io.reconciler.labels";

/// On a node under `reconciler upgrade`: `"<stage> <availability before>"`,
/// so a killed upgrade resumes where it stopped and restores what it found.
pub const MAINTENANCE: &str = "io.reconciler.maintenance";

/// On a node drained for a critical condition (`[maintenance] drain_on`):
/// `"<condition> <availability before>"`, given back once it clears.
pub const HEALTH_DRAIN: &str = "io.reconciler.health-drain";

/// Whether a label key belongs to the controller rather than the user.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_LABEL_PREFIX)
}

/// The label that records where an object came from, if anywhere.
pub fn group_label(group: Option<&reconciler_spec::Group>) -> Option<(String, String)> {
    match group? {
        reconciler_spec::Group::Release(name) => Some((RELEASE.to_string(), name.clone())),
        reconciler_spec::Group::Stack(name) => Some((STACK.to_string(), name.clone())),
    }
}

/// Reads back [`group_label`].
pub fn group_of(
    labels: &std::collections::HashMap<String, String>,
) -> Option<reconciler_spec::Group> {
    if let Some(name) = labels.get(RELEASE) {
        return Some(reconciler_spec::Group::Release(name.clone()));
    }
    labels
        .get(STACK)
        .map(|name| reconciler_spec::Group::Stack(name.clone()))
}
