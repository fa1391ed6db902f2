//! `${VAR}` in a compose file, exactly as `docker stack deploy` substitutes
//! it: docker/cli's `cli/compose/template` grammar and substitute functions,
//! applied by `cli/compose/interpolation` to every string value of the
//! parsed file (never to keys, so positions and YAML quoting do not matter),
//! then the loader's casts for the fields that must be numbers or booleans.
//!
//! The grammar is the CLI's one regular expression, case-insensitive:
//! `\$(?:(\$)|(SUBST)|\{(SUBST)\}|())` with
//! `SUBST = [_a-z][_a-z0-9]*(?::?[-?][^}]*)?`. Read literally it has
//! consequences people do not expect, kept here because the CLI has them:
//! a braced default ends at the first `}` (the rest of `${A:-{{x}}}` is
//! text after it); `$A-b` is `A` with the default `b`; a `$` not starting
//! one of these forms makes the whole value an error; and the operators are
//! tried in the order `:-`, `-`, `:?`, `?` anywhere in the text, so
//! `${A:?must-be-set}` is the variable `A:?must` with the default `be-set`
//! (said in a warning).

use std::path::Path;

use super::yaml::{Node, Value};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};

/// Why a value cannot be substituted (the CLI refuses the whole file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// A `$` that starts no variable (`$ `, `$1`, `${}`, an unclosed `${`).
    #[error("invalid interpolation format: {template:?}; escape a literal `$` as `$$`")]
    Invalid { template: String },
    /// `${NAME:?message}` or `${NAME?message}` without a value.
    #[error("required variable `{name}` is missing a value: {message}")]
    Required { name: String, message: String },
}

/// One substitution worth a word to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remark {
    /// A variable without a default that is not set: it becomes "".
    Unset(String),
    /// The operator split the text somewhere the user likely did not mean:
    /// the name looked up is not a variable name.
    OddName { written: String, name: String },
}

/// The CLI's `template.Substitute`: the value with every variable replaced,
/// and what is worth a warning.
pub(crate) fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Remark>), TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut remarks = Vec::new();
    // The CLI keeps the error of the last substitution it tried: a later
    // variable resets an earlier invalid `$` (docker/cli's ReplaceAllStringFunc).
    let mut error = None;
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (substitution, tail) = if let Some(length) = subst_length(after) {
            (&after[..length], &after[length..])
        } else if let Some(inner) = after.strip_prefix('{') {
            match subst_length(inner).filter(|l| inner[*l..].starts_with('}')) {
                Some(length) => (&inner[..length], &inner[length + 1..]),
                None => ("", after),
            }
        } else {
            ("", after)
        };
        rest = tail;
        if substitution.is_empty() {
            error = Some(TemplateError::Invalid {
                template: template.to_string(),
            });
            continue;
        }
        match apply(substitution, lookup, &mut remarks) {
            Ok(value) => {
                error = None;
                out.push_str(&value);
            }
            Err(failed) => error = Some(failed),
        }
    }
    out.push_str(rest);
    match error {
        Some(error) => Err(error),
        None => Ok((out, remarks)),
    }
}

/// The length of `SUBST` at the start of `text`, if it starts one:
/// a name, then optionally `:-`, `-`, `:?` or `?` and anything up to a `}`.
fn subst_length(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    if !(first == b'_' || first.is_ascii_alphabetic()) {
        return None;
    }
    let name = bytes
        .iter()
        .take_while(|b| **b == b'_' || b.is_ascii_alphanumeric())
        .count();
    let after = &text[name..];
    let operator = match after.as_bytes() {
        [b':', b'-' | b'?', ..] => 2,
        [b'-' | b'?', ..] => 1,
        _ => return Some(name),
    };
    let argument = after[operator..]
        .find('}')
        .unwrap_or(after.len() - operator);
    Some(name + operator + argument)
}

/// The CLI's substitute functions, in its order: soft default, hard
/// default, required non-empty, required; else the plain value.
fn apply(
    substitution: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    remarks: &mut Vec<Remark>,
) -> Result<String, TemplateError> {
    let mut looked_up = |name: &str| {
        if !is_name(name) {
            remarks.push(Remark::OddName {
                written: substitution.to_string(),
                name: name.to_string(),
            });
        }
        lookup(name)
    };
    if let Some((name, default)) = substitution.split_once(":-") {
        return Ok(looked_up(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string()));
    }
    if let Some((name, default)) = substitution.split_once('-') {
        return Ok(looked_up(name).unwrap_or_else(|| default.to_string()));
    }
    for (operator, empty_counts) in [(":?", true), ("?", false)] {
        if let Some((name, message)) = substitution.split_once(operator) {
            return match looked_up(name) {
                Some(value) if !(empty_counts && value.is_empty()) => Ok(value),
                _ => Err(TemplateError::Required {
                    name: name.to_string(),
                    message: message.to_string(),
                }),
            };
        }
    }
    Ok(lookup(substitution).unwrap_or_else(|| {
        remarks.push(Remark::Unset(substitution.to_string()));
        String::new()
    }))
}

fn is_name(text: &str) -> bool {
    subst_length(text) == Some(text.len()) && !text.contains([':', '-', '?'])
}

/// What a substituted value of some fields becomes (the loader's
/// `interpolateTypeCastMapping`): only when substitution changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// docker/cli's `interpolateTypeCastMapping`: a path of keys from the top,
/// `*` for any key, `[]` for any list item.
const CASTS: [(&[&str], Cast); 29] = [
    (&["services", "*", "configs", "[]", "mode"], Cast::Int),
    (&["services", "*", "secrets", "[]", "mode"], Cast::Int),
    (&["services", "*", "healthcheck", "retries"], Cast::Int),
    (&["services", "*", "healthcheck", "disable"], Cast::Bool),
    (&["services", "*", "deploy", "replicas"], Cast::Int),
    (
        &["services", "*", "deploy", "update_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "update_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "rollback_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "rollback_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "restart_policy", "max_attempts"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "placement",
            "max_replicas_per_node",
        ],
        Cast::Int,
    ),
    (&["services", "*", "ports", "[]", "target"], Cast::Int),
    (&["services", "*", "ports", "[]", "published"], Cast::Int),
    (&["services", "*", "ulimits", "*"], Cast::Int),
    (&["services", "*", "ulimits", "*", "hard"], Cast::Int),
    (&["services", "*", "ulimits", "*", "soft"], Cast::Int),
    (&["services", "*", "privileged"], Cast::Bool),
    (&["services", "*", "oom_score_adj"], Cast::Int),
    (&["services", "*", "read_only"], Cast::Bool),
    (&["services", "*", "stdin_open"], Cast::Bool),
    (&["services", "*", "tty"], Cast::Bool),
    (&["services", "*", "volumes", "[]", "read_only"], Cast::Bool),
    (
        &["services", "*", "volumes", "[]", "volume", "nocopy"],
        Cast::Bool,
    ),
    (&["networks", "*", "external"], Cast::Bool),
    (&["networks", "*", "internal"], Cast::Bool),
    (&["networks", "*", "attachable"], Cast::Bool),
    (&["volumes", "*", "external"], Cast::Bool),
    (&["secrets", "*", "external"], Cast::Bool),
    (&["configs", "*", "external"], Cast::Bool),
];

fn cast_for(path: &[&str]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        (pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, k)| *p == "*" || p == k))
            .then_some(*cast)
    })
}

/// Why a substituted value is not of its field's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not {}", match .wanted {
    Cast::Int => "a whole number",
    Cast::Float => "a number",
    Cast::Bool => "a boolean (true/false, yes/no, on/off, y/n)",
})]
struct CastError {
    text: String,
    wanted: Cast,
}

/// The value `text` becomes under `cast`, as the CLI's `toInt` (`Atoi`),
/// `toFloat` (`ParseFloat`) and `toBoolean` read it.
fn cast(text: &str, wanted: Cast) -> Result<Value, CastError> {
    let refused = || CastError {
        text: text.to_string(),
        wanted,
    };
    match wanted {
        Cast::Int => {
            let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refused());
            }
            text.trim_start_matches('+')
                .parse::<i64>()
                .map(|i| Value::Int(i.into()))
                .map_err(|_| refused())
        }
        Cast::Float => text.parse::<f64>().map(Value::Float).map_err(|_| refused()),
        Cast::Bool => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(refused()),
        },
    }
}

/// Substitutes every string value of the file (keys stay as written), then
/// casts the fields the CLI casts. Problems point at the value.
pub(crate) fn interpolate(
    file: &Path,
    root: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) {
    let mut path = Vec::new();
    walk(file, root, &mut path, lookup, warnings, diagnostics);
}

/// Substitutes in every string under `node`; `path` holds the keys down to
/// it (`[]` for a list item), borrowed from the tree itself.
fn walk<'a>(
    file: &Path,
    node: &'a mut Node,
    path: &mut Vec<&'a str>,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) {
    if let Value::String(text) = &node.value {
        // Most strings have nothing to substitute: they stay as they are.
        if text.contains('$') {
            substitute_node(file, node, path, lookup, warnings, diagnostics);
        }
        return;
    }
    match &mut node.value {
        Value::Seq(items) => {
            for item in items {
                path.push("[]");
                walk(file, item, path, lookup, warnings, diagnostics);
                path.pop();
            }
        }
        Value::Map(map) => {
            for (key, value) in map.iter_mut() {
                path.push(key);
                walk(file, value, path, lookup, warnings, diagnostics);
                path.pop();
            }
        }
        Value::String(_) | Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// A string node substituted, then cast when its field is a number or a
/// boolean.
fn substitute_node(
    file: &Path,
    node: &mut Node,
    path: &[&str],
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) {
    let at = Location {
        file: file.to_path_buf(),
        line: node.at.line,
        column: node.at.column,
    };
    let Value::String(text) = &node.value else {
        return;
    };
    let (value, remarks) = match substitute(text, lookup) {
        Ok(done) => done,
        Err(error) => {
            diagnostics.push(Diagnostic::new(
                at,
                format!("compose: `{}`: {error}", path.join(".")),
            ));
            return;
        }
    };
    for remark in remarks {
        warnings.push(Diagnostic::warning(at.clone(), match remark {
            Remark::Unset(name) => format!("variable `{name}` is not set; using an empty string"),
            Remark::OddName { written, name } => format!(
                "`${{{written}}}`: docker stack deploy looks up a variable named `{name}` here (the first `:-`, `-`, `:?` or `?` splits the name from the rest); reconciler does the same"
            ),
        }));
    }
    if value == *text {
        return;
    }
    node.value = match cast_for(path) {
        None => Value::String(value),
        Some(wanted) => match cast(&value, wanted) {
            Ok(casted) => casted,
            Err(why) => {
                diagnostics.push(Diagnostic::new(
                    at,
                    format!("compose: `{}`: after interpolation, {why}", path.join(".")),
                ));
                return;
            }
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<String, TemplateError> {
        substitute(text, &env).map(|(v, _)| v)
    }

    #[test]
    fn the_clis_forms() {
        assert_eq!(sub("a $SET b").as_deref(), Ok("a value b"));
        assert_eq!(sub("${SET}x").as_deref(), Ok("valuex"));
        assert_eq!(sub("$$SET").as_deref(), Ok("$SET"));
        assert_eq!(sub("${UNSET:-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${EMPTY:-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${EMPTY-d}").as_deref(), Ok(""));
        assert_eq!(sub("${UNSET-d}").as_deref(), Ok("d"));
        assert_eq!(sub("${set}").as_deref(), Ok(""), "names are case-sensitive");
        assert_eq!(sub("${UNSET}").as_deref(), Ok(""));
    }

    /// The cases of docker/cli's own `template_test.go`, with its mapping.
    #[test]
    fn the_clis_own_cases() {
        let cli = |name: &str| match name {
            "FOO" => Some("first".to_string()),
            "BAR" => Some(String::new()),
            _ => None,
        };
        let sub = |text: &str| substitute(text, &cli).map(|(v, _)| v);
        assert_eq!(sub("$${foo}").as_deref(), Ok("${foo}"));
        for invalid in ["${", "$}", "${}", "${ }", "${ foo}", "${foo }", "${foo!}"] {
            assert!(
                matches!(sub(invalid), Err(TemplateError::Invalid { .. })),
                "{invalid}"
            );
        }
        for (template, expected) in [
            ("This ${missing} var", "This  var"),
            ("This ${BAR} var", "This  var"),
            ("This $FOO var", "This first var"),
            ("This ${FOO} var", "This first var"),
            ("ok ${missing:-def}", "ok def"),
            ("ok ${missing-def}", "ok def"),
            ("ok ${BAR:-def}", "ok def"),
            ("ok ${FOO:-def}", "ok first"),
            ("ok ${BAR-def}", "ok "),
            ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
            ("ok ${FOO:?err}", "ok first"),
            ("ok ${FOO?err}", "ok first"),
            ("ok ${BAR?err}", "ok "),
        ] {
            assert_eq!(sub(template).as_deref(), Ok(expected), "{template}");
        }
        for template in [
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            "not ok ${BAR:?Mandatory Variable Empty}",
            "not ok ${UNSET_VAR:?}",
            "not ok ${UNSET_VAR?Mandatory Variable Unset}",
            "not ok ${UNSET_VAR?}",
        ] {
            assert!(
                matches!(sub(template), Err(TemplateError::Required { .. })),
                "{template}"
            );
        }
    }

    #[test]
    fn an_unbraced_operator_swallows_what_follows() {
        let vars = |name: &str| match name {
            "A" => Some("1".to_string()),
            "B" => Some("2".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        // `$B-` starts an operator that runs to the next `}`: the text
        // `B-${C:-dflt` holds `:-`, tried first, so `B-${C` is the name.
        let (out, remarks) =
            substitute("${A}-$B-${C:-dflt}-${D-x}-$$E-${EMPTY:-e}", &vars).expect("substitutes");
        assert_eq!(out, "1-dflt}-x-$E-e");
        assert!(matches!(&remarks[..], [Remark::OddName { name, .. }] if name == "B-${C"));
    }

    #[test]
    fn a_braced_default_ends_at_the_first_closing_brace() {
        let text = "${NAME:-{{ index .Service.Labels \"com.docker.stack.namespace\"}}}";
        assert_eq!(
            sub(text).as_deref(),
            Ok("{{ index .Service.Labels \"com.docker.stack.namespace\"}}")
        );
        assert_eq!(
            sub("${UNSET:-a\nb}").as_deref(),
            Ok("a\nb"),
            "defaults span lines"
        );
        // No nesting: the inner `${` is text of the default.
        let vars = |name: &str| match name {
            "A" => Some("set".to_string()),
            _ => None,
        };
        assert_eq!(
            substitute("${B:-${C:-z}}", &vars)
                .map(|(v, _)| v)
                .as_deref(),
            Ok("${C:-z}")
        );
        assert_eq!(
            substitute("${A:-${C:-z}}", &vars)
                .map(|(v, _)| v)
                .as_deref(),
            Ok("set}")
        );
    }

    #[test]
    fn unbraced_operators_run_to_a_brace_or_the_end() {
        assert_eq!(sub("$UNSET-x/y").as_deref(), Ok("x/y"));
        assert_eq!(sub("$SET-x/y").as_deref(), Ok("value"));
        assert_eq!(sub("$SET/x").as_deref(), Ok("value/x"));
    }

    #[test]
    fn a_dollar_starting_nothing_is_an_error() {
        for bad in ["$", "a $ b", "$1", "${}", "${SET", "${SET:}", "${1A}"] {
            assert!(
                matches!(sub(bad), Err(TemplateError::Invalid { .. })),
                "{bad:?}: {:?}",
                sub(bad)
            );
        }
        // ...unless a later variable resets it, as in the CLI.
        assert_eq!(sub("$ $SET").as_deref(), Ok(" value"));
    }

    #[test]
    fn required_variables() {
        assert_eq!(sub("${SET:?no}").as_deref(), Ok("value"));
        assert!(matches!(
            sub("${EMPTY:?no}"),
            Err(TemplateError::Required { .. })
        ));
        assert_eq!(sub("${EMPTY?no}").as_deref(), Ok(""));
        assert!(matches!(
            sub("${UNSET?no}"),
            Err(TemplateError::Required { .. })
        ));
        // The CLI tries `-` before `:?`: a message with a dash is a default.
        let (value, remarks) = substitute("${SET:?must-be-set}", &env).expect("a default");
        assert_eq!(value, "be-set");
        assert!(matches!(&remarks[..], [Remark::OddName { name, .. }] if name == "SET:?must"));
    }

    #[test]
    fn casts_apply_only_to_substituted_values() {
        use super::super::yaml;
        let mut root = yaml::parse(
            "services:\n  web:\n    deploy:\n      replicas: \"${N:-3}\"\n    read_only: 'yes'\n    tty: \"${T:-on}\"\n",
        )
        .expect("parses");
        let mut warnings = Vec::new();
        let mut diagnostics = Diagnostics::default();
        interpolate(
            Path::new("c.yml"),
            &mut root,
            &env,
            &mut warnings,
            &mut diagnostics,
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let web = |path: &[&str]| {
            let mut node = &root;
            for key in ["services", "web"].iter().chain(path) {
                node = node.as_map().and_then(|m| m.get(key)).expect(key);
            }
            node.value.clone()
        };
        assert_eq!(web(&["deploy", "replicas"]), Value::Int(3));
        assert_eq!(
            web(&["read_only"]),
            Value::String("yes".into()),
            "not substituted, not cast"
        );
        assert_eq!(web(&["tty"]), Value::Bool(true));
    }
}
