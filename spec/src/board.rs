//! `[board]` and `[node.NAME.board]`: packages, files, sysctls and modules
//! a board carries besides Docker, checked and merged (the node's own
//! settings over the cluster's).

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostics;
use crate::file::{BoardFileEntry, BoardSection, SysctlValueFile};
use crate::load::{Assets, Entry};
use crate::model::{
    BoardConfig, BoardFile, BoardFileContent, BoardMount, Secret, SecretData, DOCKER_DAEMON_FILE,
    MODULES_FILE, SYSCTL_FILE,
};

/// Paths a board file may not take: the controller's own state, what
/// `[bootstrap]` keeps, the settings files above, and the kernel's views.
const RESERVED: [&str; 10] = [
    "/etc/reconciler",
    "/etc/hosts",
    "/etc/hostname",
    SYSCTL_FILE,
    MODULES_FILE,
    DOCKER_DAEMON_FILE,
    "/proc",
    "/sys",
    "/dev",
    "/run/reconciler",
];

/// Packages without which the controller loses the board or the board its
/// swarm: never declared absent.
const PROTECTED_PACKAGES: [&str; 10] = [
    "openssh-server",
    "sudo",
    "docker.io",
    "docker-ce",
    "docker-ce-cli",
    "containerd",
    "containerd.io",
    "runc",
    "apt",
    "dpkg",
];

/// Why a value of a board section is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BoardProblem {
    /// A package name Debian's policy does not allow.
    #[error("`{0}` is not a Debian package name (lower-case letters, digits, `+`, `-`, `.`; at least two characters; `:arch` allowed)")]
    PackageName(String),
    /// A file path that does not start at `/`.
    #[error("board file `{0}`: the path must be absolute, like /etc/motd")]
    RelativePath(String),
    /// A path with a control character (a tab, a newline) or over 1024 bytes.
    #[error(
        "board file `{0}`: the path may not hold control characters or be longer than 1024 bytes"
    )]
    PathCharacters(String),
    /// A path with `//`, `.`, `..` or a trailing `/`.
    #[error("board file `{0}`: write the path clean (no `//`, `.`, `..` or trailing `/`)")]
    UncleanPath(String),
    /// A path the controller, `[bootstrap]` or the kernel keeps.
    #[error("board file `{path}`: {reserved} is the controller's own (use `sysctl`, `modules`, `[bootstrap]` or the node's settings) or the kernel's")]
    ReservedPath {
        path: String,
        reserved: &'static str,
    },
    /// A mode that is not octal permission bits.
    #[error("mode `{0}` is not octal permission bits like \"0644\"")]
    Mode(String),
    /// An owner that is not `user` or `user:group`.
    #[error("owner `{0}` is not `user` or `user:group` (lower-case login names)")]
    Owner(String),
    /// A sysctl name without dots or with characters sysctl has none of.
    #[error("`{0}` is not a sysctl name like vm.swappiness or net.ipv4.ip_forward")]
    SysctlName(String),
}

/// One section lowered on its own (`entry` places its errors).
pub(crate) fn section<T>(
    entry: &Entry<'_, T>,
    section: &BoardSection,
    assets: &Assets,
    secrets: &BTreeMap<String, Secret>,
    diagnostics: &mut Diagnostics,
) -> BoardConfig {
    let mut config = BoardConfig::default();
    for (list, out) in [
        (&section.packages, &mut config.packages),
        (&section.absent_packages, &mut config.absent_packages),
    ] {
        for name in list {
            match package_name(name.get_ref()) {
                Ok(()) => {
                    out.insert(name.get_ref().clone());
                }
                Err(problem) => diagnostics.push(entry.error(&name.span(), problem.to_string())),
            }
        }
    }
    for name in &section.absent_packages {
        let package = name.get_ref().split(':').next().unwrap_or_default();
        if PROTECTED_PACKAGES.contains(&package) {
            diagnostics.push(entry.error(
                &name.span(),
                format!("`{package}` cannot be declared absent: the controller reaches the board and runs the swarm with it"),
            ));
            config.absent_packages.remove(name.get_ref());
        }
    }
    for name in config.packages.intersection(&config.absent_packages) {
        diagnostics.push(entry.name_error(format!(
            "package `{name}` is both in `packages` and in `absent_packages`"
        )));
    }
    for (key, value) in &section.sysctl {
        let text = match value.get_ref() {
            SysctlValueFile::Number(n) => n.to_string(),
            SysctlValueFile::Text(t) => t.clone(),
        };
        if let Err(problem) = sysctl_key(key.get_ref()) {
            diagnostics.push(entry.error(&key.span(), problem.to_string()));
        } else if text.trim().is_empty() || text.chars().any(char::is_control) {
            diagnostics.push(entry.error(
                &value.span(),
                format!(
                    "sysctl `{}`: the value must be one line of text",
                    key.get_ref()
                ),
            ));
        } else {
            config.sysctl.insert(key.get_ref().clone(), text);
        }
    }
    for module in &section.modules {
        let name = module.get_ref();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            diagnostics.push(entry.error(
                &module.span(),
                format!("`{name}` is not a kernel module name (letters, digits, `_` and `-`)"),
            ));
        } else {
            config.modules.insert(name.clone());
        }
    }
    boot_settings(entry, section, &mut config, diagnostics);
    if let Some(table) = &section.docker_daemon {
        match serde_json::to_string_pretty(table.get_ref()) {
            Ok(json) => config.docker_daemon = Some(format!("{json}\n")),
            Err(error) => diagnostics.push(entry.error(
                &table.span(),
                format!("docker_daemon cannot be written as daemon.json: {error}"),
            )),
        }
    }
    for (path, file) in &section.file {
        if let Err(problem) = file_path(path.get_ref()) {
            diagnostics.push(entry.error(&path.span(), problem.to_string()));
            continue;
        }
        if let Some(lowered) = board_file(entry, path.get_ref(), file, assets, secrets, diagnostics)
        {
            config.files.insert(path.get_ref().clone(), lowered);
        }
    }
    for (point, mount) in &section.mount {
        if let Some(lowered) = board_mount(entry, point, mount, diagnostics) {
            config.mounts.insert(point.get_ref().clone(), lowered);
        }
    }
    config
}

/// One `[board.mount."POINT"]`: each field one word of an /etc/fstab line.
fn board_mount<T>(
    entry: &Entry<'_, T>,
    point: &toml::Spanned<String>,
    mount: &crate::file::BoardMountEntry,
    diagnostics: &mut Diagnostics,
) -> Option<BoardMount> {
    let path = point.get_ref();
    let word = |text: &str| {
        !text.is_empty()
            && text.len() <= 1024
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    };
    if let Err(problem) = file_path(path) {
        let problem = problem.to_string().replacen("board file", "mount point", 1);
        diagnostics.push(entry.error(&point.span(), problem));
        return None;
    }
    if !word(path)
        || [
            "/",
            "/boot",
            "/boot/firmware",
            "/proc",
            "/sys",
            "/dev",
            "/run",
        ]
        .contains(&path.as_str())
    {
        diagnostics.push(entry.error(
            &point.span(),
            format!("mount point `{path}`: not one the cluster may mount over (no spaces or `#`; not /, /boot, /proc, /sys, /dev or /run)"),
        ));
        return None;
    }
    let mut fields = Vec::new();
    for (name, value, default) in [
        ("what", Some(&mount.what), ""),
        ("type", mount.fstype.as_ref(), "auto"),
        ("options", mount.options.as_ref(), "defaults,nofail"),
    ] {
        match value {
            Some(value) if !word(value.get_ref()) => {
                diagnostics.push(entry.error(
                    &value.span(),
                    format!("mount `{path}`: `{name}` must be one word of an /etc/fstab line (no spaces or `#`)"),
                ));
                return None;
            }
            Some(value) => fields.push(value.get_ref().clone()),
            None => fields.push(default.to_string()),
        }
    }
    let [what, fstype, options] = <[String; 3]>::try_from(fields).ok()?;
    Some(BoardMount {
        what,
        fstype,
        options,
    })
}

/// `cmdline` options and `config_txt` lines: one option, one line each.
fn boot_settings<T>(
    entry: &Entry<'_, T>,
    section: &BoardSection,
    config: &mut BoardConfig,
    diagnostics: &mut Diagnostics,
) {
    for option in &section.cmdline {
        let text = option.get_ref();
        if text.is_empty()
            || text.len() > 256
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            diagnostics.push(entry.error(
                &option.span(),
                format!("`{}` is not one kernel command line option (no spaces; like cgroup_enable=memory)", text.escape_debug()),
            ));
        } else {
            config.cmdline.insert(text.clone());
        }
    }
    for line in &section.config_txt {
        let text = line.get_ref();
        if text.trim().is_empty()
            || text.len() > 256
            || text.chars().any(char::is_control)
            || text.trim() != text
        {
            diagnostics.push(entry.error(
                &line.span(),
                format!(
                    "`{}` is not one config.txt line (like dtoverlay=disable-bt)",
                    text.escape_debug()
                ),
            ));
        } else {
            config.config_txt.insert(text.clone());
        }
    }
}

/// The cluster's settings with a node's over them: the node's package
/// lists win where they disagree, its files replace the cluster's at the
/// same path, its sysctls the cluster's of the same key.
pub(crate) fn merge(cluster: &BoardConfig, node: BoardConfig) -> BoardConfig {
    let mut merged = cluster.clone();
    for package in &node.packages {
        merged.absent_packages.remove(package);
    }
    for package in &node.absent_packages {
        merged.packages.remove(package);
    }
    merged.packages.extend(node.packages);
    merged.absent_packages.extend(node.absent_packages);
    merged.sysctl.extend(node.sysctl);
    merged.modules.extend(node.modules);
    merged.cmdline.extend(node.cmdline);
    merged.config_txt.extend(node.config_txt);
    if node.docker_daemon.is_some() {
        merged.docker_daemon = node.docker_daemon;
    }
    merged.files.extend(node.files);
    merged.mounts.extend(node.mounts);
    merged
}

fn board_file<T>(
    entry: &Entry<'_, T>,
    path: &str,
    file: &BoardFileEntry,
    assets: &Assets,
    secrets: &BTreeMap<String, Secret>,
    diagnostics: &mut Diagnostics,
) -> Option<BoardFile> {
    let content = match (&file.content, &file.source, &file.secret) {
        (Some(text), None, None) => BoardFileContent::Plain(text.get_ref().clone().into_bytes()),
        (None, Some(source), None) => {
            let bytes = crate::lower::data_file(entry, source, assets, diagnostics)?;
            if bytes.len() > crate::load::MAX_DATA_FILE_BYTES {
                diagnostics.push(entry.error(
                    &source.span(),
                    format!(
                        "`{}` is {} KiB; a board file may be at most {} KiB",
                        source.get_ref(),
                        bytes.len() / 1024,
                        crate::load::MAX_DATA_FILE_BYTES / 1024
                    ),
                ));
                return None;
            }
            if crate::sealed::Encryption::detect(bytes).is_some() {
                diagnostics.push(
                    entry
                        .error(&source.span(), format!("`{}` looks encrypted", source.get_ref()))
                        .with_help("declare it as a [secret.NAME] with `encryption`, and use `secret = \"NAME\"` here: it is decrypted on load"),
                );
                return None;
            }
            BoardFileContent::Plain(bytes.to_vec())
        }
        (None, None, Some(name)) => match secrets.get(name.get_ref()).map(|s| &s.data) {
            Some(SecretData::File { value, .. }) => BoardFileContent::Secret {
                secret: name.get_ref().clone(),
                value: value.clone(),
            },
            Some(SecretData::External { .. }) => {
                diagnostics.push(entry.error(
                    &name.span(),
                    format!(
                        "secret `{}` is external: its value is in the swarm, not in the spec, so no board file can hold it",
                        name.get_ref()
                    ),
                ));
                return None;
            }
            None => {
                diagnostics.push(entry.error(
                    &name.span(),
                    format!("no [secret.{}] in the spec", name.get_ref()),
                ));
                return None;
            }
        },
        _ => {
            diagnostics.push(entry.name_error(format!(
                "board file `{path}` needs exactly one of `content`, `source` or `secret`"
            )));
            return None;
        }
    };
    let secret = matches!(content, BoardFileContent::Secret { .. });
    let mode = match &file.mode {
        None if secret => 0o600,
        None => 0o644,
        Some(mode) => match file_mode(mode.get_ref()) {
            Ok(bits) => bits,
            Err(problem) => {
                diagnostics.push(entry.error(&mode.span(), problem.to_string()));
                return None;
            }
        },
    };
    let (owner, group) = match &file.owner {
        None => ("root".to_string(), "root".to_string()),
        Some(owner) => match file_owner(owner.get_ref()) {
            Ok(pair) => pair,
            Err(problem) => {
                diagnostics.push(entry.error(&owner.span(), problem.to_string()));
                return None;
            }
        },
    };
    let then = match &file.then {
        Some(command) if command.get_ref().trim().is_empty() => {
            diagnostics.push(entry.error(
                &command.span(),
                format!("board file `{path}`: `then` is empty; leave it out to run nothing"),
            ));
            return None;
        }
        then => then.as_ref().map(|c| c.get_ref().clone()),
    };
    Some(BoardFile {
        content,
        mode,
        owner,
        group,
        then,
    })
}

/// A Debian package name (policy 5.6.1), optionally with `:arch`.
pub(crate) fn package_name(name: &str) -> Result<(), BoardProblem> {
    let (package, arch) = match name.split_once(':') {
        Some((package, arch)) => (package, Some(arch)),
        None => (name, None),
    };
    let valid = package.len() >= 2
        && package.len() <= 128
        && package
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        && arch.is_none_or(|a| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(BoardProblem::PackageName(name.to_string()))
    }
}

/// An absolute, clean path outside [`RESERVED`].
pub(crate) fn file_path(path: &str) -> Result<(), BoardProblem> {
    if !path.starts_with('/') || path.len() < 2 {
        return Err(BoardProblem::RelativePath(path.to_string()));
    }
    if path.len() > 1024 || path.chars().any(char::is_control) {
        return Err(BoardProblem::PathCharacters(
            path.escape_debug().to_string(),
        ));
    }
    if path.ends_with('/')
        || path
            .split('/')
            .skip(1)
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(BoardProblem::UncleanPath(path.to_string()));
    }
    if let Some(reserved) = RESERVED
        .iter()
        .find(|r| path == **r || path.starts_with(&format!("{r}/")))
    {
        return Err(BoardProblem::ReservedPath {
            path: path.to_string(),
            reserved,
        });
    }
    Ok(())
}

/// Octal permission bits: `"0644"`, `"644"`, `"0o644"`.
pub(crate) fn file_mode(text: &str) -> Result<u32, BoardProblem> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(bits) if !digits.is_empty() && bits <= 0o7777 => Ok(bits),
        _ => Err(BoardProblem::Mode(text.to_string())),
    }
}

/// `user` (group `user`'s namesake is not assumed: root's) or `user:group`.
pub(crate) fn file_owner(text: &str) -> Result<(String, String), BoardProblem> {
    let (user, group) = text.split_once(':').unwrap_or((text, "root"));
    let name_ok = |name: &str| {
        !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
    };
    if name_ok(user) && name_ok(group) {
        Ok((user.to_string(), group.to_string()))
    } else {
        Err(BoardProblem::Owner(text.to_string()))
    }
}

/// A sysctl name as `sysctl` takes it: dotted, like `vm.swappiness`.
fn sysctl_key(key: &str) -> Result<(), BoardProblem> {
    let valid = key.contains('.')
        && key.len() <= 256
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        });
    if valid {
        Ok(())
    } else {
        Err(BoardProblem::SysctlName(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_debian_policy() {
        for good in ["htop", "nfs-common", "g++", "libc6:armhf", "python3.11"] {
            assert_eq!(package_name(good), Ok(()), "{good}");
        }
        for bad in ["", "a", "Htop", "-x", "htop;rm", "a b", "x:", "x:AMD"] {
            assert!(package_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_paths_are_absolute_clean_and_not_the_controllers() {
        for good in [
            "/etc/motd",
            "/srv/share/a b.txt",
            "/etc/docker/certs.d/lan/ca.crt",
        ] {
            assert_eq!(file_path(good), Ok(()), "{good}");
        }
        for bad in [
            "etc/motd",
            "/",
            "/etc//motd",
            "/etc/../shadow",
            "/etc/motd/",
            "/etc/mo\ttd",
            "/etc/reconciler/age.key",
            "/etc/hosts",
            SYSCTL_FILE,
            "/proc/sys/vm/swappiness",
        ] {
            assert!(file_path(bad).is_err(), "{bad}");
        }
        assert_eq!(file_path("/etc/hostsx"), Ok(()));
    }

    #[test]
    fn modes_and_owners() {
        assert_eq!(file_mode("0644"), Ok(0o644));
        assert_eq!(file_mode("600"), Ok(0o600));
        assert_eq!(file_mode("0o4755"), Ok(0o4755));
        for bad in ["", "0x644", "0999", "77777", "rw-r--r--"] {
            assert!(file_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(file_owner("pi"), Ok(("pi".into(), "root".into())));
        assert_eq!(
            file_owner("www-data:adm"),
            Ok(("www-data".into(), "adm".into()))
        );
        for bad in ["", "Root", "a:b:c", "1000", "pi;x"] {
            assert!(file_owner(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_daemon_is_written_as_daemon_json_that_asks_for_a_reboot() {
        let spec = crate::load_files(vec![(
            "spec.toml".into(),
            "[cluster]\nname = \"h\"\n[board]\ndocker_daemon = { \"registry-mirrors\" = [\"http://10.0.0.1:5000\"], \"log-opts\" = { \"max-size\" = \"10m\" } }\n[node.a]\naddress = \"10.0.0.2\"\nrole = \"manager\"\n",
        )])
        .expect("valid");
        let files = spec.nodes["a"].board.all_files();
        let daemon = &files[DOCKER_DAEMON_FILE];
        let json: serde_json::Value =
            serde_json::from_slice(daemon.content.bytes()).expect("daemon.json is JSON");
        assert_eq!(json["registry-mirrors"][0], "http://10.0.0.1:5000");
        assert_eq!(json["log-opts"]["max-size"], "10m");
        assert!(daemon
            .then
            .as_deref()
            .is_some_and(|t| t.contains("/var/run/reboot-required")));
        assert!(
            file_path(DOCKER_DAEMON_FILE).is_err(),
            "declared through docker_daemon only"
        );
    }

    #[test]
    fn a_node_wins_over_the_cluster() {
        let file = |text: &str| BoardFile {
            content: BoardFileContent::Plain(text.as_bytes().to_vec()),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            then: None,
        };
        let cluster = BoardConfig {
            packages: ["htop".into(), "nfs-common".into()].into(),
            absent_packages: ["triggerhappy".into()].into(),
            sysctl: [("vm.swappiness".into(), "10".into())].into(),
            files: [("/etc/motd".into(), file("all"))].into(),
            ..BoardConfig::default()
        };
        let node = BoardConfig {
            packages: ["triggerhappy".into()].into(),
            absent_packages: ["htop".into()].into(),
            sysctl: [("vm.swappiness".into(), "1".into())].into(),
            files: [("/etc/motd".into(), file("mine"))].into(),
            ..BoardConfig::default()
        };
        let merged = merge(&cluster, node);
        assert_eq!(
            merged.packages,
            ["nfs-common".to_string(), "triggerhappy".to_string()].into()
        );
        assert_eq!(merged.absent_packages, ["htop".to_string()].into());
        assert_eq!(merged.sysctl["vm.swappiness"], "1");
        assert_eq!(merged.files["/etc/motd"], file("mine"));
    }
}
