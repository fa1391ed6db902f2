//! `reconciler firstboot`: from the spec, the files a freshly flashed card's
//! boot partition needs so that its board comes up reachable and trusted —
//! hostname, the `[ssh] user` with the spec's public key and passwordless
//! sudo, SSH on with password logins off, its address, its timezone — and
//! an SSH host key made here for each board and recorded in the spec's
//! known_hosts, so the first `apply --ssh` needs no `--accept-new-host-keys`.
//!
//! Everything is checked for every board before anything is written: a bad
//! node name, a missing key or a known_hosts entry for another key leaves
//! every file as it was. A board's files are written again with the same
//! host key (read back from its earlier `user-data`), so running the
//! command twice changes nothing.

pub mod cloud_init;
pub mod cmdline;
pub mod firstrun;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use sha2::Digest as _;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::bounded::read_text;

/// The cloud-init files, by the names the boot partition gives them.
pub const USER_DATA: &str = "user-data";
pub const META_DATA: &str = "meta-data";
pub const NETWORK_CONFIG: &str = "network-config";
/// Bookworm's first-boot script, and the empty file that turns SSH on.
pub const FIRSTRUN: &str = "firstrun.sh";
pub const SSH_MARKER: &str = "ssh";
/// The most a key file read here may hold.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// What to write, for which boards, where.
#[derive(Debug, Clone)]
pub struct Options {
    /// Node names; empty means every node of the spec.
    pub nodes: Vec<String>,
    pub destination: Destination,
    pub addressing: Addressing,
    /// `Area/City`; `None` leaves the image's (UTC).
    pub timezone: Option<String>,
    /// The public key the boards accept, instead of each node's
    /// `[ssh] identity` with `.pub` added.
    pub authorized_key: Option<PathBuf>,
    pub release: Release,
}

/// Which Raspberry Pi OS the cards were flashed with: it decides what the
/// first boot reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Release {
    /// Trixie and later: cloud-init's `user-data`, `meta-data`,
    /// `network-config`.
    #[default]
    Trixie,
    /// Bookworm and older: `firstrun.sh` run once through `cmdline.txt`
    /// (Imager's route) and the `ssh` file.
    Bookworm,
}

/// Where the files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `FOLDER/NODE/`, for each board: copied onto its card by hand.
    Folder(PathBuf),
    /// A card's mounted boot partition (one board): written there, and
    /// `cmdline.txt` edited in place.
    Card(PathBuf),
}

/// How the boards get the spec's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// From the router: reserve each board's address there.
    Dhcp,
    /// Fixed on each board: the node's address with this prefix length,
    /// gateway and name servers.
    Static {
        prefix: u8,
        gateway: Ipv4Addr,
        dns: Vec<Ipv4Addr>,
    },
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum FirstbootError {
    /// `--node` names a node the spec does not have.
    #[error("the spec has no node `{name}` (its nodes: {known})")]
    UnknownNode { name: String, known: String },
    /// A card is one board's: `--boot` with no or several nodes.
    #[error("--boot writes one card: name its board with one --node (the spec has {count} nodes)")]
    OneCardOneBoard { count: usize },
    /// The `--boot` folder has no `cmdline.txt`.
    #[error("{path} has no cmdline.txt: it is not the boot partition of a Raspberry Pi OS card (mounted as `bootfs`, e.g. /media/$USER/bootfs)")]
    NotABootPartition { path: String },
    /// `cmdline.txt` cannot be changed safely.
    #[error("{path}: {source}")]
    Cmdline {
        path: String,
        #[source]
        source: cmdline::CmdlineError,
    },
    /// The public key the board should accept is missing or unreadable.
    #[error("node {node}: no public key to let `{user}` log in: {path}: {reason}. Make a key with `ssh-keygen -t ed25519 -f {identity}`, or name one with --authorized-key")]
    LoginKey {
        node: String,
        user: String,
        path: String,
        identity: String,
        reason: String,
    },
    /// known_hosts already trusts another key for the board's address: a
    /// board flashed before, or another machine at that address.
    #[error("node {node}: {path} already holds a host key for {host} ({fingerprint}); a new card would change it. If you are re-flashing this board, remove the old entry first: `ssh-keygen -R {host} -f {path}`")]
    HostKeyRecorded {
        node: String,
        host: String,
        path: String,
        fingerprint: String,
    },
    /// known_hosts cannot be read or written.
    #[error("node {node}: known_hosts {path}: {source}")]
    KnownHosts {
        node: String,
        path: String,
        source: crate::node::ssh::KnownHostsError,
    },
    /// The spec pins `host_key`, which is checked instead of known_hosts.
    #[error("node {node}: the spec pins its host_key, and the new card gives the board another one; remove `host_key` from the spec (the new key is recorded in known_hosts)")]
    PinnedHostKey { node: String },
    /// Bookworm's network is NetworkManager's, set up by no file here.
    #[error("node {node}: --gateway is for cards that read cloud-init (Trixie and later); on a Bookworm card reserve the address {address} for the board in the router")]
    StaticOnBookworm { node: String, address: String },
    /// A fixed address needs an IPv4 address, not a name.
    #[error("node {node}: --gateway fixes the node's address on the board, and `{address}` is not an IPv4 address; use DHCP (leave out --gateway) for it")]
    StaticNeedsIpv4 { node: String, address: String },
    /// `--timezone` is not an `Area/City` name.
    #[error("`{0}` is not a time zone name like Europe/London or UTC")]
    Timezone(String),
    /// A host key could not be made (no randomness) or read back.
    #[error("node {node}: SSH host key: {reason}")]
    HostKey { node: String, reason: String },
    /// A file could not be written (permissions, a full or read-only card).
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What happened to `cmdline.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryCgroup {
    /// The card's file was edited.
    Enabled(PathBuf),
    /// The card's file already turns the memory cgroup on.
    AlreadyOn(PathBuf),
    /// No card was given: the person adds the options.
    ToAdd,
}

/// The options a person adds to each card's `cmdline.txt` when no card was
/// given, in this order: the memory cgroup, and on Bookworm the first-boot
/// script last.
pub fn cmdline_options(release: Release) -> Vec<&'static str> {
    let mut options = cmdline::MEMORY_CGROUP.to_vec();
    if release == Release::Bookworm {
        options.extend(firstrun::RUN_OPTIONS);
    }
    options
}

/// One board's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFiles {
    pub node: String,
    pub files: Vec<PathBuf>,
    /// The host key the board will present, `SHA256:...`.
    pub fingerprint: String,
    pub known_hosts: PathBuf,
    /// Whether known_hosts got a new entry (false: it already had this key).
    pub recorded: bool,
}

/// What `firstboot` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub boards: Vec<BoardFiles>,
    pub memory_cgroup: MemoryCgroup,
}

/// One board, checked and rendered, not yet written.
struct Prepared {
    node: String,
    folder: PathBuf,
    files: Vec<(&'static str, String)>,
    host: String,
    port: u16,
    host_key: PublicKey,
    known_hosts: PathBuf,
    already_recorded: bool,
}

/// Writes every chosen board's files, records their host keys, and edits
/// the card's `cmdline.txt`; or, on any problem, nothing.
pub fn firstboot(
    spec: &reconciler_spec::Spec,
    options: &Options,
) -> Result<Report, FirstbootError> {
    let nodes = chosen_nodes(spec, options)?;
    let timezone = match &options.timezone {
        Some(zone) if valid_timezone(zone) => Some(zone.clone()),
        Some(zone) => return Err(FirstbootError::Timezone(zone.clone())),
        None => None,
    };
    let cmdline = match &options.destination {
        Destination::Card(boot) => Some(card_cmdline(boot, options.release)?),
        Destination::Folder(_) => None,
    };
    let prepared = nodes
        .iter()
        .map(|node| prepare(node, options, timezone.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut boards = Vec::new();
    for board in &prepared {
        boards.push(write_board(board)?);
    }
    let memory_cgroup = match cmdline {
        None => MemoryCgroup::ToAdd,
        Some(edit) => {
            if let Some(changed) = &edit.text {
                write_file(&edit.path, changed, false)?;
            }
            if edit.memory_enabled {
                MemoryCgroup::Enabled(edit.path)
            } else {
                MemoryCgroup::AlreadyOn(edit.path)
            }
        }
    };
    for board in &prepared {
        if !board.already_recorded {
            crate::node::ssh::record_host_key(
                &board.host,
                board.port,
                &board.host_key,
                &board.known_hosts,
            )
            .map_err(|source| FirstbootError::KnownHosts {
                node: board.node.clone(),
                path: board.known_hosts.display().to_string(),
                source,
            })?;
        }
    }
    Ok(Report {
        boards,
        memory_cgroup,
    })
}

fn chosen_nodes<'a>(
    spec: &'a reconciler_spec::Spec,
    options: &Options,
) -> Result<Vec<&'a reconciler_spec::Node>, FirstbootError> {
    let nodes: Vec<&reconciler_spec::Node> = if options.nodes.is_empty() {
        spec.nodes.values().collect()
    } else {
        options
            .nodes
            .iter()
            .map(|name| {
                spec.nodes
                    .get(name)
                    .ok_or_else(|| FirstbootError::UnknownNode {
                        name: name.clone(),
                        known: spec.nodes.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
            })
            .collect::<Result<_, _>>()?
    };
    if matches!(options.destination, Destination::Card(_)) && nodes.len() != 1 {
        return Err(FirstbootError::OneCardOneBoard {
            count: spec.nodes.len(),
        });
    }
    Ok(nodes)
}

/// A card's `cmdline.txt`, checked and edited, not yet written.
struct CmdlineEdit {
    path: PathBuf,
    /// The new text (`None`: already right).
    text: Option<String>,
    /// Whether the memory cgroup options were added.
    memory_enabled: bool,
}

/// The card's `cmdline.txt` with the memory cgroup on and, for Bookworm,
/// the first-boot script run last.
fn card_cmdline(boot: &Path, release: Release) -> Result<CmdlineEdit, FirstbootError> {
    let path = boot.join("cmdline.txt");
    let text =
        read_text(&path, cmdline::MAX_BYTES).map_err(|_| FirstbootError::NotABootPartition {
            path: boot.display().to_string(),
        })?;
    let failed = |source| FirstbootError::Cmdline {
        path: path.display().to_string(),
        source,
    };
    let with_memory = cmdline::enable_memory_cgroup(&text).map_err(failed)?;
    let memory_enabled = with_memory.is_some();
    let mut changed = with_memory;
    if release == Release::Bookworm {
        let current = changed.clone().unwrap_or_else(|| text.clone());
        if let Some(with_run) =
            cmdline::run_once(&current, &firstrun::RUN_OPTIONS).map_err(failed)?
        {
            changed = Some(with_run);
        }
    }
    Ok(CmdlineEdit {
        path,
        text: changed,
        memory_enabled,
    })
}

fn prepare(
    node: &reconciler_spec::Node,
    options: &Options,
    timezone: Option<&str>,
) -> Result<Prepared, FirstbootError> {
    if node.host_key.is_some() {
        return Err(FirstbootError::PinnedHostKey {
            node: node.name.clone(),
        });
    }
    let folder = match &options.destination {
        Destination::Folder(root) => root.join(&node.name),
        Destination::Card(boot) => boot.clone(),
    };
    let authorized_key = login_key(node, options.authorized_key.as_deref())?;
    let host_key = match earlier_host_key(&folder, &node.name, options.release) {
        Some(key) => key,
        None => new_host_key(&node.name)?,
    };
    let host_error = |reason: String| FirstbootError::HostKey {
        node: node.name.clone(),
        reason,
    };
    let private = host_key
        .to_openssh(LineEnding::LF)
        .map_err(|e| host_error(e.to_string()))?;
    let public = host_key.public_key().clone();
    let known_hosts = crate::node::expand_home(&node.ssh.known_hosts);
    let recorded = crate::node::ssh::recorded_host_keys(&node.address, node.ssh.port, &known_hosts)
        .map_err(|source| FirstbootError::KnownHosts {
            node: node.name.clone(),
            path: known_hosts.display().to_string(),
            source,
        })?;
    if let Some(other) = recorded
        .iter()
        .find(|key| key.key_data() != public.key_data())
    {
        return Err(FirstbootError::HostKeyRecorded {
            node: node.name.clone(),
            host: if node.ssh.port == 22 {
                node.address.clone()
            } else {
                format!("[{}]:{}", node.address, node.ssh.port)
            },
            path: known_hosts.display().to_string(),
            fingerprint: other.fingerprint(HashAlg::Sha256).to_string(),
        });
    }
    let network = network_for(node, options)?;
    let public_text = public.to_openssh().map_err(|e| host_error(e.to_string()))?;
    let digest = hex::encode(sha2::Sha256::digest(public_text.as_bytes()));
    let instance_id = format!("reconciler-{}-{}", node.name, &digest[..12]);
    let board = cloud_init::Board {
        hostname: &node.name,
        user: &node.ssh.user,
        authorized_key: &authorized_key,
        host_private_key: &private,
        instance_id: &instance_id,
        timezone,
        network,
    };
    Ok(Prepared {
        node: node.name.clone(),
        folder,
        files: match options.release {
            Release::Trixie => vec![
                (USER_DATA, cloud_init::user_data(&board)),
                (META_DATA, cloud_init::meta_data(&board)),
                (NETWORK_CONFIG, cloud_init::network_config(&board)),
            ],
            Release::Bookworm => vec![
                (FIRSTRUN, firstrun::script(&board)),
                (SSH_MARKER, String::new()),
            ],
        },
        host: node.address.clone(),
        port: node.ssh.port,
        already_recorded: !recorded.is_empty(),
        host_key: public,
        known_hosts,
    })
}

/// How `node`'s board gets its address from the card.
fn network_for(
    node: &reconciler_spec::Node,
    options: &Options,
) -> Result<cloud_init::Network, FirstbootError> {
    Ok(match &options.addressing {
        Addressing::Dhcp => cloud_init::Network::Dhcp,
        Addressing::Static { .. } if options.release == Release::Bookworm => {
            return Err(FirstbootError::StaticOnBookworm {
                node: node.name.clone(),
                address: node.address.clone(),
            })
        }
        Addressing::Static {
            prefix,
            gateway,
            dns,
        } => match node.address.parse::<IpAddr>() {
            Ok(IpAddr::V4(address)) => cloud_init::Network::Static {
                address,
                prefix: *prefix,
                gateway: *gateway,
                dns: if dns.is_empty() {
                    vec![*gateway]
                } else {
                    dns.clone()
                },
            },
            _ => {
                return Err(FirstbootError::StaticNeedsIpv4 {
                    node: node.name.clone(),
                    address: node.address.clone(),
                })
            }
        },
    })
}

/// The public key line the board's user accepts: `--authorized-key`, else
/// the identity's `.pub`, else derived from the (unencrypted) identity.
fn login_key(node: &reconciler_spec::Node, given: Option<&Path>) -> Result<String, FirstbootError> {
    let identity = crate::node::expand_home(&node.ssh.identity);
    let public_path = given.map_or_else(
        || PathBuf::from(format!("{}.pub", identity.display())),
        Path::to_path_buf,
    );
    let failed = |path: &Path, reason: String| FirstbootError::LoginKey {
        node: node.name.clone(),
        user: node.ssh.user.clone(),
        path: path.display().to_string(),
        identity: identity.display().to_string(),
        reason,
    };
    match read_text(&public_path, MAX_KEY_BYTES) {
        Ok(text) => {
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            let key = PublicKey::from_openssh(line.trim())
                .map_err(|e| failed(&public_path, format!("not an OpenSSH public key ({e})")))?;
            key.to_openssh()
                .map_err(|e| failed(&public_path, e.to_string()))
        }
        Err(_) if given.is_none() && identity.exists() => {
            let text = read_text(&identity, MAX_KEY_BYTES)
                .map_err(|e| failed(&identity, e.to_string()))?;
            let private = PrivateKey::from_openssh(&text)
                .map_err(|e| failed(&identity, format!("not an OpenSSH private key ({e})")))?;
            private
                .public_key()
                .to_openssh()
                .map_err(|e| failed(&identity, e.to_string()))
        }
        Err(error) => Err(failed(&public_path, error.to_string())),
    }
}

/// The host key in the files this command wrote earlier for the same
/// board, so that writing them again does not change the key.
fn earlier_host_key(folder: &Path, node: &str, release: Release) -> Option<PrivateKey> {
    match release {
        Release::Trixie => earlier_user_data_key(&folder.join(USER_DATA), node),
        Release::Bookworm => earlier_firstrun_key(&folder.join(FIRSTRUN), node),
    }
}

fn earlier_firstrun_key(script: &Path, node: &str) -> Option<PrivateKey> {
    let text = read_text(script, MAX_KEY_BYTES).ok()?;
    if !text
        .lines()
        .any(|line| line == firstrun::hostname_line(node))
    {
        return None;
    }
    let mut lines = text.lines();
    let first = lines.find_map(|line| line.strip_prefix(firstrun::HOST_KEY_OPENING))?;
    let mut pem = format!("{first}\n");
    for line in lines.take_while(|line| *line != "'") {
        pem.push_str(line);
        pem.push('\n');
    }
    PrivateKey::from_openssh(pem).ok()
}

fn earlier_user_data_key(user_data: &Path, node: &str) -> Option<PrivateKey> {
    let text = read_text(user_data, MAX_KEY_BYTES).ok()?;
    let hostname = format!("hostname: {}", serde_json::Value::from(node));
    if !text.lines().any(|line| line == hostname) {
        return None;
    }
    let mut lines = text.lines();
    lines.find(|line| {
        line.trim()
            == format!(
                "- path: {}",
                serde_json::Value::from(cloud_init::HOST_KEY_PATH)
            )
    })?;
    let content = lines.find_map(|line| line.trim().strip_prefix("content: "))?;
    let pem: String = serde_json::from_str(content).ok()?;
    PrivateKey::from_openssh(pem).ok()
}

fn new_host_key(node: &str) -> Result<PrivateKey, FirstbootError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| FirstbootError::HostKey {
        node: node.to_string(),
        reason: format!("no randomness from the system: {e}"),
    })?;
    let keypair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    PrivateKey::new(keypair.into(), format!("root@{node}")).map_err(|e| FirstbootError::HostKey {
        node: node.to_string(),
        reason: e.to_string(),
    })
}

fn write_board(board: &Prepared) -> Result<BoardFiles, FirstbootError> {
    std::fs::create_dir_all(&board.folder).map_err(|source| FirstbootError::Write {
        path: board.folder.display().to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for (name, text) in &board.files {
        let path = board.folder.join(name);
        // user-data and firstrun.sh hold the board's host key.
        write_file(&path, text, matches!(*name, USER_DATA | FIRSTRUN))?;
        files.push(path);
    }
    Ok(BoardFiles {
        node: board.node.clone(),
        files,
        fingerprint: board.host_key.fingerprint(HashAlg::Sha256).to_string(),
        known_hosts: board.known_hosts.clone(),
        recorded: !board.already_recorded,
    })
}

/// Writes through a temporary file in the same folder and a rename, so a
/// full card leaves the old file; `private` files are created mode 600.
fn write_file(path: &Path, text: &str, private: bool) -> Result<(), FirstbootError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let failed = |source| FirstbootError::Write {
        path: path.display().to_string(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{name}.reconciler-new"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&staging)
        .map_err(failed)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&staging, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&staging);
        return Err(failed(error));
    }
    Ok(())
}

/// An IANA zone name as tzdata spells them (`Europe/London`, `UTC`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+1`).
pub fn valid_timezone(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= 64
        && !zone.starts_with('/')
        && !zone.contains("..")
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
}

/// This computer's time zone, which Raspberry Pi Imager offers too:
/// `/etc/timezone`, else the zone `/etc/localtime` links to.
pub fn this_computers_timezone() -> Option<String> {
    let from_file = read_text(Path::new("/etc/timezone"), 256)
        .ok()
        .map(|text| text.trim().to_string());
    let from_link = || {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let text = target.to_string_lossy().into_owned();
        text.split_once("zoneinfo/")
            .map(|(_, zone)| zone.to_string())
    };
    from_file
        .filter(|zone| valid_timezone(zone))
        .or_else(|| from_link().filter(|zone| valid_timezone(zone)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_names_are_checked_as_tzdata_spells_them() {
        for good in [
            "Europe/London",
            "UTC",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+1",
        ] {
            assert!(valid_timezone(good), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "Europe/London\nusers: []", "a b"] {
            assert!(!valid_timezone(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_earlier_user_data_gives_back_its_host_key_for_the_same_board_only() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let key = new_host_key("pi1").expect("a key");
        let private = key.to_openssh(LineEnding::LF).expect("encoded");
        let board = cloud_init::Board {
            hostname: "pi1",
            user: "anna",
            authorized_key: "ssh-ed25519 AAAA",
            host_private_key: &private,
            instance_id: "i",
            timezone: None,
            network: cloud_init::Network::Dhcp,
        };
        let path = dir.path().join(USER_DATA);
        std::fs::write(&path, cloud_init::user_data(&board)).expect("written");
        let again = earlier_host_key(dir.path(), "pi1", Release::Trixie).expect("read back");
        assert_eq!(again.public_key(), key.public_key());
        assert!(earlier_host_key(dir.path(), "pi2", Release::Trixie).is_none());
        std::fs::write(dir.path().join(FIRSTRUN), firstrun::script(&board)).expect("written");
        let again = earlier_host_key(dir.path(), "pi1", Release::Bookworm).expect("read back");
        assert_eq!(again.public_key(), key.public_key());
        assert!(earlier_host_key(dir.path(), "pi2", Release::Bookworm).is_none());
        assert_ne!(
            new_host_key("pi1").expect("a key").public_key(),
            key.public_key(),
            "each new key is random"
        );
    }
}
