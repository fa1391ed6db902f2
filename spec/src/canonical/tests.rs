//! The canonical writer against the route it replaced (`serde_json::Value`,
//! pruned, written out): the same bytes for every input, or running
//! services' hashes would change with a release.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::to_vec;

/// The previous route, kept as the reference.
fn reference<T: Serialize>(value: &T) -> Vec<u8> {
    fn prune(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, prune(v)))
                    .filter(|(_, v)| !is_unset(v))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
            other => other,
        }
    }
    fn is_unset(value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        }
    }
    serde_json::to_value(value)
        .map(prune)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default()
}

fn same<T: Serialize>(what: &str, value: &T) {
    let ours = to_vec(value).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&reference(value)),
        "{what}"
    );
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Tagged {
    Empty,
    Some { a: Option<u8>, b: Vec<u8> },
}

#[derive(Serialize)]
enum External {
    Unit,
    New(Vec<String>),
    Tuple(u8, Option<u8>),
    Struct { x: BTreeMap<String, u8>, y: f64 },
}

#[derive(Serialize)]
#[serde(untagged)]
enum Untagged {
    Number(i64),
    Text(String),
}

#[derive(Serialize)]
struct Nested {
    zeta: Option<String>,
    alpha: Vec<Option<u8>>,
    empty_inside: BTreeMap<String, BTreeMap<String, u8>>,
    floats: Vec<f64>,
    not_finite: f64,
    small: f32,
    big: u64,
    negative: i64,
    wide: i128,
    escaped: String,
    unit: (),
    tagged: Vec<Tagged>,
    external: Vec<External>,
    untagged: Vec<Untagged>,
    numbered: BTreeMap<u32, bool>,
    tuple: (u8, Vec<u8>, Option<u8>),
    #[serde(rename = "Upper")]
    upper: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
}

#[test]
fn every_serde_shape_is_written_as_the_value_route_wrote_it() {
    let mut empty_inside = BTreeMap::new();
    empty_inside.insert("b".to_string(), BTreeMap::new());
    empty_inside.insert("a".to_string(), BTreeMap::from([("k".to_string(), 1_u8)]));
    let value = Nested {
        zeta: None,
        alpha: vec![None, Some(3)],
        empty_inside,
        floats: vec![0.1, 1.0, -2.5e-8, 1e300],
        not_finite: f64::NAN,
        small: 0.1,
        big: u64::MAX,
        negative: i64::MIN,
        wide: -5,
        escaped: "quote \" backslash \\ newline \n tab \t bell \u{7} é 🦀".into(),
        unit: (),
        tagged: vec![
            Tagged::Empty,
            Tagged::Some {
                a: None,
                b: Vec::new(),
            },
            Tagged::Some {
                a: Some(1),
                b: vec![2],
            },
        ],
        external: vec![
            External::Unit,
            External::New(Vec::new()),
            External::New(vec!["x".into()]),
            External::Tuple(1, None),
            External::Struct {
                x: BTreeMap::new(),
                y: 2.0,
            },
            External::Struct {
                x: BTreeMap::new(),
                y: f64::INFINITY,
            },
        ],
        untagged: vec![Untagged::Number(-1), Untagged::Text(String::new())],
        numbered: BTreeMap::from([(10, true), (9, false)]),
        tuple: (1, Vec::new(), None),
        upper: true,
        skipped: None,
    };
    same("every shape", &value);
    // Keys sort as strings: "10" before "9", "Upper" before "alpha".
    let text = String::from_utf8(to_vec(&value).unwrap_or_default()).unwrap_or_default();
    assert!(
        text.starts_with("{\"Upper\":true,\"alpha\":[null,3]"),
        "{text}"
    );
    assert!(
        text.contains("\"numbered\":{\"10\":true,\"9\":false}"),
        "{text}"
    );
    assert!(
        !text.contains("zeta") && !text.contains("not_finite"),
        "{text}"
    );
    same("an empty object", &BTreeMap::<String, u8>::new());
    same("a bare string", &"x");
}

/// Every spec the project ships and every compose file of the corpus:
/// each service and network hashes exactly as before.
#[test]
fn every_shipped_spec_and_corpus_stack_hashes_as_before() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs = Vec::new();
    for parent in ["examples", "spec/tests/render", "tests/compose-corpus"] {
        let Ok(entries) = std::fs::read_dir(root.join(parent)) else {
            continue;
        };
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut services = 0;
    for dir in dirs {
        let spec = if dir.join("docker-stack.yml").exists() {
            let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| Some((e.file_name().into(), std::fs::read(e.path()).ok()?)))
                .collect();
            // The corpus's variables, as its differential test sets them.
            files.push((
                "corpus.env".into(),
                b"WEB_PORT=18080\nUDP_PORT=18081\nSUBNET=10.99.0.0/24\n".to_vec(),
            ));
            files.push((
                "stacks.toml".into(),
                b"[cluster]\nname = \"c\"\n[stack.s]\ncompose = \"docker-stack.yml\"\nenv_file = \"corpus.env\"\n".to_vec(),
            ));
            crate::load_files(files)
        } else {
            crate::load_dir(&dir)
        };
        // Some need a keyring or variables; the rest are plenty.
        // An example that needs a keyring is the one left out.
        let Ok(spec) = spec else {
            continue;
        };
        for service in spec.services.values() {
            same(
                &format!("{}: service {}", dir.display(), service.name),
                service,
            );
            services += 1;
        }
        for network in spec.networks.values() {
            same(
                &format!("{}: network {}", dir.display(), network.name),
                network,
            );
        }
    }
    assert!(services > 70, "only {services} services were compared");
}
