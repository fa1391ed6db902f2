//! Reading a spec directory: find the files, parse each, gather the entries.
//!
//! Parsing is per entry (`[service.web]`, `[node.pi1]`, ...), so one broken
//! entry does not hide the problems of the others: every error is reported.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::compose::TranslatedEntry;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::file::*;
use crate::model::Spec;
use crate::sealed::Keyring;
use crate::source::SourceFile;
use crate::suggest::did_you_mean;
use crate::{lower, validate};

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory or one of its files could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no `*.toml` file: almost always a wrong path.
    #[error("no *.toml files under {0}: is this the spec directory?")]
    NoFiles(PathBuf),
    /// A file that is not a regular file inside the spec: a link leaving
    /// it (to `/proc/self/environ`, say), a FIFO, a device, a file too big.
    #[error("{path}: {why}")]
    Refused { path: PathBuf, why: String },
    /// The files were read but the spec is wrong; every problem is listed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The top-level tables a spec file may hold.
const SECTIONS: [&str; 14] = [
    "cluster",
    "controller",
    "ssh",
    "bootstrap",
    "board",
    "maintenance",
    "node",
    "network",
    "service",
    "config",
    "secret",
    "release",
    "stack",
    "share",
];

/// Loads every `*.toml` file under `dir` (recursively, skipping hidden entries) as one spec.
pub fn load_dir(dir: &Path) -> Result<Spec, LoadError> {
    load_files(read_dir_files(dir)?)
}

/// [`load_dir`] with explicit [`LoadOptions`].
pub fn load_dir_with(dir: &Path, options: &LoadOptions) -> Result<Spec, LoadError> {
    load_files_with(read_dir_files(dir)?, options)
}

/// What a load may use besides the spec's own files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Identities that decrypt `encryption = ...` secrets.
    pub keyring: Keyring,
    /// Where `${VAR}` in compose files and bare `environment` names look.
    pub environment: Environment,
}

/// Where compose interpolation (`${VAR}`) and bare `environment: [VAR]`
/// take values from, before the stack's `env_file`.
#[derive(Clone, Default)]
pub enum Environment {
    /// The process environment, as `docker stack deploy` on a terminal.
    #[default]
    Process,
    /// Only these variables (names and values, taken once). What `run`
    /// uses: anyone who can push to the repository writes its compose
    /// files, and must not read the controller's own environment (its
    /// webhook secret, its age identity) into a service.
    Only(std::collections::BTreeMap<String, String>),
}

impl Environment {
    /// The named variables of the process environment (those set).
    pub fn allowing(names: &[String]) -> Self {
        Self::Only(
            names
                .iter()
                .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<String> {
        match self {
            Self::Process => std::env::var(name).ok(),
            Self::Only(allowed) => allowed.get(name).cloned(),
        }
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Names only: the values may be secrets.
            Self::Process => write!(f, "Process"),
            Self::Only(allowed) => f.debug_set().entries(allowed.keys()).finish(),
        }
    }
}

/// The files of a spec other than its TOML files, by path relative to the
/// spec root: compose and env files, and what configs and secrets name.
pub(crate) type Assets = std::collections::BTreeMap<PathBuf, Vec<u8>>;

/// Reads the files of a spec directory, recursively, skipping entries whose
/// name starts with `.` (but `.env` files are kept): the spec files (see
/// [`is_spec_file`]) and every other file a config or secret may name
/// (see [`spec_file_kept`]); paths relative to `dir`, sorted.
pub fn read_dir_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, LoadError> {
    let mut paths = Vec::new();
    collect_files(dir, &mut paths)?;
    if !paths
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        return Err(LoadError::NoFiles(dir.to_path_buf()));
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    let mut total = 0;
    for path in paths {
        let io = |source| LoadError::Io {
            path: path.clone(),
            source,
        };
        let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        // Sizes are checked before reading: a huge file is never read whole.
        let size = std::fs::metadata(&path).map_err(io)?.len();
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        check_size(&relative, size, &mut total)?;
        if !is_spec_file(&relative) && size > MAX_KEPT_FILE_BYTES {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        if let Some(kept) = spec_file_kept(&relative, bytes)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?
        {
            files.push((relative, kept));
        }
    }
    Ok(files)
}

/// The largest spec file (TOML, compose, env file) read.
pub const MAX_SPEC_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The most a whole spec may hold (the files it keeps).
pub const MAX_SPEC_BYTES: usize = 64 * 1024 * 1024;

/// Refuses a spec file over [`MAX_SPEC_FILE_BYTES`], or a spec whose kept
/// files pass [`MAX_SPEC_BYTES`] together; `total` adds up as files come.
pub fn check_size(path: &Path, size: usize, total: &mut usize) -> Result<(), LoadError> {
    let refused = |why: String| LoadError::Refused {
        path: path.to_path_buf(),
        why,
    };
    let mib = |bytes: usize| bytes / (1024 * 1024);
    if is_spec_file(path) && size > MAX_SPEC_FILE_BYTES {
        return Err(refused(format!(
            "a spec file of {} MiB; the limit is {} MiB",
            mib(size),
            mib(MAX_SPEC_FILE_BYTES)
        )));
    }
    if is_spec_file(path) || size <= MAX_KEPT_FILE_BYTES {
        *total += size;
    }
    if *total > MAX_SPEC_BYTES {
        return Err(refused(format!(
            "the spec passes {} MiB with this file; split it, or keep large files out of the spec",
            mib(MAX_SPEC_BYTES)
        )));
    }
    Ok(())
}

/// The largest config or secret (after decryption): Swarm keeps configs and
/// secrets up to 500 KiB.
pub const MAX_DATA_FILE_BYTES: usize = 500 * 1024;

/// The largest file a spec keeps besides its spec files: room for a secret
/// of [`MAX_DATA_FILE_BYTES`] encrypted and armored (about 4/3 larger).
pub const MAX_KEPT_FILE_BYTES: usize = 1024 * 1024;

/// A spec file (TOML, compose, env file) that is not UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not UTF-8 text")]
pub struct NotText;

/// What a spec keeps of one file of its directory or commit: a spec file
/// (which must be UTF-8 text), and any other file up to
/// [`MAX_KEPT_FILE_BYTES`] (what `[config.*]` and `[secret.*]` may name,
/// encrypted secrets included); `None` for larger files, which are not read
/// further.
pub fn spec_file_kept(path: &Path, bytes: Vec<u8>) -> Result<Option<Vec<u8>>, NotText> {
    if is_spec_file(path) {
        return match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Some(bytes)),
            Err(_) => Err(NotText),
        };
    }
    if bytes.len() > MAX_KEPT_FILE_BYTES {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Loads a spec from in-memory files (path as shown in errors, contents).
/// This is how a spec at a git revision is read without a working tree.
/// Encrypted secrets are refused (there is no identity to decrypt them);
/// see [`load_files_with`].
pub fn load_files<B: Into<Vec<u8>>>(files: Vec<(PathBuf, B)>) -> Result<Spec, LoadError> {
    load_files_with(files, &LoadOptions::default())
}

/// [`load_files`] with explicit [`LoadOptions`]: secrets marked
/// `encryption = ...` decrypted with its keyring (in memory only), compose
/// variables from its environment.
pub fn load_files_with<B: Into<Vec<u8>>>(
    files: Vec<(PathBuf, B)>,
    options: &LoadOptions,
) -> Result<Spec, LoadError> {
    let keyring = &options.keyring;
    if files.is_empty() {
        return Err(LoadError::NoFiles(PathBuf::from(".")));
    }
    let (toml_files, assets): (Vec<_>, Vec<_>) = files
        .into_iter()
        .map(|(path, bytes)| (path, bytes.into()))
        .partition(|(path, _)| path.extension().is_some_and(|e| e == "toml"));
    let toml_files: Vec<(PathBuf, String)> = toml_files
        .into_iter()
        .map(|(path, bytes)| (path, String::from_utf8_lossy(&bytes).into_owned()))
        .collect();
    let assets: Assets = assets.into_iter().collect();
    let (spec_files, local_charts) = crate::chart::split_local(toml_files);
    let sources: Vec<SourceFile> = spec_files
        .into_iter()
        .map(|(path, text)| SourceFile::new(path, text))
        .collect();
    let mut diagnostics = Diagnostics::default();
    let mut raw = RawSpec::default();
    for source in &sources {
        parse_file(source, &mut raw, &mut diagnostics);
    }
    let bundled = crate::chart::bundled();
    let mut rendered = Vec::new();
    let mut used: Vec<&crate::chart::Chart> = Vec::new();
    for release in &raw.releases {
        if let Some(chart) =
            crate::chart::resolve(release, &local_charts, &bundled, &mut diagnostics)
        {
            used.push(chart);
            rendered.extend(chart.render(release, &mut diagnostics));
        }
    }
    for chart in local_charts.values() {
        if !used.iter().any(|u| std::ptr::eq(*u, chart)) {
            diagnostics.push(chart.unused());
        }
    }
    let mut warnings = Vec::new();
    let (stack_sources, stack_entries) = translate_stacks(
        &raw.stacks,
        &assets,
        &options.environment,
        &mut warnings,
        &mut diagnostics,
    );
    for fragment in &rendered {
        let group = crate::model::Group::Release(fragment.release.clone());
        let prefix = fragment.prefix.then(|| format!("{}-", fragment.release));
        merge_fragment(
            &fragment.file,
            &group,
            prefix.as_deref(),
            &mut raw,
            &mut diagnostics,
        );
    }
    for ((stack, sources), entries) in stack_sources.iter().zip(stack_entries) {
        let mut fragment = RawSpec::default();
        // Entries are large: grown one push at a time, the lists would be
        // copied over and over.
        fragment.services.reserve(entries.len());
        fragment.declared.reserve(entries.len());
        for (source, (name, value)) in sources.iter().zip(entries) {
            fragment.add_translated(source, &name, value);
        }
        let group = crate::model::Group::Stack(stack.clone());
        add_fragment(
            fragment,
            &group,
            Some(&format!("{stack}_")),
            &mut raw,
            &mut diagnostics,
        );
    }
    validate::duplicates(&raw, &mut diagnostics);
    let spec = lower::lower(&raw, sources.first(), &assets, keyring, &mut diagnostics);
    validate::references(&raw, &mut diagnostics);
    if diagnostics.is_empty() {
        if let Some(mut spec) = spec {
            warnings.sort_by(|a, b| a.location.cmp(&b.location));
            spec.warnings = warnings;
            return Ok(spec);
        }
    }
    diagnostics.sort();
    Err(LoadError::Invalid(diagnostics))
}

/// The stacks' compose files translated: each entry with a source of its
/// own, whose spans point into the compose file (the sources outlive the
/// entries, which move into the spec).
type StackSources = Vec<(String, Vec<SourceFile>)>;
type StackEntries = Vec<Vec<(String, TranslatedEntry)>>;

fn translate_stacks(
    stacks: &[Entry<'_, StackFile>],
    assets: &Assets,
    environment: &Environment,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) -> (StackSources, StackEntries) {
    let mut stack_sources = Vec::new();
    let mut stack_entries = Vec::new();
    for stack in stacks {
        let Some((path, translated)) =
            translate_stack(stack, assets, environment, warnings, diagnostics)
        else {
            continue;
        };
        let shown = PathBuf::from(format!(
            "{} (stack {}, translated)",
            path.display(),
            stack.name
        ));
        let (sources, entries): (Vec<_>, Vec<_>) = translated
            .entries
            .into_iter()
            .map(|t| {
                (
                    SourceFile::generated(
                        shown.clone(),
                        String::new(),
                        crate::source::GeneratedFrom {
                            file: path.clone(),
                            places: t.origins,
                        },
                    ),
                    (t.name, t.value),
                )
            })
            .unzip();
        stack_sources.push((stack.name.clone(), sources));
        stack_entries.push(entries);
    }
    (stack_sources, stack_entries)
}

/// Reads, interpolates and translates the compose file of a `[stack.NAME]`.
fn translate_stack(
    stack: &Entry<'_, StackFile>,
    assets: &Assets,
    environment: &Environment,
    warnings: &mut Vec<Diagnostic>,
    diagnostics: &mut Diagnostics,
) -> Option<(PathBuf, crate::compose::Translated)> {
    let find = |spanned: &Spanned<String>, what: &str, diagnostics: &mut Diagnostics| {
        let path = match crate::compose::relative_to(Path::new(""), spanned.get_ref()) {
            Ok(path) => path,
            Err(outside) => {
                diagnostics.push(stack.error(
                    &spanned.span(),
                    format!("stack `{}`: {what} {outside}", stack.name),
                ));
                return None;
            }
        };
        let Some(bytes) = assets.get(&path) else {
            diagnostics.push(stack.error(
                &spanned.span(),
                format!("stack `{}`: {what} `{}` not found in the spec (paths are relative to the spec root)", stack.name, spanned.get_ref()),
            ));
            return None;
        };
        match String::from_utf8(bytes.clone()) {
            Ok(text) => Some((path, text)),
            Err(_) => {
                diagnostics.push(stack.error(
                    &spanned.span(),
                    format!(
                        "stack `{}`: {what} `{}` is not UTF-8 text",
                        stack.name,
                        spanned.get_ref()
                    ),
                ));
                None
            }
        }
    };
    let (path, text) = find(&stack.value.compose, "compose file", diagnostics)?;
    let mut env = std::collections::BTreeMap::new();
    if let Some(env_file) = &stack.value.env_file {
        let (_, env_text) = find(env_file, "env file", diagnostics)?;
        env = crate::compose::parse_env_file(&env_text);
    }
    let lookup = |name: &str| environment.get(name).or_else(|| env.get(name).cloned());
    let before = diagnostics.len();
    let mut translated =
        crate::compose::translate(&stack.name, &path, &text, assets, &lookup, diagnostics)?;
    if diagnostics.len() > before {
        return None;
    }
    warnings.append(&mut translated.warnings);
    Some((path, translated))
}

/// The names a fragment defines, so references to them get its prefix.
struct FragmentNames {
    networks: std::collections::BTreeSet<String>,
    services: std::collections::BTreeSet<String>,
    configs: std::collections::BTreeSet<String>,
    secrets: std::collections::BTreeSet<String>,
}

impl FragmentNames {
    /// Points a service's references at the prefixed names; references to
    /// names the fragment does not define stay as written.
    fn rename_references(&self, service: &mut ServiceFile, renamed: &dyn Fn(&str) -> String) {
        for network in &mut service.networks {
            if self.networks.contains(network.get_ref()) {
                *network.get_mut() = renamed(network.get_ref());
            }
        }
        service.network_aliases = std::mem::take(&mut service.network_aliases)
            .into_iter()
            .map(|(mut network, aliases)| {
                if self.networks.contains(network.get_ref()) {
                    *network.get_mut() = renamed(network.get_ref());
                }
                (network, aliases)
            })
            .collect();
        for (refs, known) in [
            (&mut service.configs, &self.configs),
            (&mut service.secrets, &self.secrets),
        ] {
            for file in refs.iter_mut() {
                let file = file.get_mut();
                if known.contains(file.source.get_ref()) {
                    // The file keeps the short name, as `docker stack deploy` does.
                    if file.target.is_none() {
                        file.target = Some(file.source.get_ref().clone());
                    }
                    *file.source.get_mut() = renamed(file.source.get_ref());
                }
            }
        }
        for dependency in &mut service.after {
            if self.services.contains(dependency.get_ref()) {
                *dependency.get_mut() = renamed(dependency.get_ref());
            }
        }
    }
}

/// Parses a generated file (a rendered chart template) and adds what it
/// defines to the spec ([`add_fragment`]); it may define services,
/// networks, configs and secrets only.
pub(crate) fn merge_fragment<'s>(
    file: &'s SourceFile,
    group: &crate::model::Group,
    prefix: Option<&str>,
    raw: &mut RawSpec<'s>,
    diagnostics: &mut Diagnostics,
) {
    let mut fragment = RawSpec::default();
    parse_file(file, &mut fragment, diagnostics);
    let what = match group {
        crate::model::Group::Release(name) => format!("release `{name}`"),
        crate::model::Group::Stack(name) => format!("stack `{name}`"),
    };
    for entry in fragment.declared.iter().filter(|e| !e.value.generated()) {
        diagnostics.push(entry.name_error(format!(
            "{what} may only define services, networks, configs and secrets, not [{}.{}]",
            entry.value, entry.name
        )));
    }
    let fixed_sections = [
        (!fragment.cluster.is_empty(), "cluster"),
        (!fragment.controller.is_empty(), "controller"),
        (!fragment.ssh.is_empty(), "ssh"),
        (!fragment.bootstrap.is_empty(), "bootstrap"),
        (!fragment.board.is_empty(), "board"),
        (!fragment.maintenance.is_empty(), "maintenance"),
    ];
    for (present, section) in fixed_sections {
        if present {
            diagnostics.push(crate::Diagnostic::new(
                file.start(),
                format!("{what} may only define services, networks, configs and secrets, not [{section}]"),
            ));
        }
    }
    add_fragment(fragment, group, prefix, raw, diagnostics);
}

/// Adds a fragment's services, networks, configs and secrets to the spec:
/// names prefixed, references between them rewritten, each entry marked
/// with its group.
fn add_fragment<'s>(
    fragment: RawSpec<'s>,
    group: &crate::model::Group,
    prefix: Option<&str>,
    raw: &mut RawSpec<'s>,
    diagnostics: &mut Diagnostics,
) {
    let renamed = |name: &str| prefix.map_or_else(|| name.to_string(), |p| format!("{p}{name}"));
    let networks: std::collections::BTreeSet<String> =
        fragment.networks.iter().map(|e| e.name.clone()).collect();
    let services: std::collections::BTreeSet<String> =
        fragment.services.iter().map(|e| e.name.clone()).collect();
    let names = FragmentNames {
        networks,
        services,
        configs: fragment.configs.iter().map(|e| e.name.clone()).collect(),
        secrets: fragment.secrets.iter().map(|e| e.name.clone()).collect(),
    };
    raw.services.reserve(fragment.services.len());
    raw.declared.reserve(fragment.declared.len());
    for mut entry in fragment.configs {
        entry.name = renamed(&entry.name);
        entry.group = Some(group.clone());
        raw.configs.push(entry);
    }
    for mut entry in fragment.secrets {
        entry.name = renamed(&entry.name);
        entry.group = Some(group.clone());
        raw.secrets.push(entry);
    }
    for mut entry in fragment.networks {
        entry.name = renamed(&entry.name);
        entry.group = Some(group.clone());
        raw.networks.push(entry);
    }
    for mut entry in fragment.services {
        entry.name = renamed(&entry.name);
        entry.group = Some(group.clone());
        names.rename_references(&mut entry.value, &renamed);
        raw.services.push(entry);
    }
    for mut entry in fragment
        .declared
        .into_iter()
        .filter(|e| e.value.generated())
    {
        entry.name = renamed(&entry.name);
        if let Err(problem) = validate::check_entry_name(entry.value, &entry.name) {
            diagnostics.push(entry.name_error(problem.to_string()));
        }
        entry.group = Some(group.clone());
        raw.declared.push(entry);
    }
}

/// Files a spec consists of: `*.toml`, and the compose and env files stacks refer to.
pub fn is_spec_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with(".env")
        || path
            .extension()
            .is_some_and(|e| e == "toml" || e == "yml" || e == "yaml" || e == "env")
}

/// The deepest folder a spec may have (`a/b/c` is 3 deep): a commit with
/// folders nested thousands deep must be refused, not walked.
pub const MAX_FOLDER_DEPTH: usize = 32;

/// The most files and folders a spec may hold.
pub const MAX_SPEC_ENTRIES: usize = 10_000;

/// Counts entries and checks depths while a spec's folders are walked.
#[derive(Debug, Default)]
pub struct WalkLimits {
    entries: usize,
}

impl WalkLimits {
    /// One more entry at `path`, `depth` folders down; refused past the limits.
    pub fn enter(&mut self, path: &Path, depth: usize) -> Result<(), LoadError> {
        self.entries += 1;
        let refused = |why: String| LoadError::Refused {
            path: path.to_path_buf(),
            why,
        };
        if depth > MAX_FOLDER_DEPTH {
            return Err(refused(format!(
                "folders nested more than {MAX_FOLDER_DEPTH} deep; a spec never needs that many"
            )));
        }
        if self.entries > MAX_SPEC_ENTRIES {
            return Err(refused(format!(
                "more than {MAX_SPEC_ENTRIES} files and folders in the spec"
            )));
        }
        Ok(())
    }
}

/// Collects the regular files under `root`, walking its folders with a
/// stack of its own (no recursion on the input's depth) within
/// [`WalkLimits`]. A link to a regular file inside `root` (not in a hidden
/// folder such as `.git`, which the spec does not include) is read
/// through; every other link, and anything that is neither a file nor a
/// directory (a FIFO would hang the load, a device never ends), is refused.
fn collect_files(root: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let mut limits = WalkLimits::default();
    let mut folders = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = folders.pop() {
        let io = |source| LoadError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && !name.starts_with(".env") {
                continue;
            }
            limits.enter(&path, depth + 1)?;
            let refused = |why: &str| LoadError::Refused {
                path: path.clone(),
                why: why.to_string(),
            };
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() {
                folders.push((path, depth + 1));
            } else if kind.is_file() {
                out.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::canonicalize(&path)
                    .map_err(|_| refused("a link to nothing (broken link)"))?;
                let root = std::fs::canonicalize(root).map_err(io)?;
                let Ok(inside) = target.strip_prefix(&root) else {
                    return Err(refused(&format!(
                        "a link to {}, outside the spec; copy the file into the spec instead",
                        target.display()
                    )));
                };
                let hidden = inside.components().any(|c| {
                    let name = c.as_os_str().to_string_lossy();
                    name.starts_with('.') && !name.starts_with(".env")
                });
                if hidden {
                    return Err(refused(&format!(
                        "a link to {}, in a hidden folder the spec does not include",
                        inside.display()
                    )));
                }
                if !target.is_file() {
                    return Err(refused(
                        "a link to something that is not a regular file (links to directories are not followed)",
                    ));
                }
                out.push(path);
            } else {
                return Err(refused(
                    "not a regular file (a FIFO, socket or device); a spec holds only files and directories",
                ));
            }
        }
    }
    Ok(())
}

/// One named entry (`[service.web]`) as written, with where its name is.
#[derive(Debug)]
pub(crate) struct Entry<'s, T> {
    pub name: String,
    pub name_span: Range<usize>,
    pub source: &'s SourceFile,
    pub value: T,
    /// The release or stack that produced the entry; `None` when hand-written.
    pub group: Option<crate::model::Group>,
}

impl<T> Entry<'_, T> {
    pub(crate) fn error(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.source.error(span, message)
    }

    pub(crate) fn name_error(&self, message: impl Into<String>) -> Diagnostic {
        self.source.error(&self.name_span, message)
    }
}

/// A section of named entries (`[service.web]`, `[node.pi1]`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SectionKind {
    /// `[node.NAME]`: a board.
    Node,
    /// `[network.NAME]`.
    Network,
    /// `[service.NAME]`.
    Service,
    /// `[config.NAME]`.
    Config,
    /// `[secret.NAME]`.
    Secret,
    /// `[release.NAME]`: a chart instance.
    Release,
    /// `[stack.NAME]`: a compose file.
    Stack,
    /// `[share.NAME]`: a directory shared over NFS.
    Share,
}

impl SectionKind {
    /// Every kind, in the order reports list them.
    pub(crate) const ALL: [SectionKind; 8] = [
        SectionKind::Node,
        SectionKind::Network,
        SectionKind::Service,
        SectionKind::Config,
        SectionKind::Secret,
        SectionKind::Release,
        SectionKind::Stack,
        SectionKind::Share,
    ];

    /// The section's name in a spec file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SectionKind::Node => "node",
            SectionKind::Network => "network",
            SectionKind::Service => "service",
            SectionKind::Config => "config",
            SectionKind::Secret => "secret",
            SectionKind::Release => "release",
            SectionKind::Stack => "stack",
            SectionKind::Share => "share",
        }
    }

    /// What a chart or a compose file may produce.
    fn generated(self) -> bool {
        matches!(
            self,
            SectionKind::Service | SectionKind::Network | SectionKind::Config | SectionKind::Secret
        )
    }
}

impl std::fmt::Display for SectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything parsed from all files, before merging into the model.
#[derive(Debug, Default)]
pub(crate) struct RawSpec<'s> {
    pub cluster: Vec<Entry<'s, ClusterFile>>,
    pub controller: Vec<Entry<'s, ControllerFile>>,
    pub ssh: Vec<Entry<'s, SshFile>>,
    pub bootstrap: Vec<Entry<'s, BootstrapFile>>,
    pub board: Vec<Entry<'s, crate::file::BoardSection>>,
    pub maintenance: Vec<Entry<'s, crate::file::MaintenanceFile>>,
    pub nodes: Vec<Entry<'s, NodeFile>>,
    pub networks: Vec<Entry<'s, NetworkFile>>,
    pub services: Vec<Entry<'s, Box<ServiceFile>>>,
    pub configs: Vec<Entry<'s, ConfigFile>>,
    pub secrets: Vec<Entry<'s, SecretFile>>,
    pub releases: Vec<Entry<'s, ReleaseFile>>,
    pub stacks: Vec<Entry<'s, StackFile>>,
    pub shares: Vec<Entry<'s, crate::file::ShareFile>>,
    /// Every name declared, also those whose body failed to parse, so that
    /// duplicates and references are judged on what the user wrote.
    pub declared: Vec<Entry<'s, SectionKind>>,
    /// Files with TOML syntax errors: what they define is unknown, so checks
    /// for missing things ("no [cluster]") would only add noise.
    pub unparsed_files: usize,
}

impl<'s> RawSpec<'s> {
    /// Adds one entry of a translated compose file, under its name in the
    /// file; `source` places its spans in the compose file.
    fn add_translated(&mut self, source: &'s SourceFile, name: &str, value: TranslatedEntry) {
        fn entry<'s, T>(source: &'s SourceFile, name: &str, value: T) -> Entry<'s, T> {
            Entry {
                name: name.to_string(),
                name_span: 0..0,
                source,
                value,
                group: None,
            }
        }
        let kind = match &value {
            TranslatedEntry::Network(_) => SectionKind::Network,
            TranslatedEntry::Config(_) => SectionKind::Config,
            TranslatedEntry::Secret(_) => SectionKind::Secret,
            TranslatedEntry::Service(_) => SectionKind::Service,
        };
        self.declared.push(entry(source, name, kind));
        match value {
            TranslatedEntry::Network(v) => self.networks.push(entry(source, name, v)),
            TranslatedEntry::Config(v) => self.configs.push(entry(source, name, v)),
            TranslatedEntry::Secret(v) => self.secrets.push(entry(source, name, v)),
            TranslatedEntry::Service(v) => self.services.push(entry(source, name, v)),
        }
    }
}

fn parse_file<'s>(source: &'s SourceFile, raw: &mut RawSpec<'s>, diagnostics: &mut Diagnostics) {
    if let Some(at) = too_deep(&source.text) {
        diagnostics.push(source.error(
            &(at..at),
            format!("arrays and tables nested more than {MAX_NESTING} deep; a spec never needs that many"),
        ));
        raw.unparsed_files += 1;
        return;
    }
    let root = match DeTable::parse(&source.text) {
        Ok(root) => root.into_inner(),
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            diagnostics
                .push(source.error(&span, format!("TOML syntax: {}", error.message().trim())));
            raw.unparsed_files += 1;
            return;
        }
    };
    for (key, value) in root {
        let section = key.get_ref().as_ref();
        let key_span = key.span();
        match section {
            "cluster" => singleton(source, key_span, value, &mut raw.cluster, diagnostics),
            "controller" => singleton(source, key_span, value, &mut raw.controller, diagnostics),
            "ssh" => singleton(source, key_span, value, &mut raw.ssh, diagnostics),
            "bootstrap" => singleton(source, key_span, value, &mut raw.bootstrap, diagnostics),
            "board" => singleton(source, key_span, value, &mut raw.board, diagnostics),
            "maintenance" => singleton(source, key_span, value, &mut raw.maintenance, diagnostics),
            other if is_named(other) => named_section(source, other, value, raw, diagnostics),
            other => {
                let mut diagnostic = source.error(
                    &key_span,
                    format!(
                        "unknown section `{other}`; a spec file holds [{}]",
                        SECTIONS.join("], [")
                    ),
                );
                if let Some(help) = did_you_mean(other, SECTIONS) {
                    diagnostic = diagnostic.with_help(help);
                }
                diagnostics.push(diagnostic);
            }
        }
    }
}

fn is_named(section: &str) -> bool {
    SectionKind::ALL.iter().any(|k| k.as_str() == section)
}

/// A section of named entries (`[service.web]`): its entries parsed into `raw`.
fn named_section<'s>(
    source: &'s SourceFile,
    section: &str,
    value: Spanned<DeValue<'_>>,
    raw: &mut RawSpec<'s>,
    diagnostics: &mut Diagnostics,
) {
    match section {
        "node" => named(
            source,
            SectionKind::Node,
            value,
            &mut raw.nodes,
            &mut raw.declared,
            diagnostics,
        ),
        "network" => named(
            source,
            SectionKind::Network,
            value,
            &mut raw.networks,
            &mut raw.declared,
            diagnostics,
        ),
        "service" => named(
            source,
            SectionKind::Service,
            value,
            &mut raw.services,
            &mut raw.declared,
            diagnostics,
        ),
        "config" => named(
            source,
            SectionKind::Config,
            value,
            &mut raw.configs,
            &mut raw.declared,
            diagnostics,
        ),
        "secret" => named(
            source,
            SectionKind::Secret,
            value,
            &mut raw.secrets,
            &mut raw.declared,
            diagnostics,
        ),
        "release" => named(
            source,
            SectionKind::Release,
            value,
            &mut raw.releases,
            &mut raw.declared,
            diagnostics,
        ),
        "share" => named(
            source,
            SectionKind::Share,
            value,
            &mut raw.shares,
            &mut raw.declared,
            diagnostics,
        ),
        "stack" => named(
            source,
            SectionKind::Stack,
            value,
            &mut raw.stacks,
            &mut raw.declared,
            diagnostics,
        ),
        _ => {}
    }
}

/// A section that exists once per cluster, like `[cluster]`.
fn singleton<'s, T: DeserializeOwned>(
    source: &'s SourceFile,
    key_span: Range<usize>,
    value: Spanned<DeValue<'_>>,
    out: &mut Vec<Entry<'s, T>>,
    diagnostics: &mut Diagnostics,
) {
    let name = source
        .text
        .get(key_span.clone())
        .unwrap_or_default()
        .to_string();
    let context = format!("[{name}]");
    if let Some(value) = deserialize(source, &context, value, diagnostics) {
        out.push(Entry {
            name,
            name_span: key_span,
            source,
            value,
            group: None,
        });
    }
}

/// A section of named entries, like `[service.web]`.
fn named<'s, T: DeserializeOwned>(
    source: &'s SourceFile,
    kind: SectionKind,
    value: Spanned<DeValue<'_>>,
    out: &mut Vec<Entry<'s, T>>,
    declared: &mut Vec<Entry<'s, SectionKind>>,
    diagnostics: &mut Diagnostics,
) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        diagnostics.push(source.error(
            &span,
            "expected a table of named entries, like [service.web]",
        ));
        return;
    };
    for (name, value) in table {
        let name_span = name.span();
        let name = name.into_inner().into_owned();
        if let Err(problem) = crate::validate::check_entry_name(kind, &name) {
            diagnostics.push(source.error(&name_span, problem.to_string()));
        }
        declared.push(Entry {
            name: name.clone(),
            name_span: name_span.clone(),
            source,
            value: kind,
            group: None,
        });
        let context = format!("{kind} `{name}`");
        if let Some(value) = deserialize(source, &context, value, diagnostics) {
            out.push(Entry {
                name,
                name_span,
                source,
                value,
                group: None,
            });
        }
    }
}

/// Deserializes one entry, reporting every broken key, not only the first.
///
/// serde stops at the first problem. To find the others, the key holding the
/// problem is left out and the rest deserialized again, until it parses or
/// nothing more can be left out. The entry that finally parses is returned
/// so cross-entry checks (references, duplicates) still see the other keys;
/// the spec is invalid by then, so it never reaches the model's users.
fn deserialize<T: DeserializeOwned>(
    source: &SourceFile,
    context: &str,
    value: Spanned<DeValue<'_>>,
    diagnostics: &mut Diagnostics,
) -> Option<T> {
    let whole = value.span();
    let mut value = value;
    let mut left_out: Vec<String> = Vec::new();
    loop {
        let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(parsed) => return Some(parsed),
            Err(error) => error,
        };
        // After leaving keys out, a "missing field" may be our own doing (the
        // key left out) or the user's typo's (`adress` for `address`, already
        // reported): either way nothing more to learn.
        if !left_out.is_empty() && error.message().starts_with("missing field") {
            return None;
        }
        let span = error.span().unwrap_or_else(|| whole.clone());
        let mut diagnostic = describe_serde_error(source, &span, error.message());
        diagnostic.message = format!("{context}: {}", diagnostic.message);
        diagnostics.push(diagnostic);
        let DeValue::Table(table) = value.get_mut() else {
            return None;
        };
        let within = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
        let culprit = table
            .iter()
            .find(|(key, item)| within(key.span()) || within(item.span()))
            .map(|(key, _)| key.clone())?;
        table.remove(&culprit);
        left_out.push(culprit.into_inner().into_owned());
    }
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a
/// diagnostic with a "did you mean" when one of the expected names is close.
fn describe_serde_error(source: &SourceFile, span: &Range<usize>, message: &str) -> Diagnostic {
    let message = without_value(message.trim());
    let message = message.as_str();
    let mut diagnostic = source.error(span, message);
    let unknown = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix));
    if let Some(rest) = unknown {
        let parts: Vec<&str> = rest.split('`').collect();
        let word = parts.first().copied().unwrap_or_default();
        let candidates = parts.iter().skip(2).step_by(2).copied();
        if let Some(help) = did_you_mean(word, candidates) {
            // The full list of expected names adds nothing once we know which was meant.
            let what = message.split('`').next().unwrap_or_default();
            diagnostic.message = format!("{what}`{word}`");
            diagnostic = diagnostic.with_help(help);
        }
    }
    diagnostic
}

/// serde's "invalid type: string `hunter2`, expected an integer" without
/// the value: the location already points at it, and it may be a password
/// that would otherwise reach logs, `/api/status` and the status page.
fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((before, after)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected"))
        {
            // `integer `3``, `string "80"`: the kind stays, the value goes.
            let kind = before.split(['`', '"']).next().unwrap_or(before).trim_end();
            return format!("{prefix}{kind}, expected{after}");
        }
    }
    message.to_string()
}

/// How deep brackets (`[`, `{`) may nest in a TOML or YAML file. Parsers
/// recurse per level: 80 000 nested `[` took a parser 24 s.
pub(crate) const MAX_NESTING: usize = 64;

/// The byte offset where `text` nests brackets deeper than [`MAX_NESTING`],
/// if it does. Brackets in quoted strings and `#` comments do not count
/// (TOML and YAML quote alike for this purpose); a cheap scan that runs
/// before any parser does.
pub(crate) fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for (at, c) in text.char_indices() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q || c == '\n' {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '#' => comment = true,
            '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(at);
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}
