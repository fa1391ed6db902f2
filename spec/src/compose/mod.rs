//! Compose v3 stack files, with the meaning `docker stack deploy` gives them.
//!
//! A `[stack.NAME]` entry names a compose file (and optionally an env file).
//! The file is parsed as the CLI parses it ([`yaml`]), its values are
//! interpolated as the CLI interpolates them ([`template`]: `${VAR}`, ... from
//! the process environment and the env file), and translated into a spec fragment
//! of services and networks named `NAME_<service>` as Docker names them; the
//! fragment then goes through the same validation as hand-written TOML.
//! Keys Swarm ignores (`build`, `depends_on`, ...) are warnings; keys this
//! translation does not support yet are errors, never silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, Location};

mod origin;
mod template;
mod yaml;

use crate::file::{
    ConfigFile, EndpointModeFile, FailureActionFile, FileRefFile, GenericResourceFile,
    HealthcheckFile, LoggingFile, MountFile, MountKindFile, NetworkFile, PortFile, ResourcesFile,
    RestartFile, SecretFile, ServiceFile, ServiceModeFile, UlimitFile, UpdateFile,
};
/// A value of the compose file, with where it was written.
use yaml::Node as Yaml;
use yaml::{Map, Value};

/// Keys of a compose service that `docker stack deploy` ignores: the docker
/// CLI's `UnsupportedProperties` and `DeprecatedProperties` (20.10), and
/// keys its converter never reads (`depends_on`, `profiles`, `tmpfs`).
const IGNORED_BY_SWARM: [&str; 21] = [
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
    "container_name",
    "expose",
    "depends_on",
    "profiles",
    "tmpfs",
];

/// The top level of a compose file, split as the CLI's loader reads it.
#[derive(Debug, Default)]
struct ComposeFile<'y> {
    services: BTreeMap<&'y str, &'y Map>,
    /// An entry written without a body (`back:`) is `None`.
    networks: BTreeMap<&'y str, Option<&'y Map>>,
    configs: BTreeMap<&'y str, Option<&'y Map>>,
    secrets: BTreeMap<&'y str, Option<&'y Map>>,
    /// `version`, `volumes`, `x-*` and keys no version has.
    rest: BTreeMap<&'y str, &'y Yaml>,
}

impl<'y> ComposeFile<'y> {
    /// Splits the file's mapping; a section or entry of the wrong shape is
    /// an error at it.
    fn split(root: &'y Map, locator: &Locator<'_>, diagnostics: &mut Diagnostics) -> Option<Self> {
        let before = diagnostics.len();
        let mut problem = |at: yaml::Position, message: String| {
            diagnostics.push(Diagnostic::new(
                locator.at(at),
                format!("compose: {message}"),
            ));
        };
        let mut file = ComposeFile::default();
        for (key, value) in root {
            let entries = match key {
                "services" | "networks" | "configs" | "secrets" => match &value.value {
                    Value::Map(entries) => entries,
                    Value::Null => continue,
                    _ => {
                        problem(value.at, format!("`{key}` must be a mapping of names"));
                        continue;
                    }
                },
                _ => {
                    file.rest.insert(key, value);
                    continue;
                }
            };
            for (name, body) in entries {
                let body = match &body.value {
                    Value::Map(body) => Some(body),
                    Value::Null if key != "services" => None,
                    _ => {
                        problem(body.at, format!("`{key}.{name}` must be a mapping"));
                        continue;
                    }
                };
                match (key, body) {
                    ("services", Some(body)) => {
                        file.services.insert(name, body);
                    }
                    ("networks", body) => {
                        file.networks.insert(name, body);
                    }
                    ("configs", body) => {
                        file.configs.insert(name, body);
                    }
                    (_, body) => {
                        file.secrets.insert(name, body);
                    }
                }
            }
        }
        (diagnostics.len() == before).then_some(file)
    }
}

/// What translating one stack produced: the file format's entries, each
/// with where it and its fields are in the compose file, and warnings.
#[derive(Debug)]
pub(crate) struct Translated {
    pub entries: Vec<Translation>,
    pub warnings: Vec<Diagnostic>,
}

/// One entry of a translated stack, named as in the compose file (the
/// loader adds the stack's prefix).
#[derive(Debug)]
pub(crate) struct Translation {
    pub name: String,
    pub value: TranslatedEntry,
    /// Where the entry's spans point ([`origin`]): the compose keys its
    /// fields came from, the entry itself for anything else.
    pub origins: Vec<(std::ops::Range<usize>, yaml::Position)>,
}

/// The kinds of entry a compose file translates into.
#[derive(Debug)]
pub(crate) enum TranslatedEntry {
    Network(NetworkFile),
    Config(ConfigFile),
    Secret(SecretFile),
    Service(Box<ServiceFile>),
}

/// Where things are in a compose file: the keys' positions in the parsed
/// tree, so a key merged in from an anchor points where it was written.
struct Locator<'a> {
    path: &'a Path,
    root: &'a yaml::Node,
}

impl Locator<'_> {
    fn at_line(&self, line: usize, column: usize) -> Location {
        Location {
            file: self.path.to_path_buf(),
            line,
            column,
        }
    }

    fn at(&self, position: yaml::Position) -> Location {
        self.at_line(position.line, position.column)
    }

    /// The key at `path` from the top, or the deepest key of it that exists;
    /// the file's start when not even the first does.
    fn keys(&self, path: &[&str]) -> Location {
        self.root
            .key_position(path)
            .map_or_else(|| self.at_line(1, 1), |p| self.at(p))
    }

    /// The line of a top-level key.
    fn top(&self, key: &str) -> Location {
        self.keys(&[key])
    }

    /// The line of entry `name` under top-level `section`.
    fn entry(&self, section: &str, name: &str) -> Location {
        self.keys(&[section, name])
    }

    /// The line of `key` inside entry `name` of `section`; the entry's own
    /// line when the key is not there.
    fn in_entry(&self, section: &str, name: &str, key: &str) -> Location {
        self.keys(&[section, name, key])
    }

    /// The line of a nested key (`deploy`, `update_config`, `order`) inside
    /// entry `name` of `section`, or of the deepest one that is there.
    fn path_in_entry(&self, section: &str, name: &str, path: &[&str]) -> Location {
        let full: Vec<&str> = [section, name].iter().chain(path).copied().collect();
        self.keys(&full)
    }

    /// `key` of a service, or a top-level key.
    fn key(&self, service: Option<&str>, key: &str) -> Location {
        match service {
            Some(service) => self.in_entry("services", service, key),
            None => self.top(key),
        }
    }
}

/// Parses `KEY=VALUE` lines (comments, blank lines and `export ` allowed; quotes stripped).
pub(crate) fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), unquoted.to_string())
        })
        .collect()
}

/// Reads one compose file as the docker CLI does (YAML, then `${VAR}`
/// substituted in its values) and translates it into the spec's file
/// format; names are prefixed with the stack name later, by the loader.
///
/// The entries are the file format's own types ([`ServiceFile`],
/// [`NetworkFile`]), handed to the loader as values: the spec's keys are
/// never spelled here, and a field added to the file format does not
/// compile until this translation fills it and [`origin::service`] says
/// which compose key it comes from.
pub(crate) fn translate(
    stack: &str,
    path: &Path,
    text: &str,
    assets: &crate::load::Assets,
    lookup: &dyn Fn(&str) -> Option<String>,
    diagnostics: &mut Diagnostics,
) -> Option<Translated> {
    let mut warnings = Vec::new();
    let root = read(path, text, lookup, &mut warnings, diagnostics)?;
    let locator = Locator { path, root: &root };
    let top = root.as_map()?;
    let file = ComposeFile::split(top, &locator, diagnostics)?;
    check_version(&file, &locator, diagnostics);
    check_volume_declarations(&file, &locator, diagnostics);
    for key in file.rest.keys() {
        match *key {
            "version" | "volumes" => {}
            k if k.starts_with("x-") => {}
            other => diagnostics.push(Diagnostic::new(
                locator.key(None, other),
                format!(
                    "compose: top-level {}",
                    unread_key("", other, &SCHEMA_TOP_KEYS)
                ),
            )),
        }
    }
    let context = Context {
        stack,
        path,
        file: &file,
        assets,
        locator: &locator,
        lookup,
    };
    let mut services = BTreeMap::new();
    for (name, keys) in &file.services {
        if let Some(service) = context.service(name, keys, &mut warnings, diagnostics) {
            services.insert(name.to_string(), service);
        }
    }
    let networks = context.networks(&services, diagnostics);
    let (config, secret) = context.data(diagnostics);
    let mut entries = Vec::new();
    let mut add = |section: &str, name: String, value: TranslatedEntry| {
        let entry = locator.root.get(section).and_then(|s| s.get(&name));
        let entry_at = locator
            .root
            .key_position(&[section, &name])
            .unwrap_or(yaml::Position { line: 1, column: 1 });
        let locate = |path: &[&str]| entry.and_then(|e| e.key_position(path)).unwrap_or(entry_at);
        let mut origins = origin::Origins::new(&locate);
        let value = match value {
            TranslatedEntry::Service(service) => {
                TranslatedEntry::Service(Box::new(origin::service(*service, &mut origins)))
            }
            other => other,
        };
        let origins = origins.finish(entry_at);
        entries.push(Translation {
            name,
            value,
            origins,
        });
    };
    for (name, network) in networks {
        add("networks", name, TranslatedEntry::Network(network));
    }
    for (name, config) in config {
        add("configs", name, TranslatedEntry::Config(config));
    }
    for (name, secret) in secret {
        add("secrets", name, TranslatedEntry::Secret(secret));
    }
    for (name, service) in services {
        add(
            "services",
            name,
            TranslatedEntry::Service(Box::new(service)),
        );
    }
    Some(Translated { entries, warnings })
}

/// The file's YAML as the CLI reads it, with `${VAR}` substituted in its values.
fn read(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) -> Option<yaml::Node> {
    let mut root = match yaml::parse(text) {
        Ok(root) => root,
        Err(error) => {
            diagnostics.push(Diagnostic::new(
                Location {
                    file: path.to_path_buf(),
                    line: error.at.line,
                    column: error.at.column,
                },
                format!("compose file: {error}"),
            ));
            return None;
        }
    };
    let before = diagnostics.len();
    template::interpolate(path, &mut root, lookup, warnings, diagnostics);
    (diagnostics.len() == before).then_some(root)
}

/// A bind source `~/...` while `HOME` is not in the environment the loader reads.
#[derive(Debug, thiserror::Error)]
#[error("volume source `{path}`: `~` needs HOME, which is not in the environment reconciler reads (under `run`, --allow-env HOME); use an absolute path")]
struct HomeUnknown {
    /// The source as written.
    path: String,
}

/// What every part of one translation needs to know.
struct Context<'a> {
    stack: &'a str,
    path: &'a Path,
    file: &'a ComposeFile<'a>,
    assets: &'a crate::load::Assets,
    locator: &'a Locator<'a>,
    /// Values of bare `environment` names (the loader's policy).
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// A value as the file format holds it; translated text has no source spans.
fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn spanned_map(pairs: Vec<(String, String)>) -> BTreeMap<Spanned<String>, String> {
    pairs.into_iter().map(|(k, v)| (spanned(k), v)).collect()
}

/// One of the file format's enums from the compose text (`"udp"`, `"start-first"`).
fn variant<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text))
        .map_err(|e| e.to_string())
}

/// A compose duration (`10s`, `1m30s`), checked here so the problem points at the compose file.
fn duration_text(value: &Yaml, what: &str) -> Result<Spanned<String>, String> {
    let text = scalar(value).unwrap_or_default();
    crate::units::parse_duration(&text).map_err(|m| format!("{what}: {m}"))?;
    Ok(spanned(text))
}

fn count(value: &Yaml, what: &str) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{what} must be a whole number"))
}

/// A service being translated: everything but `image` may stay unset.
#[derive(Default)]
struct Draft {
    image: Option<String>,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    /// `None`: a bare name the environment does not set (unset in the containers).
    env: BTreeMap<String, Option<String>>,
    user: Option<String>,
    workdir: Option<String>,
    container_labels: BTreeMap<String, String>,
    ports: Vec<PortFile>,
    /// Each network with the aliases the file gives the service there.
    networks: Option<Attachments>,
    configs: Vec<FileRefFile>,
    secrets: Vec<FileRefFile>,
    options: ContainerOptions,
    mounts: Vec<MountFile>,
    healthcheck: Option<HealthcheckFile>,
    deploy: Deploy,
}

/// Container settings a compose service may set, in the file format's types.
#[derive(Default)]
struct ContainerOptions {
    hostname: Option<String>,
    init: Option<bool>,
    read_only: Option<bool>,
    tty: Option<bool>,
    stdin_open: Option<bool>,
    stop_signal: Option<String>,
    stop_grace_period: Option<String>,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    sysctls: BTreeMap<String, String>,
    extra_hosts: Vec<String>,
    dns: Vec<String>,
    dns_search: Vec<String>,
    ulimits: BTreeMap<String, UlimitFile>,
    logging: Option<LoggingFile>,
}

impl ContainerOptions {
    /// Takes `key` if it is a container setting; `None` when it is not one.
    fn take(&mut self, key: &str, value: &Yaml) -> Option<Result<(), String>> {
        let text = || scalar(value).ok_or(format!("`{key}` must be a string"));
        let flag = || {
            value
                .as_bool()
                .ok_or(format!("`{key}` must be true or false"))
        };
        let list = || {
            string_or_list(value).ok_or(format!("`{key}` must be a string or a list of strings"))
        };
        let result = match key {
            "hostname" => text().map(|v| self.hostname = Some(v)),
            "init" => flag().map(|v| self.init = Some(v)),
            "read_only" => flag().map(|v| self.read_only = Some(v)),
            "tty" => flag().map(|v| self.tty = Some(v)),
            "stdin_open" => flag().map(|v| self.stdin_open = Some(v)),
            "stop_signal" => text().map(|v| self.stop_signal = Some(v)),
            "stop_grace_period" => text().map(|v| self.stop_grace_period = Some(v)),
            "cap_add" => list().map(|v| self.cap_add = v),
            "cap_drop" => list().map(|v| self.cap_drop = v),
            "sysctls" => key_values(value)
                .ok_or(format!("`{key}` must be a list of KEY=VALUE or a map"))
                .map(|pairs| self.sysctls = pairs.into_iter().collect()),
            "dns" => list().map(|v| self.dns = v),
            "dns_search" => list().map(|v| self.dns_search = v),
            "ulimits" => ulimits(value).map(|v| self.ulimits = v),
            "logging" => logging(value).map(|v| self.logging = Some(v)),
            _ => return None,
        };
        Some(result)
    }
}

/// `ulimits:` as a map of name to a number or to `soft`/`hard`.
fn ulimits(value: &Yaml) -> Result<BTreeMap<String, UlimitFile>, String> {
    let Value::Map(map) = &value.value else {
        return Err("`ulimits` must be a map".into());
    };
    let number = |v: &Yaml| v.as_i64().ok_or("`ulimits` values are numbers".to_string());
    map.iter()
        .map(|(name, limit)| {
            let name = name.to_string();
            let limit = match &limit.value {
                Value::Map(pair) => UlimitFile::Pair {
                    soft: number(pair.get("soft").ok_or("a ulimit needs `soft`")?)?,
                    hard: number(pair.get("hard").ok_or("a ulimit needs `hard`")?)?,
                },
                _ => UlimitFile::Single(number(limit)?),
            };
            Ok((name, limit))
        })
        .collect()
}

/// `logging:` with `driver` and `options`.
fn logging(value: &Yaml) -> Result<LoggingFile, String> {
    let Value::Map(map) = &value.value else {
        return Err("`logging` must be a mapping".into());
    };
    let mut out = LoggingFile {
        driver: String::new(),
        options: BTreeMap::new(),
    };
    for (key, value) in map {
        match key {
            "driver" => {
                out.driver = scalar(value).ok_or("`logging.driver` must be a name")?;
            }
            "options" => {
                out.options = key_values(value)
                    .ok_or("`logging.options` must be a map")?
                    .into_iter()
                    .collect();
            }
            _ => return Err("`logging` takes `driver` and `options`".into()),
        }
    }
    // The CLI sends an empty driver name when only options are given; so do we.
    Ok(out)
}

/// `extra_hosts:` as the CLI's `transformHostsList` reads it: a list entry
/// is cut at its first `=`, else its first `:` (an entry with neither is
/// dropped, as the CLI drops it: returned apart, to warn); a map gives
/// `host:ip` per entry without a null value, sorted as text; brackets
/// around an IPv6 address go.
fn extra_hosts(value: &Yaml) -> Result<(Vec<String>, Vec<String>), String> {
    let mut dropped = Vec::new();
    let pairs: Vec<(String, String)> = match &value.value {
        Value::Seq(items) => items
            .iter()
            .map(|i| {
                scalar(i)
                    .ok_or_else(|| "`extra_hosts` entries are `host:ip` or `host=ip`".to_string())
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter_map(|entry| {
                let pair = entry
                    .split_once('=')
                    .or_else(|| entry.split_once(':'))
                    .map(|(host, ip)| (host.to_string(), ip.to_string()));
                if pair.is_none() {
                    dropped.push(entry);
                }
                pair
            })
            .collect(),
        Value::Map(map) => {
            let mut pairs = map
                .iter()
                .filter(|(_, ip)| !ip.is_null())
                .map(|(host, ip)| match scalar(ip) {
                    Some(ip) => Ok((host.to_string(), ip)),
                    _ => Err("`extra_hosts` maps a host to an ip".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            pairs.sort_by_key(|(host, ip)| format!("{host}:{ip}"));
            pairs
        }
        _ => return Err("`extra_hosts` must be a list of host:ip or a map".into()),
    };
    let kept = pairs
        .into_iter()
        .map(|(host, ip)| {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .filter(|i| !i.is_empty())
                .unwrap_or(&ip);
            format!("{host}:{ip}")
        })
        .collect();
    Ok((kept, dropped))
}

/// A string (one item) or a list of strings.
fn string_or_list(value: &Yaml) -> Option<Vec<String>> {
    match &value.value {
        Value::Seq(items) => items.iter().map(scalar).collect(),
        Value::String(text) => Some(vec![text.clone()]),
        _ => None,
    }
}

/// What `deploy:` sets.
#[derive(Default)]
struct Deploy {
    mode: Option<ServiceModeFile>,
    replicas: Option<u64>,
    labels: BTreeMap<String, String>,
    constraints: Vec<String>,
    preferences: Vec<String>,
    resources: Option<ResourcesFile>,
    update: Option<UpdateFile>,
    rollback: Option<UpdateFile>,
    restart: Option<RestartFile>,
    endpoint_mode: Option<EndpointModeFile>,
    max_replicas_per_node: Option<u64>,
}

impl Context<'_> {
    /// One compose service as a spec service; `None` when it has no image.
    fn service(
        &self,
        name: &str,
        keys: &Map,
        warnings: &mut Vec<Diagnostic>,
        diagnostics: &mut Diagnostics,
    ) -> Option<ServiceFile> {
        let mut draft = Draft::default();
        for (key, value) in keys {
            // Found only when something is said about the key.
            let location = || self.locator.key(Some(name), key);
            let result = if IGNORED_BY_SWARM.contains(&key) {
                warnings.push(Diagnostic::warning(
                    location(),
                    format!("compose: service `{name}`: `{key}` is ignored by docker stack deploy, and by reconciler"),
                ));
                Ok(())
            } else if key == "networks" {
                service_networks(value).map(|(networks, ignored)| {
                    for key in ignored {
                        warnings.push(Diagnostic::warning(
                            location(),
                            format!("compose: service `{name}`: `networks.{key}` is ignored by docker stack deploy, and by reconciler"),
                        ));
                    }
                    draft.networks = Some(networks);
                })
            } else if key == "extra_hosts" {
                extra_hosts(value).map(|(kept, dropped)| {
                    for entry in dropped {
                        warnings.push(Diagnostic::warning(
                            location(),
                            format!("compose: service `{name}`: extra_hosts entry `{entry}` has no `=` or `:` and is dropped, as docker stack deploy drops it"),
                        ));
                    }
                    draft.options.extra_hosts = kept;
                })
            } else if key == "volumes" {
                mounts(value, self.stack, &self.file.rest).and_then(|mounts| {
                    draft.mounts = self
                        .expand_home(mounts, &location(), name, warnings)
                        .map_err(|e| e.to_string())?;
                    Ok(())
                })
            } else if key == "deploy" {
                self.deploy(value, &mut draft.deploy, &mut |path, message| {
                    let keys: Vec<&str> = ["deploy"].iter().chain(path).copied().collect();
                    diagnostics.push(Diagnostic::new(
                        self.locator.path_in_entry("services", name, &keys),
                        format!("compose: service `{name}`: {message}"),
                    ));
                });
                if rollback_never_rolls_back(&mut draft.deploy) {
                    warnings.push(Diagnostic::warning(
                        self.locator.path_in_entry(
                            "services",
                            name,
                            &["deploy", "rollback_config", "failure_action"],
                        ),
                        format!("compose: service `{name}`: a failed rollback is never rolled back: Docker pauses it, so reconciler writes `failure_action: pause` (docker stack deploy writes `rollback`, which Docker treats as `pause`)"),
                    ));
                }
                Ok(())
            } else {
                self.service_key(key, value, &mut draft)
            };
            if let Err(message) = result {
                diagnostics.push(Diagnostic::new(
                    location(),
                    format!("compose: service `{name}`: {message}"),
                ));
            }
        }
        self.assemble(name, draft, diagnostics)
    }

    /// Bind sources starting with `~` get the deploying user's `HOME` for it,
    /// as the CLI's `expandUser` does (with a warning: the path must exist
    /// on the nodes, where that home may not); without `HOME` in the
    /// environment the loader reads, it is refused rather than guessed.
    fn expand_home(
        &self,
        mut mounts: Vec<MountFile>,
        location: &Location,
        service: &str,
        warnings: &mut Vec<Diagnostic>,
    ) -> Result<Vec<MountFile>, HomeUnknown> {
        for mount in &mut mounts {
            let Some(source) = mount.source.as_mut().filter(|s| s.starts_with('~')) else {
                continue;
            };
            if !matches!(mount.kind, MountKindFile::Bind) {
                continue;
            }
            let Some(home) = (self.lookup)("HOME") else {
                return Err(HomeUnknown {
                    path: source.clone(),
                });
            };
            let expanded = source.replacen('~', &home, 1);
            warnings.push(Diagnostic::warning(
                location.clone(),
                format!("compose: service `{service}`: volume source `{source}` is `{expanded}`: `~` is the home of whoever deploys, as for docker stack deploy; that path must exist on the nodes"),
            ));
            *source = expanded;
        }
        Ok(mounts)
    }

    /// One key of a compose service (but `deploy`).
    fn service_key(&self, key: &str, value: &Yaml, draft: &mut Draft) -> Result<(), String> {
        match key {
            "image" => {
                draft.image = Some(value.as_str().ok_or("`image` must be a string")?.into());
            }
            "entrypoint" => {
                draft.command =
                    Some(words(value).ok_or("`entrypoint` must be a string or a list of strings")?);
            }
            "command" => {
                draft.args =
                    Some(words(value).ok_or("`command` must be a string or a list of strings")?);
            }
            "environment" => {
                for (key, value) in self.environment(value)? {
                    let value = self.update_environment(&key, value);
                    draft.env.insert(key, value);
                }
            }
            "env_file" => self.env_files(value, &mut draft.env)?,
            "user" => draft.user = Some(value.as_str().ok_or("`user` must be a string")?.into()),
            "working_dir" => {
                draft.workdir = Some(
                    value
                        .as_str()
                        .ok_or("`working_dir` must be a string")?
                        .into(),
                );
            }
            "labels" => draft
                .container_labels
                .extend(key_values(value).unwrap_or_default()),
            "ports" => draft.ports = ports(value)?,
            "configs" => draft.configs = file_refs(value, "configs", &self.file.configs)?,
            "secrets" => draft.secrets = file_refs(value, "secrets", &self.file.secrets)?,
            "healthcheck" => draft.healthcheck = Some(healthcheck(value)?),
            // Extension fields: the CLI's schema allows `x-*` and reads nothing of them.
            other if other.starts_with("x-") => {}
            other => {
                return draft
                    .options
                    .take(other, value)
                    .unwrap_or_else(|| Err(unread_key("", other, &SCHEMA_SERVICE_KEYS)))
            }
        }
        Ok(())
    }

    /// The CLI's `updateEnvironment`: a variable without a value, or with an
    /// empty one, takes the value the environment gives it when it gives
    /// one (`- TOKEN=` too); a bare name it does not set stays unset.
    fn update_environment(&self, key: &str, value: Option<String>) -> Option<String> {
        match value {
            None => (self.lookup)(key),
            Some(v) if v.is_empty() => Some((self.lookup)(key).unwrap_or(v)),
            set => set,
        }
    }

    /// `env_file:` entries, relative to the compose file; `environment` wins over them.
    fn env_files(
        &self,
        value: &Yaml,
        env: &mut BTreeMap<String, Option<String>>,
    ) -> Result<(), String> {
        let files = match &value.value {
            Value::String(s) => vec![s.clone()],
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        for env_file in files {
            let resolved =
                relative_to(self.path, &env_file).map_err(|e| format!("env_file {e}"))?;
            let bytes = self.assets.get(&resolved).ok_or_else(|| {
                format!(
                    "env_file `{env_file}` not found (looked for {})",
                    resolved.display()
                )
            })?;
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("env_file `{env_file}` is not UTF-8 text"))?;
            for (k, v) in parse_env_file(text) {
                let v = self.update_environment(&k, Some(v));
                env.entry(k).or_insert(v);
            }
        }
        Ok(())
    }

    /// `environment:` as written: a bare `NAME` (list form, or a map entry
    /// without a value) has no value (see [`Self::update_environment`]).
    fn environment(&self, value: &Yaml) -> Result<Vec<(String, Option<String>)>, String> {
        const SHAPE: &str = "`environment` must be a list of KEY=VALUE or a map";
        match &value.value {
            Value::Seq(items) => items
                .iter()
                .map(|item| {
                    let text = scalar(item).ok_or(SHAPE)?;
                    Ok(match text.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (text, None),
                    })
                })
                .collect(),
            Value::Map(map) => map
                .iter()
                .map(|(k, v)| {
                    let key = k.to_string();
                    Ok(match &v.value {
                        Value::Null => (key, None),
                        _ => (key, Some(scalar(v).ok_or(SHAPE)?)),
                    })
                })
                .collect(),
            _ => Err(SHAPE.into()),
        }
    }

    /// The spec service, as `docker stack deploy` would make it. Every field
    /// of [`ServiceFile`] is listed: a new one does not compile until set here.
    #[allow(
        clippy::too_many_lines,
        reason = "a line per field of the file format: the struct literal is the checklist"
    )]
    fn assemble(
        &self,
        name: &str,
        draft: Draft,
        diagnostics: &mut Diagnostics,
    ) -> Option<ServiceFile> {
        let Draft {
            image,
            command,
            args,
            env,
            user,
            workdir,
            mut container_labels,
            ports,
            networks,
            configs,
            secrets,
            options,
            mounts,
            healthcheck,
            deploy,
        } = draft;
        let Some(image) = image else {
            diagnostics.push(Diagnostic::new(
                self.locator.key(Some(name), name),
                format!("compose: service `{name}` has no `image` (swarm cannot build images)"),
            ));
            return None;
        };
        let networks = networks.unwrap_or_else(|| vec![("default".into(), Vec::new())]);
        for (network, _) in networks
            .iter()
            .filter(|(n, _)| n != "default" && !self.file.networks.contains_key(n.as_str()))
        {
            diagnostics.push(Diagnostic::new(
                self.locator.key(Some(name), "networks"),
                format!("compose: service `{name}` uses network `{network}`, which the file does not define under `networks:`"),
            ));
        }
        // As `docker stack deploy` does, so `docker stack ps/services NAME` work:
        // the stack on the service and on its containers, the image as written.
        let mut labels = deploy.labels;
        labels.insert("com.docker.stack.namespace".into(), self.stack.into());
        labels.insert("com.docker.stack.image".into(), image.clone());
        container_labels.insert("com.docker.stack.namespace".into(), self.stack.into());
        Some(ServiceFile {
            image: spanned(with_default_tag(&image)),
            replicas: deploy.replicas.map(spanned),
            mode: deploy.mode.map(spanned),
            command,
            args,
            unset_env: env
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| spanned(k.clone()))
                .collect(),
            env: spanned_map(env.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()),
            user,
            workdir,
            hostname: options.hostname.map(spanned),
            init: options.init,
            read_only: options.read_only,
            tty: options.tty,
            stdin_open: options.stdin_open,
            stop_signal: options.stop_signal,
            stop_grace_period: options.stop_grace_period.map(spanned),
            // The CLI's stack schemas (3.0-3.13, CLI 28) have no `group_add`:
            // `docker stack deploy` refuses it, and so does this loader.
            groups: Vec::new(),
            cap_add: options.cap_add.into_iter().map(spanned).collect(),
            cap_drop: options.cap_drop.into_iter().map(spanned).collect(),
            sysctls: spanned_map(options.sysctls.into_iter().collect()),
            extra_hosts: options.extra_hosts.into_iter().map(spanned).collect(),
            dns: options.dns.into_iter().map(spanned).collect(),
            dns_search: options.dns_search.into_iter().map(spanned).collect(),
            ulimits: options
                .ulimits
                .into_iter()
                .map(|(k, v)| (spanned(k), v))
                .collect(),
            logging: options.logging,
            endpoint_mode: deploy.endpoint_mode,
            max_replicas_per_node: deploy.max_replicas_per_node,
            // As `docker stack deploy` does: on every network the service
            // answers to its short name, after the file's own aliases.
            network_aliases: networks
                .iter()
                .map(|(network, aliases)| {
                    let mut names = aliases.clone();
                    // Only user-defined networks take aliases (the CLI's
                    // `IsUserDefined`): not an external `host`, `bridge` or `none`.
                    let builtin = self
                        .external_network(network)
                        .is_some_and(|n| crate::model::is_predefined_network(&n));
                    if !builtin {
                        names.push(name.to_string());
                    }
                    (
                        spanned(network.clone()),
                        names.into_iter().map(spanned).collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, names)| !names.is_empty())
                .collect(),
            networks: networks.into_iter().map(|(n, _)| spanned(n)).collect(),
            configs: configs.into_iter().map(spanned).collect(),
            secrets: secrets.into_iter().map(spanned).collect(),
            ports: ports.into_iter().map(spanned).collect(),
            constraints: deploy.constraints.into_iter().map(spanned).collect(),
            preferences: deploy.preferences.into_iter().map(spanned).collect(),
            mounts: mounts.into_iter().map(spanned).collect(),
            resources: deploy.resources,
            update: deploy.update,
            rollback: deploy.rollback,
            healthcheck: healthcheck.map(spanned),
            restart: deploy.restart,
            after: Vec::new(),
            labels: spanned_map(labels.into_iter().collect()),
            container_labels: spanned_map(container_labels.into_iter().collect()),
            origin: None,
        })
    }

    /// Top-level `configs:` and `secrets:`: a `file` (relative to the compose
    /// file) becomes the entry's content; an external secret is used by its
    /// name. Each carries the stack's namespace label, as the CLI sets it.
    fn data(
        &self,
        diagnostics: &mut Diagnostics,
    ) -> (BTreeMap<String, ConfigFile>, BTreeMap<String, SecretFile>) {
        let mut configs = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let stack_label = BTreeMap::from([(
            spanned("com.docker.stack.namespace".to_string()),
            self.stack.to_string(),
        )]);
        for (kind, entries) in [
            ("configs", &self.file.configs),
            ("secrets", &self.file.secrets),
        ] {
            for (name, keys) in entries {
                let location = self.locator.entry(kind, name);
                let mut problem = |message: String| {
                    diagnostics.push(Diagnostic::new(
                        location.clone(),
                        format!("compose: {kind} `{name}`: {message}"),
                    ));
                };
                let found = self.data_keys(keys.unwrap_or(&Map::default()), &mut problem);
                // The file's labels and the stack's (which wins), as the CLI's `AddStackLabel`.
                let mut labels: BTreeMap<Spanned<String>, String> = found
                    .labels
                    .iter()
                    .map(|(k, v)| (spanned(k.clone()), v.clone()))
                    .collect();
                labels.extend(stack_label.clone());
                if kind == "configs" {
                    // Without a usable file (reported), empty content stands in.
                    let content =
                        (found.file.is_none() && !found.external).then(|| spanned(String::new()));
                    configs.insert(
                        name.to_string(),
                        ConfigFile {
                            external: found.external.then_some(true),
                            // External: the object's name; else a name the
                            // file fixed for this content, used verbatim.
                            name: match (found.external, &found.swarm_name) {
                                (true, swarm_name) => Some(spanned(
                                    swarm_name.clone().unwrap_or_else(|| name.to_string()),
                                )),
                                (false, swarm_name) => swarm_name.clone().map(spanned),
                            },
                            file: found.file.filter(|_| !found.external).map(spanned),
                            template_driver: found.template_driver.clone().map(spanned),
                            content,
                            labels: labels.clone(),
                            origin: None,
                        },
                    );
                } else {
                    // External, or standing in as external without a usable file (reported).
                    let external = found.external || found.file.is_none();
                    // A file SOPS or age encrypted (as SwarmCD and doco-cd
                    // users keep them) is decrypted, never deployed as its
                    // ciphertext: a deliberate difference from `docker stack
                    // deploy`.
                    let encryption = found
                        .file
                        .as_ref()
                        .and_then(|f| self.assets.get(Path::new(f)))
                        .and_then(|bytes| crate::sealed::Encryption::detect(bytes))
                        .map(spanned);
                    secrets.insert(
                        name.to_string(),
                        SecretFile {
                            file: found.file.map(spanned),
                            template_driver: found.template_driver.map(spanned),
                            encryption,
                            external: external.then_some(true),
                            name: match (external, found.swarm_name) {
                                (true, swarm_name) => {
                                    Some(spanned(swarm_name.unwrap_or_else(|| name.to_string())))
                                }
                                (false, swarm_name) => swarm_name.map(spanned),
                            },
                            labels: labels.clone(),
                            origin: None,
                        },
                    );
                }
            }
        }
        (configs, secrets)
    }

    /// The keys of one top-level config or secret; problems go to `problem`.
    fn data_keys(&self, keys: &Map, problem: &mut dyn FnMut(String)) -> DataKeys {
        let mut found = DataKeys::default();
        for (key, value) in keys {
            match key {
                "file" => match value.as_str() {
                    Some(path) => match relative_to(self.path, path) {
                        Err(outside) => problem(format!("file {outside}")),
                        Ok(resolved) if self.assets.contains_key(&resolved) => {
                            found.file = Some(resolved.display().to_string());
                        }
                        Ok(resolved) => problem(format!(
                            "file `{path}` not found (looked for {}; it may be at most {} KiB, {} KiB encrypted)",
                            resolved.display(),
                            crate::load::MAX_DATA_FILE_BYTES / 1024,
                            crate::load::MAX_KEPT_FILE_BYTES / 1024
                        )),
                    },
                    None => problem("`file` must be a path".into()),
                },
                "external" => match &value.value {
                    Value::Bool(flag) => found.external = *flag,
                    // Compose 3.4 and earlier: `external: { name: x }`.
                    Value::Map(map) => {
                        found.external = true;
                        found.swarm_name =
                            map.get("name").and_then(Yaml::as_str).map(str::to_string);
                    }
                    _ => problem("`external` must be true or false".into()),
                },
                "name" => found.swarm_name = value.as_str().map(str::to_string),
                "template_driver" => found.template_driver = scalar(value),
                "labels" => match key_values(value) {
                    Some(labels) => found.labels.extend(labels),
                    None => problem("`labels` must be a list of KEY=VALUE or a map".into()),
                },
                other => problem(format!("`{other}` is not supported by reconciler yet")),
            }
        }
        if !found.external && !keys.contains_key("file") {
            problem("needs `file` or `external: true`".into());
        }
        found
    }

    /// The networks some service uses (as `docker stack deploy` creates only
    /// those), each labelled with the stack so `docker stack rm` removes it.
    fn networks(
        &self,
        services: &BTreeMap<String, ServiceFile>,
        diagnostics: &mut Diagnostics,
    ) -> BTreeMap<String, NetworkFile> {
        let used: std::collections::BTreeSet<&str> = services
            .values()
            .flat_map(|s| s.networks.iter().map(|n| n.get_ref().as_str()))
            .collect();
        let mut networks = BTreeMap::new();
        for name in used {
            let keys = self.file.networks.get(name).cloned().flatten();
            if let Some(swarm_name) = self.external_network(name) {
                // Joined as it is: no prefix, no stack label, never created.
                networks.insert(
                    name.to_string(),
                    NetworkFile {
                        driver: None,
                        attachable: None,
                        internal: None,
                        labels: BTreeMap::new(),
                        options: BTreeMap::new(),
                        subnets: Vec::new(),
                        ipam_driver: None,
                        external: Some(true),
                        name: Some(spanned(swarm_name)),
                        origin: None,
                    },
                );
                continue;
            }
            let mut network = NetworkFile {
                driver: None,
                attachable: None,
                internal: None,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                subnets: Vec::new(),
                ipam_driver: None,
                external: None,
                name: None,
                origin: None,
            };
            for (key, value) in keys.iter().copied().flatten() {
                let location = self.locator.in_entry("networks", name, key);
                let problem = |message: String| {
                    Diagnostic::new(
                        location.clone(),
                        format!("compose: network `{name}`: {message}"),
                    )
                };
                match key {
                    "driver" if value.as_str() == Some("overlay") => {}
                    "driver" => {
                        diagnostics.push(problem("only the overlay driver is supported".into()))
                    }
                    "attachable" | "internal" => match value.as_bool() {
                        Some(flag) if key == "attachable" => network.attachable = Some(flag),
                        Some(flag) => network.internal = Some(flag),
                        None => diagnostics.push(problem(format!("`{key}` must be true or false"))),
                    },
                    "labels" => network
                        .labels
                        .extend(spanned_map(key_values(value).unwrap_or_default())),
                    "driver_opts" => match key_values(value) {
                        Some(options) => network.options.extend(spanned_map(options)),
                        None => diagnostics.push(problem(
                            "`driver_opts` must map option names to values".into(),
                        )),
                    },
                    "ipam" => match ipam(value) {
                        Ok((driver, subnets)) => {
                            network.ipam_driver = driver.map(spanned);
                            network.subnets = subnets.into_iter().map(spanned).collect();
                        }
                        Err(message) => diagnostics.push(problem(message)),
                    },
                    other => diagnostics.push(problem(format!(
                        "`{other}` is not supported by reconciler yet"
                    ))),
                }
            }
            network.labels.insert(
                spanned("com.docker.stack.namespace".into()),
                self.stack.into(),
            );
            networks.insert(name.to_string(), network);
        }
        // A network the file defines but no service uses is checked all the same.
        for (name, keys) in &self.file.networks {
            if networks.contains_key(*name) {
                continue;
            }
            for (key, value) in keys.iter().copied().flatten() {
                if key == "driver" && value.as_str() != Some("overlay") {
                    diagnostics.push(Diagnostic::new(
                        self.locator.in_entry("networks", name, key),
                        format!("compose: network `{name}`: only the overlay driver is supported"),
                    ));
                }
            }
        }
        networks
    }

    /// The Swarm name of a network the file declares `external` (`external:
    /// true` with an optional `name:`, or 3.4's `external: { name: x }`).
    fn external_network(&self, name: &str) -> Option<String> {
        let keys = self.file.networks.get(name).cloned().flatten()?;
        let named = keys.get("name").and_then(Yaml::as_str).map(str::to_string);
        match &keys.get("external")?.value {
            Value::Bool(true) => Some(named.unwrap_or_else(|| name.to_string())),
            Value::Map(old) => Some(
                old.get("name")
                    .and_then(Yaml::as_str)
                    .map_or_else(|| name.to_string(), str::to_string),
            ),
            _ => None,
        }
    }

    /// `deploy:` of one service.
    /// `deploy:`; a problem goes to `problem` with the keys under `deploy`
    /// that lead to it, so it points at the key the user wrote.
    fn deploy(&self, value: &Yaml, deploy: &mut Deploy, problem: &mut dyn FnMut(&[&str], String)) {
        let Value::Map(map) = &value.value else {
            problem(&[], "`deploy` must be a mapping".into());
            return;
        };
        for (k, v) in map {
            let key = k;
            let result = match key {
                "mode" => match v.as_str().map(variant::<ServiceModeFile>) {
                    Some(Ok(mode)) => {
                        deploy.mode = Some(mode);
                        Ok(())
                    }
                    _ => Err(
                        "deploy.mode must be `replicated`, `global`, `replicated-job` or `global-job`"
                            .to_string(),
                    ),
                },
                "replicas" => count(v, "deploy.replicas").map(|n| deploy.replicas = Some(n)),
                "labels" => {
                    deploy.labels.extend(key_values(v).unwrap_or_default());
                    Ok(())
                }
                "placement" => placement(v, deploy, problem),
                // An empty key (`update_config:`) is no setting at all, as for the CLI.
                _ if v.is_null() => Ok(()),
                "resources" => resources(v).map(|r| deploy.resources = Some(r)),
                "update_config" => update_config(v, key).map(|u| deploy.update = Some(u)),
                "rollback_config" => update_config(v, key).map(|u| deploy.rollback = Some(u)),
                "restart_policy" => restart_policy(v).map(|r| deploy.restart = Some(r)),
                "endpoint_mode" => match v.as_str().map(str::to_lowercase).as_deref() {
                    Some("vip") => {
                        deploy.endpoint_mode = Some(EndpointModeFile::Vip);
                        Ok(())
                    }
                    Some("dnsrr") => {
                        deploy.endpoint_mode = Some(EndpointModeFile::Dnsrr);
                        Ok(())
                    }
                    _ => Err("deploy.endpoint_mode must be `vip` or `dnsrr`".to_string()),
                },
                other => Err(unread_key("deploy.", other, &SCHEMA_DEPLOY_KEYS)),
            };
            if let Err(message) = result {
                problem(&[key], message);
            }
        }
    }
}

fn placement(
    value: &Yaml,
    deploy: &mut Deploy,
    problem: &mut dyn FnMut(&[&str], String),
) -> Result<(), String> {
    let Value::Map(placement) = &value.value else {
        return Err("deploy.placement must be a mapping".into());
    };
    for (key, value) in placement {
        match key {
            "constraints" => {
                let list = words_list(value);
                for constraint in &list {
                    if let Err(message) = crate::validate::check_constraint(constraint) {
                        problem(&["placement", "constraints"], message.to_string());
                    }
                }
                deploy.constraints = list;
            }
            "preferences" => {
                let Value::Seq(items) = &value.value else {
                    return Err("deploy.placement.preferences must be a list".into());
                };
                deploy.preferences = Vec::new();
                for item in items {
                    // Swarm has only spread preferences; the CLI's schema refuses others.
                    match item.get("spread").and_then(scalar) {
                        Some(spread) => deploy.preferences.push(format!("spread={spread}")),
                        None => problem(
                            &["placement", "preferences"],
                            "deploy.placement.preferences entries must be `spread: LABEL`".into(),
                        ),
                    }
                }
            }
            "max_replicas_per_node" => {
                deploy.max_replicas_per_node =
                    Some(count(value, "deploy.placement.max_replicas_per_node")?);
            }
            other => problem(
                &["placement", other],
                unread_key("deploy.placement.", other, &SCHEMA_PLACEMENT_KEYS),
            ),
        }
    }
    Ok(())
}

fn resources(value: &Yaml) -> Result<ResourcesFile, String> {
    let Value::Map(kinds) = &value.value else {
        return Err("deploy.resources must be a mapping".into());
    };
    let mut out = ResourcesFile {
        limit_memory: None,
        reserve_memory: None,
        limit_cpus: None,
        reserve_cpus: None,
        reserve_generic: Vec::new(),
    };
    for (kind, amounts) in kinds {
        let limits = match kind {
            "limits" => true,
            "reservations" => false,
            other => return Err(format!("deploy.resources.{other} is not supported")),
        };
        let Value::Map(amounts) = &amounts.value else {
            continue;
        };
        let group = if limits { "limits" } else { "reservations" };
        for (name, amount) in amounts {
            // The compose schemas (3.0 to 3.13) type both as strings: `cpus: 0.5` is refused.
            let text = match (name, &amount.value) {
                ("cpus" | "memory", Value::String(text)) => text.clone(),
                ("cpus" | "memory", _) => {
                    return Err(format!(
                        "deploy.resources.{group}.{name} must be a string (quote it: \"{}\")",
                        scalar(amount).unwrap_or_default()
                    ))
                }
                _ => String::new(),
            };
            match name {
                "cpus" => {
                    let cpus = text
                        .parse::<f64>()
                        .map_err(|_| format!("deploy.resources: invalid cpus `{text}`"))?;
                    let slot = if limits {
                        &mut out.limit_cpus
                    } else {
                        &mut out.reserve_cpus
                    };
                    // Zero is "no limit" to `docker stack deploy` (Go's zero value, left out).
                    *slot = (cpus != 0.0).then(|| spanned(cpus));
                }
                "memory" => {
                    let bytes = crate::units::parse_size(&text)
                        .map_err(|message| format!("deploy.resources: {message}"))?;
                    let slot = if limits {
                        &mut out.limit_memory
                    } else {
                        &mut out.reserve_memory
                    };
                    *slot = (bytes != 0).then(|| spanned(text));
                }
                "generic_resources" if !limits => {
                    out.reserve_generic = generic_resources(amount)?;
                }
                other => {
                    return Err(format!(
                        "deploy.resources.{other} is not supported by reconciler yet"
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// `rollback_config.failure_action: rollback`, which the CLI sends and Docker
/// stores but never acts on as written: swarmkit's updater pauses a failed
/// rollback instead of rolling it back ("Never roll back a rollback").
/// Docker's API (and so bollard) has no such value for a rollback, so it is
/// written as the `pause` it behaves as; true when it was rewritten.
fn rollback_never_rolls_back(deploy: &mut Deploy) -> bool {
    let Some(action) = deploy
        .rollback
        .as_mut()
        .and_then(|r| r.failure_action.as_mut())
    else {
        return false;
    };
    if !matches!(action.get_ref(), FailureActionFile::Rollback) {
        return false;
    }
    *action = spanned(FailureActionFile::Pause);
    true
}

/// `update_config` or `rollback_config`; `docker stack deploy` sends
/// parallelism 1 unless the file says otherwise.
fn update_config(value: &Yaml, key: &str) -> Result<UpdateFile, String> {
    let mut out = UpdateFile {
        parallelism: Some(1),
        delay: None,
        failure_action: None,
        monitor: None,
        max_failure_ratio: None,
        order: None,
    };
    let Value::Map(options) = &value.value else {
        return Err(format!("deploy.{key} must be a mapping"));
    };
    for (option, value) in options {
        let what = format!("deploy.{key}.{option}");
        match option {
            "parallelism" => out.parallelism = Some(count(value, &what)?),
            "max_failure_ratio" => {
                out.max_failure_ratio = Some(spanned(
                    value
                        .as_f64()
                        .ok_or_else(|| format!("{what} must be a number"))?,
                ));
            }
            "delay" => out.delay = Some(duration_text(value, &what)?),
            "monitor" => out.monitor = Some(duration_text(value, &what)?),
            "failure_action" => {
                let text = scalar(value).unwrap_or_default();
                out.failure_action =
                    Some(spanned(variant(&text).map_err(|_| {
                        format!("{what} must be one of pause, continue, rollback")
                    })?));
            }
            "order" => {
                let text = scalar(value).unwrap_or_default();
                out.order = Some(
                    variant(&text)
                        .map_err(|_| format!("{what} must be one of stop-first, start-first"))?,
                );
            }
            other => return Err(format!("deploy.{key}.{other} is not supported")),
        }
    }
    Ok(out)
}

fn restart_policy(value: &Yaml) -> Result<RestartFile, String> {
    let mut out = RestartFile {
        condition: None,
        delay: None,
        max_attempts: None,
        window: None,
    };
    let Value::Map(options) = &value.value else {
        return Err("deploy.restart_policy must be a mapping".into());
    };
    for (option, value) in options {
        let what = format!("deploy.restart_policy.{option}");
        match option {
            "max_attempts" => out.max_attempts = Some(count(value, &what)?),
            "condition" => {
                let text = scalar(value).unwrap_or_default();
                out.condition = Some(variant(&text).map_err(|_| {
                    "deploy.restart_policy.condition must be one of none, on-failure, any"
                        .to_string()
                })?);
            }
            "delay" => out.delay = Some(duration_text(value, &what)?),
            "window" => out.window = Some(duration_text(value, &what)?),
            other => return Err(format!("deploy.restart_policy.{other} is not supported")),
        }
    }
    Ok(out)
}

/// A path written in a compose file, relative to that file's folder.
pub(crate) fn relative_to(compose: &Path, path: &str) -> Result<PathBuf, OutsideSpec> {
    let base = compose.parent().unwrap_or(Path::new(""));
    let mut out = PathBuf::new();
    let outside = || OutsideSpec {
        path: path.to_string(),
    };
    for part in base.join(path).components() {
        match part {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return Err(outside());
                }
            }
            std::path::Component::CurDir => {}
            std::path::Component::Normal(name) => out.push(name),
            std::path::Component::RootDir | std::path::Component::Prefix(_) => {
                return Err(outside())
            }
        }
    }
    Ok(out)
}

/// A path a compose file names that leaves the spec (`../../app.env`,
/// `/etc/app.env`): the CLI would read a file outside the repository, and
/// clamping it to the spec's root read another file than it would.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` is outside the spec (docker stack deploy would read a file outside the repository); keep the file in the spec and name it relative to the compose file")]
pub(crate) struct OutsideSpec {
    /// The path as written.
    path: String,
}

fn scalar(value: &Yaml) -> Option<String> {
    match &value.value {
        Value::String(s) => Some(s.clone()),
        // As the CLI's fmt.Sprint prints a float: `1e3` is `1000`, not `1000.0`.
        Value::Float(float) => Some(yaml::go_float(*float)),
        Value::Int(int) => Some(int.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// `"a b c"` (split into words as a POSIX shell does: quotes and
/// backslashes, as the CLI's shellwords does; unbalanced quotes are no
/// words) or `["a", "b"]`.
fn words(value: &Yaml) -> Option<Vec<String>> {
    match &value.value {
        Value::String(s) => shlex::split(s),
        Value::Seq(items) => items.iter().map(scalar).collect(),
        _ => None,
    }
}

/// `["A=1", "B"]` or `{A: 1}`; a bare `B` has an empty value, as the CLI
/// gives labels, sysctls and options (only `environment` looks a bare
/// name up, see [`Context::environment`]).
fn key_values(value: &Yaml) -> Option<Vec<(String, String)>> {
    match &value.value {
        Value::Seq(items) => items
            .iter()
            .map(|item| {
                let text = scalar(item)?;
                Some(match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (text.clone(), String::new()),
                })
            })
            .collect(),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| Some((k.to_string(), scalar(v)?)))
            .collect(),
        _ => None,
    }
}

/// What a top-level config or secret says.
#[derive(Default)]
struct DataKeys {
    /// Relative to the spec root; `None` when absent or not found.
    file: Option<String>,
    template_driver: Option<String>,
    external: bool,
    swarm_name: Option<String>,
    labels: BTreeMap<String, String>,
}

/// A service's `configs:` or `secrets:`: names (short syntax) or maps with
/// `source`, `target`, `uid`, `gid`, `mode` (long syntax), each naming a
/// top-level entry.
fn file_refs(
    value: &Yaml,
    kind: &str,
    defined: &BTreeMap<&str, Option<&Map>>,
) -> Result<Vec<FileRefFile>, String> {
    let Value::Seq(items) = &value.value else {
        return Err(format!("`{kind}` must be a list"));
    };
    let mut refs = Vec::new();
    for item in items {
        let mut file = FileRefFile {
            source: spanned(String::new()),
            target: None,
            uid: None,
            gid: None,
            mode: None,
        };
        match &item.value {
            Value::String(name) => file.source = spanned(name.clone()),
            Value::Map(map) => {
                for (key, value) in map {
                    let text =
                        || scalar(value).ok_or(format!("`{kind}` entries take plain values"));
                    match key {
                        "source" => file.source = spanned(text()?),
                        "target" => file.target = Some(text()?),
                        "uid" => file.uid = Some(text()?),
                        "gid" => file.gid = Some(text()?),
                        "mode" => {
                            file.mode =
                                Some(file_mode(value).ok_or(format!(
                                    "`{kind}` mode must be a number such as 0444"
                                ))?);
                        }
                        other => return Err(format!("`{kind}` entries have no key `{other}`")),
                    }
                }
            }
            _ => return Err(format!("`{kind}` entries are names or maps")),
        }
        if !defined.contains_key(file.source.get_ref().as_str()) {
            return Err(format!(
                "`{kind}` names `{}`, which the file does not define under top-level `{kind}:`",
                file.source.get_ref()
            ));
        }
        refs.push(file);
    }
    Ok(refs)
}

/// An image as `docker stack deploy` sends it: a name without tag or digest
/// gets `:latest` (`traefik/whoami` → `traefik/whoami:latest`); the stack's
/// image label keeps what the file wrote.
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// A file mode as the docker CLI reads it: a plain `0440` is octal (yaml.v3
/// resolves it so); a quoted one is read as octal too.
fn file_mode(value: &Yaml) -> Option<u32> {
    match &value.value {
        Value::Int(_) => value.as_u64().and_then(|m| u32::try_from(m).ok()),
        Value::String(text) if text.starts_with('0') => u32::from_str_radix(text, 8).ok(),
        _ => None,
    }
}

/// Networks a service joins, each with its aliases there.
type Attachments = Vec<(String, Vec<String>)>;

/// A service's `networks:`: a list of names, or a map of names to null or
/// to attachment settings, of which `docker stack deploy` uses `aliases`.
/// Returns each network with its aliases, and the settings it ignores
/// (`NETWORK.KEY`).
fn service_networks(value: &Yaml) -> Result<(Attachments, Vec<String>), String> {
    const SHAPE: &str = "`networks` must be a list or a map of network names";
    match &value.value {
        Value::Seq(items) => items
            .iter()
            .map(|i| i.as_str().map(|n| (n.to_string(), Vec::new())).ok_or(SHAPE))
            .collect::<Result<_, _>>()
            .map(|networks| (networks, Vec::new()))
            .map_err(str::to_string),
        Value::Map(map) => {
            let mut networks = Vec::new();
            let mut ignored = Vec::new();
            for (key, settings) in map {
                let network = key.to_string();
                let mut aliases = Vec::new();
                if let Value::Map(settings) = &settings.value {
                    for (setting, value) in settings {
                        match setting {
                            "aliases" => {
                                aliases = match &value.value {
                                    Value::Seq(items) => items.iter().map(scalar).collect(),
                                    _ => None,
                                }
                                .ok_or(format!(
                                    "`networks.{network}.aliases` must be a list of names"
                                ))?;
                            }
                            // Sent by the CLI since compose 3.13 (attachment driver options).
                            "driver_opts" => {
                                return Err(format!(
                                    "`networks.{network}.driver_opts` is not supported by reconciler yet"
                                ))
                            }
                            other => ignored.push(format!("{network}.{other}")),
                        }
                    }
                } else if !settings.is_null() {
                    return Err(format!("`networks.{network}` must be a map or empty"));
                }
                networks.push((network, aliases));
            }
            Ok((networks, ignored))
        }
        _ => Err(SHAPE.into()),
    }
}

fn port_number(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .map_err(|_| format!("invalid port `{text}` (ranges and host IPs are not supported)"))
}

/// `ports:` in the short (`"8080:80/udp"`) and the long syntax.
fn ports(value: &Yaml) -> Result<Vec<PortFile>, String> {
    let Value::Seq(items) = &value.value else {
        return Err("`ports` must be a list".into());
    };
    items
        .iter()
        .map(|item| match &item.value {
            Value::Map(map) => {
                let mut port = PortFile {
                    target: 0,
                    published: None,
                    protocol: None,
                    mode: None,
                };
                let mut target = None;
                for (k, v) in map {
                    let key = k;
                    let text = scalar(v).unwrap_or_default();
                    match key {
                        "target" => target = Some(port_number(&text)?),
                        "published" => port.published = Some(port_number(&text)?),
                        "protocol" => {
                            port.protocol =
                                Some(variant(&text).map_err(|e| format!("port protocol: {e}"))?);
                        }
                        "mode" => {
                            port.mode =
                                Some(variant(&text).map_err(|e| format!("port mode: {e}"))?);
                        }
                        other => return Err(format!("port option `{other}` is not supported")),
                    }
                }
                port.target = target.ok_or("a port needs a `target`")?;
                Ok(port)
            }
            _ => {
                let text = scalar(item).ok_or("a port must be a string, a number or a mapping")?;
                let (spec, protocol) = text.split_once('/').unwrap_or((&text, "tcp"));
                let (published, target) = match spec.split(':').collect::<Vec<_>>().as_slice() {
                    [target] => (None, port_number(target)?),
                    [published, target] => (Some(port_number(published)?), port_number(target)?),
                    _ => {
                        return Err(format!(
                            "invalid port `{text}` (host IPs are not supported by swarm)"
                        ))
                    }
                };
                Ok(PortFile {
                    target,
                    published,
                    protocol: Some(variant(protocol).map_err(|e| format!("port `{text}`: {e}"))?),
                    mode: None,
                })
            }
        })
        .collect()
}

/// `volumes:` of a service, as `docker stack deploy` makes them mounts: a
/// path (`/`, `.`, `~`) is a bind mount, anything else a named volume, which
/// must be declared under top-level `volumes:` and gets the stack prefix
/// unless it is external or has a `name:`; declared volumes carry their
/// `driver`, `driver_opts` and labels (with the stack's), as the CLI sends them.
fn mounts(
    value: &Yaml,
    stack: &str,
    top: &BTreeMap<&str, &Yaml>,
) -> Result<Vec<MountFile>, String> {
    let Value::Seq(items) = &value.value else {
        return Err("`volumes` must be a list".into());
    };
    items
        .iter()
        .map(|item| {
            let mut mount = match &item.value {
                Value::String(text) => short_mount(text)?,
                Value::Map(map) => long_mount(map)?,
                _ => return Err("a volume must be a string or a mapping".into()),
            };
            if matches!(mount.kind, MountKindFile::Volume) {
                named_volume(&mut mount, stack, top)?;
            }
            Ok(mount)
        })
        .collect()
}

fn empty_mount(kind: MountKindFile, source: Option<String>, target: String) -> MountFile {
    MountFile {
        kind,
        source,
        target,
        readonly: None,
        driver: None,
        driver_options: BTreeMap::new(),
        volume_labels: BTreeMap::new(),
        nocopy: None,
        size: None,
    }
}

/// `SOURCE:TARGET[:MODE]` or `TARGET` (an anonymous volume).
fn short_mount(text: &str) -> Result<MountFile, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => return Err(format!("invalid volume `{text}`")),
    };
    if source.is_some_and(|s| s.starts_with('.')) {
        return Err(format!("volume `{text}`: relative bind mounts have no meaning on a swarm node; use an absolute path"));
    }
    let kind = match source {
        // `~` is expanded later, as the CLI's `expandUser` does.
        Some(s) if s.starts_with(['/', '~']) => MountKindFile::Bind,
        _ => MountKindFile::Volume,
    };
    let mut mount = empty_mount(kind, source.map(str::to_string), target.to_string());
    for flag in mode
        .map(|m| m.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        match flag {
            "rw" => {}
            "ro" => mount.readonly = Some(true),
            "nocopy" if matches!(mount.kind, MountKindFile::Volume) => mount.nocopy = Some(true),
            other => return Err(format!("volume `{text}`: mode `{other}` is not supported")),
        }
    }
    Ok(mount)
}

/// The long syntax: `type`, `source`, `target`, `read_only`, `volume.nocopy`.
fn long_mount(map: &Map) -> Result<MountFile, String> {
    let mut kind = None;
    let mut source = None;
    let mut target = None;
    let mut readonly = None;
    let mut nocopy = None;
    let mut size = None;
    for (k, v) in map {
        let text = scalar(v).unwrap_or_default();
        match k {
            "type" => kind = Some(variant(&text).map_err(|e| format!("volume type: {e}"))?),
            "source" => source = Some(text),
            "target" => target = Some(text),
            "read_only" => readonly = v.as_bool().filter(|ro| *ro),
            "volume" => {
                for (option, value) in v.as_map().into_iter().flatten() {
                    match option {
                        "nocopy" => nocopy = value.as_bool().filter(|n| *n),
                        _ => return Err("of `volume:` options only `nocopy` is supported".into()),
                    }
                }
            }
            // `tmpfs: { size: BYTES }` (the CLI's schema: a whole number).
            "tmpfs" => {
                for (option, value) in v.as_map().into_iter().flatten() {
                    match (option, value.as_u64()) {
                        ("size", Some(bytes)) => size = Some(bytes.to_string()),
                        _ => {
                            return Err(
                                "of `tmpfs:` options only `size` (in bytes) is supported".into()
                            )
                        }
                    }
                }
            }
            other => return Err(format!("volume option `{other}` is not supported")),
        }
    }
    let mut mount = empty_mount(
        kind.ok_or("a volume needs a `type`")?,
        source,
        target.ok_or("a volume needs a `target`")?,
    );
    mount.readonly = readonly;
    mount.nocopy = nocopy;
    mount.size = size;
    Ok(mount)
}

/// A named volume's Swarm name and options, from its top-level declaration.
fn named_volume(
    mount: &mut MountFile,
    stack: &str,
    top: &BTreeMap<&str, &Yaml>,
) -> Result<(), String> {
    let Some(name) = mount.source.clone() else {
        return Ok(()); // anonymous
    };
    let empty = Map::default();
    // Declared with a body, or bare (`data:`).
    let Some(declared) = top
        .get("volumes")
        .and_then(|v| v.get(name.as_str()))
        .map(|d| d.as_map().unwrap_or(&empty))
    else {
        return Err(format!(
            "volume `{name}` is not declared under top-level `volumes:` (docker stack deploy refuses it too)"
        ));
    };
    let text = |key: &str| declared.get(key).and_then(Yaml::as_str).map(str::to_string);
    let external = match declared.get("external").map(|e| &e.value) {
        Some(Value::Bool(flag)) => flag.then(|| text("name").unwrap_or_else(|| name.clone())),
        Some(Value::Map(old)) => Some(
            old.get("name")
                .and_then(Yaml::as_str)
                .map_or_else(|| name.clone(), str::to_string),
        ),
        _ => None,
    };
    if let Some(external) = external {
        // Used as it is: no prefix, no options, never created by the stack.
        mount.source = Some(external);
        return Ok(());
    }
    mount.source = Some(text("name").unwrap_or_else(|| format!("{stack}_{name}")));
    mount.volume_labels = declared
        .get("labels")
        .and_then(key_values)
        .unwrap_or_default()
        .into_iter()
        .collect();
    mount
        .volume_labels
        .insert("com.docker.stack.namespace".into(), stack.into());
    mount.driver = text("driver");
    mount.driver_options = declared
        .get("driver_opts")
        .and_then(Yaml::as_map)
        .map(|opts| {
            opts.iter()
                .filter_map(|(k, v)| Some((k.to_string(), scalar(v)?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(())
}

fn healthcheck(value: &Yaml) -> Result<HealthcheckFile, String> {
    let Value::Map(map) = &value.value else {
        return Err("`healthcheck` must be a mapping".into());
    };
    let mut out = HealthcheckFile {
        test: Vec::new(),
        interval: None,
        timeout: None,
        retries: None,
        start_period: None,
    };
    let mut disable = false;
    for (k, v) in map {
        let key = k;
        match key {
            "disable" => disable = v.as_bool() == Some(true),
            "test" => {
                out.test = match &v.value {
                    Value::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    _ => words(v).ok_or("healthcheck `test` must be a string or a list")?,
                };
            }
            "interval" => out.interval = Some(duration_text(v, "healthcheck `interval`")?),
            "timeout" => out.timeout = Some(duration_text(v, "healthcheck `timeout`")?),
            "start_period" => {
                out.start_period = Some(duration_text(v, "healthcheck `start_period`")?);
            }
            "retries" => out.retries = Some(count(v, "healthcheck `retries`")?),
            other => return Err(format!("healthcheck option `{other}` is not supported")),
        }
    }
    // As the CLI: `disable` is a test of NONE and nothing else.
    if disable {
        if !out.test.is_empty() {
            return Err("healthcheck `test` and `disable` can't be set at the same time".into());
        }
        return Ok(HealthcheckFile {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        });
    }
    Ok(out)
}

fn words_list(value: &Yaml) -> Vec<String> {
    match &value.value {
        Value::Seq(items) => items.iter().filter_map(scalar).collect(),
        _ => scalar(value).into_iter().collect(),
    }
}

/// A network's `ipam:` as the CLI reads it: a `driver` and `config` items
/// with a `subnet` each (the only keys compose 3.x allows there).
fn ipam(value: &Yaml) -> Result<(Option<String>, Vec<String>), String> {
    let Value::Map(map) = &value.value else {
        return Err("`ipam` must be a mapping".into());
    };
    let mut driver = None;
    let mut subnets = Vec::new();
    for (key, item) in map {
        match key {
            "driver" => {
                driver = Some(
                    item.as_str()
                        .ok_or("`ipam.driver` must be a string")?
                        .to_string(),
                );
            }
            "config" => {
                let Value::Seq(pools) = &item.value else {
                    return Err("`ipam.config` must be a list".into());
                };
                for pool in pools {
                    let Value::Map(pool) = &pool.value else {
                        return Err("`ipam.config` items must be mappings".into());
                    };
                    for (pool_key, pool_value) in pool {
                        match (pool_key, pool_value.as_str()) {
                            ("subnet", Some(subnet)) => subnets.push(subnet.to_string()),
                            ("subnet", None) => {
                                return Err("`ipam.config[].subnet` must be a string".into())
                            }
                            (other, _) => {
                                return Err(format!(
                                "`ipam.config[].{other}` is not allowed in compose 3.x (only `subnet`)"
                            ))
                            }
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "`ipam.{other}` is not allowed (only `driver` and `config`)"
                ))
            }
        }
    }
    Ok((driver, subnets))
}

/// The newest compose file minor version `docker stack deploy` knows: the
/// CLI (28.x) carries the schemas `config_schema_v3.0.json` to `v3.13`, and
/// reads a file without `version` (or with `version: "3"`) as 3.13.
const NEWEST_MINOR: u32 = 13;

/// Keys of a service that `docker stack deploy` only accepts from a file
/// version on, as paths: the differences between docker/cli's schemas
/// `config_schema_v3.0.json` ... `v3.13.json` (v28.2.2).
const SERVICE_KEYS_SINCE: [(&[&str], u32); 16] = [
    (&["secrets"], 1),
    (&["deploy", "endpoint_mode"], 2),
    (&["configs"], 3),
    (&["credential_spec"], 3),
    (&["deploy", "placement", "preferences"], 3),
    (&["deploy", "update_config", "order"], 4),
    (&["healthcheck", "start_period"], 4),
    (&["isolation"], 5),
    (
        &["deploy", "resources", "reservations", "generic_resources"],
        5,
    ),
    (&["init"], 7),
    (&["deploy", "rollback_config"], 7),
    (&["deploy", "placement", "max_replicas_per_node"], 8),
    (&["cgroupns_mode"], 9),
    (&["deploy", "resources", "limits", "pids"], 9),
    (&["healthcheck", "start_interval"], 12),
    (&["oom_score_adj"], 13),
];

/// The keys the CLI's newest schema (config_schema_v3.13.json) allows at
/// the top of a file, in a service, in `deploy` and in `deploy.placement`
/// (besides `x-*`): anything else `docker stack deploy` refuses as an
/// "additional property".
const SCHEMA_TOP_KEYS: [&str; 6] = [
    "configs", "networks", "secrets", "services", "version", "volumes",
];
const SCHEMA_SERVICE_KEYS: [&str; 53] = [
    "build",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "cgroupns_mode",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "devices",
    "dns",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "external_links",
    "extra_hosts",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "network_mode",
    "networks",
    "oom_score_adj",
    "pid",
    "ports",
    "privileged",
    "read_only",
    "restart",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "volumes",
    "working_dir",
];
const SCHEMA_DEPLOY_KEYS: [&str; 9] = [
    "endpoint_mode",
    "labels",
    "mode",
    "placement",
    "replicas",
    "resources",
    "restart_policy",
    "rollback_config",
    "update_config",
];
const SCHEMA_PLACEMENT_KEYS: [&str; 3] = ["constraints", "max_replicas_per_node", "preferences"];

/// What to say about a key reconciler does not read at `path` (`deploy.`):
/// a compose key not supported yet, or no compose key at all (the CLI
/// refuses it too), then with the nearest one it may have meant.
fn unread_key(path: &str, key: &str, schema: &[&str]) -> String {
    if schema.contains(&key) {
        return format!("`{path}{key}` is not supported by reconciler yet");
    }
    let hint = crate::suggest::did_you_mean(key, schema.iter().copied())
        .map(|hint| format!("; {hint}"))
        .unwrap_or_default();
    format!("`{path}{key}` is not a compose key (docker stack deploy refuses it too){hint}")
}

/// Keys of top-level entries (`networks.NAME.attachable`) likewise.
const ENTRY_KEYS_SINCE: [(&str, &str, u32); 9] = [
    ("networks", "attachable", 2),
    ("volumes", "name", 4),
    ("networks", "name", 5),
    ("configs", "name", 5),
    ("secrets", "name", 5),
    ("configs", "template_driver", 8),
    ("secrets", "template_driver", 8),
    ("secrets", "driver", 8),
    ("secrets", "driver_opts", 8),
];

/// The keys of top-level `volumes:` entries the CLI's schema allows; any
/// other is refused by `docker stack deploy`, and here.
const VOLUME_KEYS: [&str; 5] = ["driver", "driver_opts", "external", "labels", "name"];

fn check_volume_declarations(
    file: &ComposeFile,
    locator: &Locator<'_>,
    diagnostics: &mut Diagnostics,
) {
    let Some(volumes) = file.rest.get("volumes").and_then(|v| v.as_map()) else {
        return;
    };
    for (name, keys) in volumes {
        let Some(keys) = keys.as_map() else {
            continue;
        };
        for key in keys.keys() {
            if !VOLUME_KEYS.contains(&key) && !key.starts_with("x-") {
                diagnostics.push(Diagnostic::new(
                    locator.in_entry("volumes", name, key),
                    format!(
                        "compose: volume `{name}`: `{key}` is not a volume key (allowed: {}); docker stack deploy refuses it too",
                        VOLUME_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
}

/// The file's `version` as the minor of 3.x, as the CLI reads it (`3` is
/// 3.0); `Err` with the text when it is not a 3.x the CLI knows.
fn compose_minor(version: &Yaml) -> Result<u32, String> {
    let text = match &version.value {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
        _ => scalar(version).unwrap_or_default(),
    };
    let minor = match text.as_str() {
        "" | "3" => Some(NEWEST_MINOR),
        t => t.strip_prefix("3.").and_then(|m| m.parse::<u32>().ok()),
    };
    minor.filter(|m| *m <= NEWEST_MINOR).ok_or(text)
}

/// Refuses what `docker stack deploy` refuses for the file's version: a
/// version it has no schema for, and keys newer than the version the file
/// declares (the CLI validates each file against its version's schema).
fn check_version<'y>(file: &ComposeFile<'y>, locator: &Locator<'_>, diagnostics: &mut Diagnostics) {
    let minor = match file.rest.get("version") {
        None => return,
        Some(version) => match compose_minor(version) {
            Ok(minor) => minor,
            Err(text) => {
                diagnostics.push(Diagnostic::new(
                    locator.top("version"),
                    format!("compose: file version `{text}` is not supported; docker stack deploy reads versions 3.0 to 3.{NEWEST_MINOR}"),
                ));
                return;
            }
        },
    };
    let too_new = |what: &str, since: u32| {
        format!(
            "compose: `{what}` needs file version 3.{since} or later (this file says 3.{minor}); docker stack deploy refuses it: raise `version`"
        )
    };
    for (top, since, present) in [
        ("secrets", 1, !file.secrets.is_empty()),
        ("configs", 3, !file.configs.is_empty()),
    ] {
        if minor < since && present {
            diagnostics.push(Diagnostic::new(locator.top(top), too_new(top, since)));
        }
    }
    for key in file.rest.keys().filter(|k| k.starts_with("x-")) {
        if minor < 4 {
            diagnostics.push(Diagnostic::new(locator.top(key), too_new(key, 4)));
        }
    }
    for (name, keys) in &file.services {
        for key in keys.keys().filter(|k| k.starts_with("x-")) {
            if minor < 7 {
                diagnostics.push(Diagnostic::new(
                    locator.in_entry("services", name, key),
                    too_new(key, 7),
                ));
            }
        }
        for (path, since) in SERVICE_KEYS_SINCE {
            if minor < since && yaml_path(keys, path).is_some() {
                diagnostics.push(Diagnostic::new(
                    locator.path_in_entry("services", name, path),
                    too_new(&path.join("."), since),
                ));
            }
        }
        for (key, list) in [("ports", "ports"), ("volumes", "volumes")] {
            let long = keys
                .get(key)
                .and_then(Yaml::as_seq)
                .is_some_and(|items| items.iter().any(Yaml::is_map));
            if minor < 2 && long {
                diagnostics.push(Diagnostic::new(
                    locator.in_entry("services", name, key),
                    too_new(&format!("{list} (long syntax)"), 2),
                ));
            }
        }
    }
    let empty = Map::default();
    let entries = |section: &str| -> Vec<(&str, &Map)> {
        let listed = |map: &BTreeMap<&'y str, Option<&'y Map>>| {
            map.iter()
                .map(|(name, keys)| (*name, keys.unwrap_or(&empty)))
                .collect()
        };
        match section {
            "networks" => listed(&file.networks),
            "configs" => listed(&file.configs),
            "secrets" => listed(&file.secrets),
            _ => file
                .rest
                .get(section)
                .and_then(|v| v.as_map())
                .map(|m| {
                    m.iter()
                        .map(|(name, keys)| (name, keys.as_map().unwrap_or(&empty)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
    for (section, key, since) in ENTRY_KEYS_SINCE {
        if minor >= since {
            continue;
        }
        for (name, keys) in entries(section) {
            if keys.contains_key(key) {
                diagnostics.push(Diagnostic::new(
                    locator.in_entry(section, name, key),
                    too_new(&format!("{section}.{name}.{key}"), since),
                ));
            }
        }
    }
}

/// The value at a path of mapping keys, if every key is there.
fn yaml_path<'y>(keys: &'y Map, path: &[&str]) -> Option<&'y Yaml> {
    let (first, rest) = path.split_first()?;
    let mut value = keys.get(first)?;
    for key in rest {
        value = value.as_map()?.get(key)?;
    }
    Some(value)
}

/// `generic_resources:` items, `discrete_resource_spec: {kind, value}` each,
/// as the CLI converts them (its schema allows nothing else there).
fn generic_resources(value: &Yaml) -> Result<Vec<Spanned<GenericResourceFile>>, String> {
    const SHAPE: &str =
        "deploy.resources.reservations.generic_resources: items are `discrete_resource_spec: {kind, value}`";
    let Value::Seq(items) = &value.value else {
        return Err(SHAPE.into());
    };
    items
        .iter()
        .map(|item| {
            let spec = item
                .get("discrete_resource_spec")
                .filter(|_| item.as_map().is_some_and(|m| m.len() == 1))
                .ok_or(SHAPE)?;
            let kind = spec.get("kind").and_then(Yaml::as_str).ok_or(SHAPE)?;
            let value = spec.get("value").and_then(Yaml::as_i64).ok_or(SHAPE)?;
            Ok(spanned(GenericResourceFile {
                kind: kind.to_string(),
                value,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_networks_keep_aliases_and_name_what_stack_deploy_ignores() {
        // A value as the file holds it: the one value of a `v:` mapping.
        let yaml = |text: &str| -> Yaml {
            let indented: Vec<String> = text.lines().map(|l| format!("  {l}")).collect();
            let root = yaml::parse(&format!("v:\n{}", indented.join("\n"))).expect("yaml");
            root.get("v").expect("v").clone()
        };
        assert_eq!(
            service_networks(&yaml("[front, back]")),
            Ok((
                vec![("front".into(), vec![]), ("back".into(), vec![])],
                vec![]
            ))
        );
        assert_eq!(
            service_networks(&yaml(
                "front:\n  aliases: [www, web2]\n  ipv4_address: 10.0.0.9\nback:\n"
            )),
            // A map's networks in name order (the CLI sorts them by target).
            Ok((
                vec![
                    ("back".into(), vec![]),
                    ("front".into(), vec!["www".into(), "web2".into()]),
                ],
                vec!["front.ipv4_address".into()]
            ))
        );
        assert_eq!(
            service_networks(&yaml("front:\n  aliases: www\n")),
            Err("`networks.front.aliases` must be a list of names".into())
        );
        assert!(service_networks(&yaml("front: 3")).is_err());
    }

    #[test]
    fn untagged_images_get_latest_as_the_cli_sends_them() {
        assert_eq!(with_default_tag("redis"), "redis:latest");
        assert_eq!(with_default_tag("traefik/whoami"), "traefik/whoami:latest");
        assert_eq!(
            with_default_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(with_default_tag("redis:7"), "redis:7");
        assert_eq!(with_default_tag("redis@sha256:abc"), "redis@sha256:abc");
    }

    /// A translation as the spec TOML it stands for, to read in assertions.
    struct AsToml {
        toml: String,
        warnings: Vec<Diagnostic>,
    }

    fn as_toml(translated: Translated) -> AsToml {
        fn table<T: serde::Serialize>(kind: &str, name: &str, body: &T) -> String {
            toml::to_string(&BTreeMap::from([(kind, BTreeMap::from([(name, body)]))]))
                .expect("serializes")
        }
        let toml = translated
            .entries
            .iter()
            .map(|t| match &t.value {
                TranslatedEntry::Network(v) => table("network", &t.name, v),
                TranslatedEntry::Config(v) => table("config", &t.name, v),
                TranslatedEntry::Secret(v) => table("secret", &t.name, v),
                TranslatedEntry::Service(v) => table("service", &t.name, v),
            })
            .collect::<Vec<_>>()
            .join("\n");
        AsToml {
            toml,
            warnings: translated.warnings,
        }
    }

    /// Translates `text` with `vars` as the environment.
    fn translated(text: &str, vars: &[(&str, &str)]) -> (Option<AsToml>, Diagnostics) {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let mut diagnostics = Diagnostics::default();
        let out = translate(
            "s",
            Path::new("s.yml"),
            text,
            &crate::load::Assets::new(),
            &lookup,
            &mut diagnostics,
        );
        (out.map(as_toml), diagnostics)
    }

    #[test]
    fn a_tilde_bind_source_is_the_deploying_users_home_as_for_the_cli() {
        let file = "services:\n  web:\n    image: a\n    volumes:\n      - ~/data:/data\n      - type: bind\n        source: ~/logs\n        target: /logs\n";
        let (out, diagnostics) = translated(file, &[("HOME", "/home/pi")]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let out = out.expect("translated");
        assert!(
            out.toml.contains("/home/pi/data") && out.toml.contains("/home/pi/logs"),
            "{}",
            out.toml
        );
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
        let (_, diagnostics) = translated(file, &[]);
        assert!(
            diagnostics.iter().any(|d| d.message.contains("needs HOME")),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_rollback_that_rolls_back_is_written_as_the_pause_docker_makes_of_it() {
        let file = "services:\n  web:\n    image: a\n    deploy:\n      update_config:\n        failure_action: rollback\n      rollback_config:\n        failure_action: rollback\n";
        let (out, diagnostics) = translated(file, &[]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let out = out.expect("translated");
        let toml: toml::Table = out.toml.parse().expect("TOML");
        let web = &toml["service"]["web"];
        assert_eq!(web["update"]["failure_action"].as_str(), Some("rollback"));
        assert_eq!(web["rollback"]["failure_action"].as_str(), Some("pause"));
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert_eq!(out.warnings[0].location.line, 8, "{:?}", out.warnings);
    }

    #[test]
    fn bare_and_empty_environment_names_follow_the_clis_update_environment() {
        let file = "services:\n  web:\n    image: a\n    environment:\n      - SET\n      - UNSET\n      - EMPTY_BUT_SET=\n      - EMPTY=\n      - PLAIN=x\n";
        let (out, diagnostics) = translated(file, &[("SET", "1"), ("EMPTY_BUT_SET", "2")]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let toml = out.expect("translated").toml;
        assert!(
            toml.contains(r#"unset_env = ["UNSET"]"#),
            "a bare name not set is unset, not empty: {toml}"
        );
        for expected in [
            "SET = \"1\"",
            "EMPTY_BUT_SET = \"2\"",
            "EMPTY = \"\"",
            "PLAIN = \"x\"",
        ] {
            assert!(toml.contains(expected), "{expected}: {toml}");
        }
    }

    #[test]
    fn extra_hosts_in_every_form_the_cli_reads() {
        let file = "services:\n  web:\n    image: a\n    extra_hosts:\n      - \"one=10.0.0.1\"\n      - \"two:10.0.0.2\"\n      - \"six=[::1]\"\n      - \"nothing\"\n";
        let (out, diagnostics) = translated(file, &[]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let out = out.expect("translated");
        assert!(
            out.toml
                .contains(r#"extra_hosts = ["one:10.0.0.1", "two:10.0.0.2", "six:::1"]"#),
            "{}",
            out.toml
        );
        assert!(
            out.warnings
                .iter()
                .any(|w| w.message.contains("`nothing` has no `=` or `:`")),
            "{:?}",
            out.warnings
        );
        let map = "services:\n  web:\n    image: a\n    extra_hosts:\n      a: 10.0.0.1\n      a-b: 10.0.0.2\n      c:\n";
        let toml = translated(map, &[]).0.expect("translated").toml;
        assert!(
            toml.contains(r#"extra_hosts = ["a-b:10.0.0.2", "a:10.0.0.1"]"#),
            "sorted as text, a null value dropped: {toml}"
        );
    }

    #[test]
    fn env_files_and_shell_words() {
        let env = parse_env_file("# c\nA=1\nexport B=\"two words\"\n\nC='x'\n");
        assert_eq!(env.get("B").map(String::as_str), Some("two words"));
        assert_eq!(env.get("C").map(String::as_str), Some("x"));
        let split = |text: &str| {
            words(&Yaml {
                value: Value::String(text.into()),
                at: yaml::Position::default(),
            })
        };
        assert_eq!(
            split("sh -c 'echo hi'"),
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        // Backslashes and double quotes as a shell (and the CLI) reads them.
        assert_eq!(
            split(r#"echo a\ b "c \"d\"""#),
            Some(vec!["echo".into(), "a b".into(), "c \"d\"".into()])
        );
        // Unbalanced quotes are no command (the CLI refuses them too).
        assert_eq!(split("sh -c 'echo"), None);
    }
}
