//! `[share.NAME]`: a directory one board serves over NFS and the others
//! mount, as the four-Pi build shares its USB drive. Lowered into the
//! boards' own configuration, so it is planned, applied and taken away as
//! any `[board]` setting: the server gets `nfs-kernel-server` and an
//! exports file (`exportfs -ra` after it changes), each client
//! `nfs-common` and an /etc/fstab line mounted now and at every boot.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostics;
use crate::file::ShareFile;
use crate::load::Entry;
use crate::model::{BoardFile, BoardMount, Node};

/// Where a share's exports line lives on its server.
pub(crate) fn exports_file(name: &str) -> String {
    format!("/etc/exports.d/reconciler-{name}.exports")
}

/// Adds every share to its server's and clients' board configuration.
pub(crate) fn lower_all(
    shares: &[Entry<'_, ShareFile>],
    nodes: &mut BTreeMap<String, Node>,
    diagnostics: &mut Diagnostics,
) {
    for share in shares {
        lower(share, nodes, diagnostics);
    }
}

/// Adds `entry` to its server's and clients' board configuration.
fn lower(
    entry: &Entry<'_, ShareFile>,
    nodes: &mut BTreeMap<String, Node>,
    diagnostics: &mut Diagnostics,
) {
    let share = &entry.value;
    let unknown = |name: &toml::Spanned<String>, what: &str| {
        let mut error = entry.error(
            &name.span(),
            format!(
                "share `{}`: {what} `{}` is not a node of the spec",
                entry.name,
                name.get_ref()
            ),
        );
        if let Some(hint) =
            crate::suggest::did_you_mean(name.get_ref(), nodes.keys().map(String::as_str))
        {
            error = error.with_help(hint);
        }
        error
    };
    let Some(server) = nodes.get(share.server.get_ref()).cloned() else {
        diagnostics.push(unknown(&share.server, "server"));
        return;
    };
    let paths_ok = paths_ok(entry, diagnostics);
    let clients = clients(entry, nodes, &unknown, diagnostics);
    if !paths_ok {
        return;
    }
    let path = share.path.get_ref();
    let mount = share.mount.as_ref().map_or(path, |m| m.get_ref());
    let access = if share.read_only { "ro" } else { "rw" };
    let squash = if share.root_squash {
        ""
    } else {
        ",no_root_squash"
    };
    let allowed: Vec<String> = clients
        .iter()
        .filter_map(|c| nodes.get(c))
        .map(|c| format!("{}({access},sync,no_subtree_check{squash})", c.address))
        .collect();
    let exports = exports_file(&entry.name);
    if let Some(board) = nodes.get_mut(&server.name).map(|n| &mut n.board) {
        if board.files.contains_key(&exports) {
            diagnostics.push(entry.name_error(format!(
                "share `{}`: node.{} already declares {exports}",
                entry.name, server.name
            )));
            return;
        }
        board.packages.insert("nfs-kernel-server".into());
        board.files.insert(
            exports,
            BoardFile::managed(
                format!("{path} {}\n", allowed.join(" ")),
                format!("mkdir -p {path} && exportfs -ra"),
            ),
        );
    }
    for client in &clients {
        let Some(node) = nodes.get_mut(client) else {
            continue;
        };
        if node.board.mounts.contains_key(mount) {
            diagnostics.push(entry.name_error(format!(
                "share `{}`: node.{client} already mounts something at {mount}",
                entry.name
            )));
            continue;
        }
        node.board.packages.insert("nfs-common".into());
        node.board.mounts.insert(
            mount.clone(),
            BoardMount {
                what: format!("{}:{path}", server.address),
                fstype: "nfs".into(),
                options: format!("{access},_netdev,nofail"),
            },
        );
    }
}

/// Whether the share's path and mount point are directories it may use.
fn paths_ok(entry: &Entry<'_, ShareFile>, diagnostics: &mut Diagnostics) -> bool {
    let share = &entry.value;
    let mut paths_ok = true;
    for value in [Some(&share.path), share.mount.as_ref()]
        .into_iter()
        .flatten()
    {
        let text = value.get_ref();
        let bad = crate::board::file_path(text).is_err()
            || text
                .chars()
                .any(|c| c.is_whitespace() || c == '#' || c == '(' || c == '"')
            || [
                "/", "/boot", "/etc", "/proc", "/sys", "/dev", "/run", "/usr", "/var",
            ]
            .contains(&text.as_str());
        if bad {
            diagnostics.push(entry.error(
                &value.span(),
                format!("share `{}`: `{text}` is not a directory to share (absolute and clean, no spaces, `#`, `(` or quotes; not /, /etc, /usr, /var or the kernel's)", entry.name),
            ));
            paths_ok = false;
        }
    }
    paths_ok
}

/// The nodes that mount the share (every node but the server when the
/// share names none); unknown names and the server are reported.
fn clients(
    entry: &Entry<'_, ShareFile>,
    nodes: &BTreeMap<String, Node>,
    unknown: &dyn Fn(&toml::Spanned<String>, &str) -> crate::Diagnostic,
    diagnostics: &mut Diagnostics,
) -> Vec<String> {
    let share = &entry.value;
    match &share.clients {
        Some(clients) => {
            let mut names = Vec::new();
            for client in clients {
                if client.get_ref() == share.server.get_ref() {
                    diagnostics.push(entry.error(
                        &client.span(),
                        format!("share `{}`: the server does not mount its own share (it has the directory)", entry.name),
                    ));
                } else if nodes.contains_key(client.get_ref()) {
                    names.push(client.get_ref().clone());
                } else {
                    diagnostics.push(unknown(client, "client"));
                }
            }
            names
        }
        None => nodes
            .keys()
            .filter(|n| *n != share.server.get_ref())
            .cloned()
            .collect(),
    }
}
