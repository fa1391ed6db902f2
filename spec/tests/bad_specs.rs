//! The bad-spec corpus: every folder under `tests/bad-specs/` is a spec that
//! must be refused, and its `expected.txt` is the exact report a user sees
//! (file:line:col, message, help). Run with `BLESS=1` to rewrite the
//! expectations after a deliberate change to the messages, then review the diff.

use std::path::Path;

use reconciler_spec::{load_dir, LoadError};

#[test]
fn every_bad_spec_is_refused_with_the_expected_report() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-specs");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus folder exists")
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "the corpus should hold at least 30 cases, found {}",
        cases.len()
    );
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let report = match load_dir(case) {
            Ok(_) => {
                failures.push(format!("{name}: was accepted"));
                continue;
            }
            Err(LoadError::Invalid(diagnostics)) => diagnostics.to_string(),
            Err(other) => other.to_string(),
        };
        let expected_path = case.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, format!("{report}\n")).expect("write expected.txt");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != report.trim_end() {
            failures.push(format!(
                "{name}:\n--- expected\n{}\n--- got\n{report}",
                expected.trim_end()
            ));
        }
        // Every line that reports an error must name file:line:col.
        for line in report.lines().filter(|l| l.contains(": error: ")) {
            let place = line.split(": error: ").next().unwrap_or_default();
            let parts: Vec<&str> = place.rsplitn(3, ':').collect();
            let located = parts.len() == 3
                && parts[0].parse::<usize>().is_ok()
                && parts[1].parse::<usize>().is_ok();
            if !located {
                failures.push(format!("{name}: error without file:line:col: {line}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
