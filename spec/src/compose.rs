//! Compose v3 stack files, with the meaning `docker stack deploy` gives them.
//!
//! A `[stack.NAME]` entry names a compose file (and optionally an env file).
//! The file is interpolated (`${VAR}`, `${VAR:-default}`, ... from the env file
//! and the process environment), parsed, and translated into a spec fragment
//! of services and networks named `NAME_<service>` as Docker names them; the
//! fragment then goes through the same validation as hand-written TOML.
//! Keys Swarm ignores (`build`, `depends_on`, ...) are warnings; keys this
//! translation does not support yet are errors, never silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value as Yaml;

use crate::diagnostic::{Diagnostic, Diagnostics, Location};

/// Keys of a compose service that `docker stack deploy` ignores.
const IGNORED_BY_SWARM: [&str; 16] = [
    "build",
    "depends_on",
    "container_name",
    "restart",
    "links",
    "external_links",
    "network_mode",
    "cap_add",
    "cap_drop",
    "devices",
    "privileged",
    "security_opt",
    "cgroup_parent",
    "userns_mode",
    "expose",
    "profiles",
];

#[derive(Debug, Deserialize)]
struct ComposeFile {
    #[serde(default)]
    services: BTreeMap<String, BTreeMap<String, Yaml>>,
    #[serde(default)]
    networks: BTreeMap<String, Option<BTreeMap<String, Yaml>>>,
    #[serde(flatten)]
    rest: BTreeMap<String, Yaml>,
}

/// What translating one stack produced: TOML text of a spec fragment, and warnings.
#[derive(Debug)]
pub(crate) struct Translated {
    pub toml: String,
    pub warnings: Vec<Diagnostic>,
}

/// Where a compose problem is: the file and the line of the key it concerns.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn at_line(&self, line: usize, column: usize) -> Location {
        Location {
            file: self.path.to_path_buf(),
            line,
            column,
        }
    }

    /// The line of `key` under `services: <service>:` (or at the top level),
    /// found by indentation; the service's own line when the key is not found.
    fn key(&self, service: Option<&str>, key: &str) -> Location {
        let lines: Vec<&str> = self.text.lines().collect();
        let indent = |l: &str| l.len() - l.trim_start().len();
        let is_key = |l: &str, k: &str| {
            let t = l.trim_start().trim_start_matches("- ");
            t.strip_prefix(k).is_some_and(|rest| rest.starts_with(':'))
                || t.strip_prefix(&format!("\"{k}\""))
                    .is_some_and(|r| r.starts_with(':'))
        };
        let mut start = 0;
        let mut min_indent = 0;
        if let Some(service) = service {
            let services = lines
                .iter()
                .position(|l| indent(l) == 0 && is_key(l, "services"));
            if let Some(s) = services {
                if let Some(offset) = lines[s + 1..]
                    .iter()
                    .position(|l| indent(l) > 0 && is_key(l, service))
                {
                    start = s + 1 + offset;
                    min_indent = indent(lines[start]) + 1;
                    let found = lines[start + 1..]
                        .iter()
                        .take_while(|l| l.trim().is_empty() || indent(l) >= min_indent)
                        .position(|l| is_key(l, key));
                    return match found {
                        Some(i) => {
                            let line = lines[start + 1 + i];
                            self.at_line(start + 2 + i, indent(line) + 1)
                        }
                        None => self.at_line(start + 1, indent(lines[start]) + 1),
                    };
                }
            }
        }
        match lines
            .iter()
            .skip(start)
            .position(|l| indent(l) >= min_indent && is_key(l, key))
        {
            Some(i) => self.at_line(start + i + 1, indent(lines[start + i]) + 1),
            None => self.at_line(1, 1),
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

/// Replaces `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?message}`, `${VAR?message}` and `$$`, line by line so positions
/// stay right. Unset variables without a default become "" with a warning.
pub(crate) fn interpolate(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let location = |column: usize| Location {
            file: path.to_path_buf(),
            line: index + 1,
            column,
        };
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '$' {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let column = i + 1;
            match chars.get(i + 1) {
                Some('$') => {
                    out.push('$');
                    i += 2;
                }
                Some('{') => {
                    let Some(close) = chars[i + 2..].iter().position(|c| *c == '}') else {
                        diagnostics.push(Diagnostic::new(
                            location(column),
                            "unclosed `${` in interpolation",
                        ));
                        out.extend(&chars[i..]);
                        break;
                    };
                    let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                    out.push_str(&expand(
                        &inner,
                        lookup,
                        &location(column),
                        warnings,
                        diagnostics,
                    ));
                    i += close + 3;
                }
                Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    i += 1 + name.len();
                    out.push_str(&expand(
                        &name,
                        lookup,
                        &location(column),
                        warnings,
                        diagnostics,
                    ));
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        }
    }
    out
}

fn expand(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    location: &Location,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) -> String {
    let split = inner.find([':', '-', '?']).map(|i| inner.split_at(i));
    let (name, modifier) = split.unwrap_or((inner, ""));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        diagnostics.push(Diagnostic::new(
            location.clone(),
            format!("invalid interpolation `${{{inner}}}`"),
        ));
        return String::new();
    }
    let value = lookup(name);
    let (operator, argument) = if let Some(rest) = modifier.strip_prefix(":-") {
        (":-", rest)
    } else if let Some(rest) = modifier.strip_prefix(":?") {
        (":?", rest)
    } else if let Some(rest) = modifier.strip_prefix('-') {
        ("-", rest)
    } else if let Some(rest) = modifier.strip_prefix('?') {
        ("?", rest)
    } else if modifier.is_empty() {
        ("", "")
    } else {
        diagnostics.push(Diagnostic::new(
            location.clone(),
            format!("invalid interpolation `${{{inner}}}`"),
        ));
        return String::new();
    };
    match (operator, value) {
        (":-", Some(v)) if v.is_empty() => argument.to_string(),
        (":-" | "-", None) => argument.to_string(),
        (":?", Some(v)) if v.is_empty() => {
            diagnostics.push(Diagnostic::new(
                location.clone(),
                format!("required variable `{name}` is empty: {argument}"),
            ));
            String::new()
        }
        (":?" | "?", None) => {
            diagnostics.push(Diagnostic::new(
                location.clone(),
                format!("required variable `{name}` is not set: {argument}"),
            ));
            String::new()
        }
        (_, Some(v)) => v,
        (_, None) => {
            warnings.push(Diagnostic::warning(
                location.clone(),
                format!("variable `{name}` is not set; using an empty string"),
            ));
            String::new()
        }
    }
}

/// Translates one compose file (already interpolated) into spec TOML; names
/// are prefixed with the stack name later, by the loader.
pub(crate) fn translate(
    stack: &str,
    path: &Path,
    text: &str,
    assets: &BTreeMap<PathBuf, String>,
    diagnostics: &mut Diagnostics,
) -> Option<Translated> {
    let locator = Locator { path, text };
    let file: ComposeFile = match serde_yaml::from_str(text) {
        Ok(file) => file,
        Err(error) => {
            let location = error.location().map_or_else(
                || locator.at_line(1, 1),
                |l| locator.at_line(l.line(), l.column()),
            );
            diagnostics.push(Diagnostic::new(location, format!("compose file: {error}")));
            return None;
        }
    };
    let mut warnings = Vec::new();
    for key in file.rest.keys() {
        match key.as_str() {
            "version" | "volumes" => {}
            k if k.starts_with("x-") => {}
            other => diagnostics.push(Diagnostic::new(
                locator.key(None, other),
                format!("compose: top-level `{other}` is not supported by reconciler yet"),
            )),
        }
    }
    let mut fragment = toml::Table::new();
    let mut networks = toml::Table::new();
    let mut uses_default_network = false;
    for (name, network) in &file.networks {
        let mut out = toml::Table::new();
        for (key, value) in network.iter().flatten() {
            let location = locator.key(None, key);
            match key.as_str() {
                "driver" => match value.as_str() {
                    Some("overlay") => {}
                    _ => diagnostics.push(Diagnostic::new(
                        location,
                        format!("compose: network `{name}`: only the overlay driver is supported"),
                    )),
                },
                "attachable" | "internal" => match value.as_bool() {
                    Some(b) => {
                        out.insert(key.clone(), toml::Value::Boolean(b));
                    }
                    None => diagnostics.push(Diagnostic::new(
                        location,
                        format!("compose: network `{name}`: `{key}` must be true or false"),
                    )),
                },
                "labels" => {
                    out.insert("labels".into(), toml::Value::Table(string_map(value)));
                }
                other => diagnostics.push(Diagnostic::new(
                    location,
                    format!(
                        "compose: network `{name}`: `{other}` is not supported by reconciler yet"
                    ),
                )),
            }
        }
        networks.insert(name.clone(), toml::Value::Table(out));
    }

    let mut services = toml::Table::new();
    for (name, keys) in &file.services {
        let mut service = toml::Table::new();
        let mut deploy_labels = toml::Table::new();
        let mut env = toml::Table::new();
        for (key, value) in keys {
            let location = locator.key(Some(name), key);
            let problem = |message: String| {
                Diagnostic::new(
                    location.clone(),
                    format!("compose: service `{name}`: {message}"),
                )
            };
            match key.as_str() {
                "image" => match value.as_str() {
                    Some(image) => {
                        service.insert("image".into(), image.into());
                    }
                    None => diagnostics.push(problem("`image` must be a string".into())),
                },
                "entrypoint" => match words(value) {
                    Some(words) => {
                        service.insert("command".into(), string_array(words));
                    }
                    None => diagnostics.push(problem("`entrypoint` must be a string or a list of strings".into())),
                },
                "command" => match words(value) {
                    Some(words) => {
                        service.insert("args".into(), string_array(words));
                    }
                    None => diagnostics.push(problem("`command` must be a string or a list of strings".into())),
                },
                "environment" => match key_values(value) {
                    Some(pairs) => env.extend(pairs.into_iter().map(|(k, v)| (k, toml::Value::String(v)))),
                    None => diagnostics.push(problem("`environment` must be a list of KEY=VALUE or a map".into())),
                },
                "env_file" => {
                    let files = match value {
                        Yaml::String(s) => vec![s.clone()],
                        Yaml::Sequence(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                        _ => Vec::new(),
                    };
                    for env_file in files {
                        let resolved = relative_to(path, &env_file);
                        match assets.get(&resolved) {
                            Some(text) => {
                                for (k, v) in parse_env_file(text) {
                                    env.entry(k).or_insert(toml::Value::String(v));
                                }
                            }
                            None => diagnostics.push(problem(format!("env_file `{env_file}` not found (looked for {})", resolved.display()))),
                        }
                    }
                }
                "user" | "working_dir" => match value.as_str() {
                    Some(v) => {
                        let target = if key == "user" { "user" } else { "workdir" };
                        service.insert(target.into(), v.into());
                    }
                    None => diagnostics.push(problem(format!("`{key}` must be a string"))),
                },
                "labels" => {
                    service.insert("container_labels".into(), toml::Value::Table(string_map(value)));
                }
                "ports" => match ports(value) {
                    Ok(list) => {
                        service.insert("ports".into(), toml::Value::Array(list));
                    }
                    Err(message) => diagnostics.push(problem(message)),
                },
                "networks" => match network_names(value) {
                    Some(list) => {
                        service.insert("networks".into(), string_array(list));
                    }
                    None => diagnostics.push(problem("`networks` must be a list or a map of network names".into())),
                },
                "volumes" => match mounts(value, stack, &file.rest) {
                    Ok(list) => {
                        service.insert("mounts".into(), toml::Value::Array(list));
                    }
                    Err(message) => diagnostics.push(problem(message)),
                },
                "healthcheck" => match healthcheck(value) {
                    Ok(Some(table)) => {
                        service.insert("healthcheck".into(), toml::Value::Table(table));
                    }
                    Ok(None) => {}
                    Err(message) => diagnostics.push(problem(message)),
                },
                "deploy" => deploy(value, &mut service, &mut deploy_labels, &mut |message| diagnostics.push(problem(message))),
                ignored if IGNORED_BY_SWARM.contains(&ignored) => warnings.push(Diagnostic::warning(
                    location.clone(),
                    format!("compose: service `{name}`: `{ignored}` is ignored by docker stack deploy, and by reconciler"),
                )),
                other => diagnostics.push(problem(format!("`{other}` is not supported by reconciler yet"))),
            }
        }
        if !env.is_empty() {
            service.insert("env".into(), toml::Value::Table(env));
        }
        // As `docker stack deploy` does, so `docker stack ps/services NAME` work:
        // the stack on the service and on its containers, the image as written.
        deploy_labels.insert("com.docker.stack.namespace".into(), stack.into());
        if let Some(image) = service.get("image").and_then(toml::Value::as_str) {
            deploy_labels.insert("com.docker.stack.image".into(), image.into());
        }
        service.insert("labels".into(), toml::Value::Table(deploy_labels));
        let container_labels = service
            .entry("container_labels")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(labels) = container_labels {
            labels.insert("com.docker.stack.namespace".into(), stack.into());
        }
        if !service.contains_key("networks") {
            uses_default_network = true;
            service.insert("networks".into(), string_array(vec!["default".into()]));
        }
        if !service.contains_key("image") {
            diagnostics.push(Diagnostic::new(
                locator.key(Some(name), name),
                format!("compose: service `{name}` has no `image` (swarm cannot build images)"),
            ));
        }
        if let Some(toml::Value::Array(list)) = service.get("networks") {
            for network in list.iter().filter_map(|n| n.as_str()) {
                if network != "default" && !file.networks.contains_key(network) {
                    diagnostics.push(Diagnostic::new(
                        locator.key(Some(name), "networks"),
                        format!("compose: service `{name}` uses network `{network}`, which the file does not define under `networks:`"),
                    ));
                }
            }
        }
        services.insert(name.clone(), toml::Value::Table(service));
    }
    if uses_default_network && !networks.contains_key("default") {
        networks.insert("default".into(), toml::Value::Table(toml::Table::new()));
    }
    // As `docker stack deploy`: only networks some service uses are created,
    // each labelled with the stack, so `docker stack rm` removes them too.
    let used: std::collections::BTreeSet<String> = services
        .values()
        .filter_map(|s| s.get("networks").and_then(toml::Value::as_array))
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    networks.retain(|name, _| used.contains(name));
    for (_, network) in networks.iter_mut() {
        if let toml::Value::Table(table) = network {
            let labels = table
                .entry("labels")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(labels) = labels {
                labels.insert("com.docker.stack.namespace".into(), stack.into());
            }
        }
    }
    fragment.insert("network".into(), toml::Value::Table(networks));
    fragment.insert("service".into(), toml::Value::Table(services));
    match toml::to_string(&fragment) {
        Ok(toml) => Some(Translated { toml, warnings }),
        Err(error) => {
            diagnostics.push(Diagnostic::new(
                locator.at_line(1, 1),
                format!("compose: cannot translate: {error}"),
            ));
            None
        }
    }
}

/// A path written in a compose file, relative to that file's folder.
pub(crate) fn relative_to(compose: &Path, path: &str) -> PathBuf {
    let base = compose.parent().unwrap_or(Path::new(""));
    let mut out = PathBuf::new();
    for part in base.join(path).components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

fn string_array(items: Vec<String>) -> toml::Value {
    toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
}

/// `"a b c"` (split like a shell would, without quotes support beyond simple ones) or `["a", "b"]`.
fn words(value: &Yaml) -> Option<Vec<String>> {
    match value {
        Yaml::String(s) => Some(shell_words(s)),
        Yaml::Sequence(items) => items.iter().map(scalar).collect(),
        _ => None,
    }
}

fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// `["A=1", "B"]` or `{A: 1}`.
fn key_values(value: &Yaml) -> Option<Vec<(String, String)>> {
    match value {
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| {
                let text = scalar(item)?;
                Some(match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (text.clone(), std::env::var(&text).unwrap_or_default()),
                })
            })
            .collect(),
        Yaml::Mapping(map) => map
            .iter()
            .map(|(k, v)| Some((scalar(k)?, scalar(v)?)))
            .collect(),
        _ => None,
    }
}

fn string_map(value: &Yaml) -> toml::Table {
    key_values(value)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, toml::Value::String(v)))
        .collect()
}

fn network_names(value: &Yaml) -> Option<Vec<String>> {
    match value {
        Yaml::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        Yaml::Mapping(map) => map.keys().map(|k| k.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn port_number(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<u16>()
        .map(i64::from)
        .map_err(|_| format!("invalid port `{text}` (ranges and host IPs are not supported)"))
}

fn ports(value: &Yaml) -> Result<Vec<toml::Value>, String> {
    let Yaml::Sequence(items) = value else {
        return Err("`ports` must be a list".into());
    };
    items
        .iter()
        .map(|item| {
            let mut port = toml::Table::new();
            match item {
                Yaml::Mapping(map) => {
                    for (k, v) in map {
                        let key = k.as_str().unwrap_or_default();
                        let text = scalar(v).unwrap_or_default();
                        match key {
                            "target" | "published" => {
                                port.insert(key.into(), toml::Value::Integer(port_number(&text)?));
                            }
                            "protocol" | "mode" => {
                                port.insert(key.into(), toml::Value::String(text));
                            }
                            other => return Err(format!("port option `{other}` is not supported")),
                        }
                    }
                }
                other => {
                    let text =
                        scalar(other).ok_or("a port must be a string, a number or a mapping")?;
                    let (spec, protocol) = text.split_once('/').unwrap_or((&text, "tcp"));
                    let parts: Vec<&str> = spec.split(':').collect();
                    match parts.as_slice() {
                        [target] => {
                            port.insert(
                                "target".into(),
                                toml::Value::Integer(port_number(target)?),
                            );
                        }
                        [published, target] => {
                            port.insert(
                                "target".into(),
                                toml::Value::Integer(port_number(target)?),
                            );
                            port.insert(
                                "published".into(),
                                toml::Value::Integer(port_number(published)?),
                            );
                        }
                        _ => {
                            return Err(format!(
                                "invalid port `{text}` (host IPs are not supported by swarm)"
                            ))
                        }
                    }
                    port.insert("protocol".into(), toml::Value::String(protocol.to_string()));
                }
            }
            Ok(toml::Value::Table(port))
        })
        .collect()
}

/// Named volumes declared at the top level get the stack prefix, as Docker names them.
fn mounts(
    value: &Yaml,
    stack: &str,
    top: &BTreeMap<String, Yaml>,
) -> Result<Vec<toml::Value>, String> {
    let declared = |name: &str| top.get("volumes").and_then(|v| v.get(name)).is_some();
    let Yaml::Sequence(items) = value else {
        return Err("`volumes` must be a list".into());
    };
    items
        .iter()
        .map(|item| {
            let mut mount = toml::Table::new();
            match item {
                Yaml::String(text) => {
                    let parts: Vec<&str> = text.split(':').collect();
                    let (source, target, mode) = match parts.as_slice() {
                        [target] => (None, *target, None),
                        [source, target] => (Some(*source), *target, None),
                        [source, target, mode] => (Some(*source), *target, Some(*mode)),
                        _ => return Err(format!("invalid volume `{text}`")),
                    };
                    let kind = match source {
                        Some(s) if s.starts_with('/') || s.starts_with('.') => "bind",
                        _ => "volume",
                    };
                    if source.is_some_and(|s| s.starts_with('.')) {
                        return Err(format!("volume `{text}`: relative bind mounts have no meaning on a swarm node; use an absolute path"));
                    }
                    mount.insert("type".into(), kind.into());
                    if let Some(source) = source {
                        let source = if kind == "volume" && declared(source) { format!("{stack}_{source}") } else { source.to_string() };
                        mount.insert("source".into(), source.into());
                    }
                    mount.insert("target".into(), target.into());
                    match mode {
                        None | Some("rw") => {}
                        Some("ro") => {
                            mount.insert("readonly".into(), true.into());
                        }
                        Some(other) => return Err(format!("volume `{text}`: mode `{other}` is not supported")),
                    }
                }
                Yaml::Mapping(map) => {
                    for (k, v) in map {
                        let key = k.as_str().unwrap_or_default();
                        match key {
                            "type" | "source" | "target" => {
                                mount.insert(key.into(), scalar(v).unwrap_or_default().into());
                            }
                            "read_only" => {
                                mount.insert("readonly".into(), v.as_bool().unwrap_or(false).into());
                            }
                            other => return Err(format!("volume option `{other}` is not supported")),
                        }
                    }
                }
                _ => return Err("a volume must be a string or a mapping".into()),
            }
            Ok(toml::Value::Table(mount))
        })
        .collect()
}

fn healthcheck(value: &Yaml) -> Result<Option<toml::Table>, String> {
    let Yaml::Mapping(map) = value else {
        return Err("`healthcheck` must be a mapping".into());
    };
    let mut out = toml::Table::new();
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        match key {
            "disable" if v.as_bool() == Some(true) => {
                return Ok(Some(toml::Table::from_iter([(
                    "test".to_string(),
                    string_array(vec!["NONE".into()]),
                )])))
            }
            "disable" => {}
            "test" => {
                let test = match v {
                    Yaml::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    other => words(other).ok_or("healthcheck `test` must be a string or a list")?,
                };
                out.insert("test".into(), string_array(test));
            }
            "interval" | "timeout" | "start_period" => {
                let text = scalar(v).unwrap_or_default();
                crate::units::parse_duration(&text)
                    .map_err(|m| format!("healthcheck `{key}`: {m}"))?;
                out.insert(key.into(), text.into());
            }
            "retries" => {
                let retries = v.as_i64().ok_or("healthcheck `retries` must be a number")?;
                out.insert(key.into(), toml::Value::Integer(retries));
            }
            other => return Err(format!("healthcheck option `{other}` is not supported")),
        }
    }
    Ok(Some(out))
}

fn deploy(
    value: &Yaml,
    service: &mut toml::Table,
    labels: &mut toml::Table,
    problem: &mut dyn FnMut(String),
) {
    let Yaml::Mapping(map) = value else {
        problem("`deploy` must be a mapping".into());
        return;
    };
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        match key {
            "mode" => match v.as_str() {
                Some(mode @ ("replicated" | "global")) => {
                    service.insert("mode".into(), mode.into());
                }
                _ => problem("deploy.mode must be `replicated` or `global`".into()),
            },
            "replicas" => match v.as_i64() {
                Some(n) if n >= 0 => {
                    service.insert("replicas".into(), toml::Value::Integer(n));
                }
                _ => problem("deploy.replicas must be a number".into()),
            },
            "labels" => labels.extend(string_map(v)),
            "placement" => {
                let Yaml::Mapping(placement) = v else {
                    problem("deploy.placement must be a mapping".into());
                    continue;
                };
                for (pk, pv) in placement {
                    match pk.as_str().unwrap_or_default() {
                        "constraints" => {
                            let list = words_list(pv);
                            for constraint in &list {
                                if let Err(message) = crate::validate::check_constraint(constraint)
                                {
                                    problem(message);
                                }
                            }
                            service.insert("constraints".into(), string_array(list));
                        }
                        "preferences" => {
                            let list: Vec<String> = match pv {
                                Yaml::Sequence(items) => items
                                    .iter()
                                    .filter_map(|i| i.get("spread").and_then(scalar))
                                    .map(|s| format!("spread={s}"))
                                    .collect(),
                                _ => Vec::new(),
                            };
                            service.insert("preferences".into(), string_array(list));
                        }
                        other => problem(format!(
                            "deploy.placement.{other} is not supported by reconciler yet"
                        )),
                    }
                }
            }
            "resources" => {
                let Yaml::Mapping(resources) = v else {
                    problem("deploy.resources must be a mapping".into());
                    continue;
                };
                let mut out = toml::Table::new();
                for (rk, rv) in resources {
                    let kind = match rk.as_str().unwrap_or_default() {
                        "limits" => "limit",
                        "reservations" => "reserve",
                        other => {
                            problem(format!("deploy.resources.{other} is not supported"));
                            continue;
                        }
                    };
                    let Yaml::Mapping(values) = rv else { continue };
                    for (name, amount) in values {
                        let text = scalar(amount).unwrap_or_default();
                        match name.as_str().unwrap_or_default() {
                            "cpus" => match text.parse::<f64>() {
                                Ok(cpus) => {
                                    out.insert(format!("{kind}_cpus"), toml::Value::Float(cpus));
                                }
                                Err(_) => {
                                    problem(format!("deploy.resources: invalid cpus `{text}`"))
                                }
                            },
                            "memory" => match crate::units::parse_size(&text) {
                                Ok(_) => {
                                    out.insert(format!("{kind}_memory"), text.into());
                                }
                                Err(message) => problem(format!("deploy.resources: {message}")),
                            },
                            other => problem(format!(
                                "deploy.resources.{other} is not supported by reconciler yet"
                            )),
                        }
                    }
                }
                service.insert("resources".into(), toml::Value::Table(out));
            }
            "update_config" | "rollback_config" => {
                let target = if key == "update_config" {
                    "update"
                } else {
                    "rollback"
                };
                // `docker stack deploy` sends parallelism 1 unless the file says otherwise.
                let mut out =
                    toml::Table::from_iter([("parallelism".to_string(), toml::Value::Integer(1))]);
                if let Yaml::Mapping(options) = v {
                    for (ok, ov) in options {
                        let option = ok.as_str().unwrap_or_default();
                        match option {
                            "parallelism" => {
                                out.insert(
                                    option.into(),
                                    toml::Value::Integer(ov.as_i64().unwrap_or(1)),
                                );
                            }
                            "max_failure_ratio" => {
                                out.insert(
                                    option.into(),
                                    toml::Value::Float(ov.as_f64().unwrap_or(0.0)),
                                );
                            }
                            "delay" | "monitor" => {
                                let text = scalar(ov).unwrap_or_default();
                                match crate::units::parse_duration(&text) {
                                    Ok(_) => {
                                        out.insert(option.into(), text.into());
                                    }
                                    Err(message) => {
                                        problem(format!("deploy.{key}.{option}: {message}"))
                                    }
                                }
                            }
                            "failure_action" | "order" => {
                                let text = scalar(ov).unwrap_or_default();
                                let allowed: &[&str] = if option == "order" {
                                    &["stop-first", "start-first"]
                                } else {
                                    &["pause", "continue", "rollback"]
                                };
                                if allowed.contains(&text.as_str()) {
                                    out.insert(option.into(), text.into());
                                } else {
                                    problem(format!(
                                        "deploy.{key}.{option} must be one of {}",
                                        allowed.join(", ")
                                    ));
                                }
                            }
                            other => problem(format!("deploy.{key}.{other} is not supported")),
                        }
                    }
                }
                service.insert(target.into(), toml::Value::Table(out));
            }
            "restart_policy" => {
                let mut out = toml::Table::new();
                if let Yaml::Mapping(options) = v {
                    for (ok, ov) in options {
                        let option = ok.as_str().unwrap_or_default();
                        match option {
                            "max_attempts" => {
                                out.insert(
                                    option.into(),
                                    toml::Value::Integer(ov.as_i64().unwrap_or(0)),
                                );
                            }
                            "condition" => {
                                let text = scalar(ov).unwrap_or_default();
                                if ["none", "on-failure", "any"].contains(&text.as_str()) {
                                    out.insert(option.into(), text.into());
                                } else {
                                    problem("deploy.restart_policy.condition must be one of none, on-failure, any".into());
                                }
                            }
                            "delay" | "window" => {
                                let text = scalar(ov).unwrap_or_default();
                                match crate::units::parse_duration(&text) {
                                    Ok(_) => {
                                        out.insert(option.into(), text.into());
                                    }
                                    Err(message) => problem(format!(
                                        "deploy.restart_policy.{option}: {message}"
                                    )),
                                }
                            }
                            other => {
                                problem(format!("deploy.restart_policy.{other} is not supported"))
                            }
                        }
                    }
                }
                service.insert("restart".into(), toml::Value::Table(out));
            }
            "endpoint_mode" if v.as_str() == Some("vip") => {}
            "endpoint_mode" => problem(
                "deploy.endpoint_mode other than `vip` is not supported by reconciler yet".into(),
            ),
            other => problem(format!("deploy.{other} is not supported by reconciler yet")),
        }
    }
}

fn words_list(value: &Yaml) -> Vec<String> {
    match value {
        Yaml::Sequence(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, vars: &[(&str, &str)]) -> (String, Vec<Diagnostic>, Diagnostics) {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let mut warnings = Vec::new();
        let mut diagnostics = Diagnostics::default();
        let out = interpolate(
            Path::new("s.yml"),
            text,
            &lookup,
            &mut warnings,
            &mut diagnostics,
        );
        (out, warnings, diagnostics)
    }

    #[test]
    fn interpolation_follows_compose() {
        let (out, warnings, errors) = run(
            "a: ${A}-$B-${C:-dflt}-${D-x}-$$E-${EMPTY:-e}\n",
            &[("A", "1"), ("B", "2"), ("EMPTY", "")],
        );
        assert_eq!(out, "a: 1-2-dflt-x-$E-e\n");
        assert!(warnings.is_empty() && errors.is_empty());
        let (out, warnings, _) = run("b: ${MISSING}\n", &[]);
        assert_eq!(out, "b: \n");
        assert_eq!(warnings.len(), 1);
        let (_, _, errors) = run("c: ${NEED:?set NEED}\n", &[]);
        assert_eq!(
            errors
                .iter()
                .next()
                .map(|d| d.message.clone())
                .unwrap_or_default(),
            "required variable `NEED` is not set: set NEED"
        );
    }

    #[test]
    fn env_files_and_shell_words() {
        let env = parse_env_file("# c\nA=1\nexport B=\"two words\"\n\nC='x'\n");
        assert_eq!(env.get("B").map(String::as_str), Some("two words"));
        assert_eq!(env.get("C").map(String::as_str), Some("x"));
        assert_eq!(shell_words("sh -c 'echo hi'"), ["sh", "-c", "echo hi"]);
    }
}
