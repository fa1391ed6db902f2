//! Compose stack files generated from the keys of the docker CLI's 3.x
//! schemas (`cli/compose/schema/data/config_schema_v3.*.json`) that
//! Reconciler translates, with values from each key's domain and the ways
//! people write them (list or map, short or long syntax, quoted or plain,
//! anchors and merge keys, interpolation with defaults), for the generative
//! differential test in `tests/compose.rs`.
//!
//! Seeded and deterministic: the same seed gives the same files. A file is a
//! [`Doc`] tree, so a failing one can be shrunk by deleting keys.

use std::fmt::Write as _;

/// A small deterministic generator (xorshift64*): no dependency, stable
/// across platforms, enough for choosing among cases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n.max(1) as u64).unwrap_or(0)
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A YAML value to write: mappings keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Map(Vec<(String, Doc)>),
    Seq(Vec<Doc>),
    /// Written as is (a number, `true`, a plain word).
    Plain(String),
    /// Written double-quoted.
    Quoted(String),
}

impl Doc {
    fn map(entries: Vec<(&str, Doc)>) -> Doc {
        Doc::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn plain(text: impl Into<String>) -> Doc {
        Doc::Plain(text.into())
    }

    fn quoted(text: impl Into<String>) -> Doc {
        Doc::Quoted(text.into())
    }

    /// The YAML text, block style, two spaces per level.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        match self {
            Doc::Map(entries) => {
                for (key, value) in entries {
                    match value {
                        Doc::Map(inner) if !inner.is_empty() => {
                            let _ = writeln!(out, "{pad}{key}:");
                            value.write(out, indent + 2);
                        }
                        Doc::Seq(items) if !items.is_empty() => {
                            let _ = writeln!(out, "{pad}{key}:");
                            value.write(out, indent + 2);
                        }
                        Doc::Map(_) => {
                            let _ = writeln!(out, "{pad}{key}: {{}}");
                        }
                        Doc::Seq(_) => {
                            let _ = writeln!(out, "{pad}{key}: []");
                        }
                        scalar => {
                            let _ = writeln!(out, "{pad}{key}: {}", scalar.scalar());
                        }
                    }
                }
            }
            Doc::Seq(items) => {
                for item in items {
                    match item {
                        Doc::Map(entries) if !entries.is_empty() => {
                            // The first key on the dash's line, the rest under it.
                            let mut text = String::new();
                            item.write(&mut text, indent + 2);
                            let body = text.trim_start();
                            let _ = write!(out, "{pad}- {body}");
                        }
                        scalar => {
                            let _ = writeln!(out, "{pad}- {}", scalar.scalar());
                        }
                    }
                }
            }
            scalar => {
                let _ = writeln!(out, "{pad}{}", scalar.scalar());
            }
        }
    }

    fn scalar(&self) -> String {
        match self {
            Doc::Plain(text) => text.clone(),
            Doc::Quoted(text) => format!("{text:?}"),
            Doc::Map(_) => "{}".into(),
            Doc::Seq(_) => "[]".into(),
        }
    }

    /// Every path to a key that may be deleted while shrinking: the keys of
    /// each service and of its `deploy`.
    pub fn deletable_paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        let Some(services) = self.get(&["services"]) else {
            return paths;
        };
        if let Doc::Map(services) = services {
            for (name, service) in services {
                if let Doc::Map(keys) = service {
                    for (key, value) in keys {
                        if key == "image" {
                            continue;
                        }
                        paths.push(vec!["services".into(), name.clone(), key.clone()]);
                        if let (true, Doc::Map(inner)) = (key == "deploy", value) {
                            for (sub, _) in inner {
                                paths.push(vec![
                                    "services".into(),
                                    name.clone(),
                                    key.clone(),
                                    sub.clone(),
                                ]);
                            }
                        }
                    }
                }
            }
        }
        paths
    }

    fn get(&self, path: &[&str]) -> Option<&Doc> {
        let mut node = self;
        for key in path {
            let Doc::Map(entries) = node else { return None };
            node = &entries.iter().find(|(k, _)| k == key)?.1;
        }
        Some(node)
    }

    /// The same document without the key at `path`.
    pub fn without(&self, path: &[String]) -> Doc {
        let mut copy = self.clone();
        copy.remove(path);
        copy
    }

    fn remove(&mut self, path: &[String]) {
        let Doc::Map(entries) = self else { return };
        match path {
            [] => {}
            [last] => entries.retain(|(k, _)| k != last),
            [first, rest @ ..] => {
                if let Some((_, inner)) = entries.iter_mut().find(|(k, _)| k == first) {
                    inner.remove(rest);
                }
            }
        }
    }
}

/// One generated stack: the compose file and the files it names.
#[derive(Debug, Clone)]
pub struct Stack {
    pub compose: Doc,
    /// `(file name, content)` next to the compose file.
    pub files: Vec<(String, String)>,
}

/// What the services of one stack declared so far: the top-level entries
/// they need, the files those name, and the ports still free.
struct Parts {
    networks: Vec<String>,
    volumes: Vec<String>,
    configs: Vec<String>,
    secrets: Vec<String>,
    files: Vec<(String, String)>,
    ports_left: Vec<&'static str>,
}

/// A stack of one to three services. It publishes only `${WEB_PORT}` (tcp)
/// and `${UDP_PORT}` (udp), so two deployments of it can share a swarm.
pub fn stack(rng: &mut Rng) -> Stack {
    let mut parts = Parts {
        networks: Vec::new(),
        volumes: Vec::new(),
        configs: Vec::new(),
        secrets: Vec::new(),
        files: Vec::new(),
        ports_left: vec!["tcp", "udp"],
    };
    let mut services = Vec::new();
    for index in 0..1 + rng.below(3) {
        let mut keys: Vec<(String, Doc)> = vec![("image".into(), image(rng))];
        let global = rng.chance(20);
        for key in SERVICE_KEYS {
            if rng.chance(35) {
                if let Some(value) = service_value(rng, key, global, &mut parts) {
                    keys.push(((*key).to_string(), value));
                }
            }
        }
        if global && !keys.iter().any(|(k, _)| k == "deploy") {
            keys.push((
                "deploy".into(),
                Doc::map(vec![("mode", Doc::plain("global"))]),
            ));
        }
        services.push((format!("svc{index}"), Doc::Map(keys)));
    }
    let mut top: Vec<(String, Doc)> = vec![
        ("version".into(), Doc::quoted(rng.pick(&["3.8", "3.9"]))),
        ("services".into(), Doc::Map(services)),
    ];
    top.extend(top_level(rng, &parts));
    Stack {
        compose: Doc::Map(top),
        files: parts.files,
    }
}

/// One service key's value; `None` when the key cannot be written (both
/// ports used).
fn service_value(rng: &mut Rng, key: &str, global: bool, parts: &mut Parts) -> Option<Doc> {
    Some(match key {
        "command" | "entrypoint" => words(rng),
        "environment" => environment(rng),
        "labels" => key_values(rng, "team"),
        "working_dir" => Doc::plain(rng.pick(&["/srv", "/tmp", "/var/lib/app"])),
        "user" => Doc::quoted(rng.pick(&["1000", "0", "nobody", "1000:1000"])),
        "hostname" => Doc::quoted(rng.pick(&["web", "{{.Service.Name}}-{{.Task.Slot}}"])),
        "stop_grace_period" => Doc::plain(rng.pick(&["10s", "2s", "500ms"])),
        "stop_signal" => Doc::plain(rng.pick(&["SIGTERM", "SIGINT", "SIGQUIT"])),
        "init" | "read_only" | "tty" | "stdin_open" => Doc::plain(rng.pick(&["true", "false"])),
        "cap_add" => list(rng, &["NET_ADMIN", "SYS_TIME", "chown"]),
        "cap_drop" => list(rng, &["MKNOD", "NET_RAW", "ALL"]),
        "sysctls" => Doc::map(vec![("net.core.somaxconn", Doc::plain("1024"))]),
        "extra_hosts" => extra_hosts(rng),
        "dns" => Doc::plain(rng.pick(&["8.8.8.8", "1.1.1.1"])),
        "dns_search" => Doc::plain(rng.pick(&["example.com", "lan"])),
        "ulimits" => ulimits(rng),
        "logging" => logging(rng),
        "healthcheck" => healthcheck(rng),
        "ports" => ports(rng, &mut parts.ports_left)?,
        "volumes" => mounts(rng, &mut parts.volumes),
        "networks" => {
            let mine = format!("net{}", rng.below(2));
            if !parts.networks.contains(&mine) {
                parts.networks.push(mine.clone());
            }
            if rng.chance(50) {
                Doc::Seq(vec![Doc::plain(mine)])
            } else {
                Doc::Map(vec![(
                    mine,
                    Doc::map(vec![("aliases", Doc::Seq(vec![Doc::plain("alias")]))]),
                )])
            }
        }
        "configs" | "secrets" => {
            let (names, stem, content) = if key == "configs" {
                (&mut parts.configs, "conf", "setting = ")
            } else {
                (&mut parts.secrets, "secret", "not-a-secret-")
            };
            let name = format!("{stem}{}", rng.below(2));
            if !names.contains(&name) {
                names.push(name.clone());
                parts.files.push((
                    format!("{name}.txt"),
                    format!("{content}{}\n", rng.below(1000)),
                ));
            }
            file_refs(rng, &name)
        }
        "deploy" => deploy(rng, global),
        _ => return None,
    })
}

/// The top-level `networks`, `volumes`, `configs` and `secrets` the services named.
fn top_level(rng: &mut Rng, parts: &Parts) -> Vec<(String, Doc)> {
    let mut top = Vec::new();
    if !parts.networks.is_empty() {
        let networks = parts
            .networks
            .iter()
            .map(|n| {
                let mut keys = vec![("driver".to_string(), Doc::plain("overlay"))];
                if rng.chance(50) {
                    keys.push(("attachable".into(), Doc::plain("true")));
                }
                if rng.chance(30) {
                    keys.push(("labels".into(), key_values(rng, "purpose")));
                }
                (n.clone(), Doc::Map(keys))
            })
            .collect();
        top.push(("networks".into(), Doc::Map(networks)));
    }
    if !parts.volumes.is_empty() {
        let volumes = parts
            .volumes
            .iter()
            .map(|v| (v.clone(), Doc::Map(Vec::new())))
            .collect();
        top.push(("volumes".into(), Doc::Map(volumes)));
    }
    for (kind, names) in [("configs", &parts.configs), ("secrets", &parts.secrets)] {
        if !names.is_empty() {
            let entries = names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        Doc::map(vec![("file", Doc::plain(format!("./{n}.txt")))]),
                    )
                })
                .collect();
            top.push((kind.into(), Doc::Map(entries)));
        }
    }
    top
}

/// The service keys the generator writes (the CLI's schema has more: those
/// Reconciler refuses or Swarm ignores are left to the corpus).
const SERVICE_KEYS: &[&str] = &[
    "command",
    "entrypoint",
    "environment",
    "labels",
    "working_dir",
    "user",
    "hostname",
    "stop_grace_period",
    "stop_signal",
    "init",
    "read_only",
    "tty",
    "stdin_open",
    "cap_add",
    "cap_drop",
    "sysctls",
    "extra_hosts",
    "dns",
    "dns_search",
    "ulimits",
    "logging",
    "healthcheck",
    "ports",
    "volumes",
    "networks",
    "configs",
    "secrets",
    "deploy",
];

fn image(rng: &mut Rng) -> Doc {
    Doc::plain(rng.pick(&[
        "local/busybox:1",
        "nginx:1.27-alpine",
        "redis",
        "${GEN_IMAGE:-traefik/whoami:v1.10}",
    ]))
}

fn words(rng: &mut Rng) -> Doc {
    match rng.below(3) {
        0 => Doc::quoted(rng.pick(&[
            "sleep 3600",
            "sh -c 'echo hello; sleep 3600'",
            "httpd -f -p 80",
        ])),
        1 => Doc::Seq(vec![Doc::plain("sleep"), Doc::quoted("3600")]),
        _ => Doc::Seq(vec![
            Doc::plain("sh"),
            Doc::plain("-c"),
            Doc::quoted("echo $$HOME && sleep 3600"),
        ]),
    }
}

fn list(rng: &mut Rng, from: &[&str]) -> Doc {
    let count = 1 + rng.below(from.len());
    Doc::Seq(from.iter().take(count).map(|w| Doc::plain(*w)).collect())
}

fn key_values(rng: &mut Rng, key: &str) -> Doc {
    if rng.chance(50) {
        Doc::Map(vec![
            (key.to_string(), Doc::plain("makers")),
            ("com.example.tier".into(), Doc::quoted("front")),
        ])
    } else {
        Doc::Seq(vec![
            Doc::quoted(format!("{key}=makers")),
            Doc::plain("com.example.tier=front"),
        ])
    }
}

/// Values as people write them: words, numbers the CLI prints its own way,
/// booleans, empty ones, variables with defaults, names left bare.
fn environment(rng: &mut Rng) -> Doc {
    let values: &[(&str, &str)] = &[
        ("MODE", "production"),
        ("PORT", "8080"),
        ("RATIO", "1.5"),
        ("BIG", "1e3"),
        ("OCTAL", "0755"),
        // A plain `true` is a boolean, which the CLI's schema refuses here.
        ("DEBUG", "\"true\""),
        ("GREETING", "\"hello, world\""),
        ("LEVEL", "${GEN_LEVEL:-info}"),
        ("EMPTY", "\"\""),
    ];
    let chosen: Vec<(&str, &str)> = values.iter().filter(|_| rng.chance(50)).copied().collect();
    let bare = rng.chance(30);
    if rng.chance(50) {
        let mut entries: Vec<(String, Doc)> = chosen
            .iter()
            .map(|(k, v)| {
                let value = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    Some(text) => Doc::quoted(text),
                    None => Doc::plain(*v),
                };
                ((*k).to_string(), value)
            })
            .collect();
        if bare {
            entries.push(("GEN_UNSET_NAME".into(), Doc::plain("")));
        }
        Doc::Map(entries)
    } else {
        let mut items: Vec<Doc> = chosen
            .iter()
            .map(|(k, v)| Doc::quoted(format!("{k}={}", v.trim_matches('"'))))
            .collect();
        if bare {
            items.push(Doc::plain("GEN_UNSET_NAME"));
        }
        Doc::Seq(items)
    }
}

fn extra_hosts(rng: &mut Rng) -> Doc {
    if rng.chance(30) {
        return Doc::map(vec![("gateway.example", Doc::plain("10.0.0.1"))]);
    }
    let forms = [
        "gateway.example:10.0.0.1",
        "db.example=10.0.0.2",
        "six.example=[::1]",
    ];
    Doc::Seq(
        forms
            .iter()
            .filter(|_| rng.chance(60))
            .map(|f| Doc::quoted(*f))
            .collect(),
    )
}

fn ulimits(rng: &mut Rng) -> Doc {
    let mut entries = vec![("nproc".to_string(), Doc::plain("512"))];
    if rng.chance(60) {
        entries.push((
            "nofile".into(),
            Doc::map(vec![
                ("soft", Doc::plain("256")),
                ("hard", Doc::plain("512")),
            ]),
        ));
    }
    Doc::Map(entries)
}

fn logging(rng: &mut Rng) -> Doc {
    let mut entries = vec![("driver".to_string(), Doc::plain("json-file"))];
    if rng.chance(70) {
        entries.push((
            "options".into(),
            Doc::map(vec![
                ("max-size", Doc::plain("10m")),
                ("max-file", Doc::quoted("3")),
            ]),
        ));
    }
    Doc::Map(entries)
}

fn healthcheck(rng: &mut Rng) -> Doc {
    if rng.chance(15) {
        return Doc::map(vec![("disable", Doc::plain("true"))]);
    }
    let test = if rng.chance(50) {
        // `true` plain would be a boolean, which the CLI's schema refuses here.
        Doc::Seq(vec![Doc::plain("CMD"), Doc::quoted("true")])
    } else {
        Doc::quoted("wget -q -O /dev/null http://localhost/ || exit 1")
    };
    let mut entries = vec![("test".to_string(), test)];
    for (key, value) in [
        ("interval", "30s"),
        ("timeout", "5s"),
        ("retries", "3"),
        ("start_period", "10s"),
    ] {
        if rng.chance(60) {
            entries.push((key.into(), Doc::plain(value)));
        }
    }
    Doc::Map(entries)
}

/// One published port per protocol at most, from `${WEB_PORT}` (tcp) and
/// `${UDP_PORT}` (udp); `None` once both are used.
fn ports(rng: &mut Rng, left: &mut Vec<&str>) -> Option<Doc> {
    if left.is_empty() {
        return None;
    }
    let protocol = left.remove(rng.below(left.len()));
    let variable = if protocol == "tcp" {
        "${WEB_PORT}"
    } else {
        "${UDP_PORT}"
    };
    let item = if rng.chance(50) {
        let suffix = if protocol == "udp" { "/udp" } else { "" };
        Doc::quoted(format!("{variable}:80{suffix}"))
    } else {
        let mut keys = vec![
            ("target".to_string(), Doc::plain("80")),
            ("published".into(), Doc::plain(variable)),
            ("protocol".into(), Doc::plain(protocol)),
        ];
        if rng.chance(40) {
            keys.push(("mode".into(), Doc::plain(rng.pick(&["ingress", "host"]))));
        }
        Doc::Map(keys)
    };
    Some(Doc::Seq(vec![item]))
}

fn mounts(rng: &mut Rng, volumes: &mut Vec<String>) -> Doc {
    let mut items = Vec::new();
    if rng.chance(60) {
        let volume = format!("data{}", rng.below(2));
        if !volumes.contains(&volume) {
            volumes.push(volume.clone());
        }
        items.push(Doc::quoted(format!(
            "{volume}:/data{}",
            if rng.chance(30) { ":ro" } else { "" }
        )));
    }
    if rng.chance(50) {
        items.push(Doc::quoted("/tmp:/host-tmp:ro"));
    }
    if rng.chance(50) {
        let mut keys = vec![
            ("type".to_string(), Doc::plain("tmpfs")),
            ("target".into(), Doc::plain("/scratch")),
        ];
        if rng.chance(50) {
            keys.push((
                "tmpfs".into(),
                Doc::map(vec![("size", Doc::plain("1048576"))]),
            ));
        }
        items.push(Doc::Map(keys));
    }
    Doc::Seq(items)
}

fn file_refs(rng: &mut Rng, source: &str) -> Doc {
    if rng.chance(50) {
        return Doc::Seq(vec![Doc::plain(source)]);
    }
    let mut keys = vec![
        ("source".to_string(), Doc::plain(source)),
        ("target".into(), Doc::plain(format!("/etc/{source}"))),
    ];
    if rng.chance(50) {
        keys.push((
            "mode".into(),
            Doc::plain(rng.pick(&["0440", "0400", "0644"])),
        ));
    }
    if rng.chance(30) {
        keys.push(("uid".into(), Doc::quoted("100")));
    }
    Doc::Seq(vec![Doc::Map(keys)])
}

fn update(rng: &mut Rng) -> Doc {
    let mut keys = Vec::new();
    for (key, values) in [
        ("parallelism", &["1", "2", "0"][..]),
        ("delay", &["10s", "1m"][..]),
        ("order", &["start-first", "stop-first"][..]),
        ("failure_action", &["pause", "continue", "rollback"][..]),
        ("monitor", &["5s"][..]),
        ("max_failure_ratio", &["0.2", "0"][..]),
    ] {
        if rng.chance(50) {
            keys.push((key.to_string(), Doc::plain(rng.pick(values))));
        }
    }
    Doc::Map(keys)
}

fn deploy(rng: &mut Rng, global: bool) -> Doc {
    let mut keys: Vec<(String, Doc)> = Vec::new();
    if global {
        keys.push(("mode".into(), Doc::plain("global")));
    } else if rng.chance(50) {
        keys.push(("mode".into(), Doc::plain("replicated")));
        keys.push((
            "replicas".into(),
            Doc::plain(rng.pick(&["0", "1", "2", "${GEN_REPLICAS:-1}"])),
        ));
    }
    if rng.chance(40) {
        keys.push(("labels".into(), key_values(rng, "traefik.enable")));
    }
    if rng.chance(40) {
        let mut placement = vec![(
            "constraints".to_string(),
            Doc::Seq(vec![Doc::plain(
                rng.pick(&["node.role == manager", "node.labels.shelf != top"]),
            )]),
        )];
        if rng.chance(40) {
            placement.push((
                "preferences".into(),
                Doc::Seq(vec![Doc::map(vec![(
                    "spread",
                    Doc::plain("node.labels.shelf"),
                )])]),
            ));
        }
        if !global && rng.chance(30) {
            placement.push(("max_replicas_per_node".into(), Doc::plain("2")));
        }
        keys.push(("placement".into(), Doc::Map(placement)));
    }
    if rng.chance(40) {
        let mut resources = vec![(
            "limits".to_string(),
            Doc::map(vec![
                ("cpus", Doc::quoted("0.5")),
                ("memory", Doc::plain("64M")),
            ]),
        )];
        if rng.chance(50) {
            resources.push((
                "reservations".into(),
                Doc::map(vec![("memory", Doc::plain("16M"))]),
            ));
        }
        keys.push(("resources".into(), Doc::Map(resources)));
    }
    if rng.chance(40) {
        let mut restart = vec![(
            "condition".to_string(),
            Doc::plain(rng.pick(&["on-failure", "any", "none"])),
        )];
        if rng.chance(50) {
            restart.push(("delay".into(), Doc::plain("5s")));
            restart.push(("max_attempts".into(), Doc::plain("3")));
        }
        keys.push(("restart_policy".into(), Doc::Map(restart)));
    }
    if rng.chance(40) {
        keys.push(("update_config".into(), update(rng)));
    }
    if rng.chance(25) {
        keys.push(("rollback_config".into(), update(rng)));
    }
    Doc::Map(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_files_and_keys_can_be_deleted() {
        let first = stack(&mut Rng::new(42)).compose.to_yaml();
        let again = stack(&mut Rng::new(42)).compose.to_yaml();
        assert_eq!(first, again);
        assert!(first.contains("services:"), "{first}");
        let doc = stack(&mut Rng::new(7)).compose;
        for path in doc.deletable_paths() {
            assert_ne!(doc.without(&path), doc, "{path:?}");
        }
    }
}
