//! The first-boot script for Raspberry Pi OS Bookworm and older, whose
//! cards have no cloud-init: `firstrun.sh` on the boot partition, run once
//! by systemd at the first boot because `cmdline.txt` says
//! `systemd.run=/boot/firmware/firstrun.sh` — the route Raspberry Pi
//! Imager's OS customisation takes. It does what the cloud-init files do
//! on Trixie (hostname, the user with the key and passwordless sudo, SSH on
//! with password logins off, the host key made here, the time zone), with
//! plain Debian commands, then takes itself out of `cmdline.txt` and
//! deletes itself; systemd then reboots into the configured system.
//!
//! Pure: a [`Board`] in, the script out. Every value from the spec is
//! written as one single-quoted shell word: nothing a spec holds can run.

use super::cloud_init::{Board, HOST_KEY_PATH, SSHD_DROP_IN_PATH};
use crate::node::shell::quote as shell_word;

/// Where the script lives on the running board (the boot partition is
/// mounted at /boot/firmware since Bookworm).
pub const SCRIPT_PATH: &str = "/boot/firmware/firstrun.sh";

/// What `cmdline.txt` gets so the script runs once: systemd runs it as the
/// boot's only unit and reboots when it succeeds (Imager's options).
pub const RUN_OPTIONS: [&str; 3] = [
    "systemd.run=/boot/firmware/firstrun.sh",
    "systemd.run_success_action=reboot",
    "systemd.unit=kernel-command-line.target",
];

/// The groups Raspberry Pi Imager's user has, where the image has them.
const GROUPS: &str =
    "users adm dialout audio netdev video plugdev cdrom games input gpio spi i2c render sudo";

/// The `NAME=value` line that names the board (read back to find an
/// earlier script's host key).
pub fn hostname_line(hostname: &str) -> String {
    format!("NEW_HOSTNAME={}", shell_word(hostname))
}

/// The line that opens the host key's value in the script.
pub const HOST_KEY_OPENING: &str = "HOST_KEY='";

/// `firstrun.sh` for one board.
pub fn script(board: &Board<'_>) -> String {
    let mut text = String::from("#!/bin/sh\n");
    text.push_str(
        "# Written by `reconciler firstboot` for Raspberry Pi OS Bookworm: run once at\n",
    );
    text.push_str("# the first boot (systemd.run in cmdline.txt), then removed. It holds this\n");
    text.push_str("# board's SSH host key: keep it private.\n");
    text.push_str("set -u\n");
    text.push_str(&format!("{}\n", hostname_line(board.hostname)));
    text.push_str(&format!("NEW_USER={}\n", shell_word(board.user)));
    text.push_str(&format!(
        "AUTHORIZED_KEY={}\n",
        shell_word(board.authorized_key)
    ));
    // The key's PEM lines hold no quote, so the value reads back line by line.
    text.push_str(HOST_KEY_OPENING);
    text.push_str(board.host_private_key.trim_end());
    text.push_str("\n'\n");
    if let Some(zone) = board.timezone {
        text.push_str(&format!("TIME_ZONE={}\n", shell_word(zone)));
    }
    text.push_str(
        &BODY
            .replace("GROUPS_LIST", GROUPS)
            .replace("HOST_KEY_FILE", HOST_KEY_PATH)
            .replace("DROP_IN_FILE", SSHD_DROP_IN_PATH),
    );
    if board.timezone.is_some() {
        text.push_str(TIME_ZONE_BODY);
    }
    text.push_str(&format!(
        "\n# Done: out of the kernel's command line, and gone.\nrm -f {SCRIPT_PATH}\nsed -i 's| systemd.run.*||g' /boot/firmware/cmdline.txt\nexit 0\n"
    ));
    text
}

/// The steps, in the order Imager's script takes them; each works on a
/// Raspberry Pi OS image and on plain Debian. GROUPS_LIST, HOST_KEY_FILE
/// and DROP_IN_FILE are filled in with constants, never spec values.
const BODY: &str = r#"
# The host name, now and at boot.
OLD_HOSTNAME=$(tr -d ' \t\r\n' </etc/hostname 2>/dev/null)
printf '%s\n' "$NEW_HOSTNAME" >/etc/hostname
if grep -q '^127\.0\.1\.1' /etc/hosts; then
  sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$NEW_HOSTNAME/" /etc/hosts
else
  printf '127.0.1.1\t%s\n' "$NEW_HOSTNAME" >>/etc/hosts
fi
hostname "$NEW_HOSTNAME" 2>/dev/null || true

# The user: the image's first user (uid 1000) renamed, as userconf-pi does,
# or a new one; no password, the key, passwordless sudo.
FIRST_USER=$(getent passwd 1000 | cut -d: -f1)
if ! getent passwd "$NEW_USER" >/dev/null; then
  if [ -n "$FIRST_USER" ]; then
    usermod -l "$NEW_USER" "$FIRST_USER"
    usermod -m -d "/home/$NEW_USER" "$NEW_USER"
    groupmod -n "$NEW_USER" "$FIRST_USER" 2>/dev/null || true
    if [ -f /etc/sudoers.d/010_pi-nopasswd ]; then
      sed -i "s/^$FIRST_USER /$NEW_USER /" /etc/sudoers.d/010_pi-nopasswd
    fi
  else
    useradd -m -s /bin/bash "$NEW_USER"
  fi
fi
usermod -p '*' -s /bin/bash "$NEW_USER"
for group in GROUPS_LIST; do
  if getent group "$group" >/dev/null; then usermod -aG "$group" "$NEW_USER"; fi
done
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$NEW_USER" >/etc/sudoers.d/010_reconciler-nopasswd
chmod 440 /etc/sudoers.d/010_reconciler-nopasswd
HOME_DIR=$(getent passwd "$NEW_USER" | cut -d: -f6)
install -d -m 700 -o "$NEW_USER" -g "$(id -g "$NEW_USER")" "$HOME_DIR/.ssh"
printf '%s\n' "$AUTHORIZED_KEY" >"$HOME_DIR/.ssh/authorized_keys"
chown "$NEW_USER:$(id -g "$NEW_USER")" "$HOME_DIR/.ssh/authorized_keys"
chmod 600 "$HOME_DIR/.ssh/authorized_keys"
# No console wizard asking for a user at the next boot.
systemctl disable userconfig.service 2>/dev/null || true
rm -f /etc/xdg/autostart/piwiz.desktop

# SSH: this board's own host key (under a name the first-boot key
# regeneration leaves alone), keys only, on at every boot.
(umask 077 && printf '%s\n' "$HOST_KEY" >HOST_KEY_FILE)
mkdir -p /etc/ssh/sshd_config.d
printf 'HostKey %s\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n' HOST_KEY_FILE >DROP_IN_FILE
chmod 644 DROP_IN_FILE
systemctl enable ssh 2>/dev/null || true
"#;

const TIME_ZONE_BODY: &str = r#"
# The time zone.
if [ -f "/usr/share/zoneinfo/$TIME_ZONE" ]; then
  ln -sf "/usr/share/zoneinfo/$TIME_ZONE" /etc/localtime
  printf '%s\n' "$TIME_ZONE" >/etc/timezone
fi
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firstboot::cloud_init::Network;

    fn board() -> Board<'static> {
        Board {
            hostname: "pi1",
            user: "anna",
            authorized_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf anna@laptop",
            host_private_key:
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
            instance_id: "unused",
            timezone: Some("Europe/London"),
            network: Network::Dhcp,
        }
    }

    #[test]
    fn spec_values_are_single_shell_words() {
        let mut hostile = board();
        hostile.user = "anna'; rm -rf / #";
        let text = script(&hostile);
        assert!(text.contains(r"NEW_USER='anna'\''; rm -rf / #'"), "{text}");
    }

    #[test]
    fn the_script_removes_itself_and_its_kernel_options() {
        let text = script(&board());
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains("NEW_HOSTNAME='pi1'\n"));
        assert!(text.contains("HOST_KEY='-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n'\n"));
        assert!(text.contains(&format!("rm -f {SCRIPT_PATH}\n")));
        assert!(text.ends_with("exit 0\n"));
        assert!(!text.contains("GROUPS_LIST") && !text.contains("HOST_KEY_FILE"));
        let mut no_zone = board();
        no_zone.timezone = None;
        assert!(!script(&no_zone).contains("TIME_ZONE"));
    }
}
