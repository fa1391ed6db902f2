//! Commands on the spec alone: `validate`, `render`, `init`, `firstboot`. No Docker, no board.

use std::path::Path;

use reconciler_spec::LoadOptions;

use super::{load, CliError, Console};

pub(super) fn validate(
    dir: &Path,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let spec = load(dir, load_options, console.err)?;
    writeln!(
        console.out,
        "Spec is valid: cluster `{}`, {}, {}, {}.",
        spec.cluster.name,
        counted(spec.nodes.len(), "node"),
        counted(spec.networks.len(), "network"),
        counted(spec.services.len(), "service")
    )?;
    Ok(0)
}

/// "1 node", "2 nodes".
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub(super) fn render(
    dir: &Path,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let spec = load(dir, load_options, console.err)?;
    write!(console.out, "{}", reconciler_spec::render::to_toml(&spec))?;
    Ok(0)
}

pub(super) fn init(
    dir: &Path,
    cluster: &str,
    nodes: &[crate::init::NodeArg],
    user: Option<&str>,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let here = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    let user = crate::init::LoginUser::choose(user, here.as_deref());
    let written = crate::init::init(dir, cluster, nodes, &user)?;
    for path in &written {
        writeln!(console.out, "wrote {}", path.display())?;
    }
    writeln!(
        console.out,
        "The boards are logged in as `{}`: {}.",
        user.name, user.source
    )?;
    writeln!(
        console.out,
        "Next: `reconciler validate {dir}`, then `reconciler facts {dir}` and `reconciler plan {dir} --ssh` (see {dir}/README.md).",
        dir = dir.display()
    )?;
    Ok(0)
}

pub(super) fn firstboot(
    args: &super::FirstbootArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    use crate::firstboot::{Addressing, Destination, Options, Release};
    let spec = load(&args.dir, load_options, console.err)?;
    let destination = match (&args.boot, &args.out) {
        (Some(boot), _) => Destination::Card(boot.clone()),
        (None, Some(out)) => Destination::Folder(out.clone()),
        // clap requires one of the two.
        (None, None) => Destination::Folder(".".into()),
    };
    let options = Options {
        nodes: args.nodes.clone(),
        destination,
        addressing: match args.gateway {
            None => Addressing::Dhcp,
            Some(gateway) => Addressing::Static {
                prefix: args.prefix,
                gateway,
                dns: args.dns.clone(),
            },
        },
        timezone: args
            .timezone
            .clone()
            .or_else(crate::firstboot::this_computers_timezone),
        authorized_key: args.authorized_key.clone(),
        release: match args.release {
            super::ReleaseArg::Trixie => Release::Trixie,
            super::ReleaseArg::Bookworm => Release::Bookworm,
        },
    };
    let report = crate::firstboot::firstboot(&spec, &options)?;
    for board in &report.boards {
        let files: Vec<String> = board
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        writeln!(console.out, "{}: wrote {}", board.node, files.join(", "))?;
        let known = if board.recorded {
            "recorded in"
        } else {
            "already in"
        };
        writeln!(
            console.out,
            "{}: host key {} {known} {}",
            board.node,
            board.fingerprint,
            board.known_hosts.display()
        )?;
    }
    what_is_next(&report, options.release, &args.dir, console)?;
    Ok(0)
}

/// What `firstboot` did to cmdline.txt, and the person's next steps.
fn what_is_next(
    report: &crate::firstboot::Report,
    release: crate::firstboot::Release,
    dir: &std::path::Path,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    use crate::firstboot::{MemoryCgroup, Release};
    let options_text = crate::firstboot::cmdline::MEMORY_CGROUP.join(" ");
    let bookworm = release == Release::Bookworm;
    let to_add = crate::firstboot::cmdline_options(release).join(" ");
    match &report.memory_cgroup {
        MemoryCgroup::Enabled(path) => writeln!(
            console.out,
            "{}: added `{options_text}` (memory limits work only with it)",
            path.display()
        )?,
        MemoryCgroup::AlreadyOn(path) => writeln!(
            console.out,
            "{}: already turns the memory cgroup on",
            path.display()
        )?,
        MemoryCgroup::ToAdd if bookworm => writeln!(
            console.out,
            "On each card, add ` {to_add}` to the end of the one line of cmdline.txt, in this order (memory limits work only with the first two; the rest runs firstrun.sh once), or run again with --boot on the mounted card."
        )?,
        MemoryCgroup::ToAdd => writeln!(
            console.out,
            "On each card, add ` {to_add}` to the end of the one line of cmdline.txt (memory limits work only with it), or run again with --boot on the mounted card."
        )?,
    }
    if bookworm && !matches!(report.memory_cgroup, MemoryCgroup::ToAdd) {
        writeln!(
            console.out,
            "cmdline.txt runs firstrun.sh once at the first boot, which then takes itself out and reboots."
        )?;
    }
    let (secret_file, card_files) = if bookworm {
        ("firstrun.sh", "firstrun.sh and ssh")
    } else {
        ("user-data", "user-data, meta-data and network-config")
    };
    writeln!(
        console.out,
        "{secret_file} holds the board's SSH host key: keep these files private, and the card's boot partition with them."
    )?;
    if matches!(report.memory_cgroup, MemoryCgroup::ToAdd) {
        writeln!(
            console.out,
            "Next: copy each board's {card_files} onto its card's boot partition (`bootfs`), start the boards, then `reconciler apply {} --ssh`.",
            dir.display()
        )?;
    } else {
        writeln!(
            console.out,
            "Next: eject the card, start the board, then `reconciler apply {} --ssh`.",
            dir.display()
        )?;
    }
    Ok(())
}
