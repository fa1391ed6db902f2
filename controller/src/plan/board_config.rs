//! A board's declared configuration → the steps that make the board match
//! it: packages installed, then removed, then files written, then files the
//! spec dropped taken away. Pure: the board's side comes from its facts
//! (`node::config`'s look), and a board that matches gets no step.
//!
//! Only what the cluster put there leaves a board when the spec drops it
//! (its record on the board says so), and only while `[controller] prune`
//! is on; a package the board had before it was declared stays.

use std::collections::BTreeSet;

use reconciler_spec::{BoardConfig, BoardFileContent};

use super::boards::{ContentDiff, FileChange, Step};
use crate::digest::sha256_hex as digest;
use crate::observed::{BoardFileState, BoardState, BootFile};

/// The steps for one board, in the order they run.
pub fn steps(config: &BoardConfig, state: &BoardState, prune: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let installed = |p: &String| state.packages.get(p).copied().unwrap_or(false);
    let install: BTreeSet<String> = config
        .packages
        .iter()
        .filter(|p| !installed(p))
        .cloned()
        .collect();
    if !install.is_empty() {
        steps.push(Step::InstallPackages { packages: install });
    }
    let dropped = state
        .owned_packages
        .iter()
        .filter(|p| prune && !config.packages.contains(*p));
    let remove: BTreeSet<String> = config
        .absent_packages
        .iter()
        .chain(dropped)
        .filter(|p| installed(p))
        .cloned()
        .collect();
    if !remove.is_empty() {
        steps.push(Step::RemovePackages { packages: remove });
    }
    let files = config.all_files();
    for (path, file) in &files {
        let origin = state.owned_files.get(path).copied();
        let change = match state.files.get(path) {
            // Never looked at (the look failed half-way): nothing is known.
            None => continue,
            // A directory is never replaced by a file; `notes` says so.
            Some(BoardFileState::NotAFile) => continue,
            Some(BoardFileState::Missing) => FileChange::Create {
                mode: file.mode,
                owner: format!("{}:{}", file.owner, file.group),
            },
            Some(BoardFileState::File {
                mode,
                owner,
                group,
                digest: board_digest,
            }) => {
                let wanted = file.content.bytes();
                let content = (*board_digest != digest(wanted)).then(|| match &file.content {
                    BoardFileContent::Secret { secret, .. } => {
                        ContentDiff::NotShown(format!("it holds secret `{secret}`"))
                    }
                    BoardFileContent::Plain(_) => state
                        .contents
                        .get(path)
                        .and_then(|old| super::text_diff::diff(old, wanted))
                        .map_or_else(
                            || ContentDiff::NotShown("binary or larger than 64 KiB".into()),
                            ContentDiff::Lines,
                        ),
                });
                let mode = (*mode != file.mode).then_some((*mode, file.mode));
                let owner = (*owner != file.owner || *group != file.group).then(|| {
                    (
                        format!("{owner}:{group}"),
                        format!("{}:{}", file.owner, file.group),
                    )
                });
                if content.is_none() && mode.is_none() && owner.is_none() {
                    continue;
                }
                FileChange::Update {
                    content,
                    mode,
                    owner,
                }
            }
        };
        steps.push(Step::WriteFile {
            path: path.clone(),
            change,
            origin,
        });
    }
    if prune {
        for (path, origin) in &state.owned_files {
            if !files.contains_key(path) {
                steps.push(Step::RemoveFile {
                    path: path.clone(),
                    origin: *origin,
                });
            }
        }
    }
    steps.extend(boot_steps(config, state, prune));
    steps
}

/// `cmdline.txt` and `config.txt`: the declared options and lines added,
/// those the cluster added and the spec dropped taken out (with prune);
/// options or lines the board had before are never taken out.
fn boot_steps(config: &BoardConfig, state: &BoardState, prune: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let fstab = config.fstab_lines();
    for (kind, declared) in [
        (BootFile::Cmdline, &config.cmdline),
        (BootFile::ConfigTxt, &config.config_txt),
        (BootFile::Fstab, &fstab),
    ] {
        let Some(file) = state.boot.get(&kind) else {
            continue;
        };
        let owned = state.owned_boot.get(&kind).cloned().unwrap_or_default();
        let dropped: Vec<String> = if prune {
            owned.difference(declared).cloned().collect()
        } else {
            Vec::new()
        };
        let (text, added, removed) = match kind {
            BootFile::Cmdline => edit_cmdline(&file.text, declared, &dropped),
            BootFile::ConfigTxt | BootFile::Fstab => {
                edit_config_txt(&file.text, declared, &dropped)
            }
        };
        if kind == BootFile::Fstab {
            // Declared and in the file, but not mounted: mounted again.
            let adding: Vec<&str> = added
                .iter()
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            let points: Vec<String> = state
                .unmounted
                .iter()
                .filter(|p| config.mounts.contains_key(*p) && !adding.contains(&p.as_str()))
                .cloned()
                .collect();
            if !points.is_empty() {
                steps.push(Step::Mount { points });
            }
        }
        if !added.is_empty() || !removed.is_empty() {
            steps.push(Step::EditBootFile {
                file: kind,
                path: file.path.clone(),
                text,
                added,
                removed,
            });
        }
    }
    steps
}

/// The one line with `declared` options it lacks appended and `dropped`
/// ones taken out; the file's own line ending kept. A file of several
/// lines is left alone (the firmware reads one).
fn edit_cmdline(
    text: &str,
    declared: &BTreeSet<String>,
    dropped: &[String],
) -> (String, Vec<String>, Vec<String>) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let [line] = lines.as_slice() else {
        return (text.to_string(), Vec::new(), Vec::new());
    };
    let mut options: Vec<&str> = line.split_whitespace().collect();
    let removed: Vec<String> = dropped
        .iter()
        .filter(|d| options.contains(&d.as_str()))
        .cloned()
        .collect();
    options.retain(|o| !dropped.iter().any(|d| d == o));
    let added: Vec<String> = declared
        .iter()
        .filter(|d| !options.contains(&d.as_str()))
        .cloned()
        .collect();
    options.extend(added.iter().map(String::as_str));
    let ending = if text.ends_with("\r\n") {
        "\r\n"
    } else if text.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    (format!("{}{ending}", options.join(" ")), added, removed)
}

/// config.txt with `declared` lines it lacks appended and `dropped` lines
/// taken out; every other line as it was.
fn edit_config_txt(
    text: &str,
    declared: &BTreeSet<String>,
    dropped: &[String],
) -> (String, Vec<String>, Vec<String>) {
    let mut lines: Vec<&str> = text.lines().collect();
    let removed: Vec<String> = dropped
        .iter()
        .filter(|d| lines.iter().any(|l| l.trim() == d.as_str()))
        .cloned()
        .collect();
    lines.retain(|l| !dropped.iter().any(|d| d == l.trim()));
    let added: Vec<String> = declared
        .iter()
        .filter(|d| !lines.iter().any(|l| l.trim() == d.as_str()))
        .cloned()
        .collect();
    lines.extend(added.iter().map(String::as_str));
    let mut new = lines.join("\n");
    if !new.is_empty() {
        new.push('\n');
    }
    (new, added, removed)
}

/// What a person should know: a declared file whose path is a directory
/// on the board; boot settings declared for a board without the firmware's
/// files (not a Raspberry Pi OS board).
pub fn notes(node: &str, config: &BoardConfig, state: &BoardState) -> Vec<String> {
    let mut notes: Vec<String> = config
        .all_files()
        .keys()
        .filter(|path| matches!(state.files.get(*path), Some(BoardFileState::NotAFile)))
        .map(|path| {
            format!("node.{node}: {path} is a directory on the board, so the declared file is not written; move it away or declare another path")
        })
        .collect();
    for (kind, declared) in [
        (BootFile::Cmdline, &config.cmdline),
        (BootFile::ConfigTxt, &config.config_txt),
    ] {
        if !declared.is_empty() && !state.boot.contains_key(&kind) {
            notes.push(format!(
                "node.{node}: the board has no {} in /boot/firmware or /boot (not a Raspberry Pi OS board?), so its declared settings there are not written",
                kind.file_name()
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests;
