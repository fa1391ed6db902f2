//! A compose file's YAML, read as the docker CLI reads it: `yaml.Unmarshal`
//! of go.yaml.in/yaml/v3 into `any` (`cli/compose/loader.ParseYAML`).
//!
//! That means: the first document only; anchors and aliases anywhere; `<<`
//! merge keys (a mapping or a list of them; the mapping's own keys win, then
//! earlier merged mappings over later ones, shallowly); a key written twice in
//! one mapping refused; plain scalars resolved by yaml.v3's rules (only
//! `true`/`false` are booleans, `0777` is octal, `1_000` is a thousand, `08`
//! is a float); keys that are not strings refused (the CLI cannot validate
//! them). Every node keeps where it was written, so an error can point at it.
//!
//! Built from the parser's events with an explicit stack: no recursion on
//! the input's depth, which is bounded, as is the number of nodes aliases may
//! expand to (a "billion laughs" file is refused, not expanded).

use std::borrow::Cow;
use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

/// The deepest nesting of lists and mappings read (as the TOML spec's).
const MAX_DEPTH: usize = crate::load::MAX_NESTING;

/// The most nodes a file may expand to, aliases counted each time they are
/// used. A 1000-service stack file has ~50 000.
pub(crate) const MAX_NODES: usize = 1_000_000;

/// Where a node starts.
pub(crate) use crate::diagnostic::Position;

impl Position {
    fn of(span: &Span) -> Self {
        Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// One value of the file and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub at: Position,
}

/// A value as yaml.v3 gives it to the CLI (`any`): `nil`, `bool`, `int`,
/// `float64`, `string`, `[]any`, `map[string]any`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// Wide enough for both of Go's `int64` and `uint64`.
    Int(i128),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A mapping's entries sorted by key (each key once), each with where its
/// key was written. A sorted list, not a tree: most mappings of a compose
/// file have a handful of keys, and are built once and then only read.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Map {
    entries: Vec<(String, Entry)>,
}

/// One key of a mapping: where the key is, and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key_at: Position,
    pub value: Node,
}

impl Map {
    /// The entry of `key`: its value and where the key was written.
    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entries in key order (as the CLI's Go maps are compared).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), &e.value))
    }

    /// The values in key order, to change them in place (interpolation).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Node)> {
        self.entries
            .iter_mut()
            .map(|(k, e)| (k.as_str(), &mut e.value))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a str, &'a Node);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a Node)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl Node {
    /// The mapping, if this is one.
    pub(crate) fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    /// The value of `key`, if this is a mapping that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.get(key)
    }

    pub(crate) fn is_map(&self) -> bool {
        self.as_map().is_some()
    }

    /// The list's items, if this is one.
    pub(crate) fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(flag) => Some(flag),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => i64::try_from(i).ok(),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self.value {
            Value::Int(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    /// Any number, as Go's `float64` holds it.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self.value {
            Value::Float(f) => Some(f),
            #[allow(
                clippy::cast_precision_loss,
                reason = "as Go converts an int to float64: a huge one rounds"
            )]
            Value::Int(i) => Some(i as f64),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Where the key at `path` (mapping keys from this node down) was
    /// written, or the deepest key of the path that exists; `None` when
    /// not even the first does.
    pub(crate) fn key_position(&self, path: &[&str]) -> Option<Position> {
        let mut node = self;
        let mut found = None;
        for key in path {
            let Some(entry) = node.as_map().and_then(|m| m.entry(key)) else {
                break;
            };
            found = Some(entry.key_at);
            node = &entry.value;
        }
        found
    }

    fn size(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(map) => {
                1 + map
                    .entries
                    .iter()
                    .map(|(_, e)| e.value.size())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
}

/// Why a file is not YAML the CLI would read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct YamlError {
    pub at: Position,
    pub message: String,
}

impl YamlError {
    fn new(at: Position, message: impl Into<String>) -> Self {
        YamlError {
            at,
            message: message.into(),
        }
    }
}

impl From<ScanError> for YamlError {
    fn from(error: ScanError) -> Self {
        let at = Position {
            line: error.marker().line(),
            column: error.marker().col() + 1,
        };
        match error.info() {
            // The scanner's own bound on `[`/`{` nesting, said as ours is.
            "recursion limit exceeded" => YamlError::new(
                at,
                format!("lists and mappings nested more than {MAX_DEPTH} deep"),
            ),
            info => YamlError::new(at, info),
        }
    }
}

/// A key as written, before it joins its mapping.
struct Key {
    text: String,
    /// A plain `<<`: merge the value's mapping(s) in.
    merge: bool,
    /// Resolves to a string (only those can be compose keys).
    string: bool,
    at: Position,
}

/// A list or mapping whose end has not been read yet.
enum Open {
    Seq {
        at: Position,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        at: Position,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
    },
}

impl Key {
    fn read(
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        at: Position,
    ) -> Result<Key, YamlError> {
        // yaml.v3's `isMerge`: a plain `<<` (tagged `!` or not), or any
        // `<<` tagged `!!merge`; a quoted `"<<"` is an ordinary key.
        let merge = text == "<<"
            && match tag {
                None => style == ScalarStyle::Plain,
                Some(tag) => tag.is_yaml_core_schema() && tag.suffix == "merge",
            };
        let string = merge || typed(&text, style, tag, at)?.is_none();
        Ok(Key {
            text: text.into_owned(),
            merge,
            string,
            at,
        })
    }
}

impl Open {
    /// The finished list or mapping, with its anchor (0 for none).
    fn close(self) -> Result<(Node, usize), YamlError> {
        Ok(match self {
            Open::Seq { at, anchor, items } => (
                Node {
                    value: Value::Seq(items),
                    at,
                },
                anchor,
            ),
            Open::Map {
                at,
                anchor,
                entries,
                ..
            } => (
                Node {
                    value: Value::Map(mapping(entries)?),
                    at,
                },
                anchor,
            ),
        })
    }

    /// Adds a finished node: a list's next item, or a mapping's value.
    fn add(&mut self, node: Node) -> Result<(), YamlError> {
        match self {
            Open::Seq { items, .. } => items.push(node),
            Open::Map { entries, key, .. } => match key.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    return Err(YamlError::new(
                        node.at,
                        "a list or mapping used as a mapping key",
                    ))
                }
            },
        }
        Ok(())
    }
}

/// Reads the first document of `text` as the docker CLI does.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    for event in Parser::new_from_str(text) {
        let (event, span) = event?;
        let at = Position::of(&span);
        // What the event completes: a node, or a key (a scalar in key place).
        let (node, anchor) = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError::new(
                        at,
                        format!("lists and mappings nested more than {MAX_DEPTH} deep"),
                    ));
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Open::Seq {
                        at,
                        anchor,
                        items: Vec::new(),
                    },
                    _ => Open::Map {
                        at,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    },
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(open) => open.close()?,
                None => return Err(YamlError::new(at, "unbalanced end of a list or mapping")),
            },
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(YamlError::new(
                        at,
                        "alias to a node that contains it (a recursive structure)",
                    ));
                };
                nodes = nodes.saturating_add(target.size());
                if nodes > MAX_NODES {
                    return Err(too_many(at));
                }
                (target.clone(), 0)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = specific(tag.as_deref());
                if let Some(Open::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    *key = Some(Key::read(text, style, tag, at)?);
                    continue;
                }
                (
                    Node {
                        value: scalar(text, style, tag, at)?,
                        at,
                    },
                    anchor,
                )
            }
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(too_many(at));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                root = Some(node);
                break;
            }
            Some(open) => open.add(node)?,
        }
    }
    match root {
        Some(node) if node.as_map().is_some() => Ok(node),
        Some(node) => Err(YamlError::new(
            node.at,
            "top-level object must be a mapping",
        )),
        None => Err(YamlError::new(
            Position { line: 1, column: 1 },
            "top-level object must be a mapping (the file is empty)",
        )),
    }
}

fn too_many(at: Position) -> YamlError {
    YamlError::new(
        at,
        format!("the file expands to more than {MAX_NODES} values (aliases counted each time they are used)"),
    )
}

/// A mapping from its entries as written: its own keys first (each once),
/// then the `<<` merge's mappings, each adding only keys not yet there.
///
/// The first problem in the file's order is the one reported, as yaml.v3
/// reads keys in order: a key written twice (by its text, so a quoted `<<`
/// repeats a merge), or a key that is not a string.
fn mapping(mut entries: Vec<(Key, Node)>) -> Result<Map, YamlError> {
    // A key's `at` is where it was written, so comparing `at`s gives the
    // file's order; the stable sort keeps a repeated key after its first.
    entries.sort_by(|(a, _), (b, _)| a.text.cmp(&b.text));
    let repeated = entries
        .windows(2)
        .filter(|pair| pair[0].0.text == pair[1].0.text)
        .map(|pair| (&pair[1].0, Some(pair[0].0.at)));
    let not_string = entries
        .iter()
        .filter(|(key, _)| !key.string && !key.merge)
        .map(|(key, _)| (key, None));
    if let Some((key, earlier)) = repeated.chain(not_string).min_by_key(|(key, _)| key.at) {
        let text = &key.text;
        return Err(YamlError::new(
            key.at,
            match earlier {
                Some(first) => format!(
                    "mapping key `{text}` already defined at line {}",
                    first.line
                ),
                None => format!("mapping key `{text}` is not a string; quote it (\"{text}\")"),
            },
        ));
    }
    let merge = entries
        .iter()
        .position(|(key, _)| key.merge)
        .map(|i| entries.remove(i).1);
    let mut own: Vec<(String, Entry)> = entries
        .into_iter()
        .map(|(key, value)| {
            (
                key.text,
                Entry {
                    key_at: key.at,
                    value,
                },
            )
        })
        .collect();
    let Some(merge) = merge else {
        return Ok(Map { entries: own });
    };
    let sources = match merge.value {
        Value::Map(source) => vec![source],
        Value::Seq(items) => items
            .into_iter()
            .map(|item| match item.value {
                Value::Map(source) => Ok(source),
                _ => Err(merge_wants_map(item.at)),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(merge_wants_map(merge.at)),
    };
    // Own keys first, then each source's in turn; a stable sort keeps the
    // first of each key, which is the one that wins.
    for source in sources {
        own.extend(source.entries);
    }
    own.sort_by(|(a, _), (b, _)| a.cmp(b));
    own.dedup_by(|later, first| later.0 == first.0);
    Ok(Map { entries: own })
}

fn merge_wants_map(at: Position) -> YamlError {
    YamlError::new(
        at,
        "map merge requires map or sequence of maps as the value",
    )
}

/// The tag as yaml.v3 takes it (`parser.node`): the non-specific `!` (also
/// written `!<!>`) is no tag at all, so `! 0755` is still the number 493.
fn specific(tag: Option<&Tag>) -> Option<&Tag> {
    tag.filter(|t| !(t.handle.is_empty() && t.suffix == "!"))
}

/// A scalar's value: a quoted or block scalar, or one tagged `!!str`, is a
/// string; a plain one is resolved as yaml.v3 does; other tags check the
/// text is of their type.
fn scalar(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
    at: Position,
) -> Result<Value, YamlError> {
    Ok(match typed(&text, style, tag, at)? {
        Some(value) => value,
        None => Value::String(text.into_owned()),
    })
}

/// [`scalar`] without making the string: `None` when the scalar is one
/// (most are; keys are only asked whether they are).
fn typed(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    at: Position,
) -> Result<Option<Value>, YamlError> {
    let core = tag
        .filter(|t| t.is_yaml_core_schema())
        .map(|t| t.suffix.as_str());
    match (tag, core) {
        (None, _) if style == ScalarStyle::Plain => Ok(resolve(text)),
        // A tag of the user's own (`!secret`): yaml.v3 keeps the text.
        (None, _) | (Some(_), None | Some("str" | "binary" | "timestamp" | "merge")) => Ok(None),
        (Some(_), Some(wanted)) => match (wanted, resolve(text)) {
            ("int", value @ Some(Value::Int(_)))
            | ("float", value @ Some(Value::Float(_)))
            | ("bool", value @ Some(Value::Bool(_)))
            | ("null", value @ Some(Value::Null)) => Ok(value),
            ("float", Some(Value::Int(i))) => Ok(Some(Value::Float(i as f64))),
            (wanted, _) => Err(YamlError::new(
                at,
                format!("cannot decode `{text}` as a !!{wanted}"),
            )),
        },
    }
}

/// A plain scalar's value by yaml.v3's `resolve` (YAML 1.2 core schema with
/// its compatibility rules, see the module's doc); `None` for a string.
fn resolve(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        ".nan" | ".NaN" | ".NAN" => return Some(Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(Value::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    match text.as_bytes().first() {
        Some(b'.') => text.parse::<f64>().ok().map(Value::Float),
        Some(b'0'..=b'9' | b'+' | b'-') => {
            // A date or time stays text here (yaml.v3 makes a time of it,
            // which no compose field takes).
            let plain: Cow<'_, str> = if text.contains('_') {
                Cow::Owned(text.chars().filter(|c| *c != '_').collect())
            } else {
                Cow::Borrowed(text)
            };
            if let Some(int) = go_parse_int(&plain) {
                return Some(Value::Int(int));
            }
            if yaml_style_float(&plain) {
                if let Ok(float) = plain.parse::<f64>() {
                    return Some(Value::Float(float));
                }
            }
            None
        }
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: a sign,
/// then `0x`, `0o`, `0b` or a leading `0` (octal) choose the base.
fn go_parse_int(text: &str) -> Option<i128> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    let value = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    // ParseInt's range, or ParseUint's for what only fits unsigned.
    let fits = i64::try_from(value).is_ok() || (!negative && text.as_bytes()[0] != b'+');
    fits.then_some(value)
}

/// A float as Go's `fmt.Sprint` prints it (`%v`: `strconv.FormatFloat(f,
/// 'g', -1, 64)`), which is how the CLI turns a number into text for
/// environment values, labels and options: `1000`, `0.5`, `1e+06`, `1.5e-05`.
pub(crate) fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Shortest digits, with the decimal exponent.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) || value == 0.0 {
        return format!("{value}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// yaml.v3's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && fraction.bytes().all(|b| b.is_ascii_digit()),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        parse(&format!("v: {text}\n"))
            .expect("parses")
            .as_map()
            .and_then(|m| m.get("v"))
            .expect("v")
            .value
            .clone()
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_v3_does() {
        assert_eq!(value("yes"), Value::String("yes".into()));
        assert_eq!(value("on"), Value::String("on".into()));
        assert_eq!(value("True"), Value::Bool(true));
        assert_eq!(value("~"), Value::Null);
        assert_eq!(value("0777"), Value::Int(511));
        assert_eq!(value("0o17"), Value::Int(15));
        assert_eq!(value("0x1F"), Value::Int(31));
        assert_eq!(value("0b101"), Value::Int(5));
        assert_eq!(value("1_000"), Value::Int(1000));
        assert_eq!(value("+5"), Value::Int(5));
        assert_eq!(value("-5"), Value::Int(-5));
        assert_eq!(value("08"), Value::Float(8.0));
        assert_eq!(value("1.5"), Value::Float(1.5));
        assert_eq!(value(".5"), Value::Float(0.5));
        assert_eq!(value("1e3"), Value::Float(1000.0));
        assert_eq!(value("18446744073709551615"), Value::Int(u64::MAX.into()));
        assert_eq!(value("8080:80"), Value::String("8080:80".into()));
        assert_eq!(value("1.2.3"), Value::String("1.2.3".into()));
        assert_eq!(value("'0777'"), Value::String("0777".into()));
        assert_eq!(value("!!str 12"), Value::String("12".into()));
        assert_eq!(value("!!float 1"), Value::Float(1.0));
        assert_eq!(value("2024-01-02"), Value::String("2024-01-02".into()));
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        for (value, printed) in [
            (1000.0, "1000"),
            (0.5, "0.5"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (123_456.0, "123456"),
            (0.0001, "0.0001"),
            (0.000_015, "1.5e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(value), printed, "{value}");
        }
    }

    #[test]
    fn merge_keys_follow_yaml_v3_precedence() {
        let text = "\
base: &base {a: 1, b: 1, c: 1}
other: &other {b: 2, d: 2}
one:
  <<: *base
  a: 9
list:
  <<: [*other, *base]
  c: 9
";
        let root = parse(text).expect("parses");
        let map = |key: &str| {
            root.as_map()
                .and_then(|m| m.get(key))
                .and_then(Node::as_map)
                .expect(key)
                .iter()
                .map(|(k, node)| (k.to_owned(), node.value.clone()))
                .collect::<Vec<_>>()
        };
        let int = |i| Value::Int(i);
        assert_eq!(
            map("one"),
            vec![
                ("a".into(), int(9)),
                ("b".into(), int(1)),
                ("c".into(), int(1))
            ]
        );
        assert_eq!(
            map("list"),
            vec![
                ("a".into(), int(1)),
                ("b".into(), int(2)),
                ("c".into(), int(9)),
                ("d".into(), int(2))
            ]
        );
    }

    #[test]
    fn tags_are_read_as_yaml_v3_reads_them() {
        // `docker stack config` (CLI 28) on the same text: `! <<` and
        // `!!merge "<<"` merge, a quoted `"<<"` is a key; `! 0755` is 493.
        let root = parse(
            "x: &x {image: a}\na:\n  ! <<: *x\nb:\n  !!merge \"<<\": *x\nc:\n  \"<<\": *x\nd:\n  m: ! 0755\n  q: ! \"0755\"\n  v: !<!> 1\n  s: !!str 1\n  own: !secret 1\n",
        )
        .expect("parses");
        let at = |path: &[&str]| {
            path.iter()
                .try_fold(&root, |node, key| node.get(key))
                .map(|node| node.value.clone())
        };
        assert_eq!(at(&["a", "image"]), Some(Value::String("a".into())));
        assert_eq!(at(&["b", "image"]), Some(Value::String("a".into())));
        assert_eq!(at(&["c", "image"]), None);
        assert!(at(&["c", "<<"]).is_some(), "a quoted `<<` is a key");
        assert_eq!(at(&["d", "m"]), Some(Value::Int(493)));
        assert_eq!(at(&["d", "q"]), Some(Value::String("0755".into())));
        assert_eq!(at(&["d", "v"]), Some(Value::Int(1)));
        assert_eq!(at(&["d", "s"]), Some(Value::String("1".into())));
        assert_eq!(at(&["d", "own"]), Some(Value::String("1".into())));
    }

    #[test]
    fn a_merged_key_points_where_it_was_written() {
        let root = parse("x: &x\n  image: a\ns:\n  <<: *x\n").expect("parses");
        assert_eq!(
            root.key_position(&["s", "image"]),
            Some(Position { line: 2, column: 3 })
        );
    }

    #[test]
    fn duplicate_and_non_string_keys_are_refused_where_written() {
        let error = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(error.at, Position { line: 3, column: 1 });
        assert!(
            error.message.contains("already defined at line 1"),
            "{error}"
        );
        let error = parse("labels:\n  80: web\n").expect_err("int key");
        assert_eq!(error.at, Position { line: 2, column: 3 });
        assert!(parse("'80': web\n").is_ok());
        // The first problem in the file's order is the one reported, and a
        // key written three times names its first place.
        let error = parse("b: 1\n2: x\na: 1\nb: 3\n").expect_err("two problems");
        assert_eq!(error.at, Position { line: 2, column: 1 });
        let error = parse("z: 1\nz: 2\nz: 3\n").expect_err("three times");
        assert_eq!(error.at, Position { line: 2, column: 1 });
        assert!(error.message.contains("line 1"), "{error}");
        assert!(parse("<<: 1\n").is_err(), "merge of a scalar");
        // yaml.v3 compares keys by text: a merge and a quoted `<<` collide.
        for twice in [
            "x: &x {a: 1}\ny:\n  <<: *x\n  <<: *x\n",
            "x: &x {a: 1}\ny:\n  <<: *x\n  '<<': 2\n",
            "y:\n  '<<': 1\n  \"<<\": 2\n",
        ] {
            let error = parse(twice).expect_err(twice);
            assert!(error.message.contains("`<<` already defined"), "{error}");
        }
    }

    #[test]
    fn aliases_that_expand_too_far_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let error = parse(&text).expect_err("billion laughs");
        assert!(error.message.contains("expands to more than"), "{error}");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let flow = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        let error = parse(&flow).expect_err("too deep");
        assert!(error.message.contains("nested more than"), "{error}");
        let block: String = (0..1000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let error = parse(&block).expect_err("too deep");
        assert!(error.message.contains("nested more than"), "{error}");
        // The scanner stops flow nesting at 255 levels itself.
        let flow = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let error = parse(&flow).expect_err("too deep");
        assert!(error.message.contains("nested more than"), "{error}");
    }

    #[test]
    fn only_a_mapping_is_a_compose_file() {
        assert!(parse("").is_err());
        assert!(parse("- a\n").is_err());
        assert!(parse("a: 1\n---\nb: 2\n").is_ok(), "first document only");
    }
}
