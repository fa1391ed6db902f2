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
use crate::observed::{BoardFileState, BoardState};

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
    steps
}

/// What a person should know: a declared file whose path is a directory
/// on the board.
pub fn notes(node: &str, config: &BoardConfig, state: &BoardState) -> Vec<String> {
    config
        .all_files()
        .keys()
        .filter(|path| matches!(state.files.get(*path), Some(BoardFileState::NotAFile)))
        .map(|path| {
            format!("node.{node}: {path} is a directory on the board, so the declared file is not written; move it away or declare another path")
        })
        .collect()
}

#[cfg(test)]
mod tests;
