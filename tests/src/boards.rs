//! Simulated boards: containers running sshd (and later their own dockerd),
//! on a private bridge network, reached by SSH exactly as a Pi would be.
//! Follows ../shared/TESTBED.md. The bare-board image is built once with
//! debootstrap (from the machine's own Debian mirror) and cached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{docker, docker_unchecked};

/// The bare-board image: Debian with sshd, no Docker.
pub const BARE_IMAGE: &str = "local/reconciler-board:1";
/// The private network of the boards; the host is its gateway.
pub const NETWORK: &str = "reconciler-boards";
pub const SUBNET: &str = "10.77.0.0/24";
pub const GATEWAY: &str = "10.77.0.1";

/// Capabilities a board needs to run dockerd (everything but SYS_RESOURCE, which the VM withholds).
const CAPS: [&str; 37] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
];

static BUILD: Mutex<()> = Mutex::new(());

/// The board's users, like Raspberry Pi OS: `pi` logs in with the test key
/// and has passwordless sudo; `nopass` logs in with the same key but its
/// sudo asks for a password. Root has no key: nothing may rely on it.
/// The key arrives on stdin.
pub const USERS: &str = "set -e
key=$(cat)
useradd -m -s /bin/bash pi
echo 'pi ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/010_pi-nopasswd
chmod 440 /etc/sudoers.d/010_pi-nopasswd
useradd -m -s /bin/bash -G sudo nopass
echo 'nopass:not-a-test-secret' | chpasswd
for user in pi nopass; do
  mkdir -p -m 700 /home/$user/.ssh
  echo \"$key\" > /home/$user/.ssh/authorized_keys
  chmod 600 /home/$user/.ssh/authorized_keys
  chown -R $user:$user /home/$user/.ssh
done
";

fn debian_mirror() -> String {
    let sources =
        std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let from_deb822 = sources
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|uris| uris.split_whitespace().next())
        .map(str::to_string);
    from_deb822
        .or_else(|| {
            let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
            list.lines()
                .find(|l| l.starts_with("deb "))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"))
}

/// Builds the bare-board image unless it is cached (about a minute).
pub fn ensure_bare_image() {
    build_board_image(BARE_IMAGE, None, "bookworm");
}

/// A bare board of today's Debian (13, trixie): its `docker.io` is 26.1,
/// where bookworm's is 20.10 — a swarm of both has mixed engines, as a
/// cluster upgraded board by board does.
pub const TRIXIE_IMAGE: &str = "local/reconciler-board-trixie:1";

/// Builds [`TRIXIE_IMAGE`] unless it is cached (about a minute).
pub fn ensure_trixie_image() {
    build_board_image(TRIXIE_IMAGE, None, "trixie");
}

/// An ARM board: the same Debian, arm64 (`uname -m` aarch64), its programs
/// run by qemu-aarch64 through binfmt_misc (scripts/setup registers it).
/// It runs sshd, sudo, apt and dockerd (with `--iptables=false`), joins
/// swarms and runs the ARM controller, but no containers (TESTBED.md).
pub const ARM64_IMAGE: &str = "local/reconciler-board-arm64:1";

/// Builds [`ARM64_IMAGE`] unless it is cached (about 6 minutes: debootstrap
/// runs its second stage under the emulator).
pub fn ensure_arm64_image() {
    let registered =
        std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_default();
    assert!(
        registered.starts_with("enabled")
            && registered
                .lines()
                .any(|l| l.starts_with("flags:") && l.contains('C') && l.contains('F')),
        "qemu-aarch64 is not registered with binfmt_misc (flags C and F): run scripts/setup"
    );
    build_board_image(ARM64_IMAGE, Some("arm64"), "bookworm");
}

/// debootstrap of Debian `suite` with sshd (no Docker) for `arch` (this
/// machine's when `None`), imported as `image`, unless `image` exists.
fn build_board_image(image: &str, arch: Option<&str>, suite: &str) {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if docker_unchecked(&["image", "inspect", image]).code == 0 {
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    let mut debootstrap = Command::new("debootstrap");
    if let Some(arch) = arch {
        debootstrap.arg(format!("--arch={arch}"));
    }
    let status = debootstrap
        .args([
            "--variant=minbase",
            "--include=openssh-server,iproute2,procps,ca-certificates,sudo",
            suite,
        ])
        .arg(root.path())
        .arg(debian_mirror())
        .stdout(Stdio::null())
        .status()
        .expect("cannot run debootstrap (scripts/setup installs it)");
    assert!(status.success(), "debootstrap for {image} failed");
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let import = Command::new("docker")
        .args(["import", "-", image])
        .stdin(
            tar.stdout
                .take()
                .unwrap_or_else(|| panic!("tar has no stdout")),
        )
        .stdout(Stdio::null())
        .status()
        .expect("docker import");
    assert!(
        tar.wait().is_ok_and(|s| s.success()),
        "tar of the board root failed"
    );
    assert!(import.success(), "docker import of {image} failed");
}

fn ensure_network() {
    if docker_unchecked(&["network", "inspect", NETWORK]).code != 0 {
        docker(&[
            "network",
            "create",
            "--subnet",
            SUBNET,
            "--gateway",
            GATEWAY,
            NETWORK,
        ]);
    }
}

/// A board's init: its own host keys, sshd, then nothing.
const BOARD_INIT: &str = "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && mkdir -p /run/sshd && /usr/sbin/sshd && exec sleep infinity";

/// A rebootable board's init: host keys made once and kept, the hostname
/// it was given (Docker writes its own into /etc/hostname at each start;
/// `reboot` keeps the board's aside), sshd; it exits (and Docker starts it
/// again) once `reboot` asks for it.
const REBOOTABLE_INIT: &str = "if [ ! -e /etc/ssh/.board-keys ]; then rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && touch /etc/ssh/.board-keys; fi; \
if [ -e /etc/board-hostname ]; then cat /etc/board-hostname > /etc/hostname; hostname \"$(cat /etc/hostname)\" 2>/dev/null; fi; \
mkdir -p /run/sshd && /usr/sbin/sshd; \
while [ ! -e /run/board-reboot ]; do sleep 1; done; exit 1";

/// A few boards, removed when dropped.
#[derive(Debug)]
pub struct Boards {
    names: Vec<String>,
    addresses: Vec<String>,
    keys: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// Leave the containers running when dropped (the `testbed` command).
    keep: bool,
}

impl Boards {
    /// Starts `count` bare boards named `{prefix}1..`, at 10.77.0.{first}.. .
    pub fn start(prefix: &str, first: u8, count: u8) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut boards = Self::start_with_keys_in(prefix, first, count, temp.path());
        boards._temp = Some(temp);
        boards
    }

    /// Like [`Boards::start`], keeping the client key and known_hosts in `keys`.
    pub fn start_with_keys_in(prefix: &str, first: u8, count: u8, keys: &Path) -> Self {
        ensure_bare_image();
        Self::start_from(BARE_IMAGE, prefix, first, count, keys)
    }

    /// Like [`Boards::start`], one board per image in `images` (e.g. a
    /// bookworm board and a [`TRIXIE_IMAGE`] one).
    pub fn start_images(prefix: &str, first: u8, images: &[&str]) -> Self {
        ensure_bare_image();
        if images.contains(&TRIXIE_IMAGE) {
            ensure_trixie_image();
        }
        let temp = tempfile::tempdir().expect("temp dir");
        let mut boards = Self::start_each(images, prefix, first, temp.path());
        boards._temp = Some(temp);
        boards
    }

    /// Like [`Boards::start`], with ARM boards ([`ARM64_IMAGE`]).
    pub fn start_arm64(prefix: &str, first: u8, count: u8) -> Self {
        ensure_arm64_image();
        let temp = tempfile::tempdir().expect("temp dir");
        let mut boards = Self::start_from(ARM64_IMAGE, prefix, first, count, temp.path());
        boards._temp = Some(temp);
        boards
    }

    fn start_from(image: &str, prefix: &str, first: u8, count: u8, keys: &Path) -> Self {
        let images = vec![image; usize::from(count)];
        Self::start_each(&images, prefix, first, keys)
    }

    /// Like [`Boards::start`], with boards a `reboot` really restarts: the
    /// SSH connection drops, the board comes back after a moment with its
    /// disk (Docker's data, its swarm state, its host keys and hostname) but
    /// a fresh `/run` and nothing started but sshd (no systemd here: Docker
    /// is started again as `[bootstrap] start_docker` says).
    pub fn start_rebootable(prefix: &str, first: u8, count: u8) -> Self {
        ensure_bare_image();
        let temp = tempfile::tempdir().expect("temp dir");
        let images = vec![BARE_IMAGE; usize::from(count)];
        let mut boards = Self::start_with(&images, prefix, first, temp.path(), Kind::Rebootable);
        boards._temp = Some(temp);
        for board in 0..boards.names.len() {
            boards
                .exec(board, "printf '#!/bin/sh\ncp /etc/hostname /etc/board-hostname\ntouch /run/board-reboot\n' > /usr/local/sbin/reboot && chmod 755 /usr/local/sbin/reboot")
                .expect_code(0);
        }
        boards
    }

    fn start_each(images: &[&str], prefix: &str, first: u8, keys: &Path) -> Self {
        Self::start_with(images, prefix, first, keys, Kind::Plain)
    }

    /// Boards that serve and mount NFS shares as Raspberry Pi OS boards do
    /// with `nfs-kernel-server` and `nfs-common`, where this machine's
    /// kernel has neither: [`nfs_image`]'s `exportfs` serves
    /// `/etc/exports(.d)` with NFS-Ganesha (user space, NFSv4) and its
    /// `mount.nfs` mounts through FUSE with libnfs (user space), so the
    /// files really travel over NFS between the boards. `/srv` is a volume
    /// (Ganesha needs a file system with file handles, as a USB drive
    /// has; the image's own overlay has none).
    pub fn start_nfs(prefix: &str, first: u8, count: u8) -> Self {
        ensure_nfs_image();
        let temp = tempfile::tempdir().expect("temp dir");
        let image = nfs_image();
        let images = vec![image.as_str(); usize::from(count)];
        let mut boards = Self::start_with(&images, prefix, first, temp.path(), Kind::Nfs);
        boards._temp = Some(temp);
        boards
    }

    fn start_with(images: &[&str], prefix: &str, first: u8, keys: &Path, kind: Kind) -> Self {
        ensure_network();
        std::fs::create_dir_all(keys).unwrap_or_else(|e| panic!("{}: {e}", keys.display()));
        let key = keys.join("id_ed25519");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(keys.join("id_ed25519.pub"));
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(status.success());
        let public = std::fs::read_to_string(keys.join("id_ed25519.pub")).unwrap_or_default();
        let mut names = Vec::new();
        let mut addresses = Vec::new();
        for (i, image) in (0u8..).zip(images.iter().copied()) {
            let name = format!("{prefix}{}", i + 1);
            let address = format!("10.77.0.{}", first + i);
            run_board_as(
                &name,
                &address,
                &format!("bare-{}", i + 1),
                image,
                if kind == Kind::Rebootable {
                    REBOOTABLE_INIT
                } else {
                    BOARD_INIT
                },
                kind,
            );
            exec_with_input(&name, USERS, &public);
            names.push(name);
            addresses.push(address);
        }
        let boards = Self {
            names,
            addresses,
            keys: keys.to_path_buf(),
            _temp: None,
            keep: false,
        };
        let mut known = String::new();
        for address in &boards.addresses {
            known.push_str(&keyscan(address));
        }
        std::fs::write(boards.known_hosts(), known).expect("known_hosts");
        boards
    }

    /// The `[cluster]`, `[ssh]` and `[bootstrap]` sections of a spec for
    /// these boards: logged into as `pi` with their key, Docker installed
    /// from the mirror and started by hand (`dockerd_args` added), as the
    /// test bed's boards have no systemd (TESTBED.md; real Pis keep the
    /// default).
    pub fn spec_head(&self, cluster: &str, dockerd_args: &str) -> String {
        format!(
            r#"[cluster]
name = "{cluster}"

[ssh]
user = "pi"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null"
start_docker = "nohup dockerd {dockerd_args}>/var/log/dockerd.log 2>&1 </dev/null &"
"#,
            identity = self.identity().display(),
            known = self.known_hosts().display(),
        )
    }

    pub fn identity(&self) -> PathBuf {
        self.keys.join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.keys.join("known_hosts")
    }

    /// Leaves the boards running after this value is dropped.
    pub fn keep_running(mut self) {
        self.keep = true;
    }

    /// Removes boards named `{prefix}N` left running earlier; how many.
    pub fn remove(prefix: &str) -> usize {
        let names = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("name=^{prefix}"),
            "--format",
            "{{.Names}}",
        ]);
        for name in names.lines() {
            docker_unchecked(&["rm", "-f", name]);
        }
        names.lines().count()
    }

    /// Gives a board a new SSH host key, as re-flashing its card does.
    pub fn new_host_key(&self, index: usize) {
        self.exec(
            index,
            "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && pkill -HUP -x sshd",
        )
        .expect_code(0);
    }

    /// Replaces a board's known_hosts entry with the key it offers now: what
    /// a person does once they have checked the new key.
    pub fn trust_host_key(&self, index: usize) {
        let address = &self.addresses[index];
        let known = std::fs::read_to_string(self.known_hosts()).unwrap_or_default();
        let mut kept: String = known
            .lines()
            .filter(|line| !line.starts_with(&format!("{address} ")))
            .map(|line| format!("{line}\n"))
            .collect();
        kept.push_str(&keyscan(address));
        std::fs::write(self.known_hosts(), kept).expect("known_hosts");
    }

    pub fn address(&self, index: usize) -> &str {
        &self.addresses[index]
    }

    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// Runs a command on a board (through `docker exec`, for checks).
    pub fn exec(&self, index: usize, script: &str) -> crate::Output {
        docker_unchecked(&["exec", &self.names[index], "sh", "-c", script])
    }

    /// Keys directory, for writing extra files next to the test keys.
    pub fn dir(&self) -> &Path {
        &self.keys
    }
}

impl Drop for Boards {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for name in &self.names {
            docker_unchecked(&["rm", "-f", "-v", name]);
        }
    }
}

/// Starts a board container (replacing one of the same name) with what a
/// board needs to run its own dockerd (TESTBED.md), on the boards' network.
fn run_board(name: &str, address: &str, hostname: &str, image: &str, command: &str) {
    run_board_as(name, address, hostname, image, command, Kind::Plain);
}

/// [`run_board`], or with `rebootable` a board that survives its own
/// reboot as a Pi does: Docker's data on a volume instead of a tmpfs, and
/// restarted by Docker when its init exits (`/run` is a fresh tmpfs then).
/// What a board container can do beyond a plain board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    /// `reboot` restarts it, its disk kept.
    Rebootable,
    /// FUSE, and `/srv` on a volume: see [`Boards::start_nfs`].
    Nfs,
}

fn run_board_as(name: &str, address: &str, hostname: &str, image: &str, command: &str, kind: Kind) {
    docker_unchecked(&["rm", "-f", "-v", name]);
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
    args.extend(["--hostname".into(), hostname.into()]);
    args.extend([
        "--network".into(),
        NETWORK.into(),
        "--ip".into(),
        address.into(),
    ]);
    for cap in CAPS {
        args.extend(["--cap-add".into(), cap.into()]);
    }
    for option in [
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--device-cgroup-rule",
        "a *:* rwm",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--cgroupns",
        "host",
        "--tmpfs",
        "/run",
    ] {
        args.push(option.into());
    }
    if kind == Kind::Nfs {
        args.extend([
            "--device".into(),
            "/dev/fuse".into(),
            "-v".into(),
            "/srv".into(),
        ]);
    }
    if kind == Kind::Rebootable {
        args.extend([
            "-v".into(),
            "/var/lib/docker".into(),
            "--restart".into(),
            "on-failure".into(),
        ]);
    } else {
        args.extend(["--tmpfs".into(), "/var/lib/docker:exec".into()]);
    }
    args.extend([image.into(), "sh".into(), "-c".into(), command.into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&refs);
}

/// A card as Raspberry Pi OS Trixie ships it, before its first boot:
/// cloud-init installed (Debian's own), root the only user, no SSH host key,
/// sshd not running. Built from the bare-board image and cached.
pub const FIRST_BOOT_IMAGE: &str = "local/reconciler-board-cloud-init:1";

/// Builds [`FIRST_BOOT_IMAGE`] unless it is cached (about 30 s): Debian's
/// cloud-init, and the locale its `locale` module sets by default, as the
/// Raspberry Pi OS image has its own generated.
pub fn ensure_first_boot_image() {
    ensure_bare_image();
    ensure_network();
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if docker_unchecked(&["image", "inspect", FIRST_BOOT_IMAGE]).code == 0 {
        return;
    }
    let builder = "reconciler-build-cloud-init";
    docker_unchecked(&["rm", "-f", builder]);
    let built = docker_unchecked(&[
        "run",
        "--name",
        builder,
        "--network",
        NETWORK,
        BARE_IMAGE,
        "sh",
        "-c",
        "set -e; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cloud-init locales >/dev/null; echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen; locale-gen >/dev/null; rm -f /etc/ssh/ssh_host_*; apt-get clean",
    ]);
    assert_eq!(built.code, 0, "installing cloud-init failed: {built:?}");
    docker(&["commit", builder, FIRST_BOOT_IMAGE]);
    docker_unchecked(&["rm", "-f", builder]);
}

/// A bare board with the NFS packages of Raspberry Pi OS installed, and
/// the test bed's user-space stand-ins for what needs the kernel's NFS:
/// `exportfs` (`nfs_exportfs.py`, serving with NFS-Ganesha) and
/// `mount.nfs` (`nfs_mount.py`, mounting with libnfs through FUSE), put
/// in place of nfs-utils' own with dpkg-divert, so apt keeps them.
/// Its tag is the stand-ins' digest, so a changed one builds a new image.
pub fn nfs_image() -> String {
    let digest = reconciler::digest::sha256_prefix(format!("{EXPORTFS}{MOUNT_NFS}").as_bytes(), 12);
    format!("local/reconciler-board-nfs:{digest}")
}

const EXPORTFS: &str = include_str!("nfs_exportfs.py");
const MOUNT_NFS: &str = include_str!("nfs_mount.py");

/// Builds [`nfs_image`] unless it is cached (about a minute).
pub fn ensure_nfs_image() {
    ensure_bare_image();
    ensure_network();
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let image = nfs_image();
    if docker_unchecked(&["image", "inspect", &image]).code == 0 {
        return;
    }
    let builder = "reconciler-build-nfs";
    docker_unchecked(&["rm", "-f", builder]);
    docker(&[
        "run",
        "-d",
        "--name",
        builder,
        "--network",
        NETWORK,
        BARE_IMAGE,
        "sleep",
        "infinity",
    ]);
    for (name, text) in [("exportfs", EXPORTFS), ("mount.nfs", MOUNT_NFS)] {
        exec_with_input(
            builder,
            &format!("cat > /usr/local/lib/{name} && chmod 755 /usr/local/lib/{name}"),
            text,
        );
    }
    let built = docker_unchecked(&[
        "exec",
        builder,
        "sh",
        "-c",
        "set -e; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d;          apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends          nfs-kernel-server nfs-common nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13 python3-fusepy fuse3 iproute2 procps >/dev/null;          for f in /usr/sbin/exportfs /sbin/mount.nfs /sbin/mount.nfs4; do dpkg-divert --local --rename --add $f >/dev/null; done;          ln -sf /usr/local/lib/exportfs /usr/sbin/exportfs; ln -sf /usr/local/lib/mount.nfs /sbin/mount.nfs; ln -sf /usr/local/lib/mount.nfs /sbin/mount.nfs4;          echo user_allow_other >> /etc/fuse.conf; rm -f /usr/sbin/policy-rc.d; apt-get clean",
    ]);
    assert_eq!(
        built.code, 0,
        "building the NFS board image failed: {built:?}"
    );
    docker(&["commit", builder, &image]);
    docker_unchecked(&["rm", "-f", builder]);
}

/// One board booting a freshly flashed card, removed when dropped.
#[derive(Debug)]
pub struct FreshBoard {
    pub name: String,
    pub address: String,
}

/// Where cloud-init's NoCloud source reads its seed on a running system
/// (the boot partition's files, on a Pi).
pub const NOCLOUD_SEED: &str = "/var/lib/cloud/seed/nocloud";

impl FreshBoard {
    /// A board at `address`, powered on but not yet booted: nothing runs.
    pub fn start(name: &str, address: &str) -> Self {
        ensure_first_boot_image();
        run_board(
            name,
            address,
            "raspberrypi",
            FIRST_BOOT_IMAGE,
            "exec sleep infinity",
        );
        Self {
            name: name.into(),
            address: address.into(),
        }
    }

    /// A board with a Raspberry Pi OS Bookworm card, powered on but not yet
    /// booted: Debian 12 with what the image brings that the first boot
    /// changes — its first user `pi` (uid 1000, no password) with
    /// passwordless sudo, and the boot partition at /boot/firmware.
    pub fn start_bookworm(name: &str, address: &str) -> Self {
        ensure_bare_image();
        ensure_network();
        run_board(
            name,
            address,
            "raspberrypi",
            BARE_IMAGE,
            "exec sleep infinity",
        );
        let board = Self {
            name: name.into(),
            address: address.into(),
        };
        let made = board.exec(
            "useradd -m -u 1000 -s /bin/bash pi && passwd -l pi >/dev/null \
             && echo 'pi ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/010_pi-nopasswd \
             && chmod 440 /etc/sudoers.d/010_pi-nopasswd && mkdir -p /boot/firmware",
        );
        assert_eq!(made.code, 0, "{made:?}");
        board
    }

    /// Copies a card's boot partition (every file of `boot`) to
    /// /boot/firmware and boots as a Bookworm Pi does the first time:
    /// systemd runs the script `systemd.run=` in cmdline.txt names as
    /// root, then (`systemd.run_success_action=reboot`) the board comes up
    /// again, here with sshd started. The script's output.
    pub fn first_run(&self, boot: &Path) -> crate::Output {
        let entries = std::fs::read_dir(boot).unwrap_or_else(|e| panic!("{}: {e}", boot.display()));
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path())
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            exec_with_input(&self.name, &format!("cat > '/boot/firmware/{name}'"), &text);
        }
        let ran = self.exec(
            "script=$(tr ' ' '\n' </boot/firmware/cmdline.txt | sed -n 's/^systemd.run=//p'); \
             [ -n \"$script\" ] || { echo 'cmdline.txt runs no script'; exit 97; }; sh \"$script\" 2>&1",
        );
        if ran.code == 0 {
            let sshd = self.exec("mkdir -p /run/sshd && /usr/sbin/sshd 2>&1");
            assert_eq!(sshd.code, 0, "sshd after the first boot: {sshd:?}");
        }
        ran
    }

    /// Puts `files` (name, text) where cloud-init finds the boot
    /// partition's, runs its four stages in boot order and, as Raspberry Pi
    /// OS's `enable_ssh` does, starts sshd. The output of each stage, in
    /// order, as (stage, output).
    pub fn first_boot(&self, files: &[(&str, String)]) -> Vec<(&'static str, crate::Output)> {
        for (name, text) in files {
            exec_with_input(
                &self.name,
                &format!("mkdir -p {NOCLOUD_SEED} && cat > {NOCLOUD_SEED}/{name}"),
                text,
            );
        }
        let mut stages = Vec::new();
        for (stage, command) in [
            ("init --local", "cloud-init init --local"),
            ("init", "cloud-init init"),
            ("modules --mode config", "cloud-init modules --mode config"),
            ("modules --mode final", "cloud-init modules --mode final"),
            ("sshd", "mkdir -p /run/sshd && /usr/sbin/sshd"),
        ] {
            stages.push((stage, self.exec(&format!("{command} 2>&1"))));
        }
        stages
    }

    /// Runs a command on the board (through `docker exec`, for checks).
    pub fn exec(&self, script: &str) -> crate::Output {
        docker_unchecked(&["exec", &self.name, "sh", "-c", script])
    }
}

impl Drop for FreshBoard {
    fn drop(&mut self) {
        docker_unchecked(&["rm", "-f", &self.name]);
    }
}

/// Runs `script` in a container with `input` on its stdin; it must succeed.
pub fn exec_with_input(container: &str, script: &str, input: &str) {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(["exec", "-i", container, "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker exec");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {container}: {e}"));
    }
    assert!(
        child.wait().is_ok_and(|s| s.success()),
        "a setup script in {container} failed"
    );
}

/// The board's host key lines for known_hosts, once sshd answers.
fn keyscan(address: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = Command::new("ssh-keyscan")
            .args(["-T", "2", "-t", "ed25519", address])
            .stderr(Stdio::null())
            .output()
            .expect("ssh-keyscan (openssh-client)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains("ssh-ed25519") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "sshd on {address} did not answer"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A local image registry (Debian's docker-registry) the boards pull from:
/// reachable on the boards' network as `10.77.0.1:5077`.
#[derive(Debug)]
pub struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

pub const REGISTRY: &str = "10.77.0.1:5077";

impl Registry {
    /// Starts the registry and pushes `local/busybox:1` to it as `busybox:1`.
    pub fn start() -> Self {
        Self::with_busybox(5077)
    }

    /// A registry on `PORT` of every address (the boards reach it as
    /// `10.77.0.1:PORT`) holding `local/busybox:1` (linux/amd64) as
    /// `busybox:1`, pushed through loopback.
    pub fn with_busybox(port: u16) -> Self {
        ensure_network();
        let registry = Self::serve("0.0.0.0", port);
        let local = format!("127.0.0.1:{port}/busybox:1");
        docker(&["tag", crate::IMAGE, &local]);
        docker(&["push", &local]);
        registry
    }

    /// An empty registry on `127.0.0.1:PORT`, for the local swarm only
    /// (Docker trusts a loopback registry over plain HTTP).
    pub fn on_loopback(port: u16) -> Self {
        Self::serve("127.0.0.1", port)
    }

    /// An empty registry on the boards' gateway (`10.77.0.1:PORT`): boards
    /// reach it with `--insecure-registry`.
    pub fn for_boards(port: u16) -> Self {
        ensure_network();
        Self::serve(GATEWAY, port)
    }

    fn serve(listen: &str, port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {listen}:{port}\nlog:\n  level: error\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write the registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start docker-registry (scripts/setup installs it): {e}")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = if listen == "0.0.0.0" {
            "127.0.0.1"
        } else {
            listen
        };
        while std::net::TcpStream::connect((probe, port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, _dir: dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
