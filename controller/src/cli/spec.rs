//! Commands on the spec alone: `validate`, `render`, `init`. No Docker, no board.

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
