//! `render` snapshots: every folder under `tests/render/` is a spec using a
//! chart or a compose stack; `expected.render` is its fully expanded form
//! (`BLESS=1` rewrites them; review the diff). The expanded form must itself
//! load back to the same services and networks, including where each came
//! from (the release and stack labels, and so the spec hashes).

use std::path::Path;

use reconciler_spec::{load_dir, load_files, render::to_toml, Spec};

/// What render expands: the releases and stacks themselves are gone from
/// its output (their objects remain, each with its origin), and warnings are
/// about the source files.
fn expanded(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    spec.releases.clear();
    spec.stacks.clear();
    spec.warnings.clear();
    spec
}

#[test]
fn rendered_charts_and_stacks_match_their_snapshots_and_load_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/render exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 6,
        "expected a case per bundled chart, a local chart and a stack"
    );
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let spec = match load_dir(case) {
            Ok(spec) => spec,
            Err(error) => {
                failures.push(format!("{name}: does not load:\n{error}"));
                continue;
            }
        };
        let rendered = to_toml(&spec);
        let expected_path = case.join("expected.render");
        if bless {
            std::fs::write(&expected_path, &rendered).expect("write expected.render");
        } else {
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if expected != rendered {
                failures.push(format!(
                    "{name}: render differs from expected.render:\n--- got\n{rendered}"
                ));
            }
        }
        match load_files(vec![("rendered.toml".into(), rendered)]) {
            Ok(reloaded) => {
                if expanded(&reloaded) != expanded(&spec) {
                    failures.push(format!("{name}: the rendered spec loads to something else"));
                }
            }
            Err(error) => {
                failures.push(format!("{name}: the rendered spec does not load:\n{error}"))
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
