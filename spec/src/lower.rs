//! Converting the file types into the model, checking each entry on its own.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::diagnostic::Diagnostics;
use crate::file::*;
use crate::load::{Entry, RawSpec};
use crate::model::*;
use crate::source::SourceFile;
use crate::units::{parse_duration, parse_size, UnitError};
use crate::validate;
use crate::validate::{check_constraint, check_preference};

/// Builds the model. Returns `None` when something required is missing;
/// problems are pushed to `diagnostics` either way.
pub(crate) fn lower(
    raw: &RawSpec<'_>,
    first_file: Option<&SourceFile>,
    assets: &crate::load::Assets,
    keyring: &crate::sealed::Keyring,
    diagnostics: &mut Diagnostics,
) -> Option<Spec> {
    let cluster = match raw.cluster.first() {
        Some(entry) => Cluster {
            name: entry.value.name.get_ref().clone(),
        },
        None => {
            if let (Some(file), 0) = (first_file, raw.unparsed_files) {
                diagnostics.push(
                    crate::Diagnostic::new(file.start(), "missing [cluster] section")
                        .with_help("add `[cluster]` with `name = \"my-cluster\"` to one file; the name marks every object the controller owns"),
                );
            }
            return None;
        }
    };
    if let Some(entry) = raw.cluster.first() {
        if let Err(problem) = crate::validate::check_name(entry.value.name.get_ref()) {
            diagnostics
                .push(entry.error(&entry.value.name.span(), format!("cluster name: {problem}")));
        }
    }
    let controller = raw
        .controller
        .first()
        .map(|e| controller(e, diagnostics))
        .unwrap_or_default();
    login_names(raw, diagnostics);
    let ssh = raw
        .ssh
        .first()
        .map(|e| ssh_settings(&SshSettings::default(), &e.value))
        .unwrap_or_default();
    let bootstrap = raw
        .bootstrap
        .first()
        .map(|e| bootstrap(&e.value))
        .unwrap_or_default();
    let maintenance =
        (raw.maintenance.first()).map_or_else(Default::default, |e| maintenance(e, diagnostics));
    let networks = raw
        .networks
        .iter()
        .map(|e| (e.name.clone(), network(e, diagnostics)))
        .collect();
    let services = raw
        .services
        .iter()
        .map(|e| (e.name.clone(), service(e, diagnostics)))
        .collect();
    let configs = raw
        .configs
        .iter()
        .filter_map(|e| Some((e.name.clone(), config(e, assets, diagnostics)?)))
        .collect();
    let secrets = raw
        .secrets
        .iter()
        .filter_map(|e| Some((e.name.clone(), secret(e, assets, keyring, diagnostics)?)))
        .collect::<BTreeMap<_, _>>();
    // Board files may hold a secret's value: secrets are lowered first.
    let mut nodes = nodes(raw, &ssh, assets, &secrets, diagnostics);
    crate::share::lower_all(&raw.shares, &mut nodes, diagnostics);
    let releases = raw
        .releases
        .iter()
        .map(|e| {
            let release = Release {
                name: e.name.clone(),
                chart: e.value.chart.get_ref().clone(),
                values: crate::chart::plain_values(&e.value.values),
            };
            (e.name.clone(), release)
        })
        .collect();
    let stacks = raw
        .stacks
        .iter()
        .map(|e| {
            let stack = Stack {
                name: e.name.clone(),
                compose: e.value.compose.get_ref().clone(),
                env_file: e.value.env_file.as_ref().map(|f| f.get_ref().clone()),
            };
            (e.name.clone(), stack)
        })
        .collect();
    Some(Spec {
        cluster,
        controller,
        ssh,
        bootstrap,
        maintenance,
        nodes,
        networks,
        services,
        configs,
        secrets,
        releases,
        stacks,
        warnings: Vec::new(),
    })
}

/// The shortest resync `[controller] interval` a commit may ask for: a
/// reconcile fetches the repository and looks at every board, so 30 ms
/// made hundreds a second (the operator's own `--interval` is not bounded).
const MIN_INTERVAL: Duration = Duration::from_secs(5);

fn controller(
    entry: &Entry<'_, ControllerFile>,
    diagnostics: &mut Diagnostics,
) -> ControllerSettings {
    let file = &entry.value;
    let defaults = ControllerSettings::default();
    let max_delete_fraction = match &file.max_delete_fraction {
        Some(f) if !(0.0..=1.0).contains(f.get_ref()) => {
            diagnostics.push(entry.error(
                &f.span(),
                format!(
                    "max_delete_fraction must be between 0.0 and 1.0, got {}",
                    f.get_ref()
                ),
            ));
            defaults.max_delete_fraction
        }
        Some(f) => *f.get_ref(),
        None => defaults.max_delete_fraction,
    };
    let interval =
        duration(entry, file.interval.as_ref(), diagnostics).unwrap_or(defaults.interval);
    if interval < MIN_INTERVAL {
        if let Some(i) = &file.interval {
            diagnostics.push(
                entry
                    .error(
                        &i.span(),
                        format!(
                            "interval `{}` is shorter than {}s: each resync fetches the repository and looks at every board",
                            i.get_ref(),
                            MIN_INTERVAL.as_secs()
                        ),
                    )
                    .with_help("pushes and webhooks start a reconcile at once; the interval is only the fallback"),
            );
        }
    }
    let down_node_grace = duration(entry, file.down_node_grace.as_ref(), diagnostics)
        .unwrap_or(defaults.down_node_grace);
    ControllerSettings {
        interval,
        prune: file.prune.unwrap_or(defaults.prune),
        mode: match file.mode {
            Some(ControllerModeFile::Apply) | None => ControllerMode::Apply,
            Some(ControllerModeFile::Observe) => ControllerMode::Observe,
        },
        max_delete_fraction,
        suspend: file.suspend.unwrap_or(defaults.suspend),
        down_node_grace,
    }
}

/// `[ssh] user`, each node's `ssh.user` and `[bootstrap] docker_users`
/// name users on the boards: login names `useradd` makes.
fn login_names(raw: &RawSpec<'_>, diagnostics: &mut Diagnostics) {
    let mut check = |source: &SourceFile, name: &Spanned<String>| {
        if let Err(problem) = validate::check_login_name(name.get_ref()) {
            diagnostics.push(source.error(&name.span(), problem.to_string()));
        }
    };
    for entry in &raw.ssh {
        if let Some(user) = &entry.value.user {
            check(entry.source, user);
        }
    }
    for entry in &raw.nodes {
        if let Some(user) = entry.value.ssh.as_ref().and_then(|s| s.user.as_ref()) {
            check(entry.source, user);
        }
    }
    for entry in &raw.bootstrap {
        for user in entry.value.docker_users.iter().flatten() {
            check(entry.source, user);
        }
    }
}

fn ssh_settings(base: &SshSettings, file: &SshFile) -> SshSettings {
    SshSettings {
        user: file
            .user
            .as_ref()
            .map_or_else(|| base.user.clone(), |u| u.get_ref().clone()),
        port: file.port.unwrap_or(base.port),
        identity: file
            .identity
            .clone()
            .unwrap_or_else(|| base.identity.clone()),
        known_hosts: file
            .known_hosts
            .clone()
            .unwrap_or_else(|| base.known_hosts.clone()),
    }
}

fn maintenance(
    entry: &Entry<'_, crate::file::MaintenanceFile>,
    diagnostics: &mut Diagnostics,
) -> crate::model::Maintenance {
    use crate::file::RebootFile;
    use crate::model::RebootPolicy;
    let file = &entry.value;
    let defaults = crate::model::Maintenance::default();
    let max_unavailable = match &file.max_unavailable {
        Some(n) if *n.get_ref() == 0 => {
            diagnostics.push(entry.error(
                &n.span(),
                "max_unavailable = 0 would never upgrade a board; 1 takes them one at a time",
            ));
            defaults.max_unavailable
        }
        Some(n) => *n.get_ref(),
        None => defaults.max_unavailable,
    };
    crate::model::Maintenance {
        upgrade: file.upgrade.clone().unwrap_or(defaults.upgrade),
        reboot: match file.reboot {
            None | Some(RebootFile::WhenRequired) => RebootPolicy::WhenRequired,
            Some(RebootFile::Always) => RebootPolicy::Always,
            Some(RebootFile::Never) => RebootPolicy::Never,
        },
        max_unavailable,
        drain_timeout: duration(entry, file.drain_timeout.as_ref(), diagnostics)
            .unwrap_or(defaults.drain_timeout),
        boot_timeout: duration(entry, file.boot_timeout.as_ref(), diagnostics)
            .unwrap_or(defaults.boot_timeout),
        drain_on: drain_on(entry, &file.drain_on, diagnostics),
        prune_images: duration(entry, file.prune_images.as_ref(), diagnostics),
        window: file.window.as_ref().and_then(|text| {
            text.get_ref()
                .parse()
                .map_err(|error: crate::WindowError| {
                    diagnostics.push(entry.error(&text.span(), error.to_string()));
                })
                .ok()
        }),
    }
}

fn drain_on(
    entry: &Entry<'_, crate::file::MaintenanceFile>,
    names: &[Spanned<String>],
    diagnostics: &mut Diagnostics,
) -> Vec<crate::model::DrainCondition> {
    use crate::model::DrainCondition;
    let mut conditions = Vec::new();
    for name in names {
        match DrainCondition::parse(name.get_ref()) {
            Some(condition) if !conditions.contains(&condition) => conditions.push(condition),
            Some(_) => {}
            None => {
                let known: Vec<&str> = DrainCondition::ALL.iter().map(|c| c.as_str()).collect();
                let mut error = entry.error(
                    &name.span(),
                    format!(
                        "drain_on {:?} is not a condition that drains a board: {} (the critical ones)",
                        name.get_ref(),
                        known.join(", ")
                    ),
                );
                if let Some(hint) =
                    crate::suggest::did_you_mean(name.get_ref(), known.iter().copied())
                {
                    error = error.with_help(hint);
                }
                diagnostics.push(error);
            }
        }
    }
    conditions.sort();
    conditions
}

fn bootstrap(file: &BootstrapFile) -> Bootstrap {
    let defaults = Bootstrap::default();
    Bootstrap {
        hostname: file.hostname.unwrap_or(defaults.hostname),
        hosts_file: file.hosts_file.unwrap_or(defaults.hosts_file),
        install_docker: file
            .install_docker
            .clone()
            .unwrap_or(defaults.install_docker),
        start_docker: file.start_docker.clone().unwrap_or(defaults.start_docker),
        docker_users: file
            .docker_users
            .as_ref()
            .map_or(defaults.docker_users, |users| {
                users.iter().map(|u| u.get_ref().clone()).collect()
            }),
    }
}

/// Every node, each with `[board]` and its own board settings merged.
fn nodes(
    raw: &RawSpec<'_>,
    ssh: &SshSettings,
    assets: &crate::load::Assets,
    secrets: &BTreeMap<String, crate::model::Secret>,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<String, Node> {
    let cluster_board = raw
        .board
        .first()
        .map(|e| crate::board::section(e, &e.value, assets, secrets, diagnostics))
        .unwrap_or_default();
    raw.nodes
        .iter()
        .map(|e| {
            let mut node = node(e, ssh, diagnostics);
            let own = e
                .value
                .board
                .as_ref()
                .map(|b| crate::board::section(e, b, assets, secrets, diagnostics))
                .unwrap_or_default();
            node.board = crate::board::merge(&cluster_board, own);
            (e.name.clone(), node)
        })
        .collect()
}

fn node(entry: &Entry<'_, NodeFile>, ssh: &SshSettings, diagnostics: &mut Diagnostics) -> Node {
    let file = &entry.value;
    check_label_keys(entry, &file.labels, diagnostics);
    for key in file.labels.keys().filter(|k| k.get_ref().contains(',')) {
        diagnostics.push(entry.error(
            &key.span(),
            format!("node label key `{}` contains `,`, which the controller's record of the labels it owns cannot hold", key.get_ref()),
        ));
    }
    if let Some(arch) = &file.arch {
        if crate::model::canonical_arch(arch.get_ref()).is_none() {
            diagnostics.push(
                entry
                    .error(
                        &arch.span(),
                        format!(
                            "node `{}`: no board reports the architecture `{}`",
                            entry.name,
                            arch.get_ref()
                        ),
                    )
                    .with_help(format!(
                        "one of {} (as `uname -m` or Docker names it)",
                        crate::model::KNOWN_ARCHES.join(", ")
                    )),
            );
        }
    }
    if let Err(problem) = crate::address::parse(file.address.get_ref()) {
        diagnostics.push(entry.error(
            &file.address.span(),
            format!("node `{}`: {problem}", entry.name),
        ));
    }
    Node {
        name: entry.name.clone(),
        address: file.address.get_ref().clone(),
        role: match file.role {
            RoleFile::Manager => Role::Manager,
            RoleFile::Worker => Role::Worker,
        },
        labels: plain_map(&file.labels),
        availability: file.availability.map(|a| match a {
            AvailabilityFile::Active => Availability::Active,
            AvailabilityFile::Pause => Availability::Pause,
            AvailabilityFile::Drain => Availability::Drain,
        }),
        arch: file.arch.as_ref().map(|a| a.get_ref().clone()),
        ssh: file
            .ssh
            .as_ref()
            .map_or_else(|| ssh.clone(), |s| ssh_settings(ssh, s)),
        host_key: file.host_key.as_ref().map(|k| k.get_ref().clone()),
        adopt: file.adopt.unwrap_or(false),
        board: crate::model::BoardConfig::default(),
    }
}

fn network(entry: &Entry<'_, NetworkFile>, diagnostics: &mut Diagnostics) -> Network {
    let file = &entry.value;
    let driver = file
        .driver
        .as_ref()
        .map_or_else(|| "overlay".to_string(), |d| d.get_ref().clone());
    if let Some(d) = &file.driver {
        if d.get_ref() != "overlay" {
            diagnostics.push(
                entry
                    .error(
                        &d.span(),
                        format!("network driver `{}` is not supported", d.get_ref()),
                    )
                    .with_help("swarm services attach to `overlay` networks"),
            );
        }
    }
    check_label_keys(entry, &file.labels, diagnostics);
    let external = file.external.unwrap_or(false).then(|| {
        file.name
            .as_ref()
            .map_or_else(|| entry.name.clone(), |n| n.get_ref().clone())
    });
    if let (Some(name), None) = (&file.name, &external) {
        diagnostics.push(
            entry
                .error(
                    &name.span(),
                    "`name` is only for `external = true` networks",
                )
                .with_help("a network the spec creates is named by its entry"),
        );
    }
    for subnet in &file.subnets {
        if !is_cidr(subnet.get_ref()) {
            diagnostics.push(
                entry
                    .error(
                        &subnet.span(),
                        format!("`{}` is not a subnet in CIDR form", subnet.get_ref()),
                    )
                    .with_help("e.g. \"10.20.0.0/24\" or \"fd00:20::/64\""),
            );
        }
    }
    if external.is_some()
        && (!file.options.is_empty() || !file.subnets.is_empty() || file.ipam_driver.is_some())
    {
        diagnostics.push(entry.name_error(format!(
            "network `{}` is external: its options and subnets are set where it is created",
            entry.name
        )));
    }
    Network {
        name: entry.name.clone(),
        group: group(entry, file.origin.as_ref(), diagnostics),
        driver,
        attachable: file.attachable.unwrap_or(false),
        internal: file.internal.unwrap_or(false),
        labels: plain_map(&file.labels),
        options: plain_map(&file.options),
        ipam: crate::model::Ipam {
            driver: file.ipam_driver.as_ref().map(|d| d.get_ref().clone()),
            subnets: file.subnets.iter().map(|s| s.get_ref().clone()).collect(),
        },
        external,
    }
}

/// `ADDRESS/BITS` with an IPv4 or IPv6 address and a prefix length that fits it.
fn is_cidr(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// A service's `configs` or `secrets`, with `docker stack deploy`'s
/// defaults: the file named like the source, owned by root, mode 0444.
fn file_refs(refs: &[Spanned<FileRefFile>]) -> Vec<FileRef> {
    refs.iter()
        .map(|r| {
            let r = r.get_ref();
            FileRef {
                source: r.source.get_ref().clone(),
                target: r
                    .target
                    .clone()
                    .unwrap_or_else(|| r.source.get_ref().clone()),
                uid: r.uid.clone().unwrap_or_else(|| "0".into()),
                gid: r.gid.clone().unwrap_or_else(|| "0".into()),
                mode: r.mode.unwrap_or(0o444),
            }
        })
        .collect()
}

/// The bytes of a spec file named by a config or secret (`file`, relative
/// to the spec root).
pub(crate) fn data_file<'a, T>(
    entry: &Entry<'_, T>,
    file: &Spanned<String>,
    assets: &'a crate::load::Assets,
    diagnostics: &mut Diagnostics,
) -> Option<&'a [u8]> {
    let path = std::path::Path::new(file.get_ref());
    let found = assets.get(path);
    if found.is_none() {
        diagnostics.push(
            entry
                .error(&file.span(), format!("file `{}` not found in the spec", file.get_ref()))
                .with_help(format!(
                    "paths are relative to the spec root; the file may be at most {} KiB ({} KiB encrypted)",
                    crate::load::MAX_DATA_FILE_BYTES / 1024,
                    crate::load::MAX_KEPT_FILE_BYTES / 1024
                )),
        );
    }
    found.map(Vec::as_slice)
}

/// Refuses data larger than Swarm keeps, or that looks encrypted while no
/// `encryption` says so (its ciphertext would be deployed).
fn check_data<T>(
    entry: &Entry<'_, T>,
    file: &Spanned<String>,
    data: &[u8],
    encryption_allowed: bool,
    diagnostics: &mut Diagnostics,
) -> bool {
    if data.len() > crate::load::MAX_DATA_FILE_BYTES {
        diagnostics.push(entry.error(
            &file.span(),
            format!(
                "`{}` is {} KiB; Swarm keeps configs and secrets up to {} KiB",
                file.get_ref(),
                data.len() / 1024,
                crate::load::MAX_DATA_FILE_BYTES / 1024
            ),
        ));
        return false;
    }
    if let Some(found) = crate::sealed::Encryption::detect(data) {
        let help = if encryption_allowed {
            format!(
                "add `encryption = \"{}\"` to decrypt it on load",
                found.as_str()
            )
        } else {
            "configs are not encrypted; make it a `[secret.*]` with `encryption`".to_string()
        };
        diagnostics.push(
            entry
                .error(
                    &file.span(),
                    format!(
                        "`{}` is encrypted with {}; it would be deployed as its ciphertext",
                        file.get_ref(),
                        found.as_str()
                    ),
                )
                .with_help(help),
        );
        return false;
    }
    true
}

fn config(
    entry: &Entry<'_, ConfigFile>,
    assets: &crate::load::Assets,
    diagnostics: &mut Diagnostics,
) -> Option<Config> {
    let file = &entry.value;
    check_label_keys(entry, &file.labels, diagnostics);
    let external = file.external.unwrap_or(false);
    let fixed_name = fixed_name(entry, file.name.as_ref(), external, diagnostics);
    let data = match (&file.file, &file.content) {
        (None, None) if external => ConfigData::External {
            name: file
                .name
                .as_ref()
                .map_or_else(|| entry.name.clone(), |n| n.get_ref().clone()),
        },
        (Some(path), None) if !external => {
            let bytes = data_file(entry, path, assets, diagnostics)?;
            if !check_data(entry, path, bytes, false, diagnostics) {
                return None;
            }
            match std::str::from_utf8(bytes) {
                Ok(text) => ConfigData::Content(text.to_string()),
                Err(_) => {
                    diagnostics.push(entry.error(
                        &path.span(),
                        format!("config file `{}` is not UTF-8 text", path.get_ref()),
                    ));
                    return None;
                }
            }
        }
        (None, Some(content)) if !external => ConfigData::Content(content.get_ref().clone()),
        _ => {
            diagnostics.push(entry.name_error(format!(
                "config `{}` needs exactly one of `file`, `content` or `external = true`",
                entry.name
            )));
            return None;
        }
    };
    Some(Config {
        name: entry.name.clone(),
        group: group(entry, file.origin.as_ref(), diagnostics),
        data,
        labels: plain_map(&file.labels),
        fixed_name,
        template_driver: template_driver(entry, file.template_driver.as_ref(), diagnostics),
    })
}

/// The one template driver Swarm has; anything else it refuses.
fn template_driver<T>(
    entry: &Entry<'_, T>,
    driver: Option<&Spanned<String>>,
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    let driver = driver?;
    if driver.get_ref() == "golang" {
        return Some(driver.get_ref().clone());
    }
    diagnostics.push(
        entry
            .error(
                &driver.span(),
                format!("unknown template driver `{}`", driver.get_ref()),
            )
            .with_help("Swarm has one: \"golang\" (Go templates: {{ .Service.Name }}, {{ env \"VAR\" }}, ...)"),
    );
    None
}

/// A `name` on a config or secret that is not external: the Swarm name of
/// this content, as Swarm allows it (`[a-zA-Z0-9]`, then also `-_.`,
/// ending alphanumeric, at most 64 characters).
fn fixed_name<T>(
    entry: &Entry<'_, T>,
    name: Option<&Spanned<String>>,
    external: bool,
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    let name = name.filter(|_| !external)?;
    let text = name.get_ref();
    let inner_ok = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ends_ok = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if inner_ok && ends_ok && text.len() <= 64 {
        return Some(text.clone());
    }
    diagnostics.push(
        entry
            .error(&name.span(), format!("invalid Swarm name `{text}`"))
            .with_help("letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit, at most 64 characters, as Swarm allows"),
    );
    None
}

fn secret(
    entry: &Entry<'_, SecretFile>,
    assets: &crate::load::Assets,
    keyring: &crate::sealed::Keyring,
    diagnostics: &mut Diagnostics,
) -> Option<Secret> {
    let file = &entry.value;
    check_label_keys(entry, &file.labels, diagnostics);
    let fixed_name = fixed_name(
        entry,
        file.name.as_ref(),
        file.external.unwrap_or(false),
        diagnostics,
    );
    if let (Some(encryption), None) = (&file.encryption, &file.file) {
        diagnostics.push(entry.error(
            &encryption.span(),
            "`encryption` is only for secrets read from a `file`",
        ));
    }
    let data = match (&file.file, file.external.unwrap_or(false)) {
        (Some(path), false) => {
            let bytes = data_file(entry, path, assets, diagnostics)?;
            let value = match &file.encryption {
                None => bytes.to_vec(),
                Some(encryption) => {
                    match keyring.decrypt(
                        *encryption.get_ref(),
                        std::path::Path::new(path.get_ref()),
                        bytes,
                    ) {
                        Ok(plain) => plain,
                        Err(why) => {
                            let mut error = entry.error(
                                &path.span(),
                                format!("cannot decrypt `{}`: {why}", path.get_ref()),
                            );
                            error = match keyring.origin() {
                                Some(origin) => error.with_help(format!(
                                    "decrypting with {origin} (recipient {}); the revision is refused and the last good one stays in force",
                                    keyring.recipients().join(", ")
                                )),
                                None => error.with_help(
                                    "the revision is refused and the last good one stays in force",
                                ),
                            };
                            diagnostics.push(error);
                            return None;
                        }
                    }
                }
            };
            if !check_data(entry, path, &value, true, diagnostics) {
                return None;
            }
            SecretData::File {
                path: path.get_ref().clone(),
                encryption: file.encryption.as_ref().map(|e| *e.get_ref()),
                value: SecretValue::new(value),
            }
        }
        (None, true) => SecretData::External {
            name: file
                .name
                .as_ref()
                .map_or_else(|| entry.name.clone(), |n| n.get_ref().clone()),
        },
        _ => {
            diagnostics.push(entry.name_error(format!(
                "secret `{}` needs exactly one of `file` or `external = true`",
                entry.name
            )));
            return None;
        }
    };
    Some(Secret {
        name: entry.name.clone(),
        group: group(entry, file.origin.as_ref(), diagnostics),
        data,
        labels: plain_map(&file.labels),
        fixed_name,
        template_driver: template_driver(entry, file.template_driver.as_ref(), diagnostics),
    })
}

/// `network_aliases`: each key one of the service's `networks`, each alias a
/// DNS name (no spaces, not empty).
fn network_aliases(
    entry: &Entry<'_, Box<ServiceFile>>,
    networks: &[Spanned<String>],
    aliases: &BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<String, Vec<String>> {
    for (network, names) in aliases {
        if !networks.iter().any(|n| n.get_ref() == network.get_ref()) {
            diagnostics.push(
                entry
                    .error(
                        &network.span(),
                        format!(
                            "network_aliases names `{}`, which is not one of the service's networks",
                            network.get_ref()
                        ),
                    )
                    .with_help("add it to `networks`, or remove its aliases"),
            );
        }
        for name in names {
            let text = name.get_ref();
            if text.is_empty() || text.contains(char::is_whitespace) {
                diagnostics
                    .push(entry.error(&name.span(), format!("invalid network alias `{text}`")));
            }
        }
    }
    aliases
        .iter()
        .map(|(network, names)| {
            (
                network.get_ref().clone(),
                names.iter().map(|n| n.get_ref().clone()).collect(),
            )
        })
        .collect()
}

/// A rule for one value (`validate::check_*`).
type ValueCheck = fn(&str) -> Result<(), validate::ValueError>;

fn plain_list(items: &[Spanned<String>]) -> Vec<String> {
    items.iter().map(|i| i.get_ref().clone()).collect()
}

/// Capabilities as the docker CLI sends them (`opts.EffectiveCapAddCapDrop`):
/// upper case with a `CAP_` prefix (`ALL` stays), sorted, no duplicates,
/// `ALL` alone when present, and one both added and dropped only added.
fn effective_capabilities(
    add: &[Spanned<String>],
    drop: &[Spanned<String>],
) -> (Vec<String>, Vec<String>) {
    let normalize = |list: &[Spanned<String>]| -> std::collections::BTreeSet<String> {
        let set: std::collections::BTreeSet<String> = list
            .iter()
            .map(|c| {
                let c = c.get_ref().trim().to_uppercase();
                if c == "ALL" || c.starts_with("CAP_") {
                    c
                } else {
                    format!("CAP_{c}")
                }
            })
            .collect();
        if set.contains("ALL") {
            std::collections::BTreeSet::from(["ALL".to_string()])
        } else {
            set
        }
    };
    let add = normalize(add);
    let drop = normalize(drop);
    let drop = drop.difference(&add).cloned().collect();
    (add.into_iter().collect(), drop)
}

/// One `[service.NAME]`. The file struct is taken apart without `..`, so a
/// field added to the file format does not compile until it is lowered here.
#[allow(
    clippy::too_many_lines,
    reason = "a line or two per field of the file format: the destructuring is the checklist"
)]
fn service(entry: &Entry<'_, Box<ServiceFile>>, diagnostics: &mut Diagnostics) -> Service {
    let ServiceFile {
        image,
        replicas,
        mode,
        command,
        args,
        env,
        unset_env,
        user,
        workdir,
        hostname,
        init,
        read_only,
        tty,
        stdin_open,
        stop_signal,
        stop_grace_period,
        groups,
        cap_add,
        cap_drop,
        sysctls,
        extra_hosts,
        dns,
        dns_search,
        ulimits,
        logging,
        endpoint_mode,
        max_replicas_per_node,
        networks,
        configs,
        secrets,
        network_aliases: aliases,
        ports,
        constraints,
        preferences,
        mounts,
        resources: resources_file,
        update,
        rollback,
        healthcheck: healthcheck_file,
        restart,
        after,
        labels,
        container_labels,
        origin,
    } = &*entry.value;
    let checks: [(&[Spanned<String>], ValueCheck); 3] = [
        (extra_hosts, validate::check_extra_host),
        (dns, validate::check_dns_server),
        (dns_search, validate::check_dns_search),
    ];
    for (values, check) in checks {
        for value in values {
            if let Err(problem) = check(value.get_ref()) {
                diagnostics.push(entry.error(&value.span(), problem.to_string()));
            }
        }
    }
    if let Some(hostname) = hostname {
        if let Err(problem) = validate::check_one_line("hostname", hostname.get_ref()) {
            diagnostics.push(entry.error(&hostname.span(), problem.to_string()));
        }
    }
    for group in groups {
        // A group is looked up in the container's /etc/group when it starts;
        // no name with a blank, a colon or a control character can be there.
        let name = group.get_ref();
        if name.is_empty()
            || name
                .chars()
                .any(|c| c == ':' || c.is_whitespace() || c.is_control())
        {
            diagnostics.push(entry.error(
                &group.span(),
                format!("group {name:?} is not a group name or number"),
            ));
        }
    }
    let (cap_add, cap_drop) = effective_capabilities(cap_add, cap_drop);
    check_image(entry, image, diagnostics);
    check_not_empty(entry, diagnostics);
    for key in env.keys().chain(unset_env) {
        if key.get_ref().is_empty() || key.get_ref().contains('=') {
            diagnostics.push(entry.error(
                &key.span(),
                format!("invalid environment variable name `{}`", key.get_ref()),
            ));
        }
    }
    for name in unset_env {
        if env.keys().any(|k| k.get_ref() == name.get_ref()) {
            diagnostics.push(entry.error(
                &name.span(),
                format!("`{}` is both in `env` and in `unset_env`", name.get_ref()),
            ));
        }
    }
    check_label_keys(entry, labels, diagnostics);
    check_label_keys(entry, container_labels, diagnostics);
    if let Some(count) = replicas.as_ref().filter(|r| *r.get_ref() > MAX_REPLICAS) {
        diagnostics.push(
            entry
                .error(
                    &count.span(),
                    format!(
                        "{} replicas is more than the {MAX_REPLICAS} a service may ask for",
                        count.get_ref()
                    ),
                )
                .with_help("a typo? Swarm would try to schedule every one of them"),
        );
    }
    for port in ports {
        let PortFile {
            target, published, ..
        } = port.get_ref();
        if *target == 0 || *published == Some(0) {
            diagnostics.push(
                entry
                    .error(
                        &port.span(),
                        "port 0 is not a port: `target` and `published` are 1 to 65535",
                    )
                    .with_help("leave `published` out to let Swarm pick one"),
            );
        }
    }
    let mut targets: BTreeMap<&str, &Spanned<MountFile>> = BTreeMap::new();
    for mount in mounts {
        let target = mount.get_ref().target.as_str();
        if let Some(first) = targets.insert(target, mount) {
            diagnostics.push(
                entry
                    .error(&mount.span(), format!("two mounts at `{target}`"))
                    .with_help(format!(
                        "the other is at {}",
                        entry.source.span_location(&first.span())
                    )),
            );
        }
    }
    for constraint in constraints {
        if let Err(problem) = check_constraint(constraint.get_ref()) {
            diagnostics.push(entry.error(&constraint.span(), problem.to_string()));
        }
    }
    let mut spread = Vec::new();
    for preference in preferences {
        match check_preference(preference.get_ref()) {
            Ok(path) => spread.push(path),
            Err(problem) => diagnostics.push(entry.error(&preference.span(), problem.to_string())),
        }
    }
    Service {
        name: entry.name.clone(),
        group: group(entry, origin.as_ref(), diagnostics),
        image: image.get_ref().trim().to_string(),
        mode: service_mode(entry, mode.as_ref(), replicas.as_ref(), diagnostics),
        command: command.clone(),
        args: args.clone(),
        env: plain_map(env),
        unset_env: unset_env.iter().map(|n| n.get_ref().clone()).collect(),
        user: user.clone(),
        workdir: workdir.clone(),
        hostname: hostname.as_ref().map(|h| h.get_ref().clone()),
        init: *init,
        read_only: *read_only,
        tty: *tty,
        stdin_open: *stdin_open,
        stop_signal: stop_signal.clone(),
        stop_grace_period: duration(entry, stop_grace_period.as_ref(), diagnostics),
        groups: plain_list(groups),
        cap_add,
        cap_drop,
        sysctls: plain_map(sysctls),
        extra_hosts: plain_list(extra_hosts),
        dns: plain_list(dns),
        dns_search: plain_list(dns_search),
        ulimits: ulimits
            .iter()
            .map(|(name, limit)| {
                let (soft, hard) = match limit {
                    UlimitFile::Single(n) => (*n, *n),
                    UlimitFile::Pair { soft, hard } => (*soft, *hard),
                };
                (name.get_ref().clone(), Ulimit { soft, hard })
            })
            .collect(),
        logging: logging.as_ref().map(|l| Logging {
            driver: l.driver.clone(),
            options: l.options.clone(),
        }),
        endpoint_mode: endpoint_mode.map(|m| match m {
            EndpointModeFile::Vip => EndpointMode::Vip,
            EndpointModeFile::Dnsrr => EndpointMode::Dnsrr,
        }),
        max_replicas_per_node: *max_replicas_per_node,
        networks: plain_list(networks),
        configs: file_refs(configs),
        secrets: file_refs(secrets),
        network_aliases: network_aliases(entry, networks, aliases, diagnostics),
        ports: ports.iter().map(|p| port(p.get_ref())).collect(),
        constraints: constraints
            .iter()
            .map(|c| c.get_ref().trim().to_string())
            .collect(),
        preferences: spread,
        mounts: mounts
            .iter()
            .map(|m| mount(entry, m, diagnostics))
            .collect(),
        resources: resources_file
            .as_ref()
            .map(|r| resources(entry, r, diagnostics))
            .unwrap_or_default(),
        update: update
            .as_ref()
            .map(|u| update_policy(entry, u, PolicyKind::Update, diagnostics)),
        rollback: rollback
            .as_ref()
            .map(|u| update_policy(entry, u, PolicyKind::Rollback, diagnostics)),
        healthcheck: healthcheck_file
            .as_ref()
            .map(|h| healthcheck(entry, h, diagnostics)),
        restart: restart
            .as_ref()
            .map(|r| restart_policy(entry, r, diagnostics)),
        after: after.iter().map(|a| a.get_ref().clone()).collect(),
        labels: plain_map(labels),
        container_labels: plain_map(container_labels),
    }
}

fn check_image(
    entry: &Entry<'_, Box<ServiceFile>>,
    image: &Spanned<String>,
    diagnostics: &mut Diagnostics,
) {
    let text = image.get_ref().trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        diagnostics.push(entry.error(
            &image.span(),
            format!("invalid image reference `{}`", image.get_ref()),
        ));
    }
}

/// Docker stores an empty list or string as "not set", so these would read
/// back as absent and look changed on every reconcile.
fn check_not_empty(entry: &Entry<'_, Box<ServiceFile>>, diagnostics: &mut Diagnostics) {
    let file = &entry.value;
    let empty_fields = [
        (
            "command",
            file.command.as_ref().is_some_and(Vec::is_empty),
            "the image's entrypoint",
        ),
        (
            "args",
            file.args.as_ref().is_some_and(Vec::is_empty),
            "the image's CMD",
        ),
        (
            "user",
            file.user.as_ref().is_some_and(String::is_empty),
            "the image's user",
        ),
        (
            "workdir",
            file.workdir.as_ref().is_some_and(String::is_empty),
            "the image's working directory",
        ),
    ];
    for (field, empty, fallback) in empty_fields {
        if empty {
            diagnostics.push(entry.name_error(format!(
                "service {}: `{field}` must not be empty; leave it out to use {fallback}",
                entry.name
            )));
        }
    }
}

fn service_mode(
    entry: &Entry<'_, Box<ServiceFile>>,
    mode: Option<&Spanned<ServiceModeFile>>,
    replicas: Option<&Spanned<u64>>,
    diagnostics: &mut Diagnostics,
) -> ServiceMode {
    let global = |job: bool| {
        if job {
            ServiceMode::GlobalJob
        } else {
            ServiceMode::Global
        }
    };
    match (mode.map(|m| *m.get_ref()), replicas) {
        (Some(file @ (ServiceModeFile::Global | ServiceModeFile::GlobalJob)), Some(replicas)) => {
            let job = file == ServiceModeFile::GlobalJob;
            diagnostics.push(
                entry
                    .error(
                        &replicas.span(),
                        format!(
                            "`replicas` cannot be set together with `mode = \"{}\"`",
                            if job { "global-job" } else { "global" }
                        ),
                    )
                    .with_help(
                        "a global service runs one task on every eligible node; remove `replicas`",
                    ),
            );
            global(job)
        }
        (Some(ServiceModeFile::Global), None) => ServiceMode::Global,
        (Some(ServiceModeFile::GlobalJob), None) => ServiceMode::GlobalJob,
        // As the CLI's `convertDeployMode`: both counts are `replicas`.
        (Some(ServiceModeFile::ReplicatedJob), replicas) => {
            let n = replicas.map_or(1, |r| *r.get_ref());
            ServiceMode::ReplicatedJob {
                max_concurrent: n,
                total_completions: n,
            }
        }
        (_, Some(replicas)) => ServiceMode::Replicated(*replicas.get_ref()),
        (_, None) => ServiceMode::Replicated(1),
    }
}

fn port(file: &PortFile) -> Port {
    let PortFile {
        target,
        published,
        protocol,
        mode,
    } = file;
    Port {
        target: *target,
        published: *published,
        protocol: match protocol {
            Some(ProtocolFile::Tcp) | None => Protocol::Tcp,
            Some(ProtocolFile::Udp) => Protocol::Udp,
            Some(ProtocolFile::Sctp) => Protocol::Sctp,
        },
        mode: match mode {
            Some(PublishModeFile::Ingress) | None => PublishMode::Ingress,
            Some(PublishModeFile::Host) => PublishMode::Host,
        },
    }
}

fn restart_policy(
    entry: &Entry<'_, Box<ServiceFile>>,
    file: &RestartFile,
    diagnostics: &mut Diagnostics,
) -> RestartPolicy {
    let RestartFile {
        condition,
        delay,
        max_attempts,
        window,
    } = file;
    RestartPolicy {
        condition: condition.map(|c| match c {
            RestartConditionFile::None => RestartCondition::None,
            RestartConditionFile::OnFailure => RestartCondition::OnFailure,
            RestartConditionFile::Any => RestartCondition::Any,
        }),
        delay: duration(entry, delay.as_ref(), diagnostics),
        max_attempts: *max_attempts,
        window: duration(entry, window.as_ref(), diagnostics),
    }
}

fn mount(
    entry: &Entry<'_, Box<ServiceFile>>,
    spanned: &Spanned<MountFile>,
    diagnostics: &mut Diagnostics,
) -> Mount {
    let m = spanned.get_ref();
    let kind = match m.kind {
        MountKindFile::Bind => MountKind::Bind,
        MountKindFile::Volume => MountKind::Volume,
        MountKindFile::Tmpfs => MountKind::Tmpfs,
    };
    match (kind, &m.source) {
        (MountKind::Bind, None) => diagnostics.push(entry.error(
            &spanned.span(),
            "a bind mount needs `source`, the path on the node",
        )),
        (MountKind::Bind, Some(s)) if !s.starts_with('/') => diagnostics.push(entry.error(
            &spanned.span(),
            format!("bind mount source `{s}` must be an absolute path on the node"),
        )),
        (MountKind::Tmpfs, Some(_)) => {
            diagnostics.push(entry.error(&spanned.span(), "a tmpfs mount takes no `source`"))
        }
        _ => {}
    }
    let volume = VolumeOptions {
        driver: m.driver.clone(),
        driver_options: m.driver_options.clone(),
        labels: m.volume_labels.clone(),
        nocopy: m.nocopy.unwrap_or(false),
    };
    if kind != MountKind::Volume && !volume.is_empty() {
        diagnostics.push(entry.error(
            &spanned.span(),
            "`driver`, `driver_options`, `volume_labels` and `nocopy` are for volume mounts",
        ));
    }
    if !m.target.starts_with('/') {
        diagnostics.push(entry.error(
            &spanned.span(),
            format!(
                "mount target `{}` must be an absolute path in the container",
                m.target
            ),
        ));
    }
    let tmpfs_size = m.size.as_ref().and_then(|size| {
        if kind != MountKind::Tmpfs {
            diagnostics.push(entry.error(&spanned.span(), "`size` is for tmpfs mounts"));
            return None;
        }
        match crate::units::parse_size(size) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                diagnostics.push(entry.error(&spanned.span(), error.to_string()));
                None
            }
        }
    });
    Mount {
        kind,
        source: m.source.clone(),
        target: m.target.clone(),
        readonly: m.readonly.unwrap_or(false),
        volume,
        tmpfs_size,
    }
}

/// Docker starts no container with a memory limit below 6 MiB: the service
/// is created, but every task is rejected ("Minimum memory limit allowed is 6MB").
pub(crate) const MIN_MEMORY_LIMIT: u64 = 6 << 20;
/// Swarm refuses a memory reservation below 4 MiB when the service is written.
pub(crate) const MIN_MEMORY_RESERVATION: u64 = 4 << 20;
/// The most replicas a service may ask for: more is a typo, and Swarm would
/// try to schedule every one.
pub(crate) const MAX_REPLICAS: u64 = 10_000;

/// Swarm refuses fewer than 0.001 CPUs (one million nano-CPUs).
pub(crate) const MIN_NANO_CPUS: i64 = 1_000_000;

fn resources(
    entry: &Entry<'_, Box<ServiceFile>>,
    file: &ResourcesFile,
    diagnostics: &mut Diagnostics,
) -> Resources {
    let memory = |value: Option<&Spanned<String>>,
                  minimum: u64,
                  why: &str,
                  diagnostics: &mut Diagnostics| {
        let bytes = size(entry, value, diagnostics)?;
        if bytes < minimum {
            if let Some(value) = value {
                diagnostics.push(
                    entry
                        .error(
                            &value.span(),
                            format!(
                                "memory `{}` is below Docker's minimum of {}M: {why}",
                                value.get_ref(),
                                minimum >> 20
                            ),
                        )
                        .with_help(format!("use at least \"{}M\"", minimum >> 20)),
                );
            }
        }
        Some(bytes)
    };
    Resources {
        limit_memory: memory(
            file.limit_memory.as_ref(),
            MIN_MEMORY_LIMIT,
            "the tasks would be rejected",
            diagnostics,
        ),
        reserve_memory: memory(
            file.reserve_memory.as_ref(),
            MIN_MEMORY_RESERVATION,
            "Swarm refuses the service",
            diagnostics,
        ),
        limit_nano_cpus: cpus(entry, file.limit_cpus.as_ref(), diagnostics),
        reserve_nano_cpus: cpus(entry, file.reserve_cpus.as_ref(), diagnostics),
        reserve_generic: file
            .reserve_generic
            .iter()
            .filter_map(|resource| {
                let GenericResourceFile { kind, value } = resource.get_ref();
                // Swarm takes 0 (the task still needs a node advertising the kind).
                if kind.is_empty() || *value < 0 {
                    diagnostics.push(
                        entry
                            .error(
                                &resource.span(),
                                "a generic resource needs a `kind` and a `value` of at least 0",
                            )
                            .with_help(
                                "e.g. { kind = \"gpu\", value = 1 }, as the nodes advertise it",
                            ),
                    );
                    return None;
                }
                Some((kind.clone(), *value))
            })
            .collect(),
    }
}

/// `update` and `rollback` share a shape but not every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyKind {
    Update,
    Rollback,
}

fn update_policy(
    entry: &Entry<'_, Box<ServiceFile>>,
    file: &UpdateFile,
    kind: PolicyKind,
    diagnostics: &mut Diagnostics,
) -> UpdatePolicy {
    if let Some(action) = &file.failure_action {
        if kind == PolicyKind::Rollback && matches!(action.get_ref(), FailureActionFile::Rollback) {
            diagnostics.push(
                entry
                    .error(
                        &action.span(),
                        "rollback.failure_action cannot be \"rollback\": a failed rollback can only `pause` or `continue`",
                    )
                    .with_help("Docker's rollback_config takes failure_action = \"pause\" or \"continue\""),
            );
        }
    }
    if let Some(ratio) = &file.max_failure_ratio {
        if !(0.0..=1.0).contains(ratio.get_ref()) {
            diagnostics.push(entry.error(
                &ratio.span(),
                "max_failure_ratio must be between 0.0 and 1.0",
            ));
        }
    }
    UpdatePolicy {
        parallelism: file.parallelism,
        delay: duration(entry, file.delay.as_ref(), diagnostics),
        failure_action: file.failure_action.as_ref().map(|a| match a.get_ref() {
            FailureActionFile::Pause => FailureAction::Pause,
            FailureActionFile::Continue => FailureAction::Continue,
            FailureActionFile::Rollback => FailureAction::Rollback,
        }),
        monitor: duration(entry, file.monitor.as_ref(), diagnostics),
        max_failure_ratio: file.max_failure_ratio.as_ref().map(|r| *r.get_ref()),
        order: file.order.map(|o| match o {
            UpdateOrderFile::StopFirst => UpdateOrder::StopFirst,
            UpdateOrderFile::StartFirst => UpdateOrder::StartFirst,
        }),
    }
}

fn healthcheck(
    entry: &Entry<'_, Box<ServiceFile>>,
    spanned: &Spanned<HealthcheckFile>,
    diagnostics: &mut Diagnostics,
) -> Healthcheck {
    let file = spanned.get_ref();
    let valid_kind = matches!(
        file.test.first().map(String::as_str),
        Some("CMD" | "CMD-SHELL" | "NONE")
    );
    if !valid_kind {
        diagnostics.push(
            entry
                .error(
                    &spanned.span(),
                    "healthcheck `test` must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"",
                )
                .with_help(
                    "for example test = [\"CMD\", \"wget\", \"-qO-\", \"http://localhost/\"]",
                ),
        );
    }
    Healthcheck {
        test: file.test.clone(),
        interval: duration(entry, file.interval.as_ref(), diagnostics),
        timeout: duration(entry, file.timeout.as_ref(), diagnostics),
        retries: file.retries,
        start_period: duration(entry, file.start_period.as_ref(), diagnostics),
    }
}

fn duration<T>(
    entry: &Entry<'_, T>,
    value: Option<&Spanned<String>>,
    diagnostics: &mut Diagnostics,
) -> Option<Duration> {
    let value = value?;
    let parsed = parse_duration(value.get_ref()).and_then(|d| {
        if i64::try_from(d.as_nanos()).is_ok() {
            Ok(d)
        } else {
            Err(UnitError::DurationTooLong(value.get_ref().clone()))
        }
    });
    parse_or_report(entry, value.span(), parsed, diagnostics)
}

fn size<T>(
    entry: &Entry<'_, T>,
    value: Option<&Spanned<String>>,
    diagnostics: &mut Diagnostics,
) -> Option<u64> {
    let value = value?;
    parse_or_report(
        entry,
        value.span(),
        parse_size(value.get_ref()),
        diagnostics,
    )
}

fn cpus<T>(
    entry: &Entry<'_, T>,
    value: Option<&Spanned<f64>>,
    diagnostics: &mut Diagnostics,
) -> Option<i64> {
    let value = value?;
    let cpus = *value.get_ref();
    if !(cpus > 0.0 && cpus <= 1024.0) {
        diagnostics.push(entry.error(
            &value.span(),
            format!("cpus must be a positive number of CPUs, got {cpus}"),
        ));
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "in range by the check above; nano-CPUs are whole numbers"
    )]
    let nano = (cpus * 1e9).round() as i64;
    if nano < MIN_NANO_CPUS {
        diagnostics.push(
            entry
                .error(
                    &value.span(),
                    format!("cpus {cpus} is below Swarm's minimum of 0.001"),
                )
                .with_help("use at least 0.001"),
        );
    }
    Some(nano)
}

/// The group of an entry: the release or stack that produced it, or the
/// `origin` written by `reconciler render` (`"release.NAME"`, `"stack.NAME"`).
fn group<T>(
    entry: &Entry<'_, T>,
    origin: Option<&Spanned<String>>,
    diagnostics: &mut Diagnostics,
) -> Option<Group> {
    if entry.group.is_some() {
        return entry.group.clone();
    }
    let origin = origin?;
    let parsed = match origin.get_ref().split_once('.') {
        Some(("release", name)) => Some(Group::Release(name.to_string())),
        Some(("stack", name)) => Some(Group::Stack(name.to_string())),
        _ => None,
    };
    let valid = parsed.as_ref().is_some_and(|g| {
        let (Group::Release(name) | Group::Stack(name)) = g;
        crate::validate::check_name(name).is_ok()
    });
    if !valid {
        diagnostics.push(
            entry
                .error(
                    &origin.span(),
                    format!("invalid origin `{}`", origin.get_ref()),
                )
                .with_help("`origin` is written by `reconciler render`: \"release.NAME\" or \"stack.NAME\""),
        );
        return None;
    }
    parsed
}

fn parse_or_report<T, V, E: std::fmt::Display>(
    entry: &Entry<'_, T>,
    span: Range<usize>,
    parsed: Result<V, E>,
    diagnostics: &mut Diagnostics,
) -> Option<V> {
    parsed
        .map_err(|problem| diagnostics.push(entry.error(&span, problem.to_string())))
        .ok()
}

fn check_label_keys<T>(
    entry: &Entry<'_, T>,
    labels: &BTreeMap<Spanned<String>, String>,
    diagnostics: &mut Diagnostics,
) {
    for key in labels.keys() {
        let k = key.get_ref();
        if k.is_empty() || k.contains(char::is_whitespace) || k.contains('=') {
            diagnostics.push(entry.error(&key.span(), format!("invalid label key `{k}`")));
        } else if k.starts_with(crate::RESERVED_LABEL_PREFIX) {
            diagnostics.push(entry.error(
                &key.span(),
                format!(
                    "label `{k}` uses the prefix `{}` reserved for the controller's own labels",
                    crate::RESERVED_LABEL_PREFIX
                ),
            ));
        }
    }
}

fn plain_map(map: &BTreeMap<Spanned<String>, String>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.get_ref().clone(), v.clone()))
        .collect()
}
