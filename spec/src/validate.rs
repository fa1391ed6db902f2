//! Checks that need more than one entry: duplicates, references, cycles, port clashes.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::file::{PublishModeFile, RoleFile, ServiceModeFile};
use crate::load::{Entry, RawSpec, SectionKind};
use crate::suggest::did_you_mean;

/// Why a name, a placement constraint or a preference is refused; the
/// message is what the user reads at the value's line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    /// Not `[a-z0-9][a-z0-9_.-]*`, or longer than 63 characters.
    #[error("invalid name `{0}`: use lowercase letters, digits, `_`, `.` and `-`, starting with a letter or digit (at most 63 characters)")]
    Name(String),
    /// A service name Swarm refuses (not a DNS name component).
    #[error("invalid service name `{0}`: Swarm wants a DNS name component (no `.`, ending in a letter or digit)")]
    ServiceName(String),
    /// A node name that is no host name: the board's hostname is set to it,
    /// and the system would change it (`rpi_1` becomes `rpi1`).
    #[error("invalid node name `{name}`: it becomes the board's hostname, and {why}")]
    NodeName {
        /// The name as written.
        name: String,
        /// What a host name may not have.
        why: &'static str,
    },
    /// Not a login name `useradd` creates (and so no user on a board).
    #[error("`{0}` is not a login name: lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters (as `useradd` wants)")]
    LoginName(String),
    /// A nameserver that is no IP address (the CLI's `--dns` refuses it too).
    #[error("dns server `{0}` is not an IP address (it becomes a `nameserver` line of the containers' resolv.conf)")]
    DnsServer(String),
    /// A search domain that is no domain (the CLI's `ValidateDNSSearch`).
    #[error("dns_search entry `{0}` is not a domain (letters, digits and inner `-`, labels joined by `.`), or `.`")]
    DnsSearch(String),
    /// An `/etc/hosts` entry that is not `host:ip` with an IP address.
    #[error("extra_hosts entry `{0}` is not `host:ip` with an IP address (or `host-gateway`)")]
    ExtraHost(String),
    /// A control character in a value that becomes a line of a file.
    #[error("{what} `{text}` has a control character (a newline would add a line to the file it is written into)")]
    ControlCharacter {
        /// Which value.
        what: &'static str,
        /// The value, escaped.
        text: String,
    },
    /// A constraint without `==` or `!=`.
    #[error("malformed constraint `{0}`: expected `<key> == <value>` or `<key> != <value>`, like \"node.role == worker\"")]
    ConstraintForm(String),
    /// A constraint on a key Swarm does not know.
    #[error("malformed constraint `{text}`: unknown key `{key}`; use {known}, node.labels.<label> or engine.labels.<label>{hint}")]
    ConstraintKey {
        /// The constraint as written.
        text: String,
        /// Its key.
        key: String,
        /// The keys Swarm knows, listed.
        known: String,
        /// `; did you mean ...?`, or nothing.
        hint: String,
    },
    /// Nothing (or a second operator) after the operator.
    #[error("malformed constraint `{0}`: missing or invalid value after the operator")]
    ConstraintValue(String),
    /// `node.role` compared with something other than `manager` or `worker`.
    #[error("malformed constraint `{0}`: node.role is `manager` or `worker`")]
    ConstraintRole(String),
    /// Not `spread=` a node attribute Swarm knows.
    #[error("malformed preference `{text}`: expected `spread=<attribute>`, the attribute one of {known}, node.labels.<label> or engine.labels.<label>")]
    Preference {
        /// The preference as written.
        text: String,
        /// The keys Swarm knows, listed.
        known: String,
    },
}

/// Names of nodes, services, networks, releases and stacks: `[a-z0-9][a-z0-9_.-]*`.
pub(crate) fn check_name(name: &str) -> Result<(), ValueError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(ValueError::Name(name.to_string()))
    }
}

/// A name of a kind of entry: [`check_name`], and for a service what
/// Swarm also requires (a DNS name component: no `.`, ending in a letter or
/// digit, e.g. `web-` and `a.b` are refused by `docker service create`).
pub(crate) fn check_entry_name(kind: SectionKind, name: &str) -> Result<(), ValueError> {
    check_name(name)?;
    if kind == SectionKind::Service
        && (name.contains('.') || !name.ends_with(|c: char| c.is_ascii_alphanumeric()))
    {
        return Err(ValueError::ServiceName(name.to_string()));
    }
    if kind == SectionKind::Node {
        crate::address::check_host_name(name).map_err(|why| ValueError::NodeName {
            name: name.to_string(),
            why,
        })?;
    }
    Ok(())
}

/// A login name as Debian's `useradd` creates it (`NAME_REGEX`'s default,
/// `[a-z_][a-z0-9_-]*[$]?`, at most 32 characters): `[ssh] user` and
/// `docker_users` name users that exist on the boards, or are made there.
pub(crate) fn check_login_name(name: &str) -> Result<(), ValueError> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 32;
    if ok {
        Ok(())
    } else {
        Err(ValueError::LoginName(name.escape_debug().to_string()))
    }
}

/// A nameserver: an IP address, as the CLI's `ValidateIPAddress` wants.
pub(crate) fn check_dns_server(text: &str) -> Result<(), ValueError> {
    text.parse::<std::net::IpAddr>()
        .map(|_| ())
        .map_err(|_| ValueError::DnsServer(text.escape_debug().to_string()))
}

/// A search domain as the CLI's `ValidateDNSSearch` reads it: `.`, or
/// labels of letters, digits and inner `-`, an optional trailing `.`, at
/// most 255 characters.
pub(crate) fn check_dns_search(text: &str) -> Result<(), ValueError> {
    if text == "." {
        return Ok(());
    }
    let body = text.strip_suffix('.').unwrap_or(text);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if text.len() <= 255 && body.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(ValueError::DnsSearch(text.escape_debug().to_string()))
    }
}

/// An `/etc/hosts` entry `host:ip` (cut at the first `:`, as the CLI cuts
/// it): a host without blanks or control characters, and an IP address or
/// `host-gateway`.
pub(crate) fn check_extra_host(text: &str) -> Result<(), ValueError> {
    let refused = || ValueError::ExtraHost(text.escape_debug().to_string());
    let (host, ip) = text.split_once(':').ok_or_else(refused)?;
    let host_ok = !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control());
    if host_ok && (ip == "host-gateway" || ip.parse::<std::net::IpAddr>().is_ok()) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// A value written as one line of a file (a container's hostname) has no
/// control character.
pub(crate) fn check_one_line(what: &'static str, text: &str) -> Result<(), ValueError> {
    if text.chars().any(char::is_control) {
        return Err(ValueError::ControlCharacter {
            what,
            text: text.escape_debug().to_string(),
        });
    }
    Ok(())
}

const CONSTRAINT_KEYS: [&str; 5] = [
    "node.id",
    "node.hostname",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
];
const CONSTRAINT_PREFIXES: [&str; 2] = ["node.labels.", "engine.labels."];

/// A placement constraint as Swarm accepts it: `<key> == <value>` or `<key> != <value>`.
pub(crate) fn check_constraint(text: &str) -> Result<(), ValueError> {
    let (key, value) = text
        .split_once("==")
        .or_else(|| text.split_once("!="))
        .ok_or_else(|| ValueError::ConstraintForm(text.to_string()))?;
    let key = key.trim();
    let value = value.trim();
    let known = CONSTRAINT_KEYS.contains(&key)
        || CONSTRAINT_PREFIXES
            .iter()
            .any(|p| key.strip_prefix(p).is_some_and(|label| !label.is_empty()));
    if !known {
        let hint = did_you_mean(key, CONSTRAINT_KEYS)
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return Err(ValueError::ConstraintKey {
            text: text.to_string(),
            key: key.to_string(),
            known: CONSTRAINT_KEYS.join(", "),
            hint,
        });
    }
    if value.is_empty() || value.contains("==") || value.contains("!=") {
        return Err(ValueError::ConstraintValue(text.to_string()));
    }
    if key == "node.role" && !matches!(value, "manager" | "worker") {
        return Err(ValueError::ConstraintRole(text.to_string()));
    }
    Ok(())
}

/// A placement preference: `spread=<node attribute>`, any key a constraint
/// may use (Swarm spreads over `node.id`, `node.hostname`, labels, ...);
/// returns the attribute.
pub(crate) fn check_preference(text: &str) -> Result<String, ValueError> {
    let path = text
        .trim()
        .strip_prefix("spread=")
        .map(str::trim)
        .filter(|p| {
            CONSTRAINT_KEYS.contains(p)
                || CONSTRAINT_PREFIXES
                    .iter()
                    .any(|prefix| p.strip_prefix(prefix).is_some_and(|l| !l.is_empty()))
        })
        .ok_or_else(|| ValueError::Preference {
            text: text.to_string(),
            known: CONSTRAINT_KEYS.join(", "),
        })?;
    Ok(path.to_string())
}

/// The same name defined twice, in one file or two, names both places.
pub(crate) fn duplicates(raw: &RawSpec<'_>, diagnostics: &mut Diagnostics) {
    singleton_twice(
        "cluster",
        raw.cluster.iter().map(|e| (e.source, &e.name_span)),
        diagnostics,
    );
    singleton_twice(
        "controller",
        raw.controller.iter().map(|e| (e.source, &e.name_span)),
        diagnostics,
    );
    singleton_twice(
        "ssh",
        raw.ssh.iter().map(|e| (e.source, &e.name_span)),
        diagnostics,
    );
    singleton_twice(
        "bootstrap",
        raw.bootstrap.iter().map(|e| (e.source, &e.name_span)),
        diagnostics,
    );
    singleton_twice(
        "board",
        raw.board.iter().map(|e| (e.source, &e.name_span)),
        diagnostics,
    );
    singleton_twice(
        "maintenance",
        raw.maintenance.iter().map(|e| (e.source, &e.name_span)),
        diagnostics,
    );
    for kind in SectionKind::ALL {
        let mut seen: BTreeMap<&str, &Entry<'_, SectionKind>> = BTreeMap::new();
        for entry in raw.declared.iter().filter(|e| e.value == kind) {
            match seen.get(entry.name.as_str()) {
                Some(first) => diagnostics.push(
                    entry
                        .name_error(format!("{kind} `{}` is defined twice", entry.name))
                        .with_help(format!(
                            "first defined at {}",
                            first.source.span_location(&first.name_span)
                        )),
                ),
                None => {
                    seen.insert(&entry.name, entry);
                }
            }
        }
    }
}

/// A section like `[cluster]` may appear in one file only.
fn singleton_twice<'a>(
    section: &str,
    places: impl Iterator<Item = (&'a crate::source::SourceFile, &'a std::ops::Range<usize>)>,
    diagnostics: &mut Diagnostics,
) {
    let places: Vec<_> = places.collect();
    if let Some((first_source, first_span)) = places.first() {
        for (source, span) in places.iter().skip(1) {
            diagnostics.push(
                source
                    .error(span, format!("[{section}] is defined twice"))
                    .with_help(format!(
                        "first defined at {}",
                        first_source.span_location(first_span)
                    )),
            );
        }
    }
}

/// References between entries, and properties of the whole cluster.
pub(crate) fn references(raw: &RawSpec<'_>, diagnostics: &mut Diagnostics) {
    let declared = |kind: SectionKind| -> BTreeSet<&str> {
        raw.declared
            .iter()
            .filter(|e| e.value == kind)
            .map(|e| e.name.as_str())
            .collect()
    };
    let networks = declared(SectionKind::Network);
    let services = declared(SectionKind::Service);
    let configs = declared(SectionKind::Config);
    let secrets = declared(SectionKind::Secret);
    // Services that run to completion: nothing waits for them.
    let jobs: BTreeSet<&str> = raw
        .services
        .iter()
        .filter(|s| {
            s.value.mode.as_ref().is_some_and(|m| {
                matches!(
                    m.get_ref(),
                    ServiceModeFile::ReplicatedJob | ServiceModeFile::GlobalJob
                )
            })
        })
        .map(|s| s.name.as_str())
        .collect();
    for service in &raw.services {
        for (kind, refs, known) in [
            ("config", &service.value.configs, &configs),
            ("secret", &service.value.secrets, &secrets),
        ] {
            let mut targets = BTreeSet::new();
            for file in refs {
                let source = &file.get_ref().source;
                if !known.contains(source.get_ref().as_str()) {
                    diagnostics.push(unknown_reference(service, source, kind, known));
                }
                let target = file.get_ref().target.as_deref().unwrap_or(source.get_ref());
                if !targets.insert(target.to_string()) {
                    diagnostics.push(service.error(
                        &file.span(),
                        format!(
                            "two {kind}s of service `{}` are the same file `{target}`",
                            service.name
                        ),
                    ));
                }
            }
        }
        for network in &service.value.networks {
            if !networks.contains(network.get_ref().as_str()) {
                diagnostics.push(unknown_reference(service, network, "network", &networks));
            }
        }
        for dependency in &service.value.after {
            if jobs.contains(dependency.get_ref().as_str()) {
                diagnostics.push(
                    service
                        .error(
                            &dependency.span(),
                            format!(
                                "service `{}` cannot come `after` the job `{}`: a job is not waited for",
                                service.name,
                                dependency.get_ref()
                            ),
                        )
                        .with_help("jobs run to completion in their own time; apply writes them and goes on"),
                );
            } else if dependency.get_ref() == &service.name {
                diagnostics.push(service.error(
                    &dependency.span(),
                    format!("service `{}` cannot come `after` itself", service.name),
                ));
            } else if !services.contains(dependency.get_ref().as_str()) {
                diagnostics.push(unknown_reference(service, dependency, "service", &services));
            }
        }
    }
    after_cycles(raw, diagnostics);
    published_port_clashes(raw, diagnostics);
    node_roles_and_addresses(raw, diagnostics);
}

fn unknown_reference<T>(
    entry: &Entry<'_, T>,
    reference: &toml::Spanned<String>,
    kind: &str,
    defined: &BTreeSet<&str>,
) -> Diagnostic {
    let mut diagnostic = entry.error(
        &reference.span(),
        format!(
            "service `{}` refers to undefined {kind} `{}`",
            entry.name,
            reference.get_ref()
        ),
    );
    if let Some(help) = did_you_mean(reference.get_ref(), defined.iter().copied()) {
        diagnostic = diagnostic.with_help(help);
    } else {
        diagnostic =
            diagnostic.with_help(format!("define it with [{kind}.{}]", reference.get_ref()));
    }
    diagnostic
}

/// `after` must form a DAG; a cycle is reported once, at its first member.
fn after_cycles(raw: &RawSpec<'_>, diagnostics: &mut Diagnostics) {
    let by_name: BTreeMap<&str, &Entry<'_, Box<crate::file::ServiceFile>>> =
        raw.services.iter().map(|e| (e.name.as_str(), e)).collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    fn visit<'a>(
        name: &'a str,
        by_name: &BTreeMap<&'a str, &'a Entry<'a, Box<crate::file::ServiceFile>>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<Vec<&'a str>>,
    ) {
        match marks.get(name) {
            Some(Mark::Done) => return,
            Some(Mark::Visiting) => {
                if let Some(start) = stack.iter().position(|n| *n == name) {
                    cycles.push(stack[start..].to_vec());
                }
                return;
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        stack.push(name);
        if let Some(entry) = by_name.get(name) {
            for dependency in &entry.value.after {
                let dependency = dependency.get_ref().as_str();
                if dependency != name {
                    if let Some((key, _)) = by_name.get_key_value(dependency) {
                        visit(key, by_name, marks, stack, cycles);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
    }
    let mut cycles = Vec::new();
    for name in by_name.keys() {
        visit(name, &by_name, &mut marks, &mut Vec::new(), &mut cycles);
    }
    for cycle in cycles {
        let mut canonical: Vec<String> = cycle.iter().map(|s| s.to_string()).collect();
        canonical.sort();
        if !reported.insert(canonical) {
            continue;
        }
        if let Some(entry) = cycle.first().and_then(|n| by_name.get(n)) {
            let mut path = cycle.join(" -> ");
            path.push_str(" -> ");
            path.push_str(&entry.name);
            diagnostics.push(
                entry
                    .name_error(format!(
                        "services depend on each other in a cycle through `after`: {path}"
                    ))
                    .with_help("remove one of the `after` entries to break the cycle"),
            );
        }
    }
}

/// Two services publishing the same port and protocol cannot both bind it.
fn published_port_clashes(raw: &RawSpec<'_>, diagnostics: &mut Diagnostics) {
    let mut claimed: BTreeMap<(u16, String), (String, crate::Location)> = BTreeMap::new();
    for service in &raw.services {
        for port in &service.value.ports {
            let p = port.get_ref();
            let Some(published) = p.published else {
                continue;
            };
            let protocol = format!("{:?}", p.protocol.unwrap_or(crate::file::ProtocolFile::Tcp))
                .to_lowercase();
            let mode = if matches!(p.mode, Some(PublishModeFile::Host)) {
                "host"
            } else {
                "ingress"
            };
            let here = service.source.span_location(&port.span());
            match claimed.get(&(published, protocol.clone())) {
                Some((other, place)) => diagnostics.push(
                    service
                        .error(&port.span(), format!(
                            "service `{}` publishes {published}/{protocol} ({mode} mode), already published by service `{other}`",
                            service.name
                        ))
                        .with_help(format!("the other one is at {place}; pick another `published` port")),
                ),
                None => {
                    claimed.insert((published, protocol), (service.name.clone(), here));
                }
            }
        }
    }
}

fn node_roles_and_addresses(raw: &RawSpec<'_>, diagnostics: &mut Diagnostics) {
    if let Some(first) = raw.nodes.first() {
        if !raw
            .nodes
            .iter()
            .any(|n| matches!(n.value.role, RoleFile::Manager))
        {
            diagnostics.push(
                first
                    .name_error(
                        "no node has `role = \"manager\"`: a swarm needs at least one manager",
                    )
                    .with_help("make one node (three or five for quorum) a manager"),
            );
        }
    }
    for node in &raw.nodes {
        if let Some(key) = &node.value.host_key {
            if let Err(problem) = check_host_key(key.get_ref()) {
                diagnostics.push(
                    node.error(
                        &key.span(),
                        format!("node `{}`: host_key is not an SSH public key: {problem}", node.name),
                    )
                    .with_help("copy the line from the board: `ssh-keyscan -t ed25519 ADDRESS` prints `ADDRESS ssh-ed25519 AAAA...`; use `ssh-ed25519 AAAA...`"),
                );
            }
        }
    }
    // Two boards may share an address only behind different SSH ports (port forwarding, test beds).
    let default_port = raw.ssh.first().and_then(|s| s.value.port).unwrap_or(22);
    let mut addresses: BTreeMap<(crate::address::Address, u16), &Entry<'_, crate::file::NodeFile>> =
        BTreeMap::new();
    for node in &raw.nodes {
        // Compared as read (`fd00::1` is `fd00:0::1`); one that cannot be
        // read is reported where it is lowered.
        let Ok(parsed) = crate::address::parse(node.value.address.get_ref()) else {
            continue;
        };
        let address = node.value.address.get_ref().as_str();
        let port = node
            .value
            .ssh
            .as_ref()
            .and_then(|s| s.port)
            .unwrap_or(default_port);
        match addresses.get(&(parsed.clone(), port)) {
            Some(other) => diagnostics.push(
                node.error(
                    &node.value.address.span(),
                    format!(
                        "node `{}` has the same address `{address}` as node `{}`",
                        node.name, other.name
                    ),
                )
                .with_help(format!(
                    "node `{}` is at {}",
                    other.name,
                    other.source.span_location(&other.name_span)
                )),
            ),
            None => {
                addresses.insert((parsed, port), node);
            }
        }
    }
}

/// The key types an SSH server offers as host keys.
const HOST_KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Why a pinned `host_key` is no SSH public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum HostKeyError {
    /// Nothing was written.
    #[error("it is empty")]
    Empty,
    /// The first word names no key type OpenSSH knows.
    #[error("unknown key type `{0}`")]
    UnknownType(String),
    /// The key is not standard base64.
    #[error("the key is not valid base64")]
    NotBase64,
    /// The decoded key ends before its type.
    #[error("the key is too short")]
    TooShort,
    /// The key's own type is none OpenSSH knows.
    #[error("the key holds an unknown key type `{0}`")]
    UnknownInnerType(String),
    /// The first word and the key disagree.
    #[error("it says `{named}` but the key is `{inner}`")]
    Mismatch {
        /// The type written before the key.
        named: String,
        /// The type inside the key.
        inner: String,
    },
}

/// `TYPE BASE64 [comment]` (or the bare base64) whose blob names `TYPE`:
/// checked here so a typo is a spec error, not a refused connection later.
fn check_host_key(text: &str) -> Result<(), HostKeyError> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (named, encoded) = match fields.as_slice() {
        [encoded] => (None, *encoded),
        [named, encoded, ..] => (Some(*named), *encoded),
        [] => return Err(HostKeyError::Empty),
    };
    if let Some(named) = named {
        if !HOST_KEY_TYPES.contains(&named) {
            return Err(HostKeyError::UnknownType(named.to_string()));
        }
    }
    let blob = decode_base64(encoded).ok_or(HostKeyError::NotBase64)?;
    // The blob starts with the key type as an SSH string (u32 length, bytes).
    let length = blob
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(HostKeyError::TooShort)?;
    let inner = blob
        .get(4..4 + length)
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or(HostKeyError::TooShort)?;
    if !HOST_KEY_TYPES.contains(&inner) {
        return Err(HostKeyError::UnknownInnerType(inner.to_string()));
    }
    match named {
        Some(named) if named != inner => Err(HostKeyError::Mismatch {
            named: named.to_string(),
            inner: inner.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Standard base64 with padding, as in `.pub` files and known_hosts.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 {
            return None;
        }
        let mut group = 0u32;
        for &c in &chunk[..4 - padding] {
            group = (group << 6) | value(c)?;
        }
        group <<= 6 * padding;
        let [_, a, b, c] = group.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_are_checked_like_sshd_writes_them() {
        // ssh-keygen -t ed25519 (a throwaway key).
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIBafAGD6px4KQWw5ZMHSGEOIesmNmtGy/ElTirQN7ZYK";
        assert_eq!(check_host_key(&format!("ssh-ed25519 {key}")), Ok(()));
        assert_eq!(
            check_host_key(&format!("ssh-ed25519 {key} root@pi1")),
            Ok(())
        );
        assert_eq!(check_host_key(key), Ok(()));
        assert!(check_host_key(&format!("ssh-rsa {key}")).is_err_and(|e| e
            .to_string()
            .contains("says `ssh-rsa` but the key is `ssh-ed25519`")));
        assert!(check_host_key("ssh-ed25519 not-base64!")
            .is_err_and(|e| e.to_string().contains("not valid base64")));
        assert!(check_host_key(&format!("ssh-dss {key}"))
            .is_err_and(|e| e.to_string().contains("unknown key type `ssh-dss`")));
        assert!(check_host_key("").is_err());
        assert_eq!(decode_base64("TWE="), Some(b"Ma".to_vec()));
        assert_eq!(decode_base64("TWFu"), Some(b"Man".to_vec()));
        assert_eq!(decode_base64("TQ=="), Some(b"M".to_vec()));
    }

    #[test]
    fn names() {
        for good in ["web", "pi-1", "a.b_c", "0x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Web", "-web", "we b", "web!", "_x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn constraints() {
        for good in [
            "node.role == worker",
            "node.labels.shelf==a",
            "node.hostname != pi1",
            "engine.labels.x == y",
        ] {
            assert!(check_constraint(good).is_ok(), "{good}");
        }
        for bad in [
            "node.role = worker",
            "node.rol == worker",
            "node.labels. == a",
            "node.role == boss",
            "node.hostname ==",
        ] {
            assert!(check_constraint(bad).is_err(), "{bad}");
        }
    }
}
