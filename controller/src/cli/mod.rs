//! The `reconciler` command line: thin glue over spec, swarm, plan and apply.
//!
//! [`run`] takes its output streams as arguments so tests can drive the exact
//! code path of the binary in-process and read what a user would see.

mod boards;
mod preflight;
mod run;
mod spec;
mod swarm;
mod upgrade;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use reconciler_spec::{Environment, Keyring, LoadError, LoadOptions, Spec};

use crate::apply::ApplyError;
use crate::pipeline::{BoardAccess, PlanningError, Reach};
pub use crate::progress::Style as ProgressStyle;
use crate::swarm::{SwarmError, DEFAULT_DOCKER_HOST};

/// Declarative Docker Swarm clusters for Raspberry Pis and other small boards.
///
/// A spec directory of TOML files describes the cluster; `plan` shows what it
/// would take to make the swarm match it, `apply` does it.
#[derive(Debug, Parser)]
#[command(name = "reconciler", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The age identity file (`age-keygen -o FILE`) that decrypts secrets
    /// marked `encryption = "age"` or `"sops"`. Without it, the key itself
    /// is read from $RECONCILER_AGE_IDENTITY, or SOPS's $SOPS_AGE_KEY_FILE /
    /// $SOPS_AGE_KEY. Keys are only held in memory and never shown.
    #[arg(
        long,
        global = true,
        env = "RECONCILER_AGE_IDENTITY_FILE",
        value_name = "FILE"
    )]
    pub age_identity_file: Option<PathBuf>,
    /// How log lines on stderr look: `text` for people, `json` (one object
    /// per line: timestamp, level, target, message and the event's fields)
    /// for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "RECONCILER_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec directory offline: syntax, types, names, references. Never contacts Docker.
    Validate {
        /// The spec directory (every *.toml file under it is read).
        dir: PathBuf,
    },
    /// Print the fully expanded spec: chart releases and compose stacks as the
    /// services and networks they produce. Never contacts Docker.
    Render {
        /// The spec directory.
        dir: PathBuf,
    },
    /// Connect to every node of the spec over SSH and show what each board is:
    /// hostname, architecture, OS, Docker, swarm state. Read-only.
    Facts(FactsArgs),
    /// Show what `apply` would change, like `terraform plan`. Makes no changes.
    Plan(PlanArgs),
    /// Make the swarm match the spec, then wait until the services run.
    Apply(ApplyArgs),
    /// Keep the swarm equal to a git repository (or a local directory): the
    /// long-running controller, with metrics, webhook and status over HTTP.
    Run(Box<RunArgs>),
    /// Put the controller on one of the spec's boards over SSH (its first
    /// manager unless --node says otherwise) as a service that runs
    /// `reconciler run --git URL`, start it and wait until it is ready.
    /// Running it again changes nothing; a newer binary is replaced and the
    /// service restarted.
    Install(Box<InstallArgs>),
    /// Stop the controller `install` put on a board and remove its files
    /// (the swarm and its services stay as they are).
    Uninstall(UninstallArgs),
    /// Start a cluster repository: commented cluster.toml, nodes.toml (from
    /// --node NAME=ADDRESS), services.toml and README.md, checked to validate.
    /// Writes only into a new or empty folder.
    Init {
        /// The folder to create.
        dir: PathBuf,
        /// The cluster's name (it marks every Docker object the cluster owns).
        #[arg(long, default_value = "home")]
        cluster: String,
        /// A board: NAME=ADDRESS; repeat. The first is the manager.
        #[arg(long = "node", value_name = "NAME=ADDRESS")]
        nodes: Vec<crate::init::NodeArg>,
        /// The user the boards are logged in as over SSH: the one chosen
        /// when the cards were flashed (Raspberry Pi Imager offers this
        /// computer's user name, the default here; images since 2022 have
        /// no `pi` user).
        #[arg(long)]
        user: Option<String>,
    },
    /// Write the files a freshly flashed Raspberry Pi OS card needs on its
    /// boot partition so its board comes up reachable and trusted: cloud-init
    /// `user-data`, `meta-data` and `network-config` (hostname, the `[ssh]
    /// user` with your public key and passwordless sudo, SSH on, password
    /// logins off, address, time zone), with an SSH host key made here and
    /// recorded in known_hosts, so the first `apply --ssh` asks nothing.
    /// Raspberry Pi OS Trixie (Debian 13) and later read these files.
    Firstboot(FirstbootArgs),
    /// Upgrade the boards' systems one at a time, as `[maintenance]` says:
    /// drain a board, upgrade its packages, reboot it when needed, wait for
    /// SSH and its node to be ready, give back its availability, then the
    /// next (workers first, `max_unavailable` at a time; managers one at a
    /// time, only while every other manager is reachable). Stops at the
    /// first failure; run again, it resumes where it stopped (the stage is
    /// kept on the node). Boards with nothing to upgrade are left alone.
    Upgrade(UpgradeArgs),
    /// Print a shell completion script: `reconciler completions bash >
    /// /etc/bash_completion.d/reconciler` (zsh: a file named `_reconciler` on
    /// $fpath; fish: ~/.config/fish/completions/reconciler.fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dir", "git"])))]
pub struct RunArgs {
    /// Follow a local spec directory, reconciling when files change.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// Follow a git repository: a local path, file://, https:// or ssh:// URL.
    #[arg(long, value_name = "URL")]
    pub git: Option<String>,
    /// Branch to follow.
    #[arg(long, default_value = "main", conflicts_with_all = ["tag", "commit"])]
    pub branch: String,
    /// Pin a tag instead of following a branch.
    #[arg(long)]
    pub tag: Option<String>,
    /// Pin a commit (full id) instead of following a branch.
    #[arg(long)]
    pub commit: Option<String>,
    /// Folder of the spec inside the repository.
    #[arg(long, default_value = "")]
    pub path: String,
    /// Where the controller keeps its bare clone (only a cache: safe to delete).
    #[arg(
        long,
        env = "RECONCILER_CACHE_DIR",
        default_value = "/var/cache/reconciler"
    )]
    pub cache_dir: PathBuf,
    /// Address for /metrics, /healthz, /readyz, /hooks/git and /api/status.
    #[arg(long, default_value = "127.0.0.1:9469")]
    pub listen: std::net::SocketAddr,
    /// File holding the webhook secret (GitHub/Gitea HMAC key, GitLab token).
    /// Without it (or RECONCILER_WEBHOOK_SECRET) every webhook is refused.
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub docker: DockerArgs,
    /// Only report drift, never write (overrides `[controller] mode`).
    #[arg(long)]
    pub observe: bool,
    /// Stop writing but keep observing (overrides `[controller] suspend`).
    #[arg(long)]
    pub suspend: bool,
    /// Resync (and git poll) interval, overriding `[controller] interval`, e.g. "30s".
    #[arg(long, value_parser = parse_duration_arg)]
    pub interval: Option<Duration>,
    /// How long a writer's lease lasts without renewal.
    /// Timed by each controller's own clock, so clocks need not agree: a
    /// standby takes the lease once it saw it unchanged this long (2s to 1h).
    #[arg(long, default_value = "30s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    /// This controller's name in the one-writer lease: letters, digits and
    /// . _ - : @ (default: hostname and process id).
    #[arg(long, value_parser = parse_holder)]
    pub holder_id: Option<String>,
    #[command(flatten)]
    pub boards: BoardArgs,
    /// How long one reconcile waits for a service that others come `after`
    /// (it must stay below --lease-ttl; later reconciles carry on).
    #[arg(long, default_value = "20s", value_parser = parse_duration_arg)]
    pub apply_timeout: Duration,
    /// With --ssh: how long a board's facts are used before it is asked
    /// again. Sessions stay open between reconciles; a board is asked again
    /// sooner after a failure, after steps ran on it, or when the swarm no
    /// longer reports its node ready. A reconcile of unchanged boards then
    /// costs one keepalive round trip per board.
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg)]
    pub facts_max_age: Duration,
    /// An environment variable compose files may read (`${NAME}`, or a bare
    /// `NAME` under `environment:`); repeat for more. Without it `run` reads
    /// none of its own environment: whoever can push to the repository must
    /// not be able to deploy the controller's secrets. Stack `env_file`s in
    /// the spec always work.
    #[arg(long = "allow-env", value_name = "NAME")]
    pub allow_env: Vec<String>,
    /// The longest a fetch of the repository may take (a stalled remote
    /// otherwise freezes the loop); the last revision stays in force.
    #[arg(long, default_value = "2m", value_parser = parse_duration_arg)]
    pub fetch_timeout: Duration,
    /// Follow only commits signed with SSH by a key this allowed-signers
    /// file lists (`PRINCIPALS [namespaces="git"] KEYTYPE KEY` per line,
    /// ssh-keygen(1)), as `git verify-commit` with `gpg.ssh.allowedSignersFile`
    /// accepts them; another commit is refused and the last good one stays.
    /// GPG signatures are not checked (refused).
    #[arg(long, value_name = "FILE", requires = "git")]
    pub verify_signatures: Option<PathBuf>,
    /// Fetch an `http://` or `git://` URL of another machine, unencrypted
    /// and unauthenticated (refused otherwise: whoever is on the path would
    /// serve the spec). Loopback URLs need no flag.
    #[arg(long)]
    pub allow_plaintext_git: bool,
    /// A name (with a dot) the status page, `/api/*` and `/metrics` answer
    /// to, e.g. the one a reverse proxy or Prometheus uses; repeat for more.
    /// IP addresses, `localhost` and LAN names (`pi1`, `pi1.local`,
    /// `*.lan`, `*.home.arpa`, `*.internal`) always work; other names are
    /// refused (a page of another site could read the status through DNS
    /// rebinding).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// A file holding a token (`openssl rand -hex 32`) the status page and
    /// `/api/*` ask for: open `/?token=TOKEN` once in a browser (it is kept
    /// in a cookie), or send `Authorization: Bearer TOKEN`. Without it,
    /// whoever reaches --listen reads them. `/metrics` and the health
    /// checks never ask.
    #[arg(long, value_name = "FILE", env = "RECONCILER_PAGE_TOKEN_FILE")]
    pub page_token_file: Option<PathBuf>,
    /// The SSH key `run --ssh` reaches every board with. A spec's `[ssh]
    /// identity` is not used by `run`: whoever can push would choose which
    /// file the controller reads as a key.
    #[arg(long, value_name = "FILE", default_value = "~/.ssh/id_ed25519")]
    pub ssh_identity: String,
    /// The known_hosts file `run --ssh` checks host keys against (and
    /// records new ones in, with --accept-new-host-keys). A spec's
    /// `known_hosts` is not used by `run`: whoever can push would choose a
    /// file the controller writes.
    #[arg(long, value_name = "FILE", default_value = "~/.ssh/known_hosts")]
    pub known_hosts: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The controller owner's limits on what the spec may ask of the boards.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// A policy file kept with the controller, never in the repository:
    /// `deny = ["host-paths", "docker-socket", "controller-folder",
    /// "all-capabilities", "board-commands"]` refuses a spec that asks for
    /// one of these (`allow_host_paths = ["/srv"]` keeps some folders
    /// mountable). Without one they are allowed, and all but plain host
    /// paths are warned about: whoever can push is root on every board.
    #[arg(long = "policy", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl PolicyArgs {
    fn load(&self) -> Result<Option<crate::policy::Policy>, crate::policy::PolicyError> {
        self.file
            .as_deref()
            .map(crate::policy::Policy::load)
            .transpose()
    }
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The spec directory: the boards, `[ssh]` and `[maintenance]`.
    pub dir: PathBuf,
    /// Only these boards (repeat); they are upgraded even when up to date.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["out", "boot"])))]
pub struct FirstbootArgs {
    /// The spec directory: the nodes, their `[ssh]` user, key and known_hosts.
    pub dir: PathBuf,
    /// Only this node; repeat for more (default: every node).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Write each board's files into DIR/NODE/, to copy onto its card's
    /// boot partition.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The card's mounted boot partition (e.g. /media/$USER/bootfs): the
    /// files are written there and cmdline.txt gets the memory cgroup
    /// options. One card is one board: give one --node.
    #[arg(long, value_name = "DIR")]
    pub boot: Option<PathBuf>,
    /// Fix each node's address on its board, with this router as gateway.
    /// Without it the boards ask the router (DHCP): reserve their addresses
    /// there.
    #[arg(long, value_name = "IP")]
    pub gateway: Option<std::net::Ipv4Addr>,
    /// The network's prefix length with --gateway (24 is 255.255.255.0).
    #[arg(long, default_value_t = 24, requires = "gateway", value_parser = clap::value_parser!(u8).range(1..=32))]
    pub prefix: u8,
    /// Name servers with --gateway, comma-separated (default: the gateway).
    #[arg(long, value_name = "IP", requires = "gateway", value_delimiter = ',')]
    pub dns: Vec<std::net::Ipv4Addr>,
    /// The boards' time zone, like Europe/London (default: this computer's).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// The public key the boards' user accepts (default: the node's `[ssh]
    /// identity` with .pub added).
    #[arg(long, value_name = "FILE")]
    pub authorized_key: Option<PathBuf>,
    /// The Raspberry Pi OS release on the cards: `trixie` (and newer)
    /// reads cloud-init's user-data, meta-data and network-config;
    /// `bookworm` (and older) gets firstrun.sh, run once at the first boot
    /// through cmdline.txt as Raspberry Pi Imager's customisation does, and
    /// the `ssh` file.
    #[arg(long, value_enum, default_value = "trixie")]
    pub release: ReleaseArg,
}

/// `firstboot --release`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReleaseArg {
    Trixie,
    Bookworm,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The spec directory: which board to use and how to reach it.
    pub dir: PathBuf,
    /// The node to install on (default: the spec's first manager, by name).
    #[arg(long)]
    pub node: Option<String>,
    /// The repository the controller follows, as the board reaches it.
    #[arg(long, value_name = "URL")]
    pub git: String,
    /// Branch to follow.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Folder of the spec inside the repository.
    #[arg(long, default_value = "")]
    pub path: String,
    /// Where the controller listens on the board; 0.0.0.0:9469 to take
    /// webhooks from the forge.
    #[arg(long, default_value = "127.0.0.1:9469")]
    pub listen: std::net::SocketAddr,
    /// The webhook secret, copied to the board (mode 600).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// An allowed-signers file (see `run --verify-signatures`), copied to
    /// the board: the controller follows only commits signed by its keys.
    #[arg(long, value_name = "FILE")]
    pub verify_signatures: Option<PathBuf>,
    /// The status page's token (see `run --page-token-file`), copied to the
    /// board (mode 600).
    #[arg(long, value_name = "FILE")]
    pub page_token_file: Option<PathBuf>,
    /// A private key for ssh:// repositories, copied to the board (mode 600).
    #[arg(long, value_name = "FILE")]
    pub git_ssh_key: Option<PathBuf>,
    /// The user for an http(s) repository (with --git-password-file).
    #[arg(long, requires = "git_password_file")]
    pub git_username: Option<String>,
    /// A file holding the password or token for an http(s) repository,
    /// copied to the board (mode 600).
    #[arg(long, value_name = "FILE", requires = "git_username")]
    pub git_password_file: Option<PathBuf>,
    /// A reconciler binary to install; repeat with one per architecture
    /// (scripts/cross builds them) and the board's is picked from its ELF
    /// header. Default: this binary, when the board has its architecture.
    #[arg(long = "binary", value_name = "FILE")]
    pub binaries: Vec<PathBuf>,
    /// How the board runs services: systemd, or a plain start script with a
    /// pid file for boards without it (auto: systemd when it runs).
    #[arg(long, value_enum, default_value = "auto")]
    pub init: crate::install::Init,
    /// One more argument for `reconciler run` on the board; repeat
    /// (`--run-arg=--interval=30s`).
    #[arg(long = "run-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub run_args: Vec<String>,
    /// How long to wait for the controller's /readyz (asked through SSH).
    #[arg(long, default_value = "2m", value_parser = parse_duration_arg)]
    pub ready_timeout: Duration,
    // The controller's policy file: checked here, copied to the board.
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub access: AccessArgs,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The spec directory.
    pub dir: PathBuf,
    /// The node to uninstall from (default: the spec's first manager, by name).
    #[arg(long)]
    pub node: Option<String>,
    /// How the board runs services (as given to `install`).
    #[arg(long, value_enum, default_value = "auto")]
    pub init: crate::install::Init,
    #[command(flatten)]
    pub access: AccessArgs,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The spec directory (every *.toml file under it is read).
    pub dir: PathBuf,
    #[command(flatten)]
    pub docker: DockerArgs,
    /// Allow a plan that deletes more than `max_delete_fraction` of the managed services.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Let `apply` go on despite pre-flight blockers of these checks
    /// (comma-separated or repeated): image, platform, port, memory-cgroup,
    /// vxlan, iptables, engine-version, docker-arch, managers, clock, disk.
    #[arg(long, value_name = "CHECK", value_delimiter = ',', value_parser = parse_check)]
    pub allow_preflight: Vec<crate::preflight::Check>,
    #[command(flatten)]
    pub boards: BoardArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Where a manager's Docker API is, shared by `plan`, `apply` and `run`.
#[derive(Debug, Clone, Args)]
pub struct DockerArgs {
    /// Docker socket of a swarm manager.
    #[arg(long, env = "DOCKER_HOST", default_value = DEFAULT_DOCKER_HOST)]
    pub docker_host: String,
    /// How long one Docker API call may go unanswered before it fails (`run`
    /// then retries with backoff): a hung daemon must not freeze anything.
    #[arg(long, default_value = "2m", value_parser = parse_call_timeout)]
    pub docker_timeout: Duration,
    /// Plan against a swarm none of the spec's nodes is in (refused
    /// otherwise: it is most likely not the cluster's swarm, e.g. a laptop's
    /// own). The nodes' roles and labels are then left alone.
    #[arg(long)]
    pub allow_other_swarm: bool,
}

/// The node layer's switches, shared by `plan`, `apply` and `run`.
#[derive(Debug, Clone, Copy, Args)]
pub struct BoardArgs {
    /// Also work on the spec's boards over SSH: bootstrap them, form and join
    /// the swarm, remove boards that left it, and reach a manager's Docker API
    /// through SSH (instead of --docker-host).
    #[arg(long)]
    pub ssh: bool,
    #[command(flatten)]
    pub access: AccessArgs,
}

impl BoardArgs {
    /// How the swarm is reached: the boards over SSH with `--ssh`, else the
    /// Docker socket.
    fn reach(&self, docker: &DockerArgs) -> Reach {
        if self.ssh {
            Reach::Boards(self.access.access(None))
        } else {
            Reach::Socket(docker.docker_host.clone())
        }
    }
}

/// How boards are reached over SSH, shared by the node layer (`--ssh`) and `facts`.
#[derive(Debug, Clone, Copy, Args)]
pub struct AccessArgs {
    /// Record the host keys of boards not yet in known_hosts (a changed key is still refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How many boards to work on at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
}

impl AccessArgs {
    fn access(self, connect_timeout: Option<Duration>) -> BoardAccess {
        let defaults = crate::node::SshOptions::default();
        BoardAccess {
            ssh: crate::node::SshOptions {
                accept_new_host_keys: self.accept_new_host_keys,
                connect_timeout: connect_timeout.unwrap_or(defaults.connect_timeout),
                ..defaults
            },
            parallel: usize::from(self.parallel),
        }
    }
}

#[derive(Debug, Args)]
pub struct FactsArgs {
    /// The spec directory.
    pub dir: PathBuf,
    #[command(flatten)]
    pub access: AccessArgs,
    /// Give up on a board that does not answer within this time.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    pub connect_timeout: Duration,
    /// Print the facts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Exit 0 when there is nothing to change, 2 when there is, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Return once the Docker writes are made, without waiting for tasks to run.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for each service to converge, e.g. "90s" or "5m".
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg)]
    pub timeout: Duration,
}

/// The facts script reads a few files and asks Docker three questions.
const FACTS_TIMEOUT: Duration = Duration::from_secs(60);

// clap value parsers: clap prints the error text under the flag's name.

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    reconciler_spec::units::parse_duration(text).map_err(|e| e.to_string())
}

/// A pre-flight check's name, as the plan prints it in brackets.
fn parse_check(text: &str) -> Result<crate::preflight::Check, String> {
    crate::preflight::Check::parse(text).ok_or_else(|| {
        let names: Vec<&str> = crate::preflight::Check::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        format!(
            "unknown check `{text}`; the checks are {}",
            names.join(", ")
        )
    })
}

/// A Docker call timeout: whole seconds (what the client counts in), 1s to 1h.
fn parse_call_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration_arg(text)?;
    if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(3600) {
        return Err("the Docker call timeout must be between 1s and 1h".into());
    }
    Ok(Duration::from_secs(timeout.as_secs()))
}

/// A lease ttl: at most an hour (a standby waits at most that long for a
/// lease that stopped changing).
fn parse_lease_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration_arg(text)?;
    if ttl > crate::swarm::lease::MAX_LEASE_TTL || ttl < Duration::from_secs(2) {
        return Err("the lease ttl must be between 2s and 1h".into());
    }
    Ok(ttl)
}

fn parse_holder(text: &str) -> Result<String, String> {
    crate::swarm::lease::valid_holder(text).map_err(|e| e.to_string())?;
    Ok(text.to_string())
}

/// Everything that can stop a command; each prints as one actionable message.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The spec cannot be read or is invalid (every problem, with file:line:col).
    #[error(transparent)]
    Spec(#[from] LoadError),
    /// Loading the spec outgrew the limits of the child that tried first.
    #[error("loading the spec was stopped ({reason}); a spec loads in far less than {} MiB and {} s of CPU: look for a chart template that grows without bound", crate::sandbox::MEMORY_LIMIT / (1024 * 1024), crate::sandbox::CPU_LIMIT.as_secs())]
    Stopped { reason: String },
    /// `--verify-signatures` names a file that cannot be used.
    #[error(transparent)]
    Signers(#[from] crate::source::signature::SignersError),
    /// `--policy` names a file that cannot be used.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The spec asks for what `--policy` denies (each line says what and why).
    #[error("the spec asks for what {file} denies:\n  {}", .refusals.join("\n  "))]
    Denied {
        file: PathBuf,
        refusals: Vec<String>,
    },
    /// Docker is unreachable, not a manager, or refused a call.
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    /// The planner refused for safety (mass delete, quorum, not ours, ...).
    #[error("cannot plan: {0}")]
    Plan(#[from] crate::plan::PlanError),
    /// The plan deletes more than the guard allows: the refusal, then the
    /// plan it refused (as `plan` would print it), so a person sees what
    /// would have gone before allowing it.
    #[error("cannot plan: {source}\n\nThe plan refused:\n{plan}")]
    Refused {
        plan: String,
        source: Box<crate::plan::PlanError>,
    },
    /// A write failed or a service did not converge; earlier writes stay.
    #[error("apply failed: {0}")]
    Apply(#[from] ApplyError),
    /// Pre-flight found what would fail (each is listed above the error).
    #[error("pre-flight found {count} blocker(s) ({}): apply refuses them; fix them as each says, or pass --allow-preflight {} to apply anyway", .checks.join(", "), .checks.join(","))]
    Preflight { count: usize, checks: Vec<String> },
    /// `apply` without `--auto-approve` and nobody at a terminal to ask.
    #[error(
        "refusing to apply without confirmation: stdin is not a terminal; pass --auto-approve"
    )]
    NoTerminal,
    /// stdout or stderr is gone.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The plan could not be written as JSON (a bug).
    #[error("cannot encode the plan as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `run` could not start (its listen address, its webhook secret).
    #[error(transparent)]
    Run(#[from] crate::runtime::RunError),
    /// The boards cannot be planned, or no swarm exists after their steps.
    #[error(transparent)]
    Provision(#[from] crate::node::provision::ProvisionError),
    /// `init` wrote nothing.
    #[error(transparent)]
    Init(#[from] crate::init::InitError),
    /// `firstboot` wrote nothing.
    #[error(transparent)]
    Firstboot(#[from] crate::firstboot::FirstbootError),
    /// `install` or `uninstall` failed on the board.
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    /// `run` without `--dir` or `--git` (clap asks for one: only a caller
    /// building `RunArgs` by hand gets here).
    #[error("run needs a spec to follow: --dir PATH or --git URL")]
    NoSource,
    /// A git URL fetched without encryption from another machine: whoever
    /// is on the path serves the spec, which is root on every board.
    #[error("{url} is fetched without encryption: anyone on the path could serve the spec, and the spec is root on every board. Use an https:// or ssh:// URL, or pass --allow-plaintext-git if the network between here and the server is yours")]
    PlaintextGit {
        /// The URL, credentials removed.
        url: String,
    },
    /// `install --git` with credentials in the URL: they would be in the
    /// board's run script and in `ps`.
    #[error("{url} carries credentials, which would be written into the board's run script and shown by `ps`; pass the URL without them and the password with --git-password-file (user with --git-username), or use an ssh:// URL with --git-ssh-key")]
    CredentialsInUrl {
        /// The URL, credentials removed.
        url: String,
    },
    /// `plan --ssh`/`apply --ssh` reached none of the spec's boards: nothing
    /// about the boards or the swarm is known, so nothing is planned.
    #[error("none of the spec's {count} board(s) could be reached over SSH, so nothing was planned:\n  {}", .problems.join("\n  "))]
    NoBoardReached {
        count: usize,
        /// One line per distinct problem, naming the boards it hit.
        problems: Vec<String>,
    },
    /// Some boards answered but no manager did: the swarm was not looked at.
    #[error("no manager of the spec answered ({}: why is above), so the swarm was not looked at and nothing was done; the boards' part above is all that is known", .managers.join(", "))]
    NoManagerReached { managers: Vec<String> },
    /// `upgrade` stopped at a board (it stays drained and marked).
    #[error("upgrade stopped: {0}")]
    Maintenance(crate::maintenance::MaintenanceError),
    /// `upgrade` may not start (a board unreached, quorum, nowhere to go).
    #[error("upgrade refused: {0}")]
    UpgradeOrder(#[from] crate::maintenance::order::OrderError),
    /// Another controller holds the cluster's one-writer lease.
    #[error("{holder} holds the cluster's one-writer lease: stop it while the boards are upgraded, or wait until it lets go")]
    LeaseHeld { holder: String },
    /// `run --apply-timeout` must stay below `--lease-ttl`.
    #[error("--apply-timeout ({apply_timeout:?}) must be shorter than --lease-ttl ({lease_ttl:?}): a writer must not outlive its lease")]
    LeaseTooShort {
        apply_timeout: Duration,
        lease_ttl: Duration,
    },
}

impl From<PlanningError> for CliError {
    fn from(error: PlanningError) -> Self {
        match error {
            PlanningError::Docker(error) => CliError::Swarm(error),
            PlanningError::Plan(error) => CliError::Plan(error),
            PlanningError::Refused { plan, source } => CliError::Refused {
                plan: crate::plan::render::text(&plan),
                source: Box::new(source),
            },
        }
    }
}

/// Where a command's text goes, and how it asks the user.
pub struct Console<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// How long work shows its progress on stderr.
    pub progress: ProgressStyle,
    /// Answers to confirmation prompts; `None` when stdin is not a terminal.
    pub input: Option<&'a mut dyn BufRead>,
}

impl std::fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("interactive", &self.input.is_some())
            .finish()
    }
}

/// Runs one command and returns the process exit code.
pub async fn run(cli: Cli, console: &mut Console<'_>) -> u8 {
    let keyring = match Keyring::from_env(cli.age_identity_file.as_deref()) {
        Ok(keyring) => keyring,
        Err(error) => {
            let _ = writeln!(console.err, "Error: {error}");
            return 1;
        }
    };
    // On a terminal, compose files read the process environment as
    // `docker stack deploy` does; `run` only what `--allow-env` names.
    let terminal = LoadOptions {
        keyring,
        environment: Environment::Process,
    };
    let result = match cli.command {
        Command::Validate { dir } => spec::validate(&dir, &terminal, console),
        Command::Render { dir } => spec::render(&dir, &terminal, console),
        Command::Facts(args) => boards::facts(args, &terminal, console).await,
        Command::Plan(args) => swarm::plan(args, &terminal, console).await,
        Command::Apply(args) => swarm::apply(args, &terminal, console).await,
        Command::Install(args) => {
            boards::install(*args, cli.age_identity_file, &terminal, console).await
        }
        Command::Uninstall(args) => boards::uninstall(args, &terminal, console).await,
        Command::Init {
            dir,
            cluster,
            nodes,
            user,
        } => spec::init(&dir, &cluster, &nodes, user.as_deref(), console),
        Command::Firstboot(args) => spec::firstboot(&args, &terminal, console),
        Command::Upgrade(args) => upgrade::upgrade(args, &terminal, console).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "reconciler", &mut console.out);
            Ok(0)
        }
        Command::Run(args) => {
            let load = LoadOptions {
                environment: Environment::allowing(&args.allow_env),
                keyring: terminal.keyring,
            };
            run::run(*args, load).await
        }
    };
    match result {
        Ok(code) => code,
        Err(CliError::Spec(LoadError::Invalid(diagnostics))) => {
            let _ = writeln!(console.err, "{diagnostics}");
            1
        }
        Err(error) => {
            let _ = writeln!(console.err, "Error: {error}");
            1
        }
    }
}

/// Loads and validates a spec; its warnings (compose keys Swarm ignores, ...) go to `err`.
/// The files are loaded in a limited child process first, as `run` loads
/// each revision ([`crate::sandbox`]): a spec whose charts ask for
/// gigabytes is refused instead of aborting the command.
fn load(dir: &Path, load_options: &LoadOptions, err: &mut dyn Write) -> Result<Spec, CliError> {
    let files = reconciler_spec::read_dir_files(dir)?;
    let environment = match &load_options.environment {
        Environment::Only(allowed) => allowed.clone(),
        Environment::Process => std::env::vars().collect(),
    };
    match crate::sandbox::check(&files, &environment) {
        Err(crate::sandbox::SandboxError::Exceeded { reason }) => {
            return Err(CliError::Stopped { reason })
        }
        // No child here (an emulator that cannot start the binary again):
        // the load runs as it always did.
        Err(error) => tracing::debug!(%error, "loading without the limited child"),
        Ok(()) => {}
    }
    let spec = reconciler_spec::load_files_with(files, load_options)?;
    tracing::debug!(services = spec.services.len(), "loaded the spec");
    for warning in &spec.warnings {
        writeln!(err, "{warning}")?;
    }
    Ok(spec)
}

/// Judges a spec that `plan` or `apply` is about to act on by `--policy`:
/// what it denies refuses the spec; the powers it allows that make push
/// access root on the boards go to `err` as warnings and are returned (for
/// `--json`). The controller's files named here are this user's SSH files.
fn judge(spec: &Spec, policy: &PolicyArgs, err: &mut dyn Write) -> Result<Vec<String>, CliError> {
    let loaded = policy.load()?;
    let protected = [
        crate::node::expand_home(&spec.ssh.identity),
        crate::node::expand_home(&spec.ssh.known_hosts),
    ];
    let verdict = crate::policy::judge(spec, loaded.as_ref(), &protected);
    if let (false, Some(file)) = (verdict.refusals.is_empty(), &policy.file) {
        return Err(CliError::Denied {
            file: file.clone(),
            refusals: verdict.refusals,
        });
    }
    for warning in &verdict.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    Ok(verdict.warnings)
}
