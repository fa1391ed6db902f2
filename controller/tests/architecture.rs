//! ARCHITECTURE.md's boundaries, checked on the source (a tidy test, as
//! rust-analyzer has): the module graph has no cycle, the planner does no
//! I/O and depends on no client, each outside client (Docker, SSH, git, HTTP,
//! file watching, metrics) is used by its one module, the spec crate knows no
//! Docker, and the document names every module and no file that is gone.
//!
//! Reads the source as text: comments are skipped, so a doc link or a
//! sentence about a module is no dependency.

#![allow(
    clippy::unwrap_used,
    reason = "a test of the source tree: an unreadable file is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every `.rs` file under `dir`, relative to it, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = fs::read_dir(&folder).unwrap_or_else(|e| panic!("{folder:?}: {e}"));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The code of a file: comment lines dropped, and everything from a
/// `#[cfg(test)]` module on (tests may reach anywhere).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| line.split(" // ").next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file of `controller/src` belongs to.
fn module_of(relative: &str) -> String {
    let first = relative.split('/').next().unwrap_or(relative);
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules `code` names through `crate::`, including inside
/// `use crate::{a::b, c}` groups.
fn crate_references(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Items at the group's first level, up to its closing brace.
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&name) {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                found.insert(name);
            }
        }
    }
    found
}

struct Controller {
    files: Vec<(String, String)>,
    /// Module → the modules it uses, and the files where it does.
    edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

fn controller() -> Controller {
    let files = sources(&repo().join("controller/src"));
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(path, _)| module_of(path))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (path, text) in &files {
        let from = module_of(path);
        if from == "lib" || from == "main" || path.ends_with("tests.rs") {
            continue;
        }
        edges.entry(from.clone()).or_default();
        for to in crate_references(&code(text), &modules) {
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(path.clone());
            }
        }
    }
    Controller { files, edges }
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(
    start: &str,
    edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
        edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    ) -> bool {
        for next in edges.get(at).into_iter().flat_map(BTreeMap::keys) {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, path, seen, edges) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(start, start, &mut path, &mut seen, edges).then_some(path)
}

#[test]
fn the_controllers_module_graph_has_no_cycle() {
    let controller = controller();
    for module in controller.edges.keys() {
        if let Some(cycle) = cycle_from(module, &controller.edges) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    let files = &controller.edges[&pair[0]][&pair[1]];
                    format!("{} -> {} ({files:?})", pair[0], pair[1])
                })
                .collect();
            panic!(
                "import cycle: {}\nbreak it by moving the shared type to the module that owns it (see ARCHITECTURE.md)",
                steps.join(", ")
            );
        }
    }
}

/// `plan` is pure: it reads the spec and the observed state, nothing else.
#[test]
fn the_planner_depends_on_no_client_and_does_no_io() {
    let controller = controller();
    let allowed: BTreeSet<&str> = ["observed", "labels", "digest", "failure", "health"].into();
    for (to, files) in &controller.edges["plan"] {
        assert!(
            allowed.contains(to.as_str()),
            "plan uses `{to}` ({files:?}); the planner may use only {allowed:?}"
        );
    }
    let io = [
        "tokio",
        "std::fs",
        "std::net",
        "std::process",
        "std::io::",
        "bollard",
        "russh",
        "git2",
        "axum",
        ".await",
        "async fn",
    ];
    for (path, text) in &controller.files {
        if !path.starts_with("plan/") || path.ends_with("tests.rs") {
            continue;
        }
        let code = code(text);
        for word in io {
            assert!(
                !code.contains(word),
                "{path} uses `{word}`: plan performs no I/O"
            );
        }
    }
}

/// Each outside client is used by one module only.
#[test]
fn each_client_library_is_used_by_its_one_module() {
    let owners = [
        ("bollard", "swarm/"),
        // The Docker reads bollard's types cannot hold (swarm/services.rs).
        ("hyper", "swarm/"),
        ("russh", "node/"),
        ("git2", "source/"),
        ("axum", "http.rs"),
        ("prometheus", "metrics.rs"),
    ];
    let controller = controller();
    for (path, text) in &controller.files {
        let code = code(text);
        for (library, owner) in owners {
            let used =
                code.contains(&format!("{library}::")) || code.contains(&format!("use {library}"));
            assert!(
                !used || path.starts_with(owner),
                "{path} uses {library}: only {owner} may (ARCHITECTURE.md, invariants)"
            );
        }
    }
}

/// The spec crate is the desired state only: no Docker, network or process
/// (parsing an address with `std::net::IpAddr` is no network use).
#[test]
fn the_spec_crate_knows_no_docker_and_no_network() {
    let manifest = fs::read_to_string(repo().join("spec/Cargo.toml")).unwrap();
    for dependency in ["bollard", "tokio", "russh", "git2", "axum", "reqwest"] {
        assert!(
            !manifest.contains(&format!("\n{dependency}")),
            "spec/Cargo.toml depends on {dependency}"
        );
    }
    for (path, text) in sources(&repo().join("spec/src")) {
        let code = code(&text);
        for word in [
            "TcpStream",
            "TcpListener",
            "UdpSocket",
            "ToSocketAddrs",
            "std::process",
            "tokio",
            "bollard",
        ] {
            assert!(!code.contains(word), "spec/src/{path} uses `{word}`");
        }
    }
}

/// The code map names every module, and every source file it names exists.
#[test]
fn architecture_md_names_every_module_and_no_missing_file() {
    let doc = fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for (crate_dir, files) in [
        ("controller/src", sources(&repo().join("controller/src"))),
        ("spec/src", sources(&repo().join("spec/src"))),
        ("tests/src", sources(&repo().join("tests/src"))),
        ("tests/tests", sources(&repo().join("tests/tests"))),
        ("tests/benches", sources(&repo().join("tests/benches"))),
    ] {
        for (path, _) in files {
            if path == "lib.rs" {
                continue;
            }
            let file_name = Path::new(&path).file_name().unwrap().to_string_lossy();
            let named = doc.contains(&format!("`{path}`"))
                || doc.contains(&format!("`{file_name}`"))
                || doc.contains(&format!("{file_name}`"));
            if !named {
                missing.push(format!("{crate_dir}/{path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {missing:?}"
    );

    // Every `something.rs` the document names exists somewhere in the repository.
    let mut all: BTreeSet<String> = BTreeSet::new();
    for dir in [
        "controller/src",
        "controller/tests",
        "spec/src",
        "spec/tests",
        "tests/src",
        "tests/tests",
        "tests/benches",
    ] {
        let root = repo().join(dir);
        if root.is_dir() {
            for (path, _) in sources(&root) {
                all.insert(path.clone());
                all.insert(format!("{dir}/{path}"));
                if let Some(name) = Path::new(&path).file_name() {
                    all.insert(name.to_string_lossy().into_owned());
                }
            }
        }
    }
    // Build scripts at the crates' roots.
    for krate in ["spec", "controller", "tests"] {
        if repo().join(krate).join("build.rs").is_file() {
            all.insert("build.rs".into());
            all.insert(format!("{krate}/build.rs"));
        }
    }
    for name in doc.split('`').skip(1).step_by(2) {
        let name = name.split("::").next().unwrap_or(name);
        if name.ends_with(".rs") && !name.contains(' ') && !name.contains('*') {
            assert!(
                all.contains(name) || all.iter().any(|p| p.ends_with(&format!("/{name}"))),
                "ARCHITECTURE.md names `{name}`, which does not exist"
            );
        }
    }
    assert!(
        !doc.contains("](../") && !doc.contains("`../shared"),
        "ARCHITECTURE.md links outside the repository"
    );
}

/// Every variant of every error enum says when it happens (a `///` line):
/// the message is for the user, the doc for the next engineer.
#[test]
fn every_error_variant_has_a_doc_line() {
    let mut undocumented = Vec::new();
    for root in ["controller/src", "spec/src"] {
        for (path, text) in sources(&repo().join(root)) {
            let lines: Vec<&str> = text.lines().collect();
            let mut at = 0;
            while at < lines.len() {
                let line = lines[at];
                let indent = &line[..line.len() - line.trim_start().len()];
                let head = line.trim_start();
                let is_error_enum = head.starts_with("pub ") && head.ends_with('{') && {
                    let words: Vec<&str> = head.split_whitespace().collect();
                    words
                        .iter()
                        .position(|w| *w == "enum")
                        .and_then(|i| words.get(i + 1))
                        .is_some_and(|name| name.ends_with("Error"))
                };
                at += 1;
                if !is_error_enum {
                    continue;
                }
                let inner = format!("{indent}    ");
                let mut documented = false;
                while at < lines.len() && !lines[at].starts_with(&format!("{indent}}}")) {
                    let line = lines[at];
                    at += 1;
                    // Only the enum's own level: fields and continued
                    // attributes are indented further.
                    let Some(item) = line.strip_prefix(&inner) else {
                        continue;
                    };
                    if item.starts_with(' ') {
                        continue;
                    }
                    if item.starts_with("///") {
                        documented = true;
                    } else if item.starts_with("#[") || item.starts_with(')') {
                    } else if item.starts_with(|c: char| c.is_ascii_uppercase()) {
                        if !documented {
                            undocumented.push(format!("{root}/{path}:{at}: {}", item.trim()));
                        }
                        documented = false;
                    } else {
                        documented = false;
                    }
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "error variants without a doc line (say when each happens):\n{}",
        undocumented.join("\n")
    );
}

/// Errors are typed: `Result<_, String>` only where clap wants a message
/// (value parsers) and in the compose loader, whose string-keyed reading is
/// being replaced by typed compose structures (issue 21); the count there may
/// only fall.
#[test]
fn no_string_errors_outside_clap_parsers() {
    const COMPOSE_STRING_ERRORS_AT_MOST: usize = 26;
    let mut found = Vec::new();
    let mut compose = 0;
    for root in ["controller/src", "spec/src"] {
        for (path, text) in sources(&repo().join(root)) {
            for (number, line) in code(&text).lines().enumerate() {
                if !line
                    .match_indices("Result<")
                    .any(|(at, _)| error_is_string(&line[at..]))
                {
                    continue;
                }
                let clap_parser = (root == "controller/src"
                    && path.starts_with("cli/")
                    && line.trim_start().starts_with("fn parse_"))
                    || (path == "init.rs" && line.contains("fn from_str("));
                if path == "compose/mod.rs" {
                    compose += 1;
                } else if !clap_parser {
                    found.push(format!("{root}/{path}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "errors as strings (give them a thiserror type the caller can match):\n{}",
        found.join("\n")
    );
    assert!(
        compose <= COMPOSE_STRING_ERRORS_AT_MOST,
        "compose/mod.rs has {compose} Result<_, String>, more than {COMPOSE_STRING_ERRORS_AT_MOST}"
    );
}

/// Whether `Result<T, E>` at the start of `text` has `E` = `String`
/// (commas inside `T`'s own brackets do not count).
fn error_is_string(text: &str) -> bool {
    let mut depth = 0;
    let mut last = String::new();
    for c in text.chars().skip("Result".len()) {
        match c {
            '<' => {
                depth += 1;
                if depth > 1 {
                    last.push(c);
                }
            }
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return last.trim() == "String";
                }
                last.push(c);
            }
            ',' if depth == 1 => last.clear(),
            _ => last.push(c),
        }
    }
    false
}
