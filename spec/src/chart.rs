//! Helm-like charts: a folder with `chart.toml`, `values.toml` and
//! `templates/*.toml`, rendered with minijinja for each `[release.NAME]`.
//!
//! Rendering produces ordinary spec fragments (only `[service.*]` and
//! `[network.*]`), which then go through the same parsing and validation as
//! hand-written files. Names declared by a chart are prefixed with the
//! release name (unless the chart says `prefix = false`), and references
//! between them are rewritten to match.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::file::ReleaseFile;
use crate::load::Entry;
use crate::source::SourceFile;
use crate::suggest::did_you_mean;

include!(concat!(env!("OUT_DIR"), "/bundled_charts.rs"));

/// A chart's files, keyed by their path inside the chart folder.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub name: String,
    /// Where its files are shown to be in error messages.
    root: PathBuf,
    files: BTreeMap<String, String>,
}

/// `chart.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartMeta {
    name: String,
    version: String,
    #[allow(
        dead_code,
        reason = "shown to people reading chart.toml; parsed so typos are caught"
    )]
    description: Option<String>,
    #[serde(default)]
    required: Vec<String>,
    /// Prefix the names the chart declares with the release name (default true).
    prefix: Option<bool>,
}

/// The charts shipped inside the binary, by name.
pub(crate) fn bundled() -> BTreeMap<String, Chart> {
    let mut charts: BTreeMap<String, Chart> = BTreeMap::new();
    for (path, text) in BUNDLED {
        let Some((name, inner)) = path.split_once('/') else {
            continue;
        };
        charts
            .entry(name.to_string())
            .or_insert_with(|| Chart {
                name: name.to_string(),
                root: PathBuf::from("<bundled>/charts").join(name),
                files: BTreeMap::new(),
            })
            .files
            .insert(inner.to_string(), (*text).to_string());
    }
    charts
}

/// Splits a spec's files into spec files and the charts kept inside the spec
/// (any folder holding a `chart.toml`, with everything under it).
pub(crate) fn split_local(
    files: Vec<(PathBuf, String)>,
) -> (Vec<(PathBuf, String)>, BTreeMap<PathBuf, Chart>) {
    let roots: BTreeSet<PathBuf> = files
        .iter()
        .filter(|(path, _)| path.file_name().is_some_and(|n| n == "chart.toml"))
        .map(|(path, _)| path.parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    let mut charts: BTreeMap<PathBuf, Chart> = BTreeMap::new();
    let mut spec = Vec::new();
    for (path, text) in files {
        match roots.iter().find(|root| path.starts_with(root)) {
            Some(root) => {
                let inner = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                charts
                    .entry(root.clone())
                    .or_insert_with(|| Chart {
                        name: root
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        root: root.clone(),
                        files: BTreeMap::new(),
                    })
                    .files
                    .insert(inner, text);
            }
            None => spec.push((path, text)),
        }
    }
    (spec, charts)
}

/// One rendered template, ready to be parsed as a spec fragment.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub file: SourceFile,
    pub release: String,
    pub prefix: bool,
}

/// Finds the chart a release names: a path inside the spec (`charts/lb`,
/// `./charts/lb`) or the name of a bundled chart.
pub(crate) fn resolve<'c>(
    release: &Entry<'_, ReleaseFile>,
    local: &'c BTreeMap<PathBuf, Chart>,
    bundled: &'c BTreeMap<String, Chart>,
    diagnostics: &mut Diagnostics,
) -> Option<&'c Chart> {
    let wanted = release.value.chart.get_ref();
    let found = if wanted.contains('/') {
        let normalized = PathBuf::from(wanted.trim_start_matches("./").trim_end_matches('/'));
        local.get(&normalized)
    } else {
        bundled.get(wanted)
    };
    if found.is_none() {
        let mut candidates: Vec<String> = bundled.keys().cloned().collect();
        candidates.extend(local.keys().map(|p| p.display().to_string()));
        let mut diagnostic = release.error(
            &release.value.chart.span(),
            format!(
                "release `{}`: no chart `{wanted}`; bundled charts: {}; or give the path of a folder with a chart.toml inside the spec",
                release.name,
                bundled.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
        if let Some(help) = did_you_mean(wanted, candidates.iter().map(String::as_str)) {
            diagnostic = diagnostic.with_help(help);
        }
        diagnostics.push(diagnostic);
    }
    found
}

impl Chart {
    fn shown(&self, inner: &str) -> PathBuf {
        self.root.join(inner)
    }

    /// A diagnostic at a byte span of one of the chart's files.
    fn error_at(
        &self,
        inner: &str,
        span: Option<std::ops::Range<usize>>,
        message: String,
    ) -> Diagnostic {
        let text = self.files.get(inner).cloned().unwrap_or_default();
        let file = SourceFile::new(self.shown(inner), text);
        file.error(&span.unwrap_or(0..0), message)
    }

    /// A local chart no release uses: its folder's files were taken out of
    /// the spec for it, so saying nothing would silently drop them.
    pub(crate) fn unused(&self) -> Diagnostic {
        let folder = if self.root.as_os_str().is_empty() {
            "the spec root".to_string()
        } else {
            format!("`{}/`", self.root.display())
        };
        self.error_at_line(
            "chart.toml",
            Some(1),
            format!(
                "this chart.toml makes {folder} a chart, so its files are not spec files, and no [release] uses it"
            ),
        )
        .with_help(if self.root.as_os_str().is_empty() {
            "remove it: at the spec root it takes every file of the spec".to_string()
        } else {
            format!(
                "add a [release.NAME] with chart = \"{}\", or remove this chart.toml if the folder holds spec files",
                self.root.display()
            )
        })
    }

    fn error_at_line(&self, inner: &str, line: Option<usize>, message: String) -> Diagnostic {
        let text = self.files.get(inner).cloned().unwrap_or_default();
        let file = SourceFile::new(self.shown(inner), text.clone());
        let offset = line
            .and_then(|l| {
                text.split_inclusive('\n')
                    .take(l.saturating_sub(1))
                    .map(str::len)
                    .reduce(|a, b| a + b)
                    .or(Some(0))
            })
            .unwrap_or(0);
        Diagnostic::new(file.location(offset), message)
    }

    /// `chart.toml`, or why it cannot be read.
    fn meta(
        &self,
        release: &Entry<'_, ReleaseFile>,
        diagnostics: &mut Diagnostics,
    ) -> Option<ChartMeta> {
        let Some(meta_text) = self.files.get("chart.toml") else {
            diagnostics.push(release.error(
                &release.value.chart.span(),
                format!(
                    "release `{}`: chart `{}` has no chart.toml",
                    release.name, self.name
                ),
            ));
            return None;
        };
        toml::from_str(meta_text)
            .map_err(|error| {
                diagnostics.push(self.error_at(
                    "chart.toml",
                    error.span(),
                    format!("chart.toml: {}", error.message().trim()),
                ));
            })
            .ok()
    }

    /// The chart's defaults merged with the release's values, once every
    /// value given is one the chart takes and every required one is there.
    fn values(
        &self,
        meta: &ChartMeta,
        release: &Entry<'_, ReleaseFile>,
        diagnostics: &mut Diagnostics,
    ) -> Option<toml::Table> {
        let defaults: toml::Table = match self.files.get("values.toml").map(|t| toml::from_str(t)) {
            None => toml::Table::new(),
            Some(Ok(table)) => table,
            Some(Err(error)) => {
                diagnostics.push(self.error_at(
                    "values.toml",
                    error.span(),
                    format!("values.toml: {}", error.message().trim()),
                ));
                return None;
            }
        };
        let known: Vec<&str> = defaults
            .keys()
            .map(String::as_str)
            .chain(meta.required.iter().map(String::as_str))
            .collect();
        let mut unknown = false;
        for key in release.value.values.keys() {
            let name = key.get_ref();
            if known.contains(&name.as_str()) {
                continue;
            }
            unknown = true;
            let diagnostic = release.error(
                &key.span(),
                format!(
                    "release `{}`: chart `{}` takes no value `{name}`",
                    release.name, meta.name
                ),
            );
            diagnostics.push(match did_you_mean(name, known.iter().copied()) {
                Some(help) => diagnostic.with_help(help),
                None if known.is_empty() => diagnostic.with_help("the chart takes no values"),
                None => {
                    diagnostic.with_help(format!("the chart's values are: {}", known.join(", ")))
                }
            });
        }
        if unknown {
            return None;
        }
        let mut values = defaults;
        merge(&mut values, &plain_values(&release.value.values));
        let mut missing = false;
        for required in &meta.required {
            if !values.contains_key(required) {
                missing = true;
                diagnostics.push(
                    release
                        .name_error(format!(
                            "release `{}`: chart `{}` requires the value `{required}`",
                            release.name, meta.name
                        ))
                        .with_help(format!("add it: values = {{ {required} = ... }}")),
                );
            }
        }
        (!missing).then_some(values)
    }

    /// Renders every template of the chart for one release.
    pub(crate) fn render(
        &self,
        release: &Entry<'_, ReleaseFile>,
        diagnostics: &mut Diagnostics,
    ) -> Vec<Rendered> {
        let Some(meta) = self.meta(release, diagnostics) else {
            return Vec::new();
        };
        let Some(values) = self.values(&meta, release, diagnostics) else {
            return Vec::new();
        };
        let mut env = Environment::new();
        // A template runs unattended on whatever a push sends: bounded work.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.add_filter("toml", toml_filter);
        // `{{ value }}` writes a TOML literal, whatever the value: a string
        // with a newline stays one string instead of adding lines (a
        // `[service.x]` that bind-mounts `/`). Only what is marked safe
        // (the `toml` filter's output, or `| safe` written on purpose) is
        // written as it is.
        env.set_formatter(|out, _state, value| {
            if value.is_safe() {
                write!(out, "{value}")?;
            } else {
                out.write_str(&toml_literal(value)?)?;
            }
            Ok(())
        });
        let context = minijinja::context! {
            values => Value::from_serialize(&values),
            release => minijinja::context! { name => release.name.clone() },
            chart => minijinja::context! { name => meta.name.clone(), version => meta.version.clone() },
        };
        let mut rendered = Vec::new();
        for (inner, text) in &self.files {
            if !(inner.starts_with("templates/") && inner.ends_with(".toml")) {
                continue;
            }
            if let Err(error) = env.add_template_owned(inner.clone(), text.clone()) {
                diagnostics.push(self.error_at_line(
                    inner,
                    error.line(),
                    template_message(&release.name, &error),
                ));
                continue;
            }
            let output = env
                .get_template(inner)
                .and_then(|template| template.render(&context));
            match output {
                Ok(output) if output.len() > crate::load::MAX_SPEC_FILE_BYTES => {
                    diagnostics.push(self.error_at_line(
                        inner,
                        None,
                        format!(
                            "release `{}`: the template renders {} MiB; the limit is {} MiB",
                            release.name,
                            output.len() / (1024 * 1024),
                            crate::load::MAX_SPEC_FILE_BYTES / (1024 * 1024)
                        ),
                    ));
                }
                Ok(output) => rendered.push(Rendered {
                    file: SourceFile::new(
                        PathBuf::from(format!(
                            "{} (release {})",
                            self.shown(inner).display(),
                            release.name
                        )),
                        output,
                    ),
                    release: release.name.clone(),
                    prefix: meta.prefix.unwrap_or(true),
                }),
                Err(error) => diagnostics.push(self.error_at_line(
                    inner,
                    error.line(),
                    template_message(&release.name, &error),
                )),
            }
        }
        rendered
    }
}

/// The steps one template may take (minijinja's fuel): far beyond any
/// chart (the bundled ones take a few thousand), far below a hang.
const TEMPLATE_FUEL: u64 = 5_000_000;

fn template_message(release: &str, error: &minijinja::Error) -> String {
    let detail = error.detail().map(|d| format!(": {d}")).unwrap_or_default();
    format!(
        "release `{release}`: template error: {}{detail}",
        error.kind()
    )
}

/// The release's values without their spans.
pub(crate) fn plain_values(values: &BTreeMap<toml::Spanned<String>, toml::Value>) -> toml::Table {
    values
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.clone()))
        .collect()
}

/// Release values over chart defaults; tables merge key by key.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table)
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `{{ value | toml }}`: any value as a TOML literal (strings quoted and escaped).
fn toml_filter(value: &Value) -> Result<Value, minijinja::Error> {
    Ok(Value::from_safe_string(toml_literal(value)?))
}

/// A value as a TOML literal (`"a\nb"`, `3`, `["x"]`).
fn toml_literal(value: &Value) -> Result<String, minijinja::Error> {
    let converted = toml::Value::try_from(value).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("cannot write {value} as TOML: {e}"),
        )
    })?;
    Ok(converted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string value with newlines printed raw added a service that
    /// bind-mounts `/` (issue 22). Every value of every bundled chart is
    /// given such a string: the release is refused (a string where a number
    /// belongs) or renders it as one value, never as new entries.
    #[test]
    fn regression_a_hostile_value_stays_a_value_in_every_bundled_chart() {
        // Printed raw, it closes the line, adds `evil`, and opens a table
        // for the template's remaining lines.
        const HOSTILE: &str = "1\n[service.evil]\nimage = \"evil\"\nmounts = [{ type = \"bind\", source = \"/\", target = \"/host\" }]\n[service.rest]\nimage = \"rest\"\n#";
        let mut loaded_cases = 0;
        let hostile = toml::Value::String(HOSTILE.into()).to_string();
        for (name, chart) in bundled() {
            let defaults: toml::Table = chart
                .files
                .get("values.toml")
                .map(|t| t.parse().expect("values.toml"))
                .unwrap_or_default();
            let meta: ChartMeta = toml::from_str(&chart.files["chart.toml"]).expect("chart.toml");
            let keys: Vec<&str> = defaults
                .keys()
                .map(String::as_str)
                .chain(meta.required.iter().map(String::as_str))
                .collect();
            for key in keys {
                let spec = format!(
                    "[cluster]\nname = \"c\"\n[network.web]\n[service.web]\nimage = \"a\"\n[release.r]\nchart = \"{name}\"\nvalues = {{ {} }}\n",
                    meta.required
                        .iter()
                        .map(|r| format!("{r} = \"web\""))
                        .chain([format!("{key} = {hostile}")])
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let spec = spec.replace(&format!("{key} = \"web\", "), "");
                if let Ok(loaded) = crate::load_files(vec![("spec.toml".into(), spec)]) {
                    loaded_cases += 1;
                    assert!(
                        !loaded.services.keys().any(|n| n.contains("evil")),
                        "{name}: `{key}` added a service"
                    );
                    assert!(
                        !loaded
                            .services
                            .values()
                            .flat_map(|s| &s.mounts)
                            .any(|m| m.source.as_deref() == Some("/")),
                        "{name}: `{key}` mounted /"
                    );
                }
            }
        }
        assert!(
            loaded_cases > 0,
            "every case was refused: the test shows nothing"
        );
    }

    #[test]
    fn values_merge_deeply() {
        let mut base: toml::Table =
            toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n").unwrap_or_default();
        let over: toml::Table = toml::from_str("b = 2\n[t]\ny = 3\n").unwrap_or_default();
        merge(&mut base, &over);
        assert_eq!(base.to_string(), "a = 1\nb = 2\n\n[t]\nx = 1\ny = 3\n");
    }

    #[test]
    fn the_toml_filter_quotes_strings_and_writes_arrays() {
        let text = "a \"b\" \\n";
        let literal = toml_literal(&Value::from(text)).unwrap_or_default();
        let parsed: toml::Table = toml::from_str(&format!("x = {literal}")).unwrap_or_default();
        assert_eq!(parsed.get("x").and_then(|v| v.as_str()), Some(text));
        assert_eq!(
            toml_literal(&Value::from_serialize(vec![1, 2]))
                .ok()
                .as_deref(),
            Some("[1, 2]")
        );
        assert!(toml_filter(&Value::from(text)).is_ok_and(|v| v.is_safe()));
    }

    #[test]
    fn charts_inside_the_spec_are_split_from_spec_files() {
        let files = vec![
            (PathBuf::from("cluster.toml"), String::new()),
            (PathBuf::from("charts/lb/chart.toml"), String::new()),
            (PathBuf::from("charts/lb/templates/lb.toml"), String::new()),
        ];
        let (spec, charts) = split_local(files);
        assert_eq!(spec.len(), 1);
        let chart = &charts[Path::new("charts/lb")];
        assert_eq!(chart.name, "lb");
        assert!(chart.files.contains_key("templates/lb.toml"));
    }
}
