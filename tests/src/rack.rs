//! A rack of cheap boards: one container of the bare-board image holding an
//! address and an sshd per board (each with its own host key), where `pi`
//! logs in with the test key and has passwordless sudo, like Raspberry Pi
//! OS. A hundred boards start in seconds; every board answers the facts
//! script as the bare Debian it is. For the node layer at scale: the
//! hundred-board benchmark and `hundred-pis` planned for real.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::boards::{ensure_bare_image, exec_with_input, BARE_IMAGE, USERS};
use crate::{docker, docker_unchecked};

/// The racks' own network, apart from the bare boards' /24.
pub const NETWORK: &str = "reconciler-racks";
pub const SUBNET: &str = "10.78.0.0/16";
const GATEWAY: &str = "10.78.0.1";
/// Where Docker picks the containers' own addresses (several racks may run
/// at once); boards' addresses are anywhere else in the subnet.
const CONTAINER_RANGE: &str = "10.78.255.0/24";

/// Racks started at once by one test binary create the network once.
static NETWORK_CREATION: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Gives each address to the container and starts its sshd; addresses on stdin.
const START_BOARDS: &str = r#"set -e
mkdir -p /run/sshd
i=0
while read -r address; do
  i=$((i + 1))
  ip addr add "$address/16" dev eth0
  mkdir -p "/etc/ssh/board$i"
  ssh-keygen -q -t ed25519 -N '' -f "/etc/ssh/board$i/host_key"
  /usr/sbin/sshd -o "ListenAddress=$address" -o "HostKey=/etc/ssh/board$i/host_key" -o "PidFile=/run/sshd-$i.pid"
done
"#;

/// Like [`START_BOARDS`], each sshd with the host key firstboot made for
/// its board (copied to /etc/ssh/firstboot/boardN/host_key).
const START_FIRST_BOOTED_BOARDS: &str = r#"set -e
mkdir -p /run/sshd
i=0
while read -r address; do
  i=$((i + 1))
  ip addr add "$address/16" dev eth0
  /usr/sbin/sshd -o "ListenAddress=$address" -o "HostKey=/etc/ssh/firstboot/board$i/host_key" -o "PidFile=/run/sshd-$i.pid"
done
"#;

/// A board as `reconciler firstboot` wrote its card: where it answers and
/// the private host key (OpenSSH format) its user-data installs.
#[derive(Debug, Clone)]
pub struct FirstBooted {
    pub address: String,
    pub host_key: String,
}

/// Starts the rack's container (the bare-board image, with the right to
/// add addresses), on the racks' network.
fn start_container(name: &str) {
    ensure_bare_image();
    let creating = NETWORK_CREATION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if docker_unchecked(&["network", "inspect", NETWORK]).code != 0 {
        docker(&[
            "network",
            "create",
            "--subnet",
            SUBNET,
            "--gateway",
            GATEWAY,
            "--ip-range",
            CONTAINER_RANGE,
            NETWORK,
        ]);
    }
    drop(creating);
    docker_unchecked(&["rm", "-f", name]);
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        "rack",
        "--network",
        NETWORK,
        "--cap-add",
        "NET_ADMIN",
        BARE_IMAGE,
        "sleep",
        "infinity",
    ]);
}

/// The rack's container, removed when dropped.
#[derive(Debug)]
pub struct Rack {
    name: String,
    addresses: Vec<String>,
    keys: tempfile::TempDir,
}

impl Rack {
    /// A rack named `name` with one board at each of `addresses` (in
    /// 10.78.0.0/16, outside 10.78.255.0/24).
    pub fn start(name: &str, addresses: &[String]) -> Self {
        let keys = tempfile::tempdir().expect("temp dir");
        crate::sshd::keygen(&keys.path().join("id_ed25519"));
        let public =
            std::fs::read_to_string(keys.path().join("id_ed25519.pub")).expect("the public key");
        start_container(name);
        let rack = Self {
            name: name.to_string(),
            addresses: addresses.to_vec(),
            keys,
        };
        exec_with_input(name, USERS, &public);
        exec_with_input(name, START_BOARDS, &(addresses.join("\n") + "\n"));
        let scanned = keyscan(addresses);
        std::fs::write(rack.known_hosts(), scanned).expect("known_hosts");
        rack
    }

    /// A rack of boards as `reconciler firstboot` made their cards: each
    /// sshd serves the host key its user-data carries, and `user` (with
    /// passwordless sudo) accepts `authorized_key`. Nothing is scanned or
    /// written to any known_hosts: the caller's must already pin the keys.
    pub fn start_first_booted(
        name: &str,
        user: &str,
        authorized_key: &str,
        boards: &[FirstBooted],
    ) -> Self {
        start_container(name);
        let keys = tempfile::tempdir().expect("temp dir");
        let folder = keys.path().join("firstboot");
        for (i, board) in boards.iter().enumerate() {
            let dir = folder.join(format!("board{}", i + 1));
            std::fs::create_dir_all(&dir).expect("a board's key folder");
            std::fs::write(dir.join("host_key"), &board.host_key).expect("a board's host key");
        }
        docker(&[
            "cp",
            &format!("{}/.", folder.display()),
            &format!("{name}:/etc/ssh/firstboot"),
        ]);
        let users = format!(
            "set -e
key=$(cat)
useradd -m -s /bin/bash {user}
echo '{user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/010_{user}-nopasswd
mkdir -p -m 700 /home/{user}/.ssh
echo \"$key\" > /home/{user}/.ssh/authorized_keys
chmod 600 /home/{user}/.ssh/authorized_keys
chown -R {user}:{user} /home/{user}/.ssh
chmod 600 /etc/ssh/firstboot/*/host_key
"
        );
        exec_with_input(name, &users, authorized_key);
        let addresses: Vec<String> = boards.iter().map(|b| b.address.clone()).collect();
        exec_with_input(
            name,
            START_FIRST_BOOTED_BOARDS,
            &(addresses.join("\n") + "\n"),
        );
        // Wait until every board answers (the scan is thrown away).
        keyscan(&addresses);
        Self {
            name: name.to_string(),
            addresses,
            keys,
        }
    }

    pub fn identity(&self) -> PathBuf {
        self.keys.path().join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.keys.path().join("known_hosts")
    }

    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Runs a command in the rack (through `docker exec`, for checks).
    pub fn exec(&self, script: &str) -> crate::Output {
        docker_unchecked(&["exec", &self.name, "sh", "-c", script])
    }
}

impl Drop for Rack {
    fn drop(&mut self) {
        docker_unchecked(&["rm", "-f", &self.name]);
    }
}

/// Every board's ed25519 host key, once each answers (ssh-keyscan scans in parallel).
fn keyscan(addresses: &[String]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut scan = Command::new("ssh-keyscan")
            .args(["-T", "5", "-t", "ed25519", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-keyscan (openssh-client)");
        if let Some(mut stdin) = scan.stdin.take() {
            stdin
                .write_all((addresses.join("\n") + "\n").as_bytes())
                .expect("ssh-keyscan's stdin");
        }
        let output = scan.wait_with_output().expect("ssh-keyscan");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let answered = text.lines().filter(|l| l.contains(" ssh-ed25519 ")).count();
        if answered == addresses.len() {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {answered} of {} rack boards answered ssh-keyscan",
            addresses.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
