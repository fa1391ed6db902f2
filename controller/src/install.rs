//! `reconciler install` / `uninstall`: the controller put on one of the
//! boards it manages, over SSH, as a service of the board's init system.
//!
//! Everything the board needs is computed first as [`BoardFile`]s (the
//! binary for the board's architecture, the secrets, the unit or start
//! script); each is compared by sha256 with what the board has and written
//! only when it differs, so a second install changes nothing and a newer
//! binary is replaced and restarted. The unit runs `reconciler run --git`;
//! readiness is checked by asking the controller's `/readyz` through the SSH
//! connection itself (a direct-tcpip channel), so its port need not be open.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::node::{NodeError, Session};

/// Where things live on the board.
pub const BINARY: &str = "/usr/local/bin/reconciler";
pub const CONFIG_DIR: &str = "/etc/reconciler";
pub const CACHE_DIR: &str = "/var/lib/reconciler/cache";
pub const UNIT: &str = "/etc/systemd/system/reconciler.service";
/// Without systemd: the command line as a script, its pid and its log.
pub const START_SCRIPT: &str = "/etc/reconciler/run.sh";
pub const PID_FILE: &str = "/run/reconciler.pid";
pub const LOG_FILE: &str = "/var/log/reconciler.log";

/// How the board starts services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    /// systemd when the board runs it (`/run/systemd/system`), else plain.
    Auto,
    /// A unit in /etc/systemd/system, enabled and started.
    Systemd,
    /// A start script run in its own session, with a pid file (boards
    /// without systemd, such as containers).
    Plain,
}

/// What `install` is told.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub git: String,
    pub branch: String,
    pub path: String,
    pub listen: std::net::SocketAddr,
    pub webhook_secret_file: Option<PathBuf>,
    pub git_ssh_key: Option<PathBuf>,
    /// For http(s) repositories: the user, and a file holding the password.
    pub git_username: Option<String>,
    pub git_password_file: Option<PathBuf>,
    pub age_identity_file: Option<PathBuf>,
    /// The owner's policy file, kept on the board beside the secrets.
    pub policy_file: Option<PathBuf>,
    /// The status page's token.
    pub page_token_file: Option<PathBuf>,
    /// The allowed signers of followed commits.
    pub allowed_signers_file: Option<PathBuf>,
    /// Candidate binaries; the one whose ELF machine matches the board's
    /// architecture is installed (the running binary when none is given).
    pub binaries: Vec<PathBuf>,
    pub init: Init,
    /// More arguments for `reconciler run` (`--interval 30s`, `--ssh`, ...).
    pub run_args: Vec<String>,
}

/// Why installing failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The board could not be reached or a command on it failed to run.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A local file to install (a binary, a secret) cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// No `--binary` given is built for the board's architecture.
    #[error("node {node} is {arch}, and none of the binaries given is built for it ({given}); build one (scripts/cross) and pass it with --binary")]
    NoBinary {
        node: String,
        arch: String,
        given: String,
    },
    /// A step on the board (write, move, restart) exited with an error.
    #[error("node {node}: `{step}` failed: {stderr}")]
    Step {
        node: String,
        step: String,
        stderr: String,
    },
    /// The installed controller did not answer `/readyz` in time.
    #[error("node {node}: the controller did not become ready within {seconds}s (last answer: {last}); the end of {log} on the board:\n{tail}")]
    NotReady {
        node: String,
        seconds: u64,
        last: String,
        log: String,
        tail: String,
    },
    /// The spec names no manager: the controller runs on one.
    #[error("the spec has no manager node to install the controller on")]
    NoManager,
    /// `--node` names a node the spec does not have.
    #[error("the spec has no node `{0}`")]
    UnknownNode(String),
}

/// A CPU architecture as `uname -m` names it, and as an ELF header does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    /// 32-bit ARM, with its architecture version: a Pi Zero / Pi 1 is 6
    /// (`armv6l`), a Pi 2 and a 32-bit OS on a later Pi 7 or 8. One ELF
    /// machine for all: a binary's version is in its `.ARM.attributes`.
    Arm {
        version: u8,
    },
}

/// The ARM architecture version this binary was built for (0 on other
/// machines). A 32-bit ARM ELF file's build attributes name the newest
/// instructions any of its objects holds, even ones only run after a
/// runtime check (`ring`'s NEON code says ARMv7 in the ARMv6 build), so
/// the version is also written into the binary, where [`Arch::of_elf`]
/// finds it: `reconciler-arm-version=6`.
const ARM_VERSION: u8 = if cfg!(all(target_arch = "arm", target_feature = "v7")) {
    7
} else if cfg!(all(target_arch = "arm", target_feature = "v6")) {
    6
} else if cfg!(target_arch = "arm") {
    5
} else {
    0
};

/// The marker's text, ending in the version digit and a NUL.
static ARM_VERSION_MARKER: [u8; 25] = {
    let prefix = *b"reconciler-arm-version=";
    let mut marker = [0u8; 25];
    let mut i = 0;
    while i < prefix.len() {
        marker[i] = prefix[i];
        i += 1;
    }
    marker[23] = b'0' + ARM_VERSION;
    marker
};

/// The version an ELF file's marker names. The pattern is put together at
/// run time so that only the marker itself holds it whole.
fn marked_arm_version(bytes: &[u8]) -> Option<u8> {
    let pattern = [&b"reconciler-arm"[..], &b"-version="[..]].concat();
    bytes
        .windows(pattern.len() + 2)
        .find(|w| w.starts_with(&pattern) && w[pattern.len() + 1] == 0)
        .and_then(|w| {
            let digit = w[pattern.len()];
            digit.is_ascii_digit().then(|| digit - b'0')
        })
        .filter(|version| *version > 0)
}

/// `SHT_ARM_ATTRIBUTES`: the section holding the build attributes.
const ARM_ATTRIBUTES: u32 = 0x7000_0003;

impl Arch {
    /// From `uname -m`.
    pub fn from_uname(machine: &str) -> Option<Self> {
        match machine.trim() {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            m => {
                let digits: String = m
                    .strip_prefix("armv")?
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                Some(Arch::Arm {
                    version: digits.parse().ok()?,
                })
            }
        }
    }

    /// From an ELF file's header (`e_machine`) and, for 32-bit ARM, its
    /// `Tag_CPU_arch` build attribute; `None` for anything else.
    pub fn of_elf(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 20 || bytes[..4] != *b"\x7fELF" {
            return None;
        }
        let little = match bytes[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let machine = read_u16(bytes, 18, little)?;
        match machine {
            0x3e => Some(Arch::X86_64),
            0xb7 => Some(Arch::Aarch64),
            0x28 => Some(Arch::Arm {
                // Without a marker or an attribute, the common armhf
                // baseline: never offered to an ARMv6 board.
                version: marked_arm_version(bytes)
                    .or_else(|| arm_cpu_arch(bytes, little))
                    .unwrap_or(7),
            }),
            _ => None,
        }
    }

    /// Whether a binary built for `self` runs on a board of `board`: the
    /// same machine, and for 32-bit ARM no newer an architecture.
    pub fn runs_on(self, board: Arch) -> bool {
        match (self, board) {
            (Arch::Arm { version: built }, Arch::Arm { version }) => built <= version,
            (built, board) => built == board,
        }
    }

    pub fn name(self) -> String {
        match self {
            Arch::X86_64 => "x86_64".into(),
            Arch::Aarch64 => "aarch64".into(),
            Arch::Arm { version } => format!("armv{version}"),
        }
    }
}

fn read_u16(bytes: &[u8], at: usize, little: bool) -> Option<u16> {
    let pair = [*bytes.get(at)?, *bytes.get(at + 1)?];
    Some(if little {
        u16::from_le_bytes(pair)
    } else {
        u16::from_be_bytes(pair)
    })
}

fn read_u32(bytes: &[u8], at: usize, little: bool) -> Option<u32> {
    let four = [
        *bytes.get(at)?,
        *bytes.get(at + 1)?,
        *bytes.get(at + 2)?,
        *bytes.get(at + 3)?,
    ];
    Some(if little {
        u32::from_le_bytes(four)
    } else {
        u32::from_be_bytes(four)
    })
}

/// The ARM architecture version a 32-bit ELF file was built for: the
/// `Tag_CPU_arch` attribute of its `aeabi` build attributes (ARM IHI 0045),
/// mapped to the version a core must have (ARMv6 variants 6, v7 7, v8 8).
fn arm_cpu_arch(bytes: &[u8], little: bool) -> Option<u8> {
    let to_usize = |v: u32| usize::try_from(v).ok();
    let section_table = to_usize(read_u32(bytes, 0x20, little)?)?;
    let entry_size = usize::from(read_u16(bytes, 0x2e, little)?);
    let count = usize::from(read_u16(bytes, 0x30, little)?);
    let attributes = (0..count).find_map(|i| {
        let header = section_table.checked_add(i.checked_mul(entry_size)?)?;
        if read_u32(bytes, header + 4, little)? != ARM_ATTRIBUTES {
            return None;
        }
        let offset = to_usize(read_u32(bytes, header + 16, little)?)?;
        let size = to_usize(read_u32(bytes, header + 20, little)?)?;
        bytes.get(offset..offset.checked_add(size)?)
    })?;
    // 'A', then the `aeabi` subsection: length, name, then the File tag (1)
    // with its length, then the attributes themselves.
    let rest = attributes.strip_prefix(b"A")?;
    let vendor_start = 4;
    let vendor_end = vendor_start + rest.get(vendor_start..)?.iter().position(|b| *b == 0)?;
    if rest.get(vendor_start..vendor_end)? != b"aeabi" {
        return None;
    }
    let mut at = vendor_end + 1;
    if *rest.get(at)? != 1 {
        return None;
    }
    at += 5;
    let uleb = |at: &mut usize| -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *rest.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    };
    let skip_string = |at: &mut usize| -> Option<()> {
        *at += rest.get(*at..)?.iter().position(|b| *b == 0)? + 1;
        Some(())
    };
    while at < rest.len() {
        let tag = uleb(&mut at)?;
        match tag {
            6 => {
                return match uleb(&mut at)? {
                    // Pre-v4 .. v5TEJ
                    0..=5 => Some(5),
                    // v6, v6KZ, v6T2, v6K, v6-M, v6S-M
                    6..=9 | 11 | 12 => Some(6),
                    // v7, v7E-M
                    10 | 13 => Some(7),
                    _ => Some(8),
                };
            }
            // Tag_CPU_raw_name, Tag_CPU_name, Tag_conformance: strings.
            4 | 5 | 67 => skip_string(&mut at)?,
            // Tag_compatibility: a number, then a string.
            32 => {
                uleb(&mut at)?;
                skip_string(&mut at)?;
            }
            // Beyond 32, odd tags hold strings and even ones numbers.
            t if t > 32 && t % 2 == 1 => skip_string(&mut at)?,
            _ => {
                uleb(&mut at)?;
            }
        }
    }
    None
}

/// One file the board must hold, exactly.
#[derive(Clone)]
pub struct BoardFile {
    pub path: String,
    pub mode: &'static str,
    pub content: Vec<u8>,
    /// Restart the controller when this file changes.
    pub restarts: bool,
}

impl std::fmt::Debug for BoardFile {
    /// Secrets are among these: only the path, mode and size are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardFile")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("bytes", &self.content.len())
            .finish_non_exhaustive()
    }
}

impl BoardFile {
    fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.content))
    }
}

/// Quotes one argument for a shell command line or a systemd `ExecStart=`
/// (both take single quotes; the values here never hold a newline).
fn quote(word: &str) -> String {
    crate::node::shell::quote(word)
}

/// `reconciler run ...` as the board runs it.
pub fn run_command_line(options: &InstallOptions) -> Vec<String> {
    let mut args = vec![
        BINARY.to_string(),
        "run".into(),
        "--git".into(),
        options.git.clone(),
        "--branch".into(),
        options.branch.clone(),
    ];
    if !options.path.is_empty() {
        args.extend(["--path".into(), options.path.clone()]);
    }
    args.extend([
        "--listen".into(),
        options.listen.to_string(),
        "--cache-dir".into(),
        CACHE_DIR.into(),
    ]);
    if options.webhook_secret_file.is_some() {
        args.extend([
            "--webhook-secret-file".into(),
            format!("{CONFIG_DIR}/webhook-secret"),
        ]);
    }
    if options.age_identity_file.is_some() {
        args.extend([
            "--age-identity-file".into(),
            format!("{CONFIG_DIR}/age-identity"),
        ]);
    }
    if options.policy_file.is_some() {
        args.extend(["--policy".into(), format!("{CONFIG_DIR}/policy.toml")]);
    }
    if options.allowed_signers_file.is_some() {
        args.extend([
            "--verify-signatures".into(),
            format!("{CONFIG_DIR}/allowed-signers"),
        ]);
    }
    if options.page_token_file.is_some() {
        args.extend([
            "--page-token-file".into(),
            format!("{CONFIG_DIR}/page-token"),
        ]);
    }
    args.extend(options.run_args.iter().cloned());
    args
}

/// Environment of the controller on the board.
fn environment(options: &InstallOptions) -> Vec<(String, String)> {
    let mut env = vec![("RECONCILER_LOG".to_string(), "info".to_string())];
    if options.git_ssh_key.is_some() {
        env.push((
            "RECONCILER_GIT_SSH_KEY".into(),
            format!("{CONFIG_DIR}/git-ssh-key"),
        ));
    }
    if let (Some(user), Some(_)) = (&options.git_username, &options.git_password_file) {
        env.push(("RECONCILER_GIT_USERNAME".into(), user.clone()));
        env.push((
            "RECONCILER_GIT_PASSWORD_FILE".into(),
            format!("{CONFIG_DIR}/git-password"),
        ));
    }
    env
}

/// The start script: the whole command line, for systemd and plain boards alike.
pub fn start_script(options: &InstallOptions) -> String {
    let exec: Vec<String> = run_command_line(options).iter().map(|a| quote(a)).collect();
    let mut script = String::from(
        "#!/bin/sh\n# Written by `reconciler install`; `reconciler uninstall` removes it.\n",
    );
    for (key, value) in environment(options) {
        script.push_str(&format!("export {key}={}\n", quote(&value)));
    }
    script.push_str(&format!("exec {}\n", exec.join(" ")));
    script
}

/// The systemd unit: runs the start script, restarts it when it ends.
pub const UNIT_TEXT: &str = "# Written by `reconciler install`; `reconciler uninstall` removes it.
[Unit]
Description=Reconciler: keeps the swarm equal to its git repository
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
ExecStart=/bin/sh /etc/reconciler/run.sh
Restart=always
RestartSec=5
TimeoutStopSec=30
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
";

/// What an install or uninstall did on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub node: String,
    pub arch: String,
    /// `systemd` or `plain`.
    pub init: &'static str,
    /// Files written (install) or removed (uninstall), in order.
    pub changed: Vec<String>,
    /// The controller was (re)started.
    pub restarted: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} ({}, {}): ", self.node, self.arch, self.init)?;
        if self.changed.is_empty() {
            f.write_str("no changes")?;
        } else {
            write!(f, "{}", self.changed.join(", "))?;
        }
        if self.restarted {
            f.write_str("; controller (re)started")?;
        }
        Ok(())
    }
}

/// What the board is: its architecture and init system.
async fn board(session: &Session, wanted: Init) -> Result<(String, Init), InstallError> {
    let output = session
        .run(
            "look at the board",
            "uname -m; [ -d /run/systemd/system ] && echo systemd; true",
        )
        .await?;
    let mut lines = output.stdout.lines();
    let arch = lines.next().unwrap_or_default().trim().to_string();
    let has_systemd = lines.any(|l| l.trim() == "systemd");
    let init = match wanted {
        Init::Auto if has_systemd => Init::Systemd,
        Init::Auto => Init::Plain,
        other => other,
    };
    Ok((arch, init))
}

fn read(path: &Path) -> Result<Vec<u8>, InstallError> {
    std::fs::read(path).map_err(|source| InstallError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The binary built for `arch` among the candidates (the running one when none).
fn binary_for(node: &str, arch: &str, candidates: &[PathBuf]) -> Result<Vec<u8>, InstallError> {
    let wanted = Arch::from_uname(arch);
    // Read once here, so the linker keeps the marker in the binary.
    tracing::debug!(
        marker = %String::from_utf8_lossy(std::hint::black_box(&ARM_VERSION_MARKER[..])),
        "this binary's ARM version"
    );
    let candidates: Vec<PathBuf> = if candidates.is_empty() {
        std::env::current_exe().into_iter().collect()
    } else {
        candidates.to_vec()
    };
    let mut given = Vec::new();
    // The newest architecture the board runs: an ARMv7 board takes the
    // armv7 binary over the armv6 one, a Pi Zero only the armv6 one.
    let mut best: Option<(Arch, Vec<u8>)> = None;
    for path in &candidates {
        let bytes = read(path)?;
        let built_for = Arch::of_elf(&bytes);
        match (built_for, wanted) {
            (Some(built), Some(board)) if built.runs_on(board) => {
                let newer = best.as_ref().is_none_or(|(kept, _)| kept.runs_on(built));
                if newer {
                    best = Some((built, bytes));
                }
            }
            _ => given.push(format!(
                "{} is {}",
                path.display(),
                built_for.map_or_else(|| "not an ELF binary".into(), Arch::name)
            )),
        }
    }
    if let Some((_, bytes)) = best {
        return Ok(bytes);
    }
    Err(InstallError::NoBinary {
        node: node.to_string(),
        arch: arch.to_string(),
        given: given.join("; "),
    })
}

/// Every file the board must hold for `options`.
fn board_files(
    node: &str,
    arch: &str,
    init: Init,
    options: &InstallOptions,
) -> Result<Vec<BoardFile>, InstallError> {
    let mut files = vec![BoardFile {
        path: BINARY.into(),
        mode: "755",
        content: binary_for(node, arch, &options.binaries)?,
        restarts: true,
    }];
    let secrets = [
        (&options.webhook_secret_file, "webhook-secret"),
        (&options.git_ssh_key, "git-ssh-key"),
        (&options.git_password_file, "git-password"),
        (&options.age_identity_file, "age-identity"),
        (&options.policy_file, "policy.toml"),
        (&options.page_token_file, "page-token"),
        (&options.allowed_signers_file, "allowed-signers"),
    ];
    for (source, name) in secrets {
        if let Some(source) = source {
            files.push(BoardFile {
                path: format!("{CONFIG_DIR}/{name}"),
                mode: "600",
                content: read(source)?,
                restarts: true,
            });
        }
    }
    files.push(BoardFile {
        path: START_SCRIPT.into(),
        // Root's alone: it names the controller's files and flags.
        mode: "700",
        content: start_script(options).into_bytes(),
        restarts: true,
    });
    if init == Init::Systemd {
        files.push(BoardFile {
            path: UNIT.into(),
            mode: "644",
            content: UNIT_TEXT.as_bytes().to_vec(),
            restarts: true,
        });
    }
    Ok(files)
}

/// The files a previous install may have written (never the node layer's
/// `/etc/reconciler/membership`).
fn installed_paths() -> Vec<String> {
    vec![
        BINARY.into(),
        format!("{CONFIG_DIR}/webhook-secret"),
        format!("{CONFIG_DIR}/git-ssh-key"),
        format!("{CONFIG_DIR}/git-password"),
        format!("{CONFIG_DIR}/age-identity"),
        format!("{CONFIG_DIR}/policy.toml"),
        format!("{CONFIG_DIR}/page-token"),
        format!("{CONFIG_DIR}/allowed-signers"),
        START_SCRIPT.into(),
        UNIT.into(),
    ]
}

/// sha256 of each path on the board (`None`: no such file).
async fn board_hashes(
    session: &Session,
    paths: &[String],
) -> Result<std::collections::BTreeMap<String, String>, InstallError> {
    let mut script = String::new();
    for path in paths {
        let path = quote(path);
        script.push_str(&format!("[ -f {path} ] && sha256sum {path}\n"));
    }
    script.push_str("true\n");
    let output = session
        .run_as_root("read the installed files", &script)
        .await?;
    Ok(output
        .stdout
        .lines()
        .filter_map(|line| {
            let (hash, path) = line.split_once("  ")?;
            Some((path.to_string(), hash.to_string()))
        })
        .collect())
}

async fn step(session: &Session, what: &str, script: &str) -> Result<String, InstallError> {
    let output = session.run_as_root(what, script).await?;
    if output.success() {
        Ok(output.stdout)
    } else {
        Err(InstallError::Step {
            node: session.target().node.clone(),
            step: what.to_string(),
            stderr: output.stderr.trim().to_string(),
        })
    }
}

/// Writes one file: to a temporary name, checked, then moved into place.
async fn write_file(session: &Session, file: &BoardFile) -> Result<(), InstallError> {
    let path = quote(&file.path);
    let parent = quote(
        &Path::new(&file.path)
            .parent()
            .map_or_else(|| "/".to_string(), |p| p.display().to_string()),
    );
    let script = format!(
        "set -e; umask 077; mkdir -p {parent}; cat > {path}.new; chmod {mode} {path}.new; [ \"$(sha256sum < {path}.new | cut -d' ' -f1)\" = {hash} ] || {{ rm -f {path}.new; echo 'the file arrived damaged' >&2; exit 1; }}; mv -f {path}.new {path}",
        mode = file.mode,
        hash = file.sha256(),
    );
    let output = session
        .run_as_root_with_input(&format!("write {}", file.path), &script, &file.content)
        .await?;
    if output.success() {
        Ok(())
    } else {
        Err(InstallError::Step {
            node: session.target().node.clone(),
            step: format!("write {}", file.path),
            stderr: output.stderr.trim().to_string(),
        })
    }
}

/// Puts the controller on the board `session` reaches, starts it, and waits
/// until its `/readyz` answers 200.
pub async fn install(
    session: &Session,
    options: &InstallOptions,
    ready_timeout: std::time::Duration,
) -> Result<Report, InstallError> {
    let node = session.target().node.clone();
    let (arch, init) = board(session, options.init).await?;
    let files = board_files(&node, &arch, init, options)?;
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let on_board = board_hashes(session, &paths).await?;
    let mut changed = Vec::new();
    for file in &files {
        if on_board.get(&file.path) != Some(&file.sha256()) {
            write_file(session, file).await?;
            changed.push(file.path.clone());
        }
    }
    let restart = files
        .iter()
        .any(|f| f.restarts && changed.contains(&f.path));
    let restarted = start(session, init, restart).await?;
    wait_ready(session, options.listen, ready_timeout, init).await?;
    Ok(Report {
        node,
        arch,
        init: init_name(init),
        changed,
        restarted,
    })
}

fn init_name(init: Init) -> &'static str {
    match init {
        Init::Systemd => "systemd",
        Init::Auto | Init::Plain => "plain",
    }
}

/// Shell functions for boards without systemd: `running` is true while the
/// pid file names a live `reconciler` (not a zombie nobody reaped, not a
/// reused pid); `stop` sends SIGTERM, waits up to 30 s, then SIGKILL.
const RUNNING: &str = r#"running() {
  p=$(cat /run/reconciler.pid 2>/dev/null) && [ -n "$p" ] &&
    grep -q reconciler "/proc/$p/cmdline" 2>/dev/null &&
    [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ]
}
stop() {
  kill "$p" 2>/dev/null || true
  i=0; while running && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  if running; then kill -9 "$p"; fi
}"#;

/// Starts the controller if it is not running, restarts it when `restart`;
/// says whether it (re)started it.
async fn start(session: &Session, init: Init, restart: bool) -> Result<bool, InstallError> {
    let cache = quote(CACHE_DIR);
    let script = match init {
        Init::Systemd => format!(
            "set -e; mkdir -p {cache}; systemctl daemon-reload; systemctl enable --quiet reconciler.service
if {restart} || ! systemctl is-active --quiet reconciler.service; then systemctl restart reconciler.service; echo started; fi"
        ),
        Init::Auto | Init::Plain => format!(
            "set -e; mkdir -p {cache}
{RUNNING}
if running && {restart}; then stop; fi
if ! running; then
  setsid -f sh -c 'echo $$ > {pid}; exec /bin/sh {script}' >> {log} 2>&1 < /dev/null
  echo started
fi",
            pid = quote(PID_FILE),
            script = quote(START_SCRIPT),
            log = quote(LOG_FILE),
        ),
    };
    let stdout = step(session, "start the controller", &script).await?;
    Ok(stdout.lines().any(|l| l.trim() == "started"))
}

/// Polls the controller's `/readyz` through the SSH connection.
async fn wait_ready(
    session: &Session,
    listen: std::net::SocketAddr,
    timeout: std::time::Duration,
    init: Init,
) -> Result<(), InstallError> {
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match session.http_get(&host, listen.port(), "/readyz").await {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => format!("{status} {}", body.trim()),
            Err(error) => error.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            let (log, command) = match init {
                Init::Systemd => (
                    "`journalctl -u reconciler`".to_string(),
                    "journalctl -u reconciler.service -n 15 --no-pager".to_string(),
                ),
                Init::Auto | Init::Plain => (
                    LOG_FILE.to_string(),
                    format!("tail -n 15 {}", quote(LOG_FILE)),
                ),
            };
            let tail = session
                .run_as_root("read the controller's log", &command)
                .await
                .map(|o| o.stdout)
                .unwrap_or_default();
            return Err(InstallError::NotReady {
                node: session.target().node.clone(),
                seconds: timeout.as_secs(),
                last,
                log,
                tail,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Stops the controller and removes what `install` wrote (the swarm and the
/// node layer's membership record stay).
pub async fn uninstall(session: &Session, init: Init) -> Result<Report, InstallError> {
    let node = session.target().node.clone();
    let (arch, init) = board(session, init).await?;
    let paths = installed_paths();
    let present: Vec<String> = board_hashes(session, &paths).await?.into_keys().collect();
    let stop = match init {
        Init::Systemd => "if [ -f /etc/systemd/system/reconciler.service ]; then systemctl disable --now --quiet reconciler.service; echo stopped; fi".to_string(),
        Init::Auto | Init::Plain => format!(
            "{RUNNING}\nif running; then stop; echo stopped; fi; rm -f {pid}",
            pid = quote(PID_FILE)
        ),
    };
    let stdout = step(session, "stop the controller", &stop).await?;
    let mut remove = String::from("set -e\n");
    for path in &present {
        remove.push_str(&format!("rm -f {}\n", quote(path)));
    }
    remove.push_str(&format!("rm -rf {}\n", quote(CACHE_DIR)));
    if init == Init::Systemd && present.iter().any(|p| p == UNIT) {
        remove.push_str("systemctl daemon-reload\n");
    }
    step(session, "remove the controller's files", &remove).await?;
    let mut changed: Vec<String> = paths.into_iter().filter(|p| present.contains(p)).collect();
    if stdout.lines().any(|l| l.trim() == "stopped") {
        changed.insert(0, "stopped".into());
    }
    Ok(Report {
        node,
        arch,
        init: init_name(init),
        changed,
        restarted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> InstallOptions {
        InstallOptions {
            git: "https://git.example/ops/cluster.git".into(),
            branch: "main".into(),
            path: "clusters/home".into(),
            listen: "0.0.0.0:9469".parse().expect("address"),
            webhook_secret_file: Some("/tmp/secret".into()),
            git_ssh_key: Some("/tmp/key".into()),
            git_username: Some("it's me".into()),
            git_password_file: Some("/tmp/password".into()),
            age_identity_file: None,
            policy_file: None,
            page_token_file: None,
            allowed_signers_file: None,
            binaries: Vec::new(),
            init: Init::Auto,
            run_args: vec!["--interval".into(), "30s".into()],
        }
    }

    #[test]
    fn elf_headers_name_their_machine() {
        let mut header = vec![0u8; 20];
        header[..4].copy_from_slice(b"\x7fELF");
        header[5] = 1;
        for (machine, arch) in [
            (0x3e, Arch::X86_64),
            (0xb7, Arch::Aarch64),
            // No attributes: taken as ARMv7, never offered to a Pi Zero.
            (0x28, Arch::Arm { version: 7 }),
        ] {
            header[18] = machine;
            assert_eq!(Arch::of_elf(&header), Some(arch));
        }
        header[18] = 0x08; // MIPS
        assert_eq!(Arch::of_elf(&header), None);
        assert_eq!(Arch::of_elf(b"#!/bin/sh\n"), None);
        assert_eq!(Arch::from_uname("armv7l\n"), Some(Arch::Arm { version: 7 }));
        assert_eq!(Arch::from_uname("armv6l"), Some(Arch::Arm { version: 6 }));
        assert_eq!(Arch::from_uname("armv"), None);
        assert_eq!(Arch::from_uname("aarch64"), Some(Arch::Aarch64));
        assert_eq!(Arch::from_uname("riscv64"), None);
    }

    /// A 32-bit little-endian ARM ELF file whose build attributes name
    /// `cpu_name` and `Tag_CPU_arch` = `cpu_arch`, as GNU ld writes them.
    fn arm_elf(cpu_name: &str, cpu_arch: u8) -> Vec<u8> {
        let mut attributes_body = Vec::new();
        attributes_body.push(5); // Tag_CPU_name
        attributes_body.extend_from_slice(cpu_name.as_bytes());
        attributes_body.push(0);
        attributes_body.extend_from_slice(&[6, cpu_arch, 8, 1, 9, 1]);
        let file_len = u32::try_from(5 + attributes_body.len()).unwrap_or(0);
        let mut vendor = b"aeabi\0".to_vec();
        vendor.push(1);
        vendor.extend_from_slice(&file_len.to_le_bytes());
        vendor.extend_from_slice(&attributes_body);
        let vendor_len = u32::try_from(4 + vendor.len()).unwrap_or(0);
        let mut section = vec![b'A'];
        section.extend_from_slice(&vendor_len.to_le_bytes());
        section.extend_from_slice(&vendor);

        let mut elf = vec![0u8; 52];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 1; // 32-bit
        elf[5] = 1; // little-endian
        elf[18] = 0x28; // ARM
        let section_offset = u32::try_from(elf.len()).unwrap_or(0);
        elf.extend_from_slice(&section);
        let table = u32::try_from(elf.len()).unwrap_or(0);
        elf[0x20..0x24].copy_from_slice(&table.to_le_bytes());
        elf[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&2u16.to_le_bytes());
        elf.extend_from_slice(&[0u8; 40]); // the null section
        let mut header = [0u8; 40];
        header[4..8].copy_from_slice(&ARM_ATTRIBUTES.to_le_bytes());
        header[16..20].copy_from_slice(&section_offset.to_le_bytes());
        header[20..24].copy_from_slice(&u32::try_from(section.len()).unwrap_or(0).to_le_bytes());
        elf.extend_from_slice(&header);
        elf
    }

    /// Issue 23: with an armv6 build beside the armv7 one, both are "32-bit
    /// ARM" by their ELF machine; a Pi Zero must get the ARMv6 one (the
    /// ARMv7 one dies with an illegal instruction), a Pi 2 the ARMv7 one.
    #[test]
    fn a_pi_zero_gets_the_armv6_binary_and_a_pi_2_the_armv7_one() {
        let v6 = arm_elf("6KZ", 7);
        let v7 = arm_elf("7-A", 10);
        assert_eq!(Arch::of_elf(&v6), Some(Arch::Arm { version: 6 }));
        assert_eq!(Arch::of_elf(&v7), Some(Arch::Arm { version: 7 }));
        assert_eq!(
            Arch::of_elf(&arm_elf("5TE", 4)),
            Some(Arch::Arm { version: 5 })
        );
        // The marker outranks the attributes (which name the newest
        // instructions any object holds, even behind a runtime check).
        let mut marked = arm_elf("7-A", 10);
        marked.extend_from_slice(b"\0reconciler-arm-version=6\0");
        assert_eq!(Arch::of_elf(&marked), Some(Arch::Arm { version: 6 }));
        let dir = tempfile::tempdir().expect("temporary folder");
        let v6_path = dir.path().join("reconciler-armv6");
        let v7_path = dir.path().join("reconciler-armv7");
        std::fs::write(&v6_path, &v6).expect("written");
        std::fs::write(&v7_path, &v7).expect("written");
        for order in [
            [v6_path.clone(), v7_path.clone()],
            [v7_path.clone(), v6_path.clone()],
        ] {
            assert_eq!(binary_for("zero", "armv6l", &order).ok(), Some(v6.clone()));
            assert_eq!(binary_for("pi2", "armv7l", &order).ok(), Some(v7.clone()));
        }
        let error = binary_for("zero", "armv6l", std::slice::from_ref(&v7_path))
            .expect_err("no ARMv6 binary given");
        assert!(error.to_string().contains("is armv7"), "{error}");
    }

    #[test]
    fn the_running_binary_is_found_for_its_own_architecture() {
        let arch = std::env::consts::ARCH;
        assert!(binary_for("n", arch, &[]).is_ok());
        let error = binary_for("n", "riscv64", &[]).expect_err("no riscv binary");
        assert!(error
            .to_string()
            .contains("none of the binaries given is built for it"));
    }

    /// The start script, run by a real `sh` with `reconciler` replaced by
    /// `printf`, passes every argument through unchanged.
    #[test]
    fn the_start_script_passes_every_argument_unchanged() {
        let mut options = options();
        options.run_args.push("it's a 'test'".into());
        let script = start_script(&options).replace(&quote(BINARY), "printf '%s\\n'");
        let output = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        let printed: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let mut expected = run_command_line(&options);
        expected.remove(0);
        assert_eq!(printed, expected);
        assert!(script.contains("export RECONCILER_GIT_SSH_KEY='/etc/reconciler/git-ssh-key'"));
        assert!(script.contains("export RECONCILER_GIT_USERNAME='it'\\''s me'"));
        assert!(
            !script.contains("/tmp/secret"),
            "a local path leaked into the board's script"
        );
    }

    #[test]
    fn uninstall_never_removes_the_membership_record() {
        assert!(installed_paths().iter().all(|p| !p.ends_with("membership")));
    }
}
