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
        let keys = tempfile::tempdir().expect("temp dir");
        crate::sshd::keygen(&keys.path().join("id_ed25519"));
        let public =
            std::fs::read_to_string(keys.path().join("id_ed25519.pub")).expect("the public key");
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
