//! The cloud-init NoCloud files Raspberry Pi OS (Trixie and later) reads
//! from the boot partition on first boot: `user-data`, `meta-data`,
//! `network-config`. Pure: a [`Board`] in, three texts out.
//!
//! The keys are the ones Raspberry Pi Imager writes (`hostname`, `users`
//! with `sudo` and `ssh_authorized_keys`, `enable_ssh`, `ssh_pwauth`,
//! `timezone`) plus the board's SSH host key. Every string value is written
//! as a JSON string, which YAML reads as a double-quoted scalar: nothing a
//! spec holds can change the document's structure.

use std::net::Ipv4Addr;

/// The groups Raspberry Pi Imager gives the user it creates (hardware
/// access for GPIO, I2C, SPI, video, audio), and `sudo`.
const GROUPS: &str =
    "users, adm, dialout, audio, netdev, video, plugdev, cdrom, games, input, gpio, spi, i2c, render, sudo";

/// Where the board's own host key is installed. Not one of sshd's default
/// `ssh_host_*_key` names: a first-boot service that regenerates those
/// (raspberrypi-sys-mods' `regenerate_ssh_host_keys` on Bookworm) runs with
/// no order against cloud-init, and would replace the key the spec trusts.
pub const HOST_KEY_PATH: &str = "/etc/ssh/reconciler_host_ed25519_key";
/// The sshd drop-in naming that key (Debian's sshd_config includes
/// `sshd_config.d/*.conf` first).
pub const SSHD_DROP_IN_PATH: &str = "/etc/ssh/sshd_config.d/10-reconciler-host-key.conf";

/// What one board is told on its first boot.
#[derive(Debug)]
pub struct Board<'a> {
    /// The spec's node name, which becomes the board's hostname.
    pub hostname: &'a str,
    /// The spec's `[ssh] user`.
    pub user: &'a str,
    /// The public key that user logs in with (`ssh-ed25519 AAAA...`).
    pub authorized_key: &'a str,
    /// The board's SSH host private key, OpenSSH format.
    pub host_private_key: &'a str,
    /// Identifies this configuration: a new one makes cloud-init run again.
    pub instance_id: &'a str,
    /// `Area/City`, or none to leave the image's.
    pub timezone: Option<&'a str>,
    pub network: Network,
}

/// How the board's Ethernet gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// From the router (reserve the spec's address for the board there).
    Dhcp,
    /// The node's address, fixed on the board.
    Static {
        address: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
        dns: Vec<Ipv4Addr>,
    },
}

/// A YAML scalar that reads back as exactly `text`.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// `#cloud-config` user data.
pub fn user_data(board: &Board<'_>) -> String {
    let mut text = String::from("#cloud-config\n");
    text.push_str("# Written by `reconciler firstboot`. It holds this board's SSH host key: keep it private.\n");
    text.push_str(&format!("hostname: {}\n", quoted(board.hostname)));
    text.push_str("manage_etc_hosts: true\n");
    if let Some(zone) = board.timezone {
        text.push_str(&format!("timezone: {}\n", quoted(zone)));
    }
    text.push_str("users:\n");
    text.push_str(&format!("  - name: {}\n", quoted(board.user)));
    text.push_str(&format!("    groups: [{GROUPS}]\n"));
    text.push_str("    shell: /bin/bash\n");
    text.push_str("    lock_passwd: true\n");
    text.push_str("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n");
    text.push_str("    ssh_authorized_keys:\n");
    text.push_str(&format!("      - {}\n", quoted(board.authorized_key)));
    text.push_str("# Raspberry Pi OS: turn the SSH server on.\n");
    text.push_str("enable_ssh: true\n");
    text.push_str("ssh_pwauth: false\n");
    text.push_str("write_files:\n");
    text.push_str(&format!("  - path: {}\n", quoted(HOST_KEY_PATH)));
    text.push_str("    owner: \"root:root\"\n");
    text.push_str("    permissions: \"0600\"\n");
    text.push_str(&format!(
        "    content: {}\n",
        quoted(board.host_private_key)
    ));
    text.push_str(&format!("  - path: {}\n", quoted(SSHD_DROP_IN_PATH)));
    text.push_str("    owner: \"root:root\"\n");
    text.push_str("    permissions: \"0644\"\n");
    text.push_str(&format!(
        "    content: {}\n",
        quoted(&format!("HostKey {HOST_KEY_PATH}\n"))
    ));
    text
}

/// NoCloud meta data: the instance and its host name.
pub fn meta_data(board: &Board<'_>) -> String {
    format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        quoted(board.instance_id),
        quoted(board.hostname)
    )
}

/// Network configuration, version 2 (netplan's format).
pub fn network_config(board: &Board<'_>) -> String {
    let mut text = String::from("network:\n  version: 2\n  ethernets:\n    eth0:\n");
    match &board.network {
        Network::Dhcp => text.push_str("      dhcp4: true\n      optional: true\n"),
        Network::Static {
            address,
            prefix,
            gateway,
            dns,
        } => {
            text.push_str("      dhcp4: false\n");
            text.push_str(&format!(
                "      addresses: [{}]\n",
                quoted(&format!("{address}/{prefix}"))
            ));
            text.push_str("      routes:\n");
            // Not `default`: cloud-init before 23 (Debian 12's 22.4) reads
            // only addresses there; every netplan reads this one.
            text.push_str("        - to: \"0.0.0.0/0\"\n");
            text.push_str(&format!(
                "          via: {}\n",
                quoted(&gateway.to_string())
            ));
            let servers: Vec<String> = dns.iter().map(|d| quoted(&d.to_string())).collect();
            text.push_str(&format!(
                "      nameservers:\n        addresses: [{}]\n",
                servers.join(", ")
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(network: Network) -> Board<'static> {
        Board {
            hostname: "pi1",
            user: "anna",
            authorized_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf anna@laptop",
            host_private_key:
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
            instance_id: "reconciler-pi1-0123456789ab",
            timezone: Some("Europe/London"),
            network,
        }
    }

    #[test]
    fn strings_cannot_change_the_documents_structure() {
        let mut hostile = board(Network::Dhcp);
        hostile.user = "anna\"\n    sudo: x\n#";
        let text = user_data(&hostile);
        assert!(
            text.contains(r#"  - name: "anna\"\n    sudo: x\n#""#),
            "{text}"
        );
        assert_eq!(text.matches("\n    sudo: ").count(), 1, "{text}");
    }

    #[test]
    fn the_host_key_is_one_quoted_scalar_and_the_timezone_optional() {
        let mut plain = board(Network::Dhcp);
        let text = user_data(&plain);
        assert!(text.contains("content: \"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Blbn\\n-----END OPENSSH PRIVATE KEY-----\\n\""), "{text}");
        assert!(text.contains("timezone: \"Europe/London\"\n"), "{text}");
        plain.timezone = None;
        assert!(!user_data(&plain).contains("timezone"));
    }

    #[test]
    fn a_static_address_names_its_route_and_servers() {
        let text = network_config(&board(Network::Static {
            address: Ipv4Addr::new(192, 168, 1, 21),
            prefix: 24,
            gateway: Ipv4Addr::new(192, 168, 1, 1),
            dns: vec![Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(9, 9, 9, 9)],
        }));
        assert_eq!(
            text,
            "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: false\n      addresses: [\"192.168.1.21/24\"]\n      routes:\n        - to: \"0.0.0.0/0\"\n          via: \"192.168.1.1\"\n      nameservers:\n        addresses: [\"192.168.1.1\", \"9.9.9.9\"]\n"
        );
        assert!(network_config(&board(Network::Dhcp)).contains("dhcp4: true"));
    }
}
