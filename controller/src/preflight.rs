//! Pre-flight: what will fail on these boards, found before anything is
//! written. Pure: the caller gathers the facts (the swarm's node
//! descriptions, the boards' facts over SSH, the registry's answer about
//! each image) and [`check`] judges them against the plan.
//!
//! Each [`Finding`] names its [`Check`], what it is about and what to do.
//! A blocker stops `apply` unless `--allow-preflight CHECK` names it; a
//! warning is only shown.

use std::collections::{BTreeMap, BTreeSet};

use reconciler_spec::{Role, Service, Spec};
use serde::Serialize;

use crate::observed::{Facts, IptablesBackend, NodeState, Observed, Owner};
use crate::plan::{Action, Plan};

/// One kind of pre-flight check; its name is what `--allow-preflight` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The registry says the image (or its tag) does not exist.
    Image,
    /// The image has no manifest for the platform of a node it may land on.
    Platform,
    /// A published port is held by a service outside the spec.
    Port,
    /// A memory limit or reservation where memory cgroups are off.
    MemoryCgroup,
    /// Overlay networks on a board whose kernel has no VXLAN.
    Vxlan,
    /// Boards whose iptables write to different back-ends.
    Iptables,
    /// Nodes running different Docker engine versions.
    EngineVersion,
    /// A board without Docker whose architecture Docker no longer ships for.
    DockerArch,
    /// An even number of managers, or more than seven.
    Managers,
    /// A board's clock far from the manager's.
    Clock,
    /// Little free space where Docker keeps its data.
    Disk,
}

impl Check {
    pub const ALL: [Check; 11] = [
        Check::Image,
        Check::Platform,
        Check::Port,
        Check::MemoryCgroup,
        Check::Vxlan,
        Check::Iptables,
        Check::EngineVersion,
        Check::DockerArch,
        Check::Managers,
        Check::Clock,
        Check::Disk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Image => "image",
            Check::Platform => "platform",
            Check::Port => "port",
            Check::MemoryCgroup => "memory-cgroup",
            Check::Vxlan => "vxlan",
            Check::Iptables => "iptables",
            Check::EngineVersion => "engine-version",
            Check::DockerArch => "docker-arch",
            Check::Managers => "managers",
            Check::Clock => "clock",
            Check::Disk => "disk",
        }
    }

    /// The check a name stands for (`--allow-preflight`).
    pub fn parse(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Whether a finding stops `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Applying would fail or silently not do what the spec says.
    Blocker,
    /// Worth knowing; applying goes on.
    Warning,
}

/// One thing pre-flight found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub severity: Severity,
    /// What it is about: `service.web`, `node.pi3`, `cluster`.
    pub subject: String,
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// A platform as an image index lists it (`linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// What the registry said about an image (through the manager's Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ImageLookup {
    /// It exists, for these platforms.
    Platforms { platforms: Vec<Platform> },
    /// The registry answered that it does not exist.
    Missing { error: String },
    /// No registry answered (offline, a typo in the registry's host): not checked.
    Unchecked { error: String },
    /// Built or imported on the manager and never in a registry: not checked.
    Local,
}

/// What pre-flight judges.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub spec: &'a Spec,
    pub observed: &'a Observed,
    pub plan: &'a Plan,
    /// Boards' facts over SSH by spec node name (empty without `--ssh`).
    pub facts: &'a BTreeMap<String, Facts>,
    /// The registry's answer for each image of a service the plan writes.
    pub images: &'a BTreeMap<String, ImageLookup>,
}

/// A place a task may land: a swarm node, or a board about to join.
#[derive(Debug, Clone)]
struct Candidate<'a> {
    /// The spec's node name when known, else the swarm hostname.
    name: String,
    node_id: Option<&'a str>,
    hostname: &'a str,
    role: Role,
    labels: BTreeMap<String, String>,
    /// As Docker or `uname -m` reports it (`x86_64`, `aarch64`, `armv7l`).
    arch: &'a str,
    facts: Option<&'a Facts>,
}

/// The images whose registry answer pre-flight needs: those of services
/// the plan creates or updates.
pub fn images_to_check(plan: &Plan) -> BTreeSet<String> {
    written_services(plan).map(|s| s.image.clone()).collect()
}

fn written_services(plan: &Plan) -> impl Iterator<Item = &Service> {
    plan.actions.iter().filter_map(|action| match action {
        Action::CreateService { service, .. } | Action::UpdateService { service, .. } => {
            Some(service.as_ref())
        }
        _ => None,
    })
}

/// Runs every check; findings in a stable order (blockers first).
pub fn check(inputs: &Inputs<'_>) -> Vec<Finding> {
    let candidates = candidates(inputs);
    let mut findings = Vec::new();
    for service in written_services(inputs.plan) {
        let lands: Vec<&Candidate<'_>> = candidates
            .iter()
            .filter(|c| service.constraints.iter().all(|k| constraint_holds(k, c)))
            .collect();
        image_findings(service, &lands, inputs.images, &mut findings);
        port_findings(service, inputs.observed, &mut findings);
        memory_findings(service, &lands, &mut findings);
        vxlan_findings(service, inputs.spec, &lands, &mut findings);
    }
    board_findings(inputs, &mut findings);
    findings
        .sort_by(|a, b| (a.severity, a.check, &a.subject).cmp(&(b.severity, b.check, &b.subject)));
    findings.dedup();
    findings
}

/// The nodes tasks may land on: ready, active swarm nodes, and (with
/// `--ssh`) the spec's boards not in the swarm yet.
fn candidates<'a>(inputs: &Inputs<'a>) -> Vec<Candidate<'a>> {
    let by_node_id: BTreeMap<&str, (&str, &Facts)> = inputs
        .facts
        .iter()
        .filter_map(|(name, facts)| Some((facts.swarm_node_id()?, (name.as_str(), facts))))
        .collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for node in &inputs.observed.nodes {
        if node.state != NodeState::Ready
            || node.availability != reconciler_spec::Availability::Active
        {
            continue;
        }
        let known = by_node_id.get(node.id.as_str());
        let name = known.map_or_else(|| node.hostname.clone(), |(n, _)| (*n).to_string());
        seen.insert(name.clone());
        out.push(Candidate {
            name,
            node_id: Some(&node.id),
            hostname: &node.hostname,
            role: node.role,
            labels: node.labels.clone(),
            arch: &node.architecture,
            facts: known.map(|(_, f)| *f),
        });
    }
    for (name, facts) in inputs.facts {
        let Some(node) = inputs.spec.nodes.get(name) else {
            continue;
        };
        if seen.contains(name) || facts.swarm_node_id().is_some() {
            continue;
        }
        out.push(Candidate {
            name: name.clone(),
            node_id: None,
            hostname: &facts.hostname,
            role: node.role,
            labels: node.labels.clone(),
            arch: &facts.arch,
            facts: Some(facts),
        });
    }
    out
}

/// Whether every placement constraint holds on a swarm node (the rules of
/// [`constraint_holds`]): where a drained board's tasks may go.
pub fn node_allows(constraints: &[String], node: &crate::observed::ObservedNode) -> bool {
    let candidate = Candidate {
        name: node.hostname.clone(),
        node_id: Some(&node.id),
        hostname: &node.hostname,
        role: node.role,
        labels: node.labels.clone(),
        arch: &node.architecture,
        facts: None,
    };
    constraints.iter().all(|c| constraint_holds(c, &candidate))
}

/// Whether a placement constraint holds on a candidate, as swarmkit's
/// `constraint.NodeMatches` judges it: values compare case-insensitively,
/// a missing label only satisfies `!=`. Keys pre-flight cannot see
/// (`engine.labels.*`, `node.ip`) hold, so they never hide a finding's node.
fn constraint_holds(text: &str, node: &Candidate<'_>) -> bool {
    let (key, equal, value) = match (text.split_once("=="), text.split_once("!=")) {
        (Some((k, v)), _) => (k.trim(), true, v.trim()),
        (None, Some((k, v))) => (k.trim(), false, v.trim()),
        (None, None) => return true,
    };
    let actual: Option<String> = match key.to_ascii_lowercase().as_str() {
        "node.id" => node.node_id.map(str::to_string),
        "node.hostname" => Some(node.hostname.to_string()),
        "node.role" => Some(
            match node.role {
                Role::Manager => "manager",
                Role::Worker => "worker",
            }
            .to_string(),
        ),
        "node.platform.os" => Some("linux".to_string()),
        "node.platform.arch" => Some(node.arch.to_string()),
        lower if lower.starts_with("node.labels.") && key.len() > "node.labels.".len() => {
            // The label's own key keeps its case, as swarmkit looks it up.
            node.labels.get(&key["node.labels.".len()..]).cloned()
        }
        _ => return true,
    };
    let matches = actual.is_some_and(|a| a.eq_ignore_ascii_case(value));
    matches == equal
}

/// The platform a node's Docker pulls for: `uname -m` mapped as Docker
/// maps it, and a 32-bit Docker on a 64-bit kernel pulls 32-bit images.
fn node_platform(node: &Candidate<'_>) -> Option<Platform> {
    let docker_arch = node.facts.and_then(|f| f.docker_arch.as_deref());
    let (architecture, variant) = match (node.arch, docker_arch) {
        (_, Some("arm")) if node.arch.starts_with("armv6") => ("arm", Some("v6")),
        (_, Some("arm")) => ("arm", Some("v7")),
        ("x86_64" | "amd64", _) => ("amd64", None),
        ("aarch64" | "arm64" | "armv8l", _) => ("arm64", None),
        ("armv7l" | "armhf" | "armv7", _) => ("arm", Some("v7")),
        ("armv6l" | "armel" | "armv6", _) => ("arm", Some("v6")),
        ("i386" | "i686", _) => ("386", None),
        ("", _) => return None,
        (other, _) => (other, None),
    };
    Some(Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: variant.map(str::to_string),
    })
}

/// Whether a node pulling for `node` can use an image built for `image`:
/// containerd's platform matcher (what Docker's pull uses), where an arm64
/// node also runs 32-bit arm images and an arm/vN node runs arm/vM for M ≤ N.
fn runs_on(image: &Platform, node: &Platform) -> bool {
    if !image.os.is_empty() && image.os != node.os {
        return false;
    }
    let arm_level = |variant: Option<&str>| {
        variant
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse::<u8>().ok())
    };
    match (node.architecture.as_str(), image.architecture.as_str()) {
        (n, i) if n == i && n != "arm" => true,
        ("amd64", "386") => true,
        ("arm64", "arm") => true,
        ("arm", "arm") => {
            let node_level = arm_level(node.variant.as_deref()).unwrap_or(7);
            let image_level = arm_level(image.variant.as_deref()).unwrap_or(7);
            image_level <= node_level
        }
        _ => false,
    }
}

fn image_findings(
    service: &Service,
    lands: &[&Candidate<'_>],
    images: &BTreeMap<String, ImageLookup>,
    findings: &mut Vec<Finding>,
) {
    let subject = format!("service.{}", service.name);
    match images.get(&service.image) {
        Some(ImageLookup::Missing { error }) => findings.push(Finding {
            check: Check::Image,
            severity: Severity::Blocker,
            subject,
            message: format!("image `{}` does not exist: {error}", service.image),
            hint:
                "check the image's name and tag (`docker manifest inspect IMAGE` asks the registry)"
                    .into(),
        }),
        Some(ImageLookup::Platforms { platforms }) if !platforms.is_empty() => {
            let without: Vec<String> = lands
                .iter()
                .filter_map(|node| Some((node, node_platform(node)?)))
                .filter(|(_, p)| !platforms.iter().any(|image| runs_on(image, p)))
                .map(|(node, p)| format!("`{}` ({p})", node.name))
                .collect();
            if without.is_empty() {
                return;
            }
            let mut offered: Vec<String> = platforms.iter().map(ToString::to_string).collect();
            offered.sort();
            let nowhere = without.len() == lands.len();
            findings.push(Finding {
                check: Check::Platform,
                severity: Severity::Blocker,
                subject,
                message: format!(
                    "image `{}` has no manifest for {} it may be placed on: {}; it is built for {}",
                    service.image,
                    if nowhere { "any node" } else { "some nodes" },
                    without.join(", "),
                    offered.join(", ")
                ),
                hint: if nowhere {
                    "use an image built for these boards (a multi-platform tag), or build one with `docker buildx build --platform ...`".into()
                } else {
                    "keep the service off those nodes with a constraint such as `node.platform.arch != armv7l`, or use a multi-platform image".into()
                },
            });
        }
        _ => {}
    }
}

fn port_findings(service: &Service, observed: &Observed, findings: &mut Vec<Finding>) {
    for port in &service.ports {
        let Some(published) = port.published else {
            continue;
        };
        for (name, other) in &observed.services {
            if name == &service.name || other.owner == Owner::ThisCluster {
                continue;
            }
            let holds = other
                .config
                .ports
                .iter()
                .any(|p| p.published == Some(published) && p.protocol == port.protocol);
            if holds {
                let protocol = format!("{:?}", port.protocol).to_ascii_lowercase();
                findings.push(Finding {
                    check: Check::Port,
                    severity: Severity::Blocker,
                    subject: format!("service.{}", service.name),
                    message: format!(
                        "published port {published}/{protocol} is held by service `{name}`, which this spec does not manage"
                    ),
                    hint: format!("publish another port, or remove `{name}` (`docker service rm {name}`) if it is not needed"),
                });
            }
        }
    }
}

/// The nodes whose board says `false` for a capability (a board that
/// could not say is left out), each as `` `name` ``.
fn lacking(lands: &[&Candidate<'_>], has: impl Fn(&Facts) -> Option<bool>) -> Vec<String> {
    lands
        .iter()
        .filter(|n| n.facts.and_then(&has) == Some(false))
        .map(|n| format!("`{}`", n.name))
        .collect()
}

fn memory_findings(service: &Service, lands: &[&Candidate<'_>], findings: &mut Vec<Finding>) {
    if service.resources.limit_memory.is_none() && service.resources.reserve_memory.is_none() {
        return;
    }
    let off = lacking(lands, |f| f.memory_cgroup);
    if off.is_empty() {
        return;
    }
    findings.push(Finding {
        check: Check::MemoryCgroup,
        severity: Severity::Blocker,
        subject: format!("service.{}", service.name),
        message: format!(
            "sets a memory limit or reservation, but memory cgroups are off on {}: the limit would silently do nothing there",
            off.join(", ")
        ),
        hint: "add `cgroup_enable=memory` to the board's /boot/firmware/cmdline.txt and reboot (`reconciler firstboot --boot` does it for new cards)".into(),
    });
}

/// Whether a service's tasks attach to an overlay network: every network
/// in the spec is one unless its driver says otherwise.
fn uses_overlay(service: &Service, spec: &Spec) -> bool {
    service.networks.iter().any(|name| {
        spec.networks
            .get(name)
            .is_none_or(|network| network.driver == "overlay")
    })
}

fn vxlan_findings(
    service: &Service,
    spec: &Spec,
    lands: &[&Candidate<'_>],
    findings: &mut Vec<Finding>,
) {
    if !uses_overlay(service, spec) {
        return;
    }
    let missing = lacking(lands, |f| f.vxlan);
    if missing.is_empty() {
        return;
    }
    findings.push(Finding {
        check: Check::Vxlan,
        severity: Severity::Blocker,
        subject: format!("service.{}", service.name),
        message: format!(
            "attaches to an overlay network, but the kernel of {} has no VXLAN: its tasks there cannot start",
            missing.join(", ")
        ),
        hint: "install the kernel's modules (`sudo apt install linux-image-$(uname -r)` or the board's full kernel package) so `modprobe vxlan` works, or keep the service off those boards with a constraint".into(),
    });
}

/// How far apart two clocks may be before raft and TLS suffer.
pub const CLOCK_SKEW_LIMIT_SECONDS: i64 = 30;
/// Below this much free space Docker's data (the raft log) is at risk.
pub const DISK_WARNING_BYTES: u64 = 2 * 1024 * 1024 * 1024;
pub const DISK_BLOCKER_BYTES: u64 = 512 * 1024 * 1024;

/// Checks of the boards and nodes themselves, whatever the plan writes.
fn board_findings(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) {
    manager_findings(inputs.spec, findings);
    engine_findings(inputs, findings);
    let facts = inputs.facts;
    let backends: BTreeMap<IptablesBackend, Vec<&str>> =
        facts.iter().fold(BTreeMap::new(), |mut acc, (name, f)| {
            if let Some(backend) = f.iptables {
                acc.entry(backend).or_insert_with(Vec::new).push(name);
            }
            acc
        });
    if backends.len() > 1 {
        let groups: Vec<String> = backends
            .iter()
            .map(|(backend, names)| format!("{} on {}", backend.as_str(), names.join(", ")))
            .collect();
        findings.push(Finding {
            check: Check::Iptables,
            severity: Severity::Warning,
            subject: "cluster".into(),
            message: format!("the boards' iptables use different back-ends ({}): Docker's rules on one set are invisible to the other, and published ports or overlay traffic fail between them", groups.join("; ")),
            hint: "pick one back-end on every board: `sudo update-alternatives --set iptables /usr/sbin/iptables-nft` (or -legacy), then restart Docker".into(),
        });
    }
    let manager_clock = inputs
        .spec
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager)
        .find_map(|n| {
            facts
                .get(&n.name)
                .and_then(|f| f.clock)
                .map(|c| (n.name.as_str(), c))
        });
    for (name, f) in facts {
        if let (Some((manager, reference)), Some(clock)) = (manager_clock, f.clock) {
            let skew = clock - reference;
            if skew.abs() > CLOCK_SKEW_LIMIT_SECONDS {
                findings.push(Finding {
                    check: Check::Clock,
                    severity: Severity::Warning,
                    subject: format!("node.{name}"),
                    message: format!("its clock is {}s {} the manager `{manager}`'s: swarm TLS certificates and raft suffer from skew (a Pi has no clock that runs while it is off)", skew.abs(), if skew > 0 { "ahead of" } else { "behind" }),
                    hint: "turn on time sync on the board (`sudo timedatectl set-ntp true`, systemd-timesyncd) and check it reaches an NTP server".into(),
                });
            }
        }
        if let Some(disk) = f.disk {
            if disk.available_bytes < DISK_WARNING_BYTES {
                findings.push(Finding {
                    check: Check::Disk,
                    severity: if disk.available_bytes < DISK_BLOCKER_BYTES { Severity::Blocker } else { Severity::Warning },
                    subject: format!("node.{name}"),
                    message: format!("only {} MiB free of {} MiB where Docker keeps its data: a full disk corrupts a manager's raft log and stops image pulls", disk.available_bytes / (1024 * 1024), disk.total_bytes / (1024 * 1024)),
                    hint: "free space (`docker system prune`, old images and logs) or move Docker's data to a larger disk".into(),
                });
            }
        }
        docker_arch_findings(name, f, findings);
    }
}

/// Docker 29 dropped Raspbian/ARMv6 from its own packages: a Pi Zero or
/// Pi 1 gets Docker only from its distribution's `docker.io`.
fn docker_arch_findings(name: &str, facts: &Facts, findings: &mut Vec<Finding>) {
    if facts.docker != crate::observed::BoardDocker::Absent || !facts.arch.starts_with("armv6") {
        return;
    }
    findings.push(Finding {
        check: Check::DockerArch,
        severity: Severity::Warning,
        subject: format!("node.{name}"),
        message: "an ARMv6 board (Pi Zero / Pi 1) without Docker: Docker's own packages stopped shipping for it with Docker 29, so only the distribution's `docker.io` installs (what the bootstrap uses)".into(),
        hint: "keep the bootstrap's distribution package; get.docker.com fails on this board".into(),
    });
}

/// The spec's managers: raft wants an odd number, at most seven.
fn manager_findings(spec: &Spec, findings: &mut Vec<Finding>) {
    let managers = spec
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager)
        .count();
    if managers == 0 {
        return;
    }
    let message = if managers > 7 {
        format!("{managers} managers: raft slows down with more than seven, and no more failures are tolerated than with seven")
    } else if managers % 2 == 0 {
        format!("{managers} managers: an even number tolerates no more failures than {} (quorum needs {} of {managers})", managers - 1, managers / 2 + 1)
    } else {
        return;
    };
    findings.push(Finding {
        check: Check::Managers,
        severity: Severity::Warning,
        subject: "cluster".into(),
        message,
        hint: "use 1, 3, 5 or 7 managers: make one a worker (`role = \"worker\"`) or add one"
            .into(),
    });
}

/// Engine versions across the swarm's nodes. Encrypted overlays between
/// 29.0–29.2.0 and older engines carry no traffic.
fn engine_findings(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) {
    let versions: BTreeMap<&str, Vec<&str>> =
        inputs
            .observed
            .nodes
            .iter()
            .fold(BTreeMap::new(), |mut acc, node| {
                if !node.engine_version.is_empty() {
                    acc.entry(node.engine_version.as_str())
                        .or_insert_with(Vec::new)
                        .push(node.hostname.as_str());
                }
                acc
            });
    if versions.len() < 2 {
        return;
    }
    let encrypted = inputs
        .spec
        .networks
        .values()
        .any(|n| n.options.contains_key("encrypted"));
    let broken_pair = versions.keys().any(|v| is_29_early(v))
        && versions
            .keys()
            .any(|v| version_major(v).is_some_and(|m| m < 29));
    let groups: Vec<String> = versions
        .iter()
        .map(|(version, nodes)| format!("{version} on {}", nodes.join(", ")))
        .collect();
    let blocker = encrypted && broken_pair;
    findings.push(Finding {
        check: Check::EngineVersion,
        severity: if blocker { Severity::Blocker } else { Severity::Warning },
        subject: "cluster".into(),
        message: if blocker {
            format!("the nodes run Docker {}: encrypted overlay networks pass no traffic between 29.0–29.2.0 and older engines", groups.join("; "))
        } else {
            format!("the nodes run different Docker versions ({})", groups.join("; "))
        },
        hint: "upgrade every board to the same Docker version, one board at a time".into(),
    });
}

fn version_major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// 29.0.x, 29.1.x and 29.2.0.
fn is_29_early(version: &str) -> bool {
    let parts: Vec<u32> = version
        .split(['.', '-', '+'])
        .take(3)
        .map_while(|p| p.parse().ok())
        .collect();
    matches!(parts.as_slice(), [29, 0 | 1, ..] | [29, 2, 0] | [29, 2])
}

/// The blockers `allowed` does not let through.
pub fn blocking<'f>(findings: &'f [Finding], allowed: &[Check]) -> Vec<&'f Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker && !allowed.contains(&f.check))
        .collect()
}

/// The findings as the plan's pre-flight section.
pub fn text(findings: &[Finding], unchecked: &[(String, String)]) -> String {
    let mut out = String::new();
    if findings.is_empty() && unchecked.is_empty() {
        return out;
    }
    out.push_str("\nPre-flight:\n");
    for finding in findings {
        let mark = match finding.severity {
            Severity::Blocker => "✗",
            Severity::Warning => "!",
        };
        out.push_str(&format!(
            "  {mark} {} [{}] {}\n      {}\n",
            finding.subject,
            finding.check.as_str(),
            finding.message,
            finding.hint
        ));
    }
    for (image, error) in unchecked {
        out.push_str(&format!(
            "  ? image `{image}` was not checked: no registry answered ({error})\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests;
