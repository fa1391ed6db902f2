//! Table-style tests of the pure planner: desired + observed -> actions.

use std::collections::BTreeMap;

use reconciler_spec::{load_files, Availability, Role, Spec};

use super::*;
use crate::observed::{NodeState, ObservedData, ObservedNetwork, ObservedNode, ObservedService};

fn spec(body: &str) -> Spec {
    let text = format!("[cluster]\nname = \"lab\"\n{body}");
    match load_files(vec![("spec.toml".into(), text)]) {
        Ok(spec) => spec,
        Err(error) => panic!("test spec is invalid: {error}"),
    }
}

/// The swarm as if the controller had applied `spec` exactly.
fn applied(spec: &Spec) -> Observed {
    let mut observed = Observed::default();
    for (name, network) in &spec.networks {
        observed.networks.insert(
            name.clone(),
            ObservedNetwork {
                id: format!("net-{name}"),
                owner: Owner::ThisCluster,
                spec_hash: Some(fields::network_hash(network)),
                config: network.clone(),
                leaving: false,
            },
        );
    }
    for (name, service) in &spec.services {
        let mut config = service.clone();
        config.after.clear();
        observed.services.insert(
            name.clone(),
            ObservedService {
                id: format!("svc-{name}"),
                version: 7,
                owner: Owner::ThisCluster,
                spec_hash: Some(fields::service_hash(service)),
                update_state: None,
                config,
            },
        );
    }
    observed
}

fn node(id: &str, hostname: &str, role: Role, reachable: bool) -> ObservedNode {
    ObservedNode {
        id: id.into(),
        version: 3,
        hostname: hostname.into(),
        address: format!("10.0.0.{}", hostname.len()),
        architecture: "aarch64".into(),
        engine_version: "28.2.2".into(),
        role,
        availability: Availability::Active,
        // Already claimed by the test cluster "lab" as the spec node `hostname`.
        labels: BTreeMap::from([
            (crate::labels::CLUSTER.to_string(), "lab".to_string()),
            (crate::labels::NODE.to_string(), hostname.to_string()),
        ]),
        state: NodeState::Ready,
        manager_reachable: (role == Role::Manager).then_some(reachable),
        leader: false,
        updated_at: None,
    }
}

/// `op kind.name` for each action, the shape plans are compared in.
fn outline(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| {
            format!(
                "{} {}.{}",
                a.operation().as_str(),
                a.kind().as_str(),
                a.name()
            )
        })
        .collect()
}

fn run(spec: &Spec, observed: &Observed) -> Plan {
    match plan(spec, observed, PlanOptions::default()) {
        Ok(plan) => plan,
        Err(error) => panic!("unexpected plan error: {error}"),
    }
}

const WEB: &str = r#"
[network.front]
[service.web]
image = "local/busybox:1"
replicas = 3
networks = ["front"]
env = { GREETING = "hello", DB_PASSWORD = "hunter2" }
"#;

#[test]
fn empty_swarm_creates_networks_first_then_services_in_after_order() {
    let desired = spec(
        r#"
[network.front]
[service.web]
image = "a"
after = ["db"]
networks = ["front"]
[service.db]
image = "b"
[service.api]
image = "c"
after = ["web"]
"#,
    );
    let plan = run(&desired, &Observed::default());
    assert_eq!(
        outline(&plan),
        [
            "create network.front",
            "create service.db",
            "create service.web",
            "create service.api"
        ]
    );
    assert_eq!(
        plan.summary(),
        Summary {
            add: 4,
            change: 0,
            destroy: 0
        }
    );
}

#[test]
fn an_applied_spec_plans_nothing() {
    let desired = spec(WEB);
    let plan = run(&desired, &applied(&desired));
    assert!(plan.is_empty(), "{:?}", outline(&plan));
}

#[test]
fn drift_shows_exactly_the_changed_field() {
    let desired = spec(WEB);
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        web.config.mode = reconciler_spec::ServiceMode::Replicated(5);
    }
    let plan = run(&desired, &observed);
    assert_eq!(outline(&plan), ["update service.web"]);
    let Action::UpdateService {
        changes,
        drift,
        version,
        ..
    } = &plan.actions[0]
    else {
        panic!("expected a service update")
    };
    assert!(*drift);
    assert_eq!(*version, 7);
    assert_eq!(
        changes,
        &[FieldChange {
            field: "replicas".into(),
            old: Some("5".into()),
            new: Some("3".into())
        }]
    );
}

#[test]
fn a_spec_change_is_an_update_not_drift() {
    let before = spec(WEB);
    let after = spec(&WEB.replace("local/busybox:1", "local/busybox:2"));
    let plan = run(&after, &applied(&before));
    let Action::UpdateService { changes, drift, .. } = &plan.actions[0] else {
        panic!("expected a service update")
    };
    assert!(!*drift);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, "image");
    assert_eq!(changes[0].old.as_deref(), Some("\"local/busybox:1\""));
    assert_eq!(changes[0].new.as_deref(), Some("\"local/busybox:2\""));
}

#[test]
fn removing_a_desired_only_field_still_updates_through_the_spec_hash() {
    let before = spec(&format!("{WEB}update = {{ parallelism = 2 }}\n"));
    let after = spec(WEB);
    let plan = run(&after, &applied(&before));
    assert_eq!(outline(&plan), ["update service.web"]);
    assert_eq!(plan.actions[0].changes()[0].field, "spec-hash");
}

#[test]
fn daemon_filled_defaults_are_not_drift() {
    let desired = spec(WEB);
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        web.config.update = Some(reconciler_spec::UpdatePolicy {
            parallelism: Some(1),
            delay: Some(std::time::Duration::ZERO),
            failure_action: Some(reconciler_spec::FailureAction::Pause),
            monitor: Some(std::time::Duration::from_secs(5)),
            max_failure_ratio: Some(0.0),
            order: Some(reconciler_spec::UpdateOrder::StopFirst),
        });
    }
    assert!(run(&desired, &observed).is_empty());
}

#[test]
fn sensitive_environment_values_are_masked() {
    let before = spec(WEB);
    let after = spec(&WEB.replace("hunter2", "correct-horse"));
    let plan = run(&after, &applied(&before));
    let changes = plan.actions[0].changes();
    assert_eq!(changes[0].field, "env.DB_PASSWORD");
    assert_eq!(changes[0].old.as_deref(), Some("(sensitive)"));
    assert_eq!(changes[0].new.as_deref(), Some("(sensitive)"));
    let text = render::text(&plan);
    assert!(
        !text.contains("hunter2") && !text.contains("correct-horse"),
        "{text}"
    );
}

/// The status page showed every environment value whose name misses the
/// masked words (`MYSQL_PWD`, a Slack webhook URL with its token; issue
/// 22): its text names a variable that changes, never its value, while
/// `plan` at the terminal still shows ordinary values.
#[test]
fn regression_the_page_names_changed_environment_variables_without_their_values() {
    let before = spec(&WEB.replace("GREETING = \"hello\"", "MYSQL_PWD = \"old-secret\""));
    let after = spec(&WEB.replace("GREETING = \"hello\"", "MYSQL_PWD = \"new-secret\""));
    let plan = run(&after, &applied(&before));
    let page = render::text_without_env_values(&plan);
    assert!(page.contains("env.MYSQL_PWD"), "{page}");
    assert!(
        !page.contains("old-secret") && !page.contains("new-secret"),
        "{page}"
    );
    let terminal = render::text(&plan);
    assert!(terminal.contains("new-secret"), "{terminal}");
}

#[test]
fn objects_not_ours_are_never_adopted() {
    let desired = spec(WEB);
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        web.owner = Owner::Unmanaged;
    }
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert!(
        matches!(error, Some(PlanError::NotOurs { ref name, .. }) if name == "web"),
        "{error:?}"
    );
}

#[test]
fn prune_removes_only_this_clusters_objects() {
    let old = spec(&format!(
        "{WEB}[service.old]\nimage = \"x\"\n[service.older]\nimage = \"x\"\n[network.gone]\n"
    ));
    let mut observed = applied(&old);
    let mut by_hand = observed.services["old"].clone();
    by_hand.owner = Owner::Unmanaged;
    observed.services.insert("by-hand".into(), by_hand);
    let mut other = observed.services["old"].clone();
    other.owner = Owner::OtherCluster("attic".into());
    observed.services.insert("other-cluster".into(), other);
    let desired = spec(WEB);
    let plan = match plan(
        &desired,
        &observed,
        PlanOptions {
            allow_mass_delete: true,
            ..PlanOptions::default()
        },
    ) {
        Ok(plan) => plan,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(
        outline(&plan),
        [
            "remove service.old",
            "remove service.older",
            "remove network.gone"
        ]
    );

    let keep = spec(&format!("[controller]\nprune = false\n{WEB}"));
    assert!(run(&keep, &observed).is_empty());
}

#[test]
fn mass_delete_is_refused_unless_allowed() {
    let old = spec(&format!(
        "{WEB}[service.a]\nimage = \"x\"\n[service.b]\nimage = \"x\"\n"
    ));
    let observed = applied(&old);
    let desired = spec(WEB);
    let refused = plan(&desired, &observed, PlanOptions::default()).err();
    assert_eq!(
        refused,
        Some(PlanError::MassDelete {
            kind: ObjectKind::Service,
            deletes: 2,
            total: 3,
            fraction: 0.5,
            from_last_applied: false,
        })
    );
    let allowed = plan(
        &desired,
        &observed,
        PlanOptions {
            allow_mass_delete: true,
            ..PlanOptions::default()
        },
    );
    assert!(allowed.is_ok_and(|p| p.summary().destroy == 2));
}

/// The guard's threshold was read from the very revision being applied,
/// so a commit could raise it and delete everything in one change.
#[test]
fn regression_a_revision_cannot_raise_its_own_mass_delete_guard() {
    let old = spec(&format!(
        "{WEB}[service.a]\nimage = \"x\"\n[service.b]\nimage = \"x\"\n"
    ));
    let mut observed = applied(&old);
    observed.applied_max_delete_fraction = Some(0.5);
    let raised = spec(&format!("[controller]\nmax_delete_fraction = 1.0\n{WEB}"));
    let error = plan(&raised, &observed, PlanOptions::default()).err();
    assert_eq!(
        error,
        Some(PlanError::MassDelete {
            kind: ObjectKind::Service,
            deletes: 2,
            total: 3,
            fraction: 0.5,
            from_last_applied: true,
        })
    );
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("the last applied revision's"), "{message}");
    // Once a revision with the higher value was applied, it is in force.
    observed.applied_max_delete_fraction = Some(1.0);
    assert!(plan(&raised, &observed, PlanOptions::default()).is_ok());
    // A lower value in the new revision is in force at once.
    let lowered = spec(&format!("[controller]\nmax_delete_fraction = 0.1\n{WEB}"));
    let error = plan(&lowered, &observed, PlanOptions::default()).err();
    assert!(
        matches!(
            error,
            Some(PlanError::MassDelete {
                from_last_applied: false,
                ..
            })
        ),
        "{error:?}"
    );
}

/// Only service removals used to count, so a commit deleting most networks
/// of the cluster passed the guard. One network leaving stays routine.
/// Removing a service keeps its named volumes (as `docker stack rm`
/// does): the plan says which, unless a service that stays still uses it.
#[test]
fn a_removed_services_volumes_are_listed_as_kept() {
    let before = spec(
        "[service.db]\nimage = \"pg:16\"\nmounts = [{ type = \"volume\", source = \"db-data\", target = \"/var/lib/postgresql/data\" }, { type = \"volume\", source = \"shared\", target = \"/s\" }]\n[service.web]\nimage = \"web:1\"\nmounts = [{ type = \"volume\", source = \"shared\", target = \"/s\" }]\n",
    );
    let observed = applied(&before);
    let after = spec("[service.web]\nimage = \"web:1\"\nmounts = [{ type = \"volume\", source = \"shared\", target = \"/s\" }]\n");
    let planned =
        plan(&after, &observed, PlanOptions::default()).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(outline(&planned), ["remove service.db"]);
    assert_eq!(planned.warnings.len(), 1, "{:?}", planned.warnings);
    assert!(
        planned.warnings[0]
            .starts_with("volume `db-data` of removed service(s) `db` is kept, with its data"),
        "{}",
        planned.warnings[0]
    );
}

/// Regression (issue 24): for ~14 s after an apply removed a stack, Swarm
/// still lists its networks (removal pending until the removed services'
/// tasks stop), and `plan` refused "deleting 2 of 2 managed networks".
/// Leaving networks are neither deleted again nor counted.
#[test]
fn regression_networks_still_leaving_are_not_a_mass_delete() {
    let before = spec("[network.a]\n[network.b]\n[service.keep]\nimage = \"x:1\"\n");
    let mut observed = applied(&before);
    for network in observed.networks.values_mut() {
        network.leaving = true;
    }
    let after = spec("[service.keep]\nimage = \"x:1\"\n");
    let planned =
        plan(&after, &observed, PlanOptions::default()).unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(planned.is_empty(), "{:?}", outline(&planned));
    assert_eq!(planned.warnings.len(), 2, "{:?}", planned.warnings);
    assert!(planned.warnings[0].contains("network `a` is leaving"));
    // Once the tasks are gone a network still listed is removed as usual.
    for network in observed.networks.values_mut() {
        network.leaving = false;
    }
    assert!(matches!(
        plan(&after, &observed, PlanOptions::default()),
        Err(PlanError::MassDelete { .. })
    ));
}

#[test]
fn regression_network_removals_count_in_the_mass_delete_guard() {
    let old = spec(&format!(
        "{WEB}[network.back]\n[network.db]\n[network.metrics]\n"
    ));
    let refused = plan(&spec(WEB), &applied(&old), PlanOptions::default()).err();
    assert_eq!(
        refused,
        Some(PlanError::MassDelete {
            kind: ObjectKind::Network,
            deletes: 3,
            total: 4,
            fraction: 0.5,
            from_last_applied: false,
        })
    );
    let one = plan(
        &spec(&format!("{WEB}[network.back]\n[network.db]\n")),
        &applied(&old),
        PlanOptions::default(),
    );
    assert!(one.is_ok_and(|p| p.summary().destroy == 1));
}

/// Node removals were outside the guard: a commit that emptied nodes.toml
/// made every board of the cluster leave the swarm (with `--ssh`).
#[test]
fn regression_node_removals_count_in_the_mass_delete_guard() {
    let observed = Observed {
        nodes: vec![
            node("n1", "pi1", Role::Manager, true),
            node("n2", "pi2", Role::Worker, false),
            node("n3", "pi3", Role::Worker, false),
            node("n4", "pi4", Role::Worker, false),
        ],
        ..Observed::default()
    };
    let options = PlanOptions {
        manage_membership: true,
        ..PlanOptions::default()
    };
    let manager = "[node.pi1]\naddress = \"10.0.0.3\"\nrole = \"manager\"\n";
    let error = plan(&spec(manager), &observed, options).err();
    assert_eq!(
        error,
        Some(PlanError::MassDelete {
            kind: ObjectKind::Node,
            deletes: 3,
            total: 4,
            fraction: 0.5,
            from_last_applied: false,
        })
    );
    let kept = format!("{manager}[node.pi2]\naddress = \"10.0.0.4\"\nrole = \"worker\"\n");
    let two = plan(&spec(&kept), &observed, options);
    assert!(two.is_ok_and(|p| p.summary().destroy == 2), "half may go");
}

#[test]
fn network_changes_are_refused_with_the_fields() {
    let before = spec(WEB);
    let after = spec(&WEB.replace("[network.front]", "[network.front]\nattachable = true"));
    let error = plan(&after, &applied(&before), PlanOptions::default()).err();
    assert!(
        matches!(error, Some(PlanError::NetworkChanged { ref fields, .. }) if fields == "attachable"),
        "{error:?}"
    );
}

const NODES: &str = r#"
[node.pi1]
address = "10.0.0.1"
role = "manager"
[node.pi2]
address = "10.0.0.2"
role = "worker"
labels = { shelf = "a" }
availability = "drain"
"#;

#[test]
fn node_labels_and_availability_are_set_and_others_labels_kept() {
    let desired = spec(NODES);
    let mut worker = node("n2", "pi2", Role::Worker, false);
    worker.labels.insert("set-by-hand".into(), "yes".into());
    let observed = Observed {
        nodes: vec![node("n1", "pi1", Role::Manager, true), worker],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    assert_eq!(outline(&plan), ["update node.pi2"]);
    let Action::UpdateNode(update) = &plan.actions[0] else {
        panic!("expected a node update")
    };
    assert_eq!(update.availability, Availability::Drain);
    assert_eq!(update.labels.get("shelf").map(String::as_str), Some("a"));
    assert_eq!(
        update.labels.get("set-by-hand").map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        update
            .labels
            .get(crate::labels::NODE_LABEL_KEYS)
            .map(String::as_str),
        Some("shelf")
    );
    let fields: Vec<&str> = update.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["availability", "labels.shelf"]);
}

#[test]
fn only_labels_the_controller_set_are_removed() {
    let desired = spec(
        &NODES
            .replace("labels = { shelf = \"a\" }", "")
            .replace("availability = \"drain\"", ""),
    );
    let mut worker = node("n2", "pi2", Role::Worker, false);
    worker.labels.insert("shelf".into(), "a".into());
    worker.labels.insert("set-by-hand".into(), "yes".into());
    worker
        .labels
        .insert(crate::labels::NODE_LABEL_KEYS.into(), "shelf".into());
    let observed = Observed {
        nodes: vec![node("n1", "pi1", Role::Manager, true), worker],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    let Action::UpdateNode(update) = &plan.actions[0] else {
        panic!("expected a node update")
    };
    assert!(!update.labels.contains_key("shelf"));
    assert!(update.labels.contains_key("set-by-hand"));
    assert_eq!(update.changes[0].field, "labels.shelf");
    assert_eq!(update.changes[0].new, None);
}

#[test]
fn promotions_come_before_demotions() {
    let desired = spec(
        r#"
[node.pi1]
address = "10.0.0.1"
role = "worker"
[node.pi2]
address = "10.0.0.2"
role = "manager"
[node.pi3]
address = "10.0.0.3"
role = "manager"
"#,
    );
    let observed = Observed {
        nodes: vec![
            node("n1", "pi1", Role::Manager, true),
            node("n2", "pi2", Role::Manager, true),
            node("n3", "pi3", Role::Worker, false),
        ],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    assert_eq!(outline(&plan), ["update node.pi3", "update node.pi1"]);
}

#[test]
fn demoting_the_last_manager_is_refused() {
    let desired = spec("[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"worker\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"manager\"\n");
    // pi2 is in the spec as a manager but not in the swarm, so pi1 is the last manager.
    let observed = Observed {
        nodes: vec![node("n1", "pi1", Role::Manager, true)],
        ..Observed::default()
    };
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert_eq!(error, Some(PlanError::LastManager { node: "pi1".into() }));
}

#[test]
fn role_changes_without_quorum_are_refused() {
    let desired = spec(
        "[node.a]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.b]\naddress = \"10.0.0.2\"\nrole = \"manager\"\n[node.c]\naddress = \"10.0.0.3\"\nrole = \"manager\"\n[node.d]\naddress = \"10.0.0.4\"\nrole = \"worker\"\n",
    );
    let observed = Observed {
        nodes: vec![
            node("1", "a", Role::Manager, true),
            node("2", "b", Role::Manager, false),
            node("3", "c", Role::Manager, false),
            node("4", "d", Role::Manager, true),
        ],
        ..Observed::default()
    };
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert_eq!(
        error,
        Some(PlanError::Quorum {
            managers: 3,
            reachable: 1,
            quorum: 2
        })
    );
}

#[test]
fn nodes_missing_from_the_swarm_are_a_warning() {
    let desired = spec(NODES);
    let observed = Observed {
        nodes: vec![node("n1", "pi1", Role::Manager, true)],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    assert!(plan.is_empty());
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].contains("`pi2` (10.0.0.2) is not in the swarm"));
}

#[test]
fn text_rendering_snapshot() {
    let before = spec(&format!(
        "{WEB}[service.old]\nimage = \"x\"\n[service.keep]\nimage = \"x\"\n"
    ));
    let after = spec(&format!(
        "{}[service.keep]\nimage = \"x\"\n[service.new]\nimage = \"y\"\nmode = \"global\"\nports = [{{ target = 80, published = 8080, mode = \"host\" }}]\n",
        WEB.replace("replicas = 3", "replicas = 4")
    ));
    let plan = run(&after, &applied(&before));
    let expected = r#"Reconciler will perform the following actions:

  # service.new will be created
  + service "new"
      + image = "y"
      + mode = "global"
      + ports = ["8080:80/tcp (host)"]

  # service.web will be updated in place
  ~ service "web"
      ~ replicas: 3 -> 4

  # service.old will be destroyed
  - service "old"

Plan: 1 to add, 1 to change, 1 to destroy.
"#;
    assert_eq!(render::text(&plan), expected);
    assert_eq!(
        render::text(&Plan::default()),
        "No changes. The swarm matches the spec.\n"
    );
}

/// Regression: Docker 20.10 returns the healthcheck as `Healthcheck` while bollard
/// reads `HealthCheck`, so the live healthcheck always looked missing and every
/// plan of a service with a healthcheck showed drift.
#[test]
fn unreadable_healthcheck_is_not_drift() {
    let desired = spec(&format!(
        "{WEB}healthcheck = {{ test = [\"CMD\", \"true\"], interval = \"10s\" }}\n"
    ));
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        web.config.healthcheck = None;
    }
    assert!(run(&desired, &observed).is_empty());
}

#[test]
fn boards_that_left_the_spec_are_removed_only_with_the_node_layer_and_only_if_ours() {
    let desired = spec("[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n");
    let mut by_hand = node("n9", "pi9", Role::Worker, false);
    by_hand.labels.clear();
    let observed = Observed {
        nodes: vec![
            node("n1", "pi1", Role::Manager, true),
            node("n2", "pi2", Role::Worker, false),
            by_hand,
        ],
        ..Observed::default()
    };
    assert!(
        run(&desired, &observed).is_empty(),
        "without --ssh boards are never removed"
    );
    let options = PlanOptions {
        manage_membership: true,
        ..PlanOptions::default()
    };
    let removal = plan(&desired, &observed, options).unwrap_or_default();
    assert_eq!(outline(&removal), ["remove node.pi2"], "pi9 was never ours");
    assert!(
        matches!(&removal.actions[0], Action::RemoveNode { manager: false, id, .. } if id == "n2")
    );

    // Removing the only manager is refused.
    let desired = spec("[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n[node.pi3]\naddress = \"10.9.9.9\"\nrole = \"manager\"\n");
    let error = plan(&desired, &observed, options).err();
    assert!(
        matches!(error, Some(PlanError::LastManager { ref node }) if node == "pi1"),
        "{error:?}"
    );
}

/// Regression: the live image was read without its digest, so a spec pinning
/// `image = "x:1@sha256:..."` looked changed on every reconcile (drift forever).
#[test]
fn a_digest_pinned_image_is_not_drift_and_a_tag_ignores_the_pinned_digest() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let pinned = spec(&format!(
        "[service.web]\nimage = \"local/busybox:1@{digest}\"\n"
    ));
    assert!(run(&pinned, &applied(&pinned)).is_empty());

    // A tag in the spec: Docker pinned it to a digest when it resolved the image.
    let tagged = spec("[service.web]\nimage = \"local/busybox:1\"\n");
    let mut observed = applied(&tagged);
    if let Some(web) = observed.services.get_mut("web") {
        web.config.image = format!("local/busybox:1@{digest}");
    }
    assert!(run(&tagged, &observed).is_empty());

    // A different digest than the pinned one is a real change.
    let mut observed = applied(&pinned);
    if let Some(web) = observed.services.get_mut("web") {
        web.config.image = "local/busybox:1@sha256:ffff".into();
    }
    let plan = run(&pinned, &observed);
    assert_eq!(outline(&plan), ["update service.web"]);
    assert_eq!(plan.actions[0].changes()[0].field, "image");
}

#[test]
fn kept_leftovers_are_warned_about_and_the_plan_does_not_claim_a_match() {
    let before = spec(&format!("{WEB}[service.old]\nimage = \"x\"\n"));
    let after = spec(&format!("[controller]\nprune = false\n{WEB}"));
    let plan = run(&after, &applied(&before));
    assert!(plan.is_empty(), "{:?}", outline(&plan));
    assert_eq!(
        plan.warnings,
        ["service `old` is no longer in the spec but is kept: [controller] prune = false"]
    );
    assert_eq!(
        render::text(&plan),
        "No changes.\nWarning: service `old` is no longer in the spec but is kept: [controller] prune = false\n"
    );
}

#[test]
fn missing_nodes_do_not_read_as_a_matching_swarm() {
    let desired = spec(NODES);
    let observed = Observed {
        nodes: vec![node("n1", "pi1", Role::Manager, true)],
        ..Observed::default()
    };
    let text = render::text(&run(&desired, &observed));
    assert!(
        text.starts_with("No changes.\nWarning: node `pi2`"),
        "{text}"
    );
    assert!(!text.contains("matches the spec"), "{text}");
}

/// Safety: a network with the spec's name that this cluster does not own is
/// refused like a service, never adopted (and never written).
#[test]
fn networks_not_ours_are_never_adopted_and_the_owner_is_named() {
    let desired = spec(WEB);
    let mut observed = applied(&desired);
    if let Some(front) = observed.networks.get_mut("front") {
        front.owner = Owner::OtherCluster("attic".into());
    }
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert_eq!(
        error.as_ref().map(ToString::to_string).as_deref(),
        Some("Network `front` already exists in the swarm but is not managed by this cluster (managed by cluster `attic`); rename it in the spec, or remove the existing one")
    );
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        web.owner = Owner::Unmanaged;
    }
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert!(error
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("(created outside reconciler)"),);
}

/// `max_delete_fraction` is the largest share allowed: deleting exactly that
/// share is fine, one more is refused.
#[test]
fn the_mass_delete_threshold_is_inclusive() {
    let four = spec("[service.a]\nimage = \"x\"\n[service.b]\nimage = \"x\"\n[service.c]\nimage = \"x\"\n[service.d]\nimage = \"x\"\n");
    let half = spec("[service.a]\nimage = \"x\"\n[service.b]\nimage = \"x\"\n");
    let plan = run(&half, &applied(&four));
    assert_eq!(plan.summary().destroy, 2);
    let one = spec("[service.a]\nimage = \"x\"\n");
    let error = plan_fn(&one, &applied(&four)).err();
    assert!(
        matches!(
            error,
            Some(PlanError::MassDelete {
                deletes: 3,
                total: 4,
                ..
            })
        ),
        "{error:?}"
    );
}

/// Issue 24: removing the only service of a small cluster needed
/// `--allow-mass-delete` (1 of 1 is more than half); one object of a kind
/// leaving is never a mass delete, two of two still are.
#[test]
fn regression_removing_the_only_service_is_not_a_mass_delete() {
    let one = spec("[service.a]\nimage = \"x\"\n");
    let none = spec("");
    assert_eq!(run(&none, &applied(&one)).summary().destroy, 1);
    let two = spec("[service.a]\nimage = \"x\"\n[service.b]\nimage = \"x\"\n");
    let error = plan_fn(&none, &applied(&two)).err();
    assert!(
        matches!(
            error,
            Some(PlanError::MassDelete {
                deletes: 2,
                total: 2,
                ..
            })
        ),
        "{error:?}"
    );
}

fn plan_fn(desired: &Spec, observed: &Observed) -> Result<Plan, PlanError> {
    plan(desired, observed, PlanOptions::default())
}

#[test]
fn kept_networks_are_warned_about_too() {
    let before = spec(&format!("{WEB}[network.old-net]\n"));
    let after = spec(&format!("[controller]\nprune = false\n{WEB}"));
    let plan = run(&after, &applied(&before));
    assert_eq!(
        plan.warnings,
        ["network `old-net` is no longer in the spec but is kept: [controller] prune = false"]
    );
}

/// What a created service shows: sizes, CPUs and mounts in the spec's own units.
#[test]
fn created_services_show_values_in_the_specs_units() {
    let desired = spec(
        r#"
[service.web]
image = "x"
mounts = [{ type = "bind", source = "/srv", target = "/data", readonly = true }, { type = "tmpfs", target = "/tmp" }]
resources = { limit_memory = "1536M", reserve_memory = "1G", limit_cpus = 1.5, reserve_cpus = 0.25 }
healthcheck = { test = ["CMD", "true"], interval = "10s", timeout = "3s", retries = 4, start_period = "1m" }
"#,
    );
    let plan = run(&desired, &Observed::default());
    let shown: Vec<String> = plan.actions[0]
        .changes()
        .into_iter()
        .map(|c| format!("{} = {}", c.field, c.new.unwrap_or_default()))
        .collect();
    for line in [
        "mounts = [\"bind /srv:/data (ro)\", \"tmpfs :/tmp\"]",
        "resources.limit_memory = \"1536M\"",
        "resources.reserve_memory = \"1G\"",
        "resources.limit_cpus = 1.5",
        "resources.reserve_cpus = 0.25",
        "healthcheck.test = [\"CMD\", \"true\"]",
        "healthcheck.interval = \"10s\"",
        "healthcheck.timeout = \"3s\"",
        "healthcheck.start_period = \"1m\"",
        "healthcheck.retries = 4",
    ] {
        assert!(
            shown.contains(&line.to_string()),
            "{line} not in {shown:#?}"
        );
    }
    assert_eq!(fields::format_size(1000), "1000");
    assert_eq!(fields::format_size(3 << 10), "3K");
    assert_eq!(fields::format_size((1 << 20) + 1), "1048577");
}

/// Somebody changes the update, rollback or restart policy by hand: that is
/// drift, shown field by field, for the fields the spec sets.
#[test]
fn hand_made_changes_to_policies_are_drift() {
    let desired = spec(&format!(
        "{WEB}update = {{ parallelism = 2, delay = \"10s\", failure_action = \"rollback\", monitor = \"5s\", max_failure_ratio = 0.1, order = \"start-first\" }}\nrollback = {{ parallelism = 3, failure_action = \"continue\" }}\nrestart = {{ condition = \"on-failure\", delay = \"5s\", max_attempts = 3, window = \"1m\" }}\n"
    ));
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        let update = web.config.update.get_or_insert_with(|| panic!("no update"));
        update.parallelism = Some(1);
        update.order = Some(reconciler_spec::UpdateOrder::StopFirst);
        if let Some(rollback) = web.config.rollback.as_mut() {
            rollback.failure_action = Some(reconciler_spec::FailureAction::Pause);
        }
        if let Some(restart) = web.config.restart.as_mut() {
            restart.max_attempts = Some(0);
            restart.condition = Some(reconciler_spec::RestartCondition::Any);
        }
    }
    let plan = run(&desired, &observed);
    let changes: Vec<String> = plan.actions[0]
        .changes()
        .into_iter()
        .map(|c| {
            format!(
                "{}: {} -> {}",
                c.field,
                c.old.unwrap_or_default(),
                c.new.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            "update.parallelism: 1 -> 2",
            "update.order: \"stop-first\" -> \"start-first\"",
            "rollback.failure_action: \"pause\" -> \"continue\"",
            "restart.condition: \"any\" -> \"on-failure\"",
            "restart.max_attempts: 0 -> 3",
        ]
    );
    assert!(matches!(
        plan.actions[0],
        Action::UpdateService { drift: true, .. }
    ));
}

#[test]
fn network_hashes_differ_for_different_networks_and_are_stable() {
    let one = spec("[network.a]\n[network.b]\nattachable = true\n");
    let a = fields::network_hash(&one.networks["a"]);
    let b = fields::network_hash(&one.networks["b"]);
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
    assert_eq!(
        a,
        fields::network_hash(&spec("[network.a]\n").networks["a"])
    );
}

/// Node changes are shown as role and availability words, promotions first,
/// label changes next, demotions last.
#[test]
fn node_changes_are_ordered_promote_relabel_demote_and_shown_in_words() {
    let desired = spec(
        r#"
[node.a]
address = "10.0.0.1"
role = "worker"
[node.b]
address = "10.0.0.2"
role = "manager"
labels = { shelf = "2" }
availability = "drain"
[node.c]
address = "10.0.0.3"
role = "manager"
[node.m]
address = "10.0.0.9"
role = "manager"
"#,
    );
    let observed = Observed {
        nodes: vec![
            node("na", "a", Role::Manager, true),
            node("nb", "b", Role::Manager, true),
            node("nc", "c", Role::Worker, false),
            node("nm", "m", Role::Manager, true),
        ],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    // In name order a, b, c: the sort alone puts them right.
    assert_eq!(
        outline(&plan),
        ["update node.c", "update node.b", "update node.a"]
    );
    let shown = |index: usize| -> Vec<String> {
        plan.actions[index]
            .changes()
            .into_iter()
            .map(|c| {
                format!(
                    "{}: {} -> {}",
                    c.field,
                    c.old.unwrap_or_default(),
                    c.new.unwrap_or_default()
                )
            })
            .collect()
    };
    assert_eq!(shown(0), ["role: worker -> manager"]);
    assert!(
        shown(1).contains(&"availability: active -> drain".to_string()),
        "{:?}",
        shown(1)
    );
    assert_eq!(shown(2), ["role: manager -> worker"]);
}

/// Without quorum only role changes are refused; a label can still be set.
#[test]
fn label_changes_need_no_quorum() {
    let desired = spec(
        "[node.a]\naddress = \"10.0.0.1\"\nrole = \"manager\"\nlabels = { shelf = \"x\" }\n[node.b]\naddress = \"10.0.0.2\"\nrole = \"manager\"\n[node.c]\naddress = \"10.0.0.3\"\nrole = \"manager\"\n",
    );
    let observed = Observed {
        nodes: vec![
            node("1", "a", Role::Manager, true),
            node("2", "b", Role::Manager, false),
            node("3", "c", Role::Manager, false),
        ],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    assert_eq!(outline(&plan), ["update node.a"]);
}

/// Raft's majority of five managers is three.
#[test]
fn quorum_of_five_managers_is_three() {
    let managers = |roles: [&str; 5]| {
        spec(
            &roles
                .iter()
                .enumerate()
                .map(|(i, role)| {
                    format!("[node.m{i}]\naddress = \"10.0.0.{i}\"\nrole = \"{role}\"\n")
                })
                .collect::<String>(),
        )
    };
    let observed = Observed {
        nodes: (0..5)
            .map(|i| node(&format!("id{i}"), &format!("m{i}"), Role::Manager, i < 3))
            .collect(),
        ..Observed::default()
    };
    // Demoting a reachable manager leaves four, two reachable: below three.
    let error = plan_fn(
        &managers(["worker", "manager", "manager", "manager", "manager"]),
        &observed,
    )
    .err();
    assert_eq!(
        error,
        Some(PlanError::Quorum {
            managers: 4,
            reachable: 2,
            quorum: 3
        })
    );
    // Demoting an unreachable one leaves four, three reachable: fine.
    let plan = run(
        &managers(["manager", "manager", "manager", "manager", "worker"]),
        &observed,
    );
    assert_eq!(outline(&plan), ["update node.m4"]);
}

#[test]
fn drift_is_said_in_words_and_json_says_whether_anything_changes() {
    let desired = spec(WEB);
    let mut observed = applied(&desired);
    if let Some(web) = observed.services.get_mut("web") {
        web.config.mode = reconciler_spec::ServiceMode::Replicated(5);
    }
    let plan = run(&desired, &observed);
    assert_eq!(
        render::describe(&plan.actions[0]),
        "service.web will be updated in place (drift: changed outside reconciler)"
    );
    assert!(render::json(&plan).changed);
    assert!(!render::json(&Plan::default()).changed);
}

/// Validation refuses `after` cycles; should one reach the planner anyway,
/// every service still comes out exactly once.
#[test]
fn after_order_survives_a_cycle() {
    let mut services = spec(
        "[service.a]\nimage = \"x\"\n[service.b]\nimage = \"x\"\n[service.c]\nimage = \"x\"\n",
    )
    .services;
    if let Some(a) = services.get_mut("a") {
        a.after = vec!["b".into()];
    }
    if let Some(b) = services.get_mut("b") {
        b.after = vec!["a".into()];
    }
    assert_eq!(after_order(&services), ["c", "a", "b"]);
}

/// Regression guard: the spec hash of a service is its set fields only. A
/// field added to the model (unset in every existing spec) must leave every
/// hash as it is, or the first reconcile after an upgrade rewrites every
/// service of every cluster. The minimal service's canonical form holds
/// nothing but what it sets, and its hash is pinned.
#[test]
fn spec_hashes_cover_only_fields_that_are_set() {
    let minimal = spec("[service.web]\nimage = \"local/busybox:1\"\n");
    let web = &minimal.services["web"];
    assert_eq!(
        super::fields::canonical_for_tests(web),
        serde_json::json!({
            "name": "web",
            "image": "local/busybox:1",
            "mode": { "mode": "replicated", "replicas": 1 }
        })
    );
    // printf '%s' '{"image":"local/busybox:1","mode":{"mode":"replicated","replicas":1},"name":"web"}' | sha256sum
    assert_eq!(fields::service_hash(web), "3d90732941117e2e");
    // A mount without volume options hashes as before they existed.
    let mounted = spec(
        "[service.web]\nimage = \"local/busybox:1\"\nmounts = [{ type = \"bind\", source = \"/tmp\", target = \"/x\" }]\n",
    );
    assert_eq!(
        super::fields::canonical_for_tests(&mounted.services["web"])["mounts"],
        serde_json::json!([{ "kind": "bind", "source": "/tmp", "target": "/x", "readonly": false }])
    );
    // Setting a field changes it.
    let with_env = spec("[service.web]\nimage = \"local/busybox:1\"\nenv = { A = \"1\" }\n");
    assert_ne!(
        fields::service_hash(&with_env.services["web"]),
        fields::service_hash(web)
    );
}

/// The swarm as a node-layer apply sees it at `now`, with what the boards said.
fn with_boards(
    nodes: Vec<ObservedNode>,
    boards: &[(&str, Option<&str>, bool)],
    now: std::time::SystemTime,
) -> Observed {
    Observed {
        nodes,
        boards: boards
            .iter()
            .map(|(name, id, joined)| {
                (
                    (*name).to_string(),
                    crate::observed::BoardIdentity {
                        node_id: id.map(str::to_string),
                        joined_by_this_cluster: *joined,
                    },
                )
            })
            .collect(),
        observed_at: Some(now),
        ..Observed::default()
    }
}

fn at(node: ObservedNode, address: &str) -> ObservedNode {
    ObservedNode {
        address: address.into(),
        ..node
    }
}

fn down_since(node: ObservedNode, since: std::time::SystemTime) -> ObservedNode {
    ObservedNode {
        state: NodeState::Down,
        manager_reachable: None,
        updated_at: Some(since),
        ..node
    }
}

const MEMBERSHIP: PlanOptions = PlanOptions {
    allow_mass_delete: false,
    manage_membership: true,
    allow_other_swarm: false,
};

/// Regression (issue 10): a re-flashed Pi that re-joined under its old name
/// was matched to its stale "down" object (the first with that hostname), and
/// the stale object, still carrying the cluster label, was told to leave over
/// SSH: the fresh board left, re-joined on the next run, left again. Now the
/// board's own node ID decides, and a down object is never contacted.
#[test]
fn regression_a_reflashed_board_is_matched_by_its_node_id_and_its_stale_object_never_leaves() {
    let desired = spec(
        "[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n",
    );
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let minutes = |m: u64| std::time::Duration::from_secs(m * 60);
    let stale = down_since(
        at(node("old2", "pi2", Role::Worker, false), "10.0.0.2"),
        now - minutes(10),
    );
    let mut fresh = at(node("new2", "pi2", Role::Worker, false), "10.0.0.2");
    fresh.labels.clear();
    let nodes = vec![
        at(node("n1", "pi1", Role::Manager, true), "10.0.0.1"),
        stale.clone(),
        fresh.clone(),
    ];
    let observed = with_boards(
        nodes.clone(),
        &[("pi1", Some("n1"), true), ("pi2", Some("new2"), true)],
        now,
    );
    let planned = super::plan(&desired, &observed, MEMBERSHIP).unwrap_or_default();
    // The fresh object is pi2 (claimed: the board says this cluster joined it);
    // the stale one is only drained, nothing leaves.
    assert_eq!(outline(&planned), ["update node.pi2", "update node.pi2"]);
    let Some(Action::UpdateNode(claim)) = planned
        .actions
        .iter()
        .find(|a| matches!(a, Action::UpdateNode(u) if u.id == "new2"))
    else {
        panic!("new2 not claimed: {:?}", planned.actions)
    };
    assert_eq!(
        claim.labels.get(crate::labels::CLUSTER).map(String::as_str),
        Some("lab")
    );
    assert_eq!(
        claim.labels.get(crate::labels::NODE).map(String::as_str),
        Some("pi2")
    );
    let Some(Action::UpdateNode(drain)) = planned
        .actions
        .iter()
        .find(|a| matches!(a, Action::UpdateNode(u) if u.id == "old2"))
    else {
        panic!("old2 not drained: {:?}", planned.actions)
    };
    assert_eq!(drain.availability, Availability::Drain);
    assert!(
        planned
            .warnings
            .iter()
            .any(|w| w.contains("old2") && w.contains("never contacted") && w.contains("1h")),
        "{:?}",
        planned.warnings
    );
    assert!(!planned
        .actions
        .iter()
        .any(|a| matches!(a, Action::RemoveNode { .. })));

    // Down past the grace: its object is removed, the board not contacted.
    let observed = with_boards(
        vec![
            at(node("n1", "pi1", Role::Manager, true), "10.0.0.1"),
            down_since(stale.clone(), now - minutes(61)),
            fresh.clone(),
        ],
        &[("pi1", Some("n1"), true), ("pi2", Some("new2"), true)],
        now,
    );
    let planned = super::plan(&desired, &observed, MEMBERSHIP).unwrap_or_default();
    assert!(
        planned.actions.iter().any(|a| matches!(
            a,
            Action::RemoveNode { id, departure: Departure::Forget, .. } if id == "old2"
        )),
        "{:?}",
        planned.actions
    );
    assert!(!planned.actions.iter().any(|a| matches!(
        a,
        Action::RemoveNode {
            departure: Departure::Leave,
            ..
        }
    )));

    // Without --ssh (no board to ask), the live object still wins over the
    // stale one that carries the label.
    let observed = Observed {
        nodes,
        observed_at: Some(now),
        ..Observed::default()
    };
    let planned = run(&desired, &observed);
    assert!(
        !planned
            .actions
            .iter()
            .any(|a| matches!(a, Action::UpdateNode(u) if u.id == "old2")),
        "{:?}",
        planned.actions
    );
}

/// Regression (issue 10): after a DHCP change one swarm node matched one spec
/// node by hostname and another by address, and its role flipped on every
/// reconcile. Now that is a plan error naming both.
#[test]
fn regression_one_swarm_node_matching_two_spec_nodes_is_a_plan_error_naming_both() {
    let desired = spec(
        "[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n",
    );
    // pi1 now has the address pi2 had; pi2's board is not in the swarm. (A
    // node from before the node label, so the hostname is the evidence.)
    let mut pi1 = at(node("n1", "pi1", Role::Manager, true), "10.0.0.2");
    pi1.labels.remove(crate::labels::NODE);
    let observed = Observed {
        nodes: vec![pi1],
        ..Observed::default()
    };
    let error = super::plan(&desired, &observed, PlanOptions::default()).err();
    let Some(PlanError::SharedSwarmNode {
        first,
        second,
        first_evidence,
        ..
    }) = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((first.as_str(), second.as_str()), ("pi1", "pi2"));
    assert_eq!(*first_evidence, "hostname");
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("n1 (hostname pi1, address 10.0.0.2, ready)"),
        "{text}"
    );
    assert!(text.contains("correct the address"), "{text}");
}

#[test]
fn two_live_swarm_nodes_for_one_spec_node_are_a_plan_error() {
    let desired = spec("[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n");
    let observed = Observed {
        nodes: vec![
            node("a1", "pi1", Role::Manager, true),
            node("b1", "pi1", Role::Manager, true),
        ],
        ..Observed::default()
    };
    let error = super::plan(&desired, &observed, PlanOptions::default()).err();
    assert!(
        matches!(&error, Some(PlanError::AmbiguousNode { node, first, second, .. })
            if node == "pi1" && first.starts_with("a1 ") && second.starts_with("b1 ")),
        "{error:?}"
    );
}

/// Regression (issue 10): the cluster label was written on any matched node,
/// so a board someone joined by hand became removable by the cluster, and
/// another cluster's label was overwritten. Now it is earned: the board says
/// this cluster joined it as that node, or the spec adopts it.
#[test]
fn regression_the_cluster_label_is_written_only_on_boards_this_cluster_joined_or_adopted() {
    let one = "[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n";
    let mut by_hand = node("h1", "pi1", Role::Manager, true);
    by_hand.labels.clear();
    let claims = |plan: &Plan| {
        plan.actions.iter().any(|a| {
            matches!(a, Action::UpdateNode(u)
                if u.labels.get(crate::labels::CLUSTER).map(String::as_str) == Some("lab"))
        })
    };
    let now = std::time::SystemTime::now();

    // Joined by hand: managed, not claimed, and the plan says how to claim it.
    let observed = with_boards(vec![by_hand.clone()], &[("pi1", Some("h1"), false)], now);
    let planned = super::plan(&spec(one), &observed, MEMBERSHIP).unwrap_or_default();
    assert!(!claims(&planned), "{:?}", planned.actions);
    assert!(
        planned.warnings.iter().any(|w| w.contains("adopt = true")),
        "{:?}",
        planned.warnings
    );
    // The board's membership record names another node ID: not claimed either.
    let observed = with_boards(vec![by_hand.clone()], &[("pi1", Some("zz"), true)], now);
    let planned = super::plan(&spec(one), &observed, MEMBERSHIP).unwrap_or_default();
    assert!(!claims(&planned));

    // Joined by this cluster (the board says so, for this node ID): claimed.
    let observed = with_boards(vec![by_hand.clone()], &[("pi1", Some("h1"), true)], now);
    assert!(claims(
        &super::plan(&spec(one), &observed, MEMBERSHIP).unwrap_or_default()
    ));
    // Adopted in the spec: claimed, even without --ssh.
    let adopted = spec(&format!("{one}adopt = true\n"));
    let observed = Observed {
        nodes: vec![by_hand.clone()],
        ..Observed::default()
    };
    assert!(claims(&run(&adopted, &observed)));

    // Another cluster's node is refused, adopted or not.
    let mut theirs = by_hand;
    theirs
        .labels
        .insert(crate::labels::CLUSTER.into(), "kitchen".into());
    let observed = Observed {
        nodes: vec![theirs],
        ..Observed::default()
    };
    let error = super::plan(&adopted, &observed, PlanOptions::default()).err();
    assert_eq!(
        error,
        Some(PlanError::NodeOfOtherCluster {
            node: "pi1".into(),
            cluster: "kitchen".into()
        })
    );
}

/// A board that answered and says it is in no swarm (or another one) is not
/// stood in for by an object that has its name.
#[test]
fn a_board_in_no_swarm_is_not_matched_to_an_object_with_its_name() {
    let desired = spec(
        "[node.pi1]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.pi2]\naddress = \"10.0.0.2\"\nrole = \"worker\"\nlabels = { shelf = \"a\" }\n",
    );
    let observed = with_boards(
        vec![
            node("n1", "pi1", Role::Manager, true),
            node("n2", "pi2", Role::Worker, false),
        ],
        &[("pi1", Some("n1"), true), ("pi2", Some("elsewhere"), false)],
        std::time::SystemTime::now(),
    );
    let planned = super::plan(&desired, &observed, PlanOptions::default()).unwrap_or_default();
    assert!(planned.is_empty(), "{:?}", planned.actions);
    assert!(
        planned
            .warnings
            .iter()
            .any(|w| w.contains("`pi2`") && w.contains("elsewhere") && w.contains("another swarm")),
        "{:?}",
        planned.warnings
    );
}

/// An external network is joined under its Swarm name, never created; one
/// the swarm lacks is refused with the command that creates it.
#[test]
fn external_networks_are_joined_by_their_swarm_name_and_never_created() {
    let desired = spec(
        "[network.edge]\nexternal = true\nname = \"traefik-public\"\n[service.web]\nimage = \"x\"\nnetworks = [\"edge\"]\nnetwork_aliases = { edge = [\"web\"] }\n",
    );
    let missing = plan(&desired, &Observed::default(), PlanOptions::default());
    assert_eq!(
        missing.err(),
        Some(PlanError::MissingExternalNetwork {
            name: "traefik-public".into()
        })
    );
    let mut observed = Observed::default();
    observed.networks.insert(
        "traefik-public".into(),
        ObservedNetwork {
            id: "n1".into(),
            owner: Owner::Unmanaged,
            spec_hash: None,
            leaving: false,
            config: reconciler_spec::Network {
                name: "traefik-public".into(),
                group: None,
                driver: "overlay".into(),
                attachable: true,
                internal: false,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                ipam: reconciler_spec::Ipam::default(),
                external: None,
            },
        },
    );
    let planned = run(&desired, &observed);
    assert_eq!(planned.actions.len(), 1, "{:?}", planned.actions);
    match &planned.actions[0] {
        Action::CreateService { service, .. } => {
            assert_eq!(service.networks, ["traefik-public"]);
            assert_eq!(
                service.network_aliases.get("traefik-public"),
                Some(&vec!["web".to_string()])
            );
        }
        other => panic!("expected the service, got {other:?}"),
    }
}

#[test]
fn what_docker_chose_for_a_network_is_not_a_change_but_a_changed_subnet_is() {
    let desired = |extra: &str| {
        spec(&format!(
            "[network.backend]\noptions = {{ encrypted = \"\" }}\n{extra}"
        ))
    };
    let live = |subnet: &str| reconciler_spec::Network {
        name: "backend".into(),
        group: None,
        driver: "overlay".into(),
        attachable: false,
        internal: false,
        labels: BTreeMap::new(),
        options: BTreeMap::from([
            ("encrypted".to_string(), String::new()),
            (
                "com.docker.network.driver.overlay.vxlanid_list".to_string(),
                "4097".to_string(),
            ),
        ]),
        ipam: reconciler_spec::Ipam {
            driver: Some("default".into()),
            subnets: vec![subnet.to_string()],
        },
        external: None,
    };
    let wanted = desired("");
    let network = &wanted.networks["backend"];
    let seen = fields::network_as_desired(&live("10.0.3.0/24"), network);
    assert!(fields::diff(
        &fields::network_fields(&seen),
        &fields::network_fields(network)
    )
    .is_empty());
    let pinned = desired("subnets = [\"10.20.0.0/24\"]\n");
    let network = &pinned.networks["backend"];
    let seen = fields::network_as_desired(&live("10.0.3.0/24"), network);
    let changes = fields::diff(
        &fields::network_fields(&seen),
        &fields::network_fields(network),
    );
    assert_eq!(
        changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
        ["ipam.subnets[0]"]
    );
}

#[test]
fn external_configs_and_secrets_are_used_by_name_and_refused_when_missing() {
    let desired = spec(
        r#"
[config.dynamic]
external = true
name = "traefik-dynamic"
[secret.token]
external = true
[service.proxy]
image = "a"
configs = [{ source = "dynamic", target = "/etc/traefik/dynamic.yml" }]
secrets = [{ source = "token" }]
"#,
    );
    let mut observed = Observed::default();
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert!(
        matches!(&error, Some(PlanError::MissingExternalConfig { name }) if name == "traefik-dynamic"),
        "{error:?}"
    );
    assert!(error
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("docker config create traefik-dynamic FILE"));
    let unmanaged = ObservedData {
        id: "x".into(),
        owner: Owner::Unmanaged,
        digest: None,
    };
    observed
        .configs
        .insert("traefik-dynamic".into(), unmanaged.clone());
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert!(
        matches!(&error, Some(PlanError::MissingExternalSecret { name }) if name == "token"),
        "{error:?}"
    );
    observed.secrets.insert("token".into(), unmanaged);
    let planned = run(&desired, &observed);
    // Used as they are: nothing created, the service names them.
    assert!(planned
        .actions
        .iter()
        .all(|a| !matches!(a, Action::CreateConfig { .. } | Action::CreateSecret { .. })));
    let service = planned.actions.iter().find_map(|a| match a {
        Action::CreateService { service, .. } => Some(service),
        _ => None,
    });
    let service = service.expect("the service is created");
    assert_eq!(service.configs[0].source, "traefik-dynamic");
    assert_eq!(service.secrets[0].source, "token");
}

#[test]
fn a_fixed_name_is_used_verbatim_and_a_new_content_under_it_is_refused() {
    let desired = spec(
        r#"
[config.prometheus]
content = "scrape_interval: 15s"
name = "prometheus-v3"
[service.monitor]
image = "a"
configs = [{ source = "prometheus", target = "/etc/prometheus.yml" }]
"#,
    );
    let mut observed = Observed::default();
    let planned = run(&desired, &observed);
    let created: Vec<&str> = planned
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateConfig { swarm_name, .. } => Some(swarm_name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["prometheus-v3"], "no -<hash>");
    let ours = |content: &str| ObservedData {
        id: "x".into(),
        owner: Owner::ThisCluster,
        digest: Some(crate::plan::content_digest(content.as_bytes())),
    };
    observed
        .configs
        .insert("prometheus-v3".into(), ours("scrape_interval: 15s"));
    let planned = run(&desired, &observed);
    assert!(
        planned
            .actions
            .iter()
            .all(|a| !matches!(a, Action::CreateConfig { .. } | Action::RemoveConfig { .. })),
        "the same content under its name is left alone: {:?}",
        planned.actions
    );
    observed
        .configs
        .insert("prometheus-v3".into(), ours("scrape_interval: 1m"));
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert!(
        matches!(&error, Some(PlanError::FixedNameChanged { name, .. }) if name == "prometheus-v3"),
        "{error:?}"
    );
    assert_eq!(error.map(|e| e.reason()), Some("fixed_name_changed"));
}

#[test]
fn a_refused_plan_waits_for_a_person() {
    let error = PlanError::MassDelete {
        kind: crate::plan::ObjectKind::Service,
        deletes: 3,
        total: 4,
        fraction: 0.5,
        from_last_applied: false,
    };
    assert_eq!(error.class(), ErrorClass::NeedsPerson);
    assert_eq!(error.reason(), "mass_delete");
}

/// Safety (issue 23): a Pi spec planned with a laptop's `DOCKER_HOST` was
/// planned against the laptop's own swarm (one "not in the swarm" warning
/// per node), and `apply` would have put the cluster's stack on the laptop.
/// A swarm none of the spec's nodes is in is refused, naming what it is.
#[test]
fn regression_a_spec_of_boards_is_not_planned_against_another_swarm() {
    let desired = spec(&format!("{NODES}{WEB}"));
    let mut laptop = node("x1", "laptop", Role::Manager, true);
    laptop.labels.clear();
    laptop.address = "192.168.1.5".into();
    let observed = Observed {
        nodes: vec![laptop],
        ..Observed::default()
    };
    let error = plan(&desired, &observed, PlanOptions::default()).err();
    assert_eq!(
        error,
        Some(PlanError::OtherSwarm {
            spec_nodes: 2,
            swarm: "a swarm of 1 node(s): laptop (192.168.1.5)".into()
        })
    );
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("--allow-other-swarm"), "{message}");

    // Asked for by name: planned, with one line instead of one per node,
    // and the laptop's node is left alone.
    let allowed = PlanOptions {
        allow_other_swarm: true,
        ..PlanOptions::default()
    };
    let planned = plan(&desired, &observed, allowed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outline(&planned),
        ["create network.front", "create service.web"]
    );
    assert_eq!(planned.warnings.len(), 1, "{:?}", planned.warnings);
    assert!(planned.warnings[0].contains("none of the spec's 2 node(s) is in this swarm"));
}

/// A rack of boards not yet joined is one warning, not one per board.
#[test]
fn boards_not_in_the_swarm_are_one_warning_naming_them() {
    // The fixture's node `pi1` has the address 10.0.0.3.
    let mut body = String::from("[node.pi1]\naddress = \"10.0.0.3\"\nrole = \"manager\"\n");
    for i in 2..=40 {
        body.push_str(&format!(
            "[node.pi{i}]\naddress = \"10.0.1.{i}\"\nrole = \"worker\"\n"
        ));
    }
    let desired = spec(&body);
    let observed = Observed {
        nodes: vec![node("n1", "pi1", Role::Manager, true)],
        ..Observed::default()
    };
    let plan = run(&desired, &observed);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(
        plan.warnings[0].starts_with("39 nodes are not in the swarm (`pi10`, `pi11`"),
        "{}",
        plan.warnings[0]
    );
}
