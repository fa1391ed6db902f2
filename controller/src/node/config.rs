//! A board's declared configuration on the board itself: the read-only
//! script that looks at what the spec declares (and at what the cluster put
//! there before), and the root scripts that install and remove packages
//! and write and remove files.
//!
//! What the cluster puts on a board is recorded there, in [`RECORD`]:
//! a package it installed, a file it created or replaced (the board's own
//! file kept under [`BACKUP_DIR`]). A package or file leaves the board only
//! when the spec stops declaring it and the record says the cluster put it
//! there; a replaced file gets the board's own back. The record lives on
//! the board, so a re-installed controller, or another one, knows it.

use std::collections::BTreeSet;

use reconciler_spec::{BoardConfig, BoardFile, BoardFileContent};

use super::shell::quote;
use crate::observed::{BoardFileState, BoardState, BootFile, BootFileText, FileOrigin};

/// The cluster's record of what it put on the board.
pub const RECORD: &str = "/etc/reconciler/owned";
/// Where a file the cluster replaced is kept, under its own path.
pub const BACKUP_DIR: &str = "/etc/reconciler/backup";
/// The largest board file whose text is read back for a plan's diff.
pub const MAX_DIFF_BYTES: u64 = 64 * 1024;
/// The prefix of the look script's lines (the facts script's are `key=value`).
const LINE: &str = "cfg\t";

/// The read-only script that reports, for `config` and for everything the
/// record lists: each package installed or not, each file's type, mode,
/// owner and digest, the record itself, and the board's text of a declared
/// plain file that differs. Appended to the facts script.
pub fn look_script(config: &BoardConfig) -> String {
    let files = config.all_files();
    let mut script = String::from("\n# Declared board configuration (node::config).\n");
    script.push_str(&format!(
        "record={record}\nif [ -r \"$record\" ]; then sed 's/^/cfg\towned\t/' \"$record\"; fi\n",
        record = quote(RECORD)
    ));
    let packages: Vec<String> = config
        .packages
        .iter()
        .chain(&config.absent_packages)
        .map(|p| quote(p))
        .collect();
    script.push_str(&format!(
        "cfg_package() {{ case \"$(dpkg-query -W -f='${{Status}}' \"$1\" 2>/dev/null)\" in *' installed') printf 'cfg\\tpackage\\t%s\\tinstalled\\n' \"$1\" ;; *) printf 'cfg\\tpackage\\t%s\\tabsent\\n' \"$1\" ;; esac; }}\n\
         for p in {} $(awk -F '\\t' '$1 == \"package\" {{ print $2 }}' \"$record\" 2>/dev/null); do cfg_package \"$p\"; done\n",
        packages.join(" ")
    ));
    script.push_str(
        "cfg_file() {\n  if [ -d \"$1\" ]; then printf 'cfg\\tfile\\t%s\\tdirectory\\n' \"$1\"\n  elif [ -e \"$1\" ]; then printf 'cfg\\tfile\\t%s\\t%s\\t%s\\n' \"$1\" \"$(stat -L --printf '%a\\t%U\\t%G' \"$1\")\" \"$(sha256sum < \"$1\" | cut -c1-64)\"\n  else printf 'cfg\\tfile\\t%s\\tmissing\\n' \"$1\"; fi\n}\n",
    );
    for (path, file) in &files {
        script.push_str(&format!("cfg_file {}\n", quote(path)));
        if let BoardFileContent::Plain(bytes) = &file.content {
            // The board's text, for the diff, when it differs and is small.
            script.push_str(&format!(
                "if [ -f {p} ] && [ \"$(sha256sum < {p} | cut -c1-64)\" != {want} ] && [ \"$(stat -L -c %s {p})\" -le {max} ]; then printf 'cfg\\tcontent\\t%s\\t%s\\n' {p} \"$(base64 -w0 < {p})\"; fi\n",
                p = quote(path),
                want = crate::digest::sha256_hex(bytes),
                max = MAX_DIFF_BYTES
            ));
        }
    }
    script.push_str(
        "awk -F '\\t' '$1 == \"file\" { print $2 }' \"$record\" 2>/dev/null | while IFS= read -r f; do cfg_file \"$f\"; done\n",
    );
    // The firmware's boot files: where the board has them (/boot/firmware
    // since Bookworm), when something is declared there or was put there.
    for (kind, declared) in [
        (BootFile::Cmdline, !config.cmdline.is_empty()),
        (BootFile::ConfigTxt, !config.config_txt.is_empty()),
        (BootFile::Fstab, !config.mounts.is_empty()),
    ] {
        let wanted = if declared { "true" } else { "false" };
        script.push_str(&format!(
            "if {wanted} || grep -qs '^{key}\t' \"$record\"; then for f in {candidates}; do if [ -f \"$f\" ]; then printf 'cfg\\tboot\\t{key}\\t%s\\t%s\\n' \"$f\" \"$(base64 -w0 < \"$f\")\"; break; fi; done; fi\n",
            key = kind.as_str(),
            candidates = kind.candidates().join(" "),
        ));
    }
    // Each declared mount point the board has not mounted.
    for point in config.mounts.keys() {
        script.push_str(&format!(
            "if ! mountpoint -q {p} 2>/dev/null; then printf 'cfg\\tunmounted\\t%s\\n' {p}; fi\n",
            p = quote(point)
        ));
    }
    script
}

impl BoardState {
    /// Reads the look script's lines out of the facts script's output.
    pub fn parse(output: &str) -> Self {
        use base64::Engine as _;
        let mut state = BoardState::default();
        for line in output.lines() {
            let Some(rest) = line.strip_prefix(LINE) else {
                continue;
            };
            let fields: Vec<&str> = rest.split('\t').collect();
            match fields.as_slice() {
                ["owned", "package", name] => {
                    state.owned_packages.insert((*name).to_string());
                }
                ["owned", "file", path, origin] => {
                    let origin = if *origin == "replaced" {
                        FileOrigin::Replaced
                    } else {
                        FileOrigin::Created
                    };
                    state.owned_files.insert((*path).to_string(), origin);
                }
                ["package", name, status] => {
                    state
                        .packages
                        .insert((*name).to_string(), *status == "installed");
                }
                ["file", path, "missing"] => {
                    state
                        .files
                        .insert((*path).to_string(), BoardFileState::Missing);
                }
                ["file", path, "directory"] => {
                    state
                        .files
                        .insert((*path).to_string(), BoardFileState::NotAFile);
                }
                ["file", path, mode, owner, group, digest] => {
                    if let Ok(mode) = u32::from_str_radix(mode, 8) {
                        state.files.insert(
                            (*path).to_string(),
                            BoardFileState::File {
                                mode,
                                owner: (*owner).to_string(),
                                group: (*group).to_string(),
                                digest: (*digest).to_string(),
                            },
                        );
                    }
                }
                ["owned", kind, value] => {
                    if let Some(kind) = boot_file(kind) {
                        state
                            .owned_boot
                            .entry(kind)
                            .or_default()
                            .insert((*value).to_string());
                    }
                }
                ["boot", kind, path, encoded] => {
                    let text = base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok());
                    if let (Some(kind), Some(text)) = (boot_file(kind), text) {
                        state.boot.insert(
                            kind,
                            BootFileText {
                                path: (*path).to_string(),
                                text,
                            },
                        );
                    }
                }
                ["unmounted", point] => {
                    state.unmounted.insert((*point).to_string());
                }
                ["content", path, encoded] => {
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) {
                        state.contents.insert((*path).to_string(), bytes);
                    }
                }
                _ => {}
            }
        }
        state
    }
}

fn boot_file(name: &str) -> Option<BootFile> {
    BootFile::ALL.into_iter().find(|kind| kind.as_str() == name)
}

/// Replaces a boot file with `text` (a temporary file beside it, then a
/// rename: the boot partition is FAT, where that is as safe as it gets),
/// records the options or lines the cluster added and forgets those it
/// took away, and says a reboot is needed the way Debian's packages do
/// (`/var/run/reboot-required`), so `reconciler upgrade` takes the board.
pub fn edit_boot_file(
    kind: BootFile,
    path: &str,
    text: &str,
    added: &[String],
    removed: &[String],
) -> String {
    use base64::Engine as _;
    let target = quote(path);
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let key = kind.as_str();
    let forget: Vec<String> = added
        .iter()
        .chain(removed)
        .map(|v| format!("$2 == \"{}\"", awk_string(v)))
        .collect();
    let keep = if forget.is_empty() {
        "1".to_string()
    } else {
        format!("!($1 == \"{key}\" && ({}))", forget.join(" || "))
    };
    let add: String = added
        .iter()
        .map(|v| format!("printf '{key}\\t%s\\n' {}; ", quote(v)))
        .collect();
    // Firmware settings wait for a reboot; file systems are unmounted
    // before their line goes and mounted once it is there.
    let (before, after) = match kind {
        BootFile::Fstab => mounts_around(added, removed),
        BootFile::Cmdline | BootFile::ConfigTxt => (
            String::new(),
            format!(
                "touch /var/run/reboot-required\necho 'reconciler: {}' >> /var/run/reboot-required.pkgs\n",
                kind.file_name()
            ),
        ),
    };
    format!(
        "set -e\n{before}tmp=$(mktemp \"$(dirname {target})/.reconciler.XXXXXX\")\ntrap 'rm -f \"$tmp\"' EXIT\nprintf '%s' '{encoded}' | base64 -d > \"$tmp\"\nchmod --reference={target} \"$tmp\" 2>/dev/null || true\nsync \"$tmp\" 2>/dev/null || sync\nmv -f \"$tmp\" {target}\ntrap - EXIT\n{}{after}",
        update_record(&keep, &add),
    )
}

/// Shell lines for an /etc/fstab edit: the mount points of `removed`
/// lines unmounted first (a busy one fails the step, its line kept), those
/// of `added` lines created and mounted after.
fn mounts_around(added: &[String], removed: &[String]) -> (String, String) {
    let point = |line: &String| line.split_whitespace().nth(1).map(quote);
    let before: String = removed
        .iter()
        .filter_map(point)
        .map(|p| format!("if mountpoint -q {p}; then umount {p}; fi\n"))
        .collect();
    let after: String = added
        .iter()
        .filter_map(point)
        .map(|p| format!("mkdir -p {p}\nif ! mountpoint -q {p}; then mount {p}; fi\n"))
        .collect();
    (before, after)
}

/// Mounts what /etc/fstab already says for `points` (a declared mount
/// whose line is there but that is not mounted: after a failed mount, or
/// unmounted by hand).
pub fn mount_now(points: &[String]) -> String {
    let lines: String = points
        .iter()
        .map(|p| {
            format!(
                "mkdir -p {q}\nif ! mountpoint -q {q}; then mount {q}; fi\n",
                q = quote(p)
            )
        })
        .collect();
    format!("set -e\n{lines}")
}

/// Shell lines that rewrite [`RECORD`] through `filter` (an `awk` program
/// over its tab-separated lines) plus the lines `add` prints, atomically.
fn update_record(filter: &str, add: &str) -> String {
    format!(
        "mkdir -p /etc/reconciler\nrtmp=$(mktemp /etc/reconciler/.owned.XXXXXX)\n{{ if [ -r {record} ]; then awk -F '\\t' {filter} {record}; fi; {add} }} > \"$rtmp\"\nchmod 600 \"$rtmp\"\nmv -f \"$rtmp\" {record}\n",
        record = quote(RECORD),
        filter = quote(filter),
    )
}

/// The awk filter that keeps every record line but those of `packages`.
fn without_packages(packages: &BTreeSet<String>) -> String {
    let names: Vec<String> = packages
        .iter()
        .map(|p| format!("$2 == \"{}\"", awk_string(p)))
        .collect();
    format!("!($1 == \"package\" && ({}))", names.join(" || "))
}

/// Installs `packages` (none of them installed when the board was looked
/// at) and records each as the cluster's.
pub fn install_packages(packages: &BTreeSet<String>) -> String {
    let names: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    let list = names.join(" ");
    let add: String = names
        .iter()
        .map(|n| format!("printf 'package\\t%s\\n' {n}; "))
        .collect();
    let keep = without_packages(packages);
    format!(
        "set -e\nexport DEBIAN_FRONTEND=noninteractive\napt-get update -qq\napt-get install -y -qq --no-install-recommends {list} >/dev/null\n{}",
        update_record(&keep, &add)
    )
}

/// Removes `packages`, refusing when apt would take any other package with
/// them (something the board needs that depends on one of them), and
/// drops them from the record.
pub fn remove_packages(packages: &BTreeSet<String>) -> String {
    let names: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    let list = names.join(" ");
    let keep = without_packages(packages);
    format!(
        "set -e\nexport DEBIAN_FRONTEND=noninteractive\nwanted=$(printf '%s\\n' {list} | sed 's/:.*//' | sort -u)\n\
         others=$(apt-get -s remove {list} 2>/dev/null | awk '$1 == \"Remv\" {{ print $2 }}' | sed 's/:.*//' | sort -u | grep -vxF \"$wanted\" || true)\n\
         if [ -n \"$others\" ]; then echo \"removing them would also remove: $(echo $others)\" >&2; exit 1; fi\n\
         apt-get remove -y -qq {list} >/dev/null\n{}",
        update_record(&keep, "")
    )
}

/// Writes `file` at `path` through a temporary file and a rename (mode and
/// owner set before it is in place), keeping the board's own file aside the
/// first time, then runs its `then`. `origin` is what the record says
/// already (`None`: not the cluster's yet).
pub fn write_file(path: &str, file: &BoardFile, origin: Option<FileOrigin>) -> String {
    use base64::Engine as _;
    let target = quote(path);
    let encoded = base64::engine::general_purpose::STANDARD.encode(file.content.bytes());
    let record = match origin {
        Some(_) => String::new(),
        None => format!(
            "if [ -e {target} ]; then\n  mkdir -p \"$(dirname {backup})\"\n  cp -a {target} {backup}\n  origin=replaced\nelse\n  origin=created\nfi\n{}",
            update_record(
                &format!("!($1 == \"file\" && $2 == \"{}\")", awk_string(path)),
                &format!("printf 'file\\t%s\\t%s\\n' {target} \"$origin\";")
            ),
            backup = quote(&format!("{BACKUP_DIR}{path}")),
        ),
    };
    let then = file
        .then
        .as_ref()
        .map(|command| format!("( {command}\n) || {{ echo 'the file was written; its `then` failed' >&2; exit 1; }}\n"))
        .unwrap_or_default();
    format!(
        "set -e\n{record}mkdir -p \"$(dirname {target})\"\ntmp=$(mktemp \"$(dirname {target})/.reconciler.XXXXXX\")\ntrap 'rm -f \"$tmp\"' EXIT\n\
         printf '%s' '{encoded}' | base64 -d > \"$tmp\"\nchmod {mode:o} \"$tmp\"\nchown {owner}:{group} \"$tmp\"\nsync \"$tmp\" 2>/dev/null || sync\nmv -f \"$tmp\" {target}\ntrap - EXIT\n{then}",
        mode = file.mode,
        owner = quote(&file.owner),
        group = quote(&file.group),
    )
}

/// Takes away a file the cluster wrote: the board's own back when it had
/// one, else nothing; and drops it from the record.
pub fn remove_file(path: &str, origin: FileOrigin) -> String {
    let target = quote(path);
    let undo = match origin {
        FileOrigin::Replaced => format!(
            "if [ -e {backup} ]; then mv -f {backup} {target}; else rm -f {target}; fi\n",
            backup = quote(&format!("{BACKUP_DIR}{path}"))
        ),
        FileOrigin::Created => format!("rm -f {target}\n"),
    };
    // Docker reads its settings when it starts: taking them away needs the
    // reboot writing them did.
    let restart = if path == reconciler_spec::DOCKER_DAEMON_FILE {
        "touch /var/run/reboot-required && echo 'reconciler: docker daemon.json' >> /var/run/reboot-required.pkgs\n"
    } else {
        ""
    };
    format!(
        "set -e\n{undo}{}{restart}",
        update_record(
            &format!("!($1 == \"file\" && $2 == \"{}\")", awk_string(path)),
            ""
        )
    )
}

/// `text` inside an awk string literal (the program itself is one quoted
/// shell word): backslashes and double quotes escaped.
fn awk_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests;
