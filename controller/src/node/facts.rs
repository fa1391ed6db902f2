//! What a board is: learned with one read-only script over SSH.

use crate::observed::{BoardDocker, DiskSpace, Facts, IptablesBackend, LocalSwarm, MemorySize};

/// The script that gathers facts: only reads, prints `key=value` lines.
pub const SCRIPT: &str = r#"
echo "hostname=$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)"
echo "arch=$(uname -m)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$ID}"; fi
# A Docker that hangs must not stall the reconcile: each call gets 10 s.
limited() { if command -v timeout >/dev/null 2>&1; then timeout 10 "$@"; else "$@"; fi; }
if command -v docker >/dev/null 2>&1; then
  echo "docker_installed=true"
  limited docker info >/dev/null 2>&1
  answered=$?
  if [ "$answered" -eq 0 ]; then
    echo "docker_running=true"
    echo "docker_version=$(limited docker version --format '{{.Server.Version}}' 2>/dev/null)"
    echo "swarm_state=$(limited docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)"
    echo "swarm_node_id=$(limited docker info --format '{{.Swarm.NodeID}}' 2>/dev/null)"
    echo "docker_arch=$(limited docker version --format '{{.Server.Arch}}' 2>/dev/null)"
    echo "memory_cgroup=$(limited docker info --format '{{.MemoryLimit}}' 2>/dev/null)"
  elif [ "$answered" -eq 124 ]; then
    echo "docker_running=hung"
  else
    echo "docker_running=false"
  fi
else
  echo "docker_installed=false"
fi
if [ -e /var/lib/docker/swarm/docker-state.json ]; then echo "swarm_on_disk=true"; fi
# dpkg's journal holds entries only while an installation is cut off.
if [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ]; then echo "packages_interrupted=true"; fi
if [ -r /etc/reconciler/membership ]; then grep -E '^(cluster|node_id)=' /etc/reconciler/membership | sed 's/^/member_/'; fi
echo "hosts_block=$(sed -n '/^# BEGIN reconciler/,/^# END reconciler/p' /etc/hosts 2>/dev/null | sha256sum | cut -c1-64)"
echo "docker_group=$(getent group docker 2>/dev/null | cut -d: -f4)"
echo "users=$(getent passwd 2>/dev/null | cut -d: -f1 | tr '\n' ',')"
# For pre-flight (`preflight.rs`): what breaks a swarm on a small board.
echo "clock=$(date +%s)"
# Docker's own judgement above; without a running Docker, the kernel's.
[ -r /proc/cgroups ] && echo "kernel_memory_cgroup=$(awk '$1 == "memory" { print ($4 == 1) ? "true" : "false" }' /proc/cgroups)"
if [ -d /sys/module/vxlan ] || grep -qs '/vxlan.ko' "/lib/modules/$(uname -r)/modules.dep" "/lib/modules/$(uname -r)/modules.builtin"; then echo "vxlan=true"; else echo "vxlan=false"; fi
if command -v iptables >/dev/null 2>&1; then echo "iptables=$(iptables -V 2>/dev/null)"; fi
disk_dir=/var/lib/docker; [ -d "$disk_dir" ] || disk_dir=/
echo "disk=$(df -Pk "$disk_dir" 2>/dev/null | awk 'NR == 2 { print $4 " " $2 }')"
# Health (`health.rs`): memory, load, uptime, a pending reboot, updates.
[ -r /proc/meminfo ] && echo "memory=$(awk '$1 == "MemAvailable:" { a = $2 } $1 == "MemTotal:" { t = $2 } END { print a " " t }' /proc/meminfo)"
[ -r /proc/loadavg ] && echo "load1=$(cut -d' ' -f1 /proc/loadavg)"
[ -r /proc/uptime ] && echo "uptime=$(cut -d. -f1 /proc/uptime)"
if [ -e /var/run/reboot-required ]; then echo "reboot_required=true"; fi
if [ -r /proc/device-tree/model ]; then echo "model=$(tr -d '\0' < /proc/device-tree/model)"; fi
if command -v vcgencmd >/dev/null 2>&1; then
  echo "throttled=$(vcgencmd get_throttled 2>/dev/null | cut -d= -f2)"
  echo "temperature=$(vcgencmd measure_temp 2>/dev/null | cut -d= -f2)"
elif [ -r /sys/class/thermal/thermal_zone0/temp ]; then
  echo "temperature=$(awk '{ printf "%.1f'"'"'C", $1 / 1000 }' /sys/class/thermal/thermal_zone0/temp)"
fi
"#;

/// Appended to [`SCRIPT`] where updates are counted (`run`, `upgrade`): apt
/// works out the upgrade from the lists it has (nothing is fetched), which
/// takes about a second on a Pi, too long for every `plan`.
pub const UPDATES_SCRIPT: &str = r#"
if command -v apt-get >/dev/null 2>&1; then echo "upgradable=$(limited apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst ')"; fi
"#;

/// Reading the facts script's output lives next to the script; the type is
/// the observed state of a board ([`Facts`]).
impl Facts {
    /// Parses the output of [`SCRIPT`]; unknown lines are ignored.
    pub fn parse(output: &str) -> Self {
        let mut facts = Facts::default();
        let (mut installed, mut running) = (false, String::new());
        let (mut version, mut swarm_state, mut swarm_node_id) = (None, String::new(), None);
        let (mut docker_memory, mut kernel_memory) = (None, None);
        for line in output.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            let optional = || Some(value.clone()).filter(|v| !v.is_empty());
            match key.trim() {
                "hostname" => facts.hostname = value,
                "arch" => facts.arch = value,
                "os" => facts.os = value,
                "docker_installed" => installed = value == "true",
                "docker_running" => running = value,
                "docker_version" => version = optional(),
                "swarm_state" => swarm_state = value,
                "swarm_node_id" => swarm_node_id = optional(),
                "docker_arch" => facts.docker_arch = optional(),
                "memory_cgroup" => docker_memory = parse_bool(&value),
                "kernel_memory_cgroup" => kernel_memory = parse_bool(&value),
                "clock" => facts.clock = value.parse().ok(),
                "vxlan" => facts.vxlan = parse_bool(&value),
                "iptables" => facts.iptables = IptablesBackend::of(&value),
                "disk" => facts.disk = DiskSpace::parse(&value),
                "memory" => {
                    facts.memory = DiskSpace::parse(&value).map(|m| MemorySize {
                        available_bytes: m.available_bytes,
                        total_bytes: m.total_bytes,
                    })
                }
                "load1" => facts.load1 = optional(),
                "uptime" => facts.uptime_seconds = value.parse().ok(),
                "reboot_required" => facts.reboot_required = value == "true",
                "upgradable" => facts.upgradable_packages = value.parse().ok(),
                "model" => facts.model = optional(),
                "throttled" => facts.throttled = optional(),
                "temperature" => facts.temperature = optional(),
                "hosts_block" => facts.hosts_block = value,
                "member_cluster" => facts.member_cluster = optional(),
                "swarm_on_disk" => facts.swarm_on_disk = value == "true",
                "packages_interrupted" => facts.packages_interrupted = value == "true",
                "member_node_id" => facts.member_node_id = optional(),
                "users" => {
                    let users: Vec<String> = value
                        .split(',')
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                        .collect();
                    // Every board has root: an empty list is no answer.
                    facts.users = (!users.is_empty()).then_some(users);
                }
                "docker_group" => {
                    facts.docker_group = value
                        .split(',')
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                _ => {}
            }
        }
        facts.memory_cgroup = docker_memory.or(kernel_memory);
        facts.config = crate::observed::BoardState::parse(output);
        facts.docker = match (installed, running.as_str()) {
            (false, _) => BoardDocker::Absent,
            (true, "true") => BoardDocker::Running {
                version,
                swarm: LocalSwarm::from_docker(&swarm_state, swarm_node_id),
            },
            (true, "hung") => BoardDocker::Hung,
            (true, _) => BoardDocker::Stopped,
        };
        facts
    }

    /// The facts, or the error that stops all work on a board whose Docker
    /// hangs.
    pub fn answering(self, node: &str) -> Result<Self, super::NodeError> {
        if self.docker == BoardDocker::Hung {
            return Err(super::NodeError::DockerHung {
                node: node.to_string(),
            });
        }
        Ok(self)
    }
}

/// `true`/`false` as the script prints them; anything else is no answer.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl IptablesBackend {
    /// From `iptables -V`: `iptables v1.8.9 (nf_tables)` or `(legacy)`.
    fn of(version: &str) -> Option<Self> {
        if version.contains("(nf_tables)") {
            Some(Self::NfTables)
        } else if version.contains("(legacy)") {
            Some(Self::Legacy)
        } else {
            None
        }
    }
}

impl DiskSpace {
    /// From `AVAILABLE_KB TOTAL_KB` (`df -Pk`; `/proc/meminfo` is read the
    /// same way).
    fn parse(value: &str) -> Option<Self> {
        let mut numbers = value.split_whitespace().map(str::parse::<u64>);
        let available = numbers.next()?.ok()?;
        let total = numbers.next()?.ok()?;
        Some(Self {
            available_bytes: available.saturating_mul(1024),
            total_bytes: total.saturating_mul(1024),
        })
    }
}

/// `reconciler facts` as a table: one row per board, columns as wide as their widest cell.
pub fn table(
    spec: &reconciler_spec::Spec,
    results: &[(String, Result<Facts, super::NodeError>)],
) -> String {
    let header = ["NODE", "HOSTNAME", "ARCH", "OS", "DOCKER", "SWARM"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_string()).collect()];
    let mut failures = Vec::new();
    for (name, result) in results {
        match result {
            Ok(facts) => {
                let docker = match &facts.docker {
                    BoardDocker::Running {
                        version: Some(version),
                        ..
                    } => version.clone(),
                    BoardDocker::Running { version: None, .. } => "running".into(),
                    BoardDocker::Stopped => "stopped".into(),
                    BoardDocker::Hung => "hung".into(),
                    BoardDocker::Absent => "missing".into(),
                };
                let expected = spec.nodes.get(name).and_then(|n| n.arch.clone());
                let arch = match expected {
                    Some(want) if !facts.arch_matches(&want) => {
                        format!("{} (spec: {want}!)", facts.arch)
                    }
                    _ => facts.arch.clone(),
                };
                rows.push(vec![
                    name.clone(),
                    facts.hostname.clone(),
                    arch,
                    facts.os.clone(),
                    docker,
                    facts
                        .local_swarm()
                        .map_or_else(|| "-".into(), |swarm| swarm.as_str().to_string()),
                ]);
            }
            Err(error) => failures.push(format!("{name}: {} ({error})", error.kind())),
        }
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !failures.is_empty() {
        out.push_str("\nNot reached:\n");
        for failure in failures {
            out.push_str(&format!("  {failure}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A board whose Docker hung stalled every reconcile for the SSH
    /// command timeout (600 s); now `docker info` gets 10 s and the board is
    /// a named failure that nothing else is done on.
    #[test]
    fn regression_a_board_whose_docker_hangs_is_a_named_failure() {
        let hung = Facts::parse("hostname=pi3\ndocker_installed=true\ndocker_running=hung\n");
        assert_eq!(hung.docker, BoardDocker::Hung);
        assert!(!hung.docker_running());
        let error = hung.answering("pi3").err();
        assert!(
            matches!(&error, Some(super::super::NodeError::DockerHung { node }) if node == "pi3"),
            "{error:?}"
        );
        let stopped = Facts::parse("docker_installed=true\ndocker_running=false\n");
        assert!(stopped.answering("pi3").is_ok());
    }

    #[test]
    fn parses_the_script_output() {
        let facts = Facts::parse("hostname=pi1\narch=aarch64\nos=Debian GNU/Linux 12 (bookworm)\ndocker_installed=true\ndocker_running=true\ndocker_version=20.10.24\nswarm_state=active\nswarm_node_id=abc\nmodel=Raspberry Pi 4 Model B Rev 1.4\nnoise\n");
        assert_eq!(facts.hostname, "pi1");
        assert_eq!(
            facts.docker,
            BoardDocker::Running {
                version: Some("20.10.24".into()),
                swarm: LocalSwarm::Active {
                    node_id: Some("abc".into())
                },
            }
        );
        assert_eq!(facts.swarm_node_id(), Some("abc"));
        assert_eq!(
            facts.model.as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert!(facts.arch_matches("arm64"));
        assert!(!facts.arch_matches("armv7l"));
    }
}
