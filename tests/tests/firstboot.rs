//! `reconciler firstboot` against the reference: Debian's own cloud-init
//! validates the files and applies them on a board booting a fresh card;
//! then `apply --ssh` reaches that board as the new user, trusting the
//! pinned host key with no prompt, and makes it a swarm manager.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use reconciler_tests::boards::{FreshBoard, NOCLOUD_SEED};
use reconciler_tests::{reconciler_binary, require_swarm, Output, SpecDir};

/// The spec's login user: no such user exists on the card before its first boot.
const USER: &str = "anna";

fn keygen(path: &Path) {
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "anna@laptop", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client)");
    assert!(made.success());
}

fn spec_for(keys: &Path, nodes: &[(&str, &str)]) -> SpecDir {
    let spec = SpecDir::new("firstboot");
    spec.write(
        "cluster.toml",
        &format!(
            r#"[cluster]
name = "firstboot"

[ssh]
user = "{USER}"
identity = "{identity}"
known_hosts = "{known}"

[bootstrap]
install_docker = "apt-get update -qq && apt-get install -y -qq docker.io iptables >/dev/null"
# The boards have no systemd (see TESTBED.md); real Pis keep the default.
start_docker = "nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &"
"#,
            identity = keys.join("id_ed25519").display(),
            known = keys.join("known_hosts").display(),
        ),
    );
    let mut text = String::new();
    for (index, (name, address)) in nodes.iter().enumerate() {
        let role = if index == 0 { "manager" } else { "worker" };
        text.push_str(&format!(
            "[node.{name}]\naddress = \"{address}\"\nrole = \"{role}\"\n\n"
        ));
    }
    spec.write("nodes.toml", &text);
    spec
}

/// The host keys the board at `address` offers, as `ssh-keyscan` lists them.
fn offered_host_keys(address: &str) -> Vec<String> {
    let scanned = std::process::Command::new("ssh-keyscan")
        .args(["-T", "5", address])
        .output()
        .expect("ssh-keyscan");
    String::from_utf8_lossy(&scanned.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The first `apply --ssh` (no --accept-new-host-keys: the new user, sudo,
/// Docker installed) makes the board a swarm manager and leaves
/// known_hosts as firstboot wrote it.
fn first_apply_makes_a_manager(
    spec: &SpecDir,
    board: &FreshBoard,
    known_hosts: &Path,
    known: &str,
) {
    let applied = reconciler_binary(
        &[
            "apply",
            &spec.arg(),
            "--ssh",
            "--auto-approve",
            "--timeout",
            "3m",
        ],
        &[],
    );
    assert_eq!(
        applied.code, 0,
        "{}\n--- stderr\n{}",
        applied.stdout, applied.stderr
    );
    let swarm =
        board.exec("docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'");
    assert_eq!(swarm.stdout.trim(), "active true", "{swarm:?}");
    assert_eq!(
        read(known_hosts),
        known,
        "known_hosts changed on first contact"
    );
}

/// `reconciler firstboot SPEC ARGS...`, as a person runs it.
fn firstboot(spec: &SpecDir, args: &[&str]) -> Output {
    let dir = spec.arg();
    let mut all = vec!["firstboot", dir.as_str()];
    all.extend_from_slice(args);
    reconciler_binary(&all, &[])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn card_files(folder: &Path) -> Vec<(&'static str, String)> {
    ["user-data", "meta-data", "network-config"]
        .into_iter()
        .map(|name| (name, read(&folder.join(name))))
        .collect()
}

#[test]
fn a_fresh_card_boots_with_cloud_init_and_joins_with_no_host_key_prompt() {
    require_swarm();
    let keys = tempfile::tempdir().expect("temporary folder");
    keygen(&keys.path().join("id_ed25519"));
    let spec = spec_for(keys.path(), &[("fresh1", "10.77.0.91")]);
    let out = tempfile::tempdir().expect("temporary folder");
    let cards = out.path().join("cards");

    let written = firstboot(
        &spec,
        &[
            "--out",
            &cards.display().to_string(),
            "--timezone",
            "Europe/Berlin",
        ],
    )
    .expect_code(0);
    let folder = cards.join("fresh1");
    let user_data = read(&folder.join("user-data"));
    assert!(user_data.contains("BEGIN OPENSSH PRIVATE KEY"));
    for secret_line in user_data.lines().filter(|l| l.contains("PRIVATE KEY")) {
        assert!(
            !written.stdout.contains(secret_line) && !written.stderr.contains(secret_line),
            "the host key was printed"
        );
    }
    let mode = std::fs::metadata(folder.join("user-data"))
        .expect("user-data")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "user-data holds a private key");
    let known = read(&keys.path().join("known_hosts"));
    let recorded: Vec<&str> = known.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(recorded.len(), 1, "{known}");
    assert!(
        recorded[0].starts_with("10.77.0.91 ssh-ed25519 "),
        "{known}"
    );
    assert!(
        written
            .stdout
            .contains("cgroup_enable=memory cgroup_memory=1"),
        "{}",
        written.stdout
    );

    // The card boots: Debian's cloud-init reads the files as Raspberry Pi OS
    // reads them from the boot partition.
    let board = FreshBoard::start("rcf-fresh1", "10.77.0.91");
    let before = board.exec(&format!("id {USER}"));
    assert_ne!(before.code, 0, "the card must not have the user yet");
    let stages = board.first_boot(&card_files(&folder));
    for (stage, output) in &stages {
        assert_eq!(output.code, 0, "cloud-init {stage}:\n{}", output.stdout);
    }
    let schema = board.exec(&format!(
        "cloud-init schema --config-file {NOCLOUD_SEED}/user-data 2>&1"
    ));
    assert_eq!(schema.code, 0, "{}", schema.stdout);
    assert!(
        schema.stdout.contains("Valid cloud-config"),
        "{}",
        schema.stdout
    );
    let applied = board.exec(
        "hostname; cat /etc/timezone; grep -h '^PasswordAuthentication' /etc/ssh/sshd_config.d/*.conf",
    );
    assert_eq!(
        applied.stdout, "fresh1\nEurope/Berlin\nPasswordAuthentication no\n",
        "{applied:?}"
    );
    // The board presents the key made for it, and only that one.
    let offered = offered_host_keys("10.77.0.91");
    let pinned = recorded[0].split_whitespace().nth(2).unwrap_or_default();
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert!(offered[0].contains(pinned), "{offered:?} vs {known}");

    // First contact: no --accept-new-host-keys, the new user, sudo, Docker
    // installed, the swarm initialized on the board.
    first_apply_makes_a_manager(&spec, &board, &keys.path().join("known_hosts"), &known);

    // Again: the same key, the same files, known_hosts as it was.
    let again = firstboot(
        &spec,
        &[
            "--out",
            &cards.display().to_string(),
            "--timezone",
            "Europe/Berlin",
        ],
    )
    .expect_code(0);
    assert!(again.stdout.contains("already in"), "{}", again.stdout);
    assert_eq!(read(&folder.join("user-data")), user_data);
    assert_eq!(read(&keys.path().join("known_hosts")), known);
}

/// A static address: cloud-init's own converter reads the network file and
/// renders it for netplan (which Raspberry Pi OS hands to NetworkManager)
/// with the address, route and name servers.
#[test]
fn a_static_address_is_read_by_cloud_init_as_written() {
    let keys = tempfile::tempdir().expect("temporary folder");
    keygen(&keys.path().join("id_ed25519"));
    let spec = spec_for(keys.path(), &[("fresh2", "10.77.0.92")]);
    let out = tempfile::tempdir().expect("temporary folder");
    firstboot(
        &spec,
        &[
            "--out",
            &out.path().display().to_string(),
            "--gateway",
            "10.77.0.1",
            "--prefix",
            "24",
            "--dns",
            "10.77.0.1,9.9.9.9",
        ],
    )
    .expect_code(0);
    let board = FreshBoard::start("rcf-fresh2", "10.77.0.92");
    reconciler_tests::boards::exec_with_input(
        &board.name,
        "cat > /tmp/network-config",
        &read(&out.path().join("fresh2/network-config")),
    );
    let rendered = board.exec(
        "cloud-init devel net-convert --network-data /tmp/network-config --kind yaml --output-kind netplan --distro debian --directory /tmp/out 2>&1 && cat /tmp/out/etc/netplan/50-cloud-init.yaml",
    );
    assert_eq!(rendered.code, 0, "{rendered:?}");
    for expected in [
        "dhcp4: false",
        "- 10.77.0.92/24",
        "to: 0.0.0.0/0",
        "via: 10.77.0.1",
        "- 10.77.0.1\n",
        "- 9.9.9.9\n",
    ] {
        assert!(
            rendered.stdout.contains(expected),
            "{expected}:\n{}",
            rendered.stdout
        );
    }
}

/// known_hosts already trusting another key for the address (a board
/// flashed before) stops everything: no file written, no entry added, and
/// the message says how to forget the old key.
#[test]
fn regression_firstboot_never_replaces_a_recorded_host_key() {
    let keys = tempfile::tempdir().expect("temporary folder");
    keygen(&keys.path().join("id_ed25519"));
    let old = keys.path().join("old_host");
    keygen(&old);
    let old_line = format!("10.77.0.94 {}", read(&old.with_extension("pub")));
    std::fs::write(keys.path().join("known_hosts"), &old_line).expect("known_hosts");
    let spec = spec_for(
        keys.path(),
        &[("fresh3", "10.77.0.93"), ("fresh4", "10.77.0.94")],
    );
    let out = tempfile::tempdir().expect("temporary folder");
    let cards = out.path().join("cards");
    let refused = firstboot(&spec, &["--out", &cards.display().to_string()]).expect_code(1);
    let known_hosts = keys.path().join("known_hosts");
    assert!(
        refused.stderr.contains(&format!(
            "node fresh4: {} already holds a host key for 10.77.0.94",
            known_hosts.display()
        )) && refused.stderr.contains(&format!(
            "`ssh-keygen -R 10.77.0.94 -f {}`",
            known_hosts.display()
        )),
        "{}",
        refused.stderr
    );
    assert!(!cards.exists(), "nothing may be written");
    assert_eq!(read(&known_hosts), old_line);
}

/// With the card's boot partition: the files land there and cmdline.txt
/// gets the memory cgroup options once; a folder without cmdline.txt is no
/// card, and a card is one board.
#[test]
fn the_boot_partition_gets_the_files_and_the_memory_cgroup() {
    let keys = tempfile::tempdir().expect("temporary folder");
    keygen(&keys.path().join("id_ed25519"));
    let spec = spec_for(
        keys.path(),
        &[("fresh5", "10.77.0.95"), ("fresh6", "10.77.0.96")],
    );
    let boot = tempfile::tempdir().expect("temporary folder");
    let boot_arg = boot.path().display().to_string();
    let no_card = firstboot(&spec, &["--boot", &boot_arg, "--node", "fresh5"]).expect_code(1);
    assert!(
        no_card
            .stderr
            .contains("has no cmdline.txt: it is not the boot partition"),
        "{}",
        no_card.stderr
    );
    let cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n";
    std::fs::write(boot.path().join("cmdline.txt"), cmdline).expect("cmdline.txt");
    let two = firstboot(&spec, &["--boot", &boot_arg]).expect_code(1);
    assert!(
        two.stderr.contains("--boot writes one card"),
        "{}",
        two.stderr
    );
    let written = firstboot(&spec, &["--boot", &boot_arg, "--node", "fresh5"]).expect_code(0);
    assert!(
        written
            .stdout
            .contains("added `cgroup_enable=memory cgroup_memory=1`"),
        "{}",
        written.stdout
    );
    assert_eq!(
        read(&boot.path().join("cmdline.txt")),
        format!(
            "{} cgroup_enable=memory cgroup_memory=1\n",
            cmdline.trim_end()
        )
    );
    for name in ["user-data", "meta-data", "network-config"] {
        assert!(boot.path().join(name).is_file(), "{name}");
    }
    let again = firstboot(&spec, &["--boot", &boot_arg, "--node", "fresh5"]).expect_code(0);
    assert!(
        again.stdout.contains("already turns the memory cgroup on"),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("already in"), "{}", again.stdout);
}

/// A Raspberry Pi OS Bookworm card (no cloud-init): `--release bookworm`
/// writes firstrun.sh and the `ssh` file and makes cmdline.txt run the
/// script once after the memory cgroup options. The board's first boot runs
/// it as systemd would (as root, from cmdline.txt); it renames the image's
/// first user, installs the key and the host key, and takes itself out;
/// then `apply --ssh` reaches the board as the new user with the pinned
/// host key and makes it a swarm manager.
#[test]
fn a_bookworm_card_runs_firstrun_once_and_joins_with_no_host_key_prompt() {
    require_swarm();
    let keys = tempfile::tempdir().expect("temporary folder");
    keygen(&keys.path().join("id_ed25519"));
    let spec = spec_for(keys.path(), &[("fresh7", "10.77.0.97")]);
    let boot = tempfile::tempdir().expect("temporary folder");
    let boot_arg = boot.path().display().to_string();
    let cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n";
    std::fs::write(boot.path().join("cmdline.txt"), cmdline).expect("cmdline.txt");
    let arguments = [
        "--boot",
        boot_arg.as_str(),
        "--node",
        "fresh7",
        "--release",
        "bookworm",
        "--timezone",
        "Europe/Berlin",
    ];
    let written = firstboot(&spec, &arguments).expect_code(0);
    let script = read(&boot.path().join("firstrun.sh"));
    assert!(script.contains("BEGIN OPENSSH PRIVATE KEY"));
    assert!(
        !written.stdout.contains("PRIVATE KEY") && !written.stderr.contains("PRIVATE KEY"),
        "the host key was printed"
    );
    let mode = std::fs::metadata(boot.path().join("firstrun.sh"))
        .expect("firstrun.sh")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "firstrun.sh holds a private key");
    assert_eq!(read(&boot.path().join("ssh")), "");
    let edited = read(&boot.path().join("cmdline.txt"));
    assert_eq!(
        edited,
        format!(
            "{} cgroup_enable=memory cgroup_memory=1 systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n",
            cmdline.trim_end()
        )
    );
    // Again: nothing changes, the key stays.
    firstboot(&spec, &arguments).expect_code(0);
    assert_eq!(read(&boot.path().join("firstrun.sh")), script);
    assert_eq!(read(&boot.path().join("cmdline.txt")), edited);
    let known = read(&keys.path().join("known_hosts"));

    let board = FreshBoard::start_bookworm("rcf-fresh7", "10.77.0.97");
    let ran = board.first_run(boot.path());
    assert_eq!(ran.code, 0, "firstrun.sh: {ran:?}");
    let after = board.exec(
        "cat /etc/hostname; cat /etc/timezone; id -un 1000; id pi >/dev/null 2>&1 || echo 'no pi'; \
         ls /boot/firmware; cat /boot/firmware/cmdline.txt",
    );
    assert_eq!(
        after.stdout,
        format!(
            "fresh7\nEurope/Berlin\n{USER}\nno pi\ncmdline.txt\nssh\n{} cgroup_enable=memory cgroup_memory=1\n",
            cmdline.trim_end()
        ),
        "{after:?}"
    );
    let offered = offered_host_keys("10.77.0.97");
    let pinned = known
        .lines()
        .find(|l| l.starts_with("10.77.0.97 "))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("no entry for the board in {known}"));
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert!(offered[0].contains(pinned), "{offered:?} vs {known}");
    // Password logins are off.
    let password = std::process::Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            &format!("{USER}@10.77.0.97"),
            "true",
        ])
        .output()
        .expect("ssh");
    assert!(
        String::from_utf8_lossy(&password.stderr).contains("Permission denied (publickey)"),
        "{}",
        String::from_utf8_lossy(&password.stderr)
    );

    first_apply_makes_a_manager(&spec, &board, &keys.path().join("known_hosts"), &known);
}
