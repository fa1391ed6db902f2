//! What push access means, and the controller owner's limits on it.
//!
//! Whoever can push to the spec's repository is root on every board: a
//! service may mount `/`, the Docker socket or the controller's own folder,
//! add every capability, and `[bootstrap]` commands run as root on each
//! board. [`grants`] names each such power a spec uses (`plan` and `apply`
//! warn about them); a [`Policy`] — a file that lives with the controller,
//! never in the repository — refuses the ones its owner denies. Paths are
//! compared as written (cleaned of `.`, `..` and doubled slashes), as Docker
//! cleans them; a symbolic link on a board is not followed.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use reconciler_spec::{MountKind, Spec};

/// The largest policy file read: it is a short list.
const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// Where the Docker and containerd sockets live on a board (`/var/run` is
/// a link to `/run` on Raspberry Pi OS and Debian, so both spellings).
const ENGINE_SOCKETS: [&str; 4] = [
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd",
    "/var/run/containerd",
];

/// Where an installed controller keeps its age key, git credentials and
/// webhook secret, and its cache of the repository.
pub const CONTROLLER_FOLDERS: [&str; 2] = ["/etc/reconciler", "/var/cache/reconciler"];

/// One power over the boards a spec can use; each is denied by its own name
/// in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A service mounts a file or folder of the node it runs on (a bind
    /// mount, or a local volume whose options bind a device path).
    HostPaths,
    /// A service mounts the Docker or containerd socket, or a folder
    /// holding one: root on its node and command of the swarm.
    DockerSocket,
    /// A service mounts the controller's own folders (or one holding them):
    /// its age key, git credentials, SSH key and webhook secret.
    ControllerFolder,
    /// A service adds every capability (`cap_add = ["ALL"]`).
    AllCapabilities,
    /// `[bootstrap]` replaces a command run as root on every board, or a
    /// board file runs one after a change (`then`).
    BoardCommands,
    /// `[board]` writes a file on boards as root (`/etc/sudoers.d/...`
    /// would be root for anyone).
    BoardFiles,
    /// `[board]` installs packages, whose install scripts run as root.
    BoardPackages,
}

impl Rule {
    /// The rule's name in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::HostPaths => "host-paths",
            Rule::DockerSocket => "docker-socket",
            Rule::ControllerFolder => "controller-folder",
            Rule::AllCapabilities => "all-capabilities",
            Rule::BoardCommands => "board-commands",
            Rule::BoardFiles => "board-files",
            Rule::BoardPackages => "board-packages",
        }
    }
}

/// One use of a [`Rule`]'s power by the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub rule: Rule,
    /// What asks for it: `service "web"`, `[bootstrap] install_docker`.
    pub subject: String,
    /// The path a mount names (cleaned); empty for the other rules.
    pub path: String,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Grant {
            rule,
            subject,
            path,
        } = self;
        match rule {
            Rule::HostPaths => write!(f, "{subject} mounts {path} of the node it runs on"),
            Rule::DockerSocket => write!(
                f,
                "{subject} mounts {path}, the Docker socket or a folder holding it: root on its node and command of the whole swarm"
            ),
            Rule::ControllerFolder => write!(
                f,
                "{subject} mounts {path}, which holds the controller's keys and credentials"
            ),
            Rule::AllCapabilities => write!(
                f,
                "{subject} adds every capability (cap_add ALL): root on its node"
            ),
            Rule::BoardCommands => write!(f, "{subject} runs a command as root on boards"),
            Rule::BoardFiles => write!(f, "{subject} writes {path} as root"),
            Rule::BoardPackages => write!(
                f,
                "{subject} installs packages, whose scripts run as root"
            ),
        }
    }
}

/// Every power over the boards `spec` uses, in a stable order. `protected`
/// names more of the controller's own files (its SSH key, known_hosts, cache)
/// besides [`CONTROLLER_FOLDERS`].
pub fn grants(spec: &Spec, protected: &[PathBuf]) -> Vec<Grant> {
    let mut controller: Vec<String> = CONTROLLER_FOLDERS.iter().map(|p| p.to_string()).collect();
    controller.extend(protected.iter().map(|p| clean(&p.to_string_lossy())));
    let mut grants = Vec::new();
    for (name, service) in &spec.services {
        let subject = format!("service \"{name}\"");
        for path in host_paths(service) {
            let path = clean(&path);
            let mut special = false;
            if ENGINE_SOCKETS.iter().any(|socket| overlaps(&path, socket)) {
                grants.push(grant(Rule::DockerSocket, &subject, &path));
                special = true;
            }
            if controller.iter().any(|folder| overlaps(&path, folder)) {
                grants.push(grant(Rule::ControllerFolder, &subject, &path));
                special = true;
            }
            if !special {
                grants.push(grant(Rule::HostPaths, &subject, &path));
            }
        }
        if service
            .cap_add
            .iter()
            .any(|c| c.eq_ignore_ascii_case("ALL"))
        {
            grants.push(grant(Rule::AllCapabilities, &subject, ""));
        }
    }
    let defaults = reconciler_spec::Bootstrap::default();
    if spec.bootstrap.install_docker != defaults.install_docker {
        grants.push(grant(Rule::BoardCommands, "[bootstrap] install_docker", ""));
    }
    if spec.bootstrap.start_docker != defaults.start_docker {
        grants.push(grant(Rule::BoardCommands, "[bootstrap] start_docker", ""));
    }
    grants.extend(board_grants(spec));
    grants
}

/// The `[board]` powers, one grant per file path and one for packages,
/// each naming how many boards it reaches.
fn board_grants(spec: &Spec) -> Vec<Grant> {
    let mut files: std::collections::BTreeMap<String, (usize, bool)> =
        std::collections::BTreeMap::new();
    let mut with_packages = 0;
    for node in spec.nodes.values() {
        if !node.board.packages.is_empty() {
            with_packages += 1;
        }
        for (path, file) in node.board.all_files() {
            let entry = files.entry(path).or_default();
            entry.0 += 1;
            entry.1 |= file.then.is_some();
        }
        // `[board.mount]` and `[share]` lines, mounted as root.
        if !node.board.mounts.is_empty() {
            files.entry("/etc/fstab".to_string()).or_default().0 += 1;
        }
    }
    let boards = |n: usize| {
        if n == 1 {
            "1 board".to_string()
        } else {
            format!("{n} boards")
        }
    };
    let mut grants = Vec::new();
    if with_packages > 0 {
        grants.push(grant(
            Rule::BoardPackages,
            &format!("[board] on {}", boards(with_packages)),
            "",
        ));
    }
    for (path, (count, then)) in files {
        let subject = format!("[board] on {}", boards(count));
        grants.push(grant(Rule::BoardFiles, &subject, &path));
        if then {
            grants.push(grant(
                Rule::BoardCommands,
                &format!("[board] file {path} (`then`) on {}", boards(count)),
                "",
            ));
        }
    }
    grants
}

fn grant(rule: Rule, subject: &str, path: &str) -> Grant {
    Grant {
        rule,
        subject: subject.to_string(),
        path: path.to_string(),
    }
}

/// The node paths a service's mounts reach: bind sources, and the device of
/// a local volume mounted with the `bind` option (`type=none,o=bind,device=`,
/// how compose files bind a host folder through a named volume).
fn host_paths(service: &reconciler_spec::Service) -> Vec<String> {
    let mut paths = Vec::new();
    for mount in &service.mounts {
        match mount.kind {
            MountKind::Bind => paths.extend(mount.source.clone()),
            MountKind::Volume => {
                let local = mount.volume.driver.as_deref().is_none_or(|d| d == "local");
                let options = &mount.volume.driver_options;
                let binds = options.get("o").is_some_and(|o| {
                    o.split(',')
                        .any(|o| o.trim() == "bind" || o.trim() == "rbind")
                });
                if let (true, true, Some(device)) = (local, binds, options.get("device")) {
                    paths.push(device.clone());
                }
            }
            MountKind::Tmpfs => {}
        }
    }
    paths
}

/// `path` cleaned as Go's `filepath.Clean` (which Docker applies): no `.`,
/// no `..` above the root, no doubled or trailing slash.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether a mount of `path` reaches `protected`: the same path, a folder
/// holding it, or a path inside it.
fn overlaps(path: &str, protected: &str) -> bool {
    within(protected, path) || within(path, protected)
}

/// Whether `inner` is `outer` or below it (both cleaned).
fn within(inner: &str, outer: &str) -> bool {
    outer == "/"
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The controller owner's limits, read from a file given with `--policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules whose grants refuse a spec.
    #[serde(default)]
    pub deny: BTreeSet<Rule>,
    /// With `host-paths` denied, mounts of these folders (or below them)
    /// are still allowed. Never a way around the other rules.
    #[serde(default)]
    pub allow_host_paths: Vec<String>,
}

/// Why a policy file cannot be used; the controller does not start without it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file is missing or unreadable.
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is larger than a policy needs to be.
    #[error("the policy file {path} is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// Not TOML, or a key or rule the policy does not know.
    #[error("the policy file {path} is not valid: {message}\n  help: it takes `deny = [...]` with host-paths, docker-socket, controller-folder, all-capabilities, board-commands, board-files, board-packages, and `allow_host_paths = [\"/srv\"]`")]
    Invalid { path: PathBuf, message: String },
    /// An allowed host path that is not absolute.
    #[error("the policy file {path}: allow_host_paths entry `{entry}` must be an absolute path")]
    RelativePath { path: PathBuf, entry: String },
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = crate::bounded::read_text(path, MAX_POLICY_BYTES).map_err(|e| match e {
            crate::bounded::BoundedReadError::Io(source) => PolicyError::Read {
                path: path.to_path_buf(),
                source,
            },
            crate::bounded::BoundedReadError::TooLarge(_) => PolicyError::TooLarge {
                path: path.to_path_buf(),
            },
        })?;
        let mut policy: Policy = toml::from_str(&text).map_err(|e| PolicyError::Invalid {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        for entry in &mut policy.allow_host_paths {
            if !entry.starts_with('/') {
                return Err(PolicyError::RelativePath {
                    path: path.to_path_buf(),
                    entry: entry.clone(),
                });
            }
            *entry = clean(entry);
        }
        Ok(policy)
    }

    /// The grants this policy refuses.
    pub fn refused<'g>(&self, grants: &'g [Grant]) -> Vec<&'g Grant> {
        grants
            .iter()
            .filter(|grant| self.deny.contains(&grant.rule))
            .filter(|grant| {
                grant.rule != Rule::HostPaths
                    || !self
                        .allow_host_paths
                        .iter()
                        .any(|allowed| within(&grant.path, allowed))
            })
            .collect()
    }
}

/// What `plan`, `apply` and `run` say of a spec's grants under a policy.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Worth a warning: the powers that make push access root, allowed.
    pub warnings: Vec<String>,
    /// Denied by the policy: the spec is refused.
    pub refusals: Vec<String>,
}

/// Judges `spec` by `policy` (no policy: nothing is refused). Ordinary
/// host paths are not warned about (most stacks keep data in one); the
/// powers that amount to root on a board are, until a policy denies them.
pub fn judge(spec: &Spec, policy: Option<&Policy>, protected: &[PathBuf]) -> Verdict {
    let grants = grants(spec, protected);
    let refused = policy.map(|p| p.refused(&grants)).unwrap_or_default();
    let mut verdict = Verdict::default();
    for grant in &grants {
        if refused.contains(&grant) {
            verdict.refusals.push(format!(
                "{grant} (the policy denies {})",
                grant.rule.as_str()
            ));
        } else if grant.rule != Rule::HostPaths {
            verdict.warnings.push(format!(
                "push access: {grant}; a policy file can deny it (`deny = [\"{}\"]`)",
                grant.rule.as_str()
            ));
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(services: &str) -> Spec {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(
            dir.path().join("spec.toml"),
            format!("[cluster]\nname = \"home\"\n{services}"),
        )
        .expect("spec written");
        reconciler_spec::load_dir(dir.path()).expect("valid spec")
    }

    fn rules(spec: &Spec) -> Vec<(Rule, String)> {
        grants(spec, &[])
            .into_iter()
            .map(|g| (g.rule, g.path))
            .collect()
    }

    #[test]
    fn paths_are_cleaned_and_compared_by_component() {
        assert_eq!(
            clean("/var/run/../run//docker.sock/"),
            "/var/run/docker.sock"
        );
        assert_eq!(clean("/run/./x/../docker.sock"), "/run/docker.sock");
        assert_eq!(clean("/../.."), "/");
        assert!(within("/srv/data/x", "/srv/data"));
        assert!(!within("/srv/database", "/srv/data"));
        assert!(within("/etc", "/"));
    }

    #[test]
    fn mounts_are_sorted_by_what_they_reach() {
        let spec = spec(
            r#"
[service.a]
image = "x"
mounts = [
  { type = "bind", source = "/", target = "/host" },
  { type = "bind", source = "/var/run/../run/docker.sock", target = "/s" },
  { type = "bind", source = "/etc/reconciler/age-identity", target = "/k" },
  { type = "bind", source = "/srv/data", target = "/data" },
  { type = "volume", source = "v", target = "/v", driver_options = { type = "none", o = "bind", device = "/etc" } },
  { type = "volume", source = "n", target = "/n", driver_options = { type = "nfs", o = "addr=10.0.0.2", device = ":/export" } },
]
cap_add = ["all"]
"#,
        );
        assert_eq!(
            rules(&spec),
            vec![
                (Rule::DockerSocket, "/".to_string()),
                (Rule::ControllerFolder, "/".to_string()),
                (Rule::DockerSocket, "/var/run/docker.sock".to_string()),
                (
                    Rule::ControllerFolder,
                    "/etc/reconciler/age-identity".to_string()
                ),
                (Rule::HostPaths, "/srv/data".to_string()),
                (Rule::ControllerFolder, "/etc".to_string()),
                (Rule::AllCapabilities, String::new()),
            ]
        );
    }

    #[test]
    fn bootstrap_commands_other_than_the_defaults_are_a_grant() {
        let spec =
            spec("[bootstrap]\ninstall_docker = \"curl -fsSL https://get.docker.com | sh\"\n");
        assert_eq!(rules(&spec), vec![(Rule::BoardCommands, String::new())]);
        assert!(rules(&self::spec("")).is_empty());
    }

    #[test]
    fn board_files_packages_and_their_commands_are_powers_named_once_per_path() {
        let spec = spec(
            "[board]\npackages = [\"htop\"]\n[board.file.\"/etc/sudoers.d/x\"]\ncontent = \"x\"\nthen = \"true\"\n[node.a]\naddress = \"10.0.0.1\"\nrole = \"manager\"\n[node.b]\naddress = \"10.0.0.2\"\nrole = \"worker\"\n",
        );
        let found = grants(&spec, &[]);
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "[board] on 2 boards installs packages, whose scripts run as root",
                "[board] on 2 boards writes /etc/sudoers.d/x as root",
                "[board] file /etc/sudoers.d/x (`then`) on 2 boards runs a command as root on boards",
            ]
        );
        let policy = Policy {
            deny: [Rule::BoardFiles].into(),
            ..Policy::default()
        };
        assert_eq!(policy.refused(&found).len(), 1);
    }

    #[test]
    fn a_policy_refuses_only_what_it_denies() {
        let spec = spec(
            r#"
[service.a]
image = "x"
mounts = [
  { type = "bind", source = "/srv/data/app", target = "/data" },
  { type = "bind", source = "/home/pi", target = "/home" },
  { type = "bind", source = "/var/run/docker.sock", target = "/s" },
]
"#,
        );
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("policy.toml");
        std::fs::write(
            &file,
            "deny = [\"host-paths\"]\nallow_host_paths = [\"/srv/data/\", \"/var/run\"]\n",
        )
        .expect("policy written");
        let policy = Policy::load(&file).expect("valid policy");
        let verdict = judge(&spec, Some(&policy), &[]);
        assert_eq!(
            verdict.refusals,
            vec!["service \"a\" mounts /home/pi of the node it runs on (the policy denies host-paths)"]
        );
        // The socket is its own rule: allowed here, and warned about.
        assert_eq!(verdict.warnings.len(), 1);
        assert!(
            verdict.warnings[0].contains("Docker socket"),
            "{:?}",
            verdict.warnings
        );
        let unguarded = judge(&spec, None, &[]);
        assert!(unguarded.refusals.is_empty());
        assert_eq!(unguarded.warnings, verdict.warnings);
    }

    #[test]
    fn a_policy_file_with_an_unknown_rule_or_a_relative_path_is_refused() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, "deny = [\"docker-sockets\"]\n").expect("written");
        let error = Policy::load(&file).expect_err("unknown rule");
        assert!(error.to_string().contains("docker-sockets"), "{error}");
        std::fs::write(&file, "allow_host_paths = [\"srv\"]\n").expect("written");
        assert!(matches!(
            Policy::load(&file),
            Err(PolicyError::RelativePath { .. })
        ));
        std::fs::write(&file, "denny = []\n").expect("written");
        assert!(matches!(
            Policy::load(&file),
            Err(PolicyError::Invalid { .. })
        ));
    }
}
