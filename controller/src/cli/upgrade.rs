//! `upgrade`: the boards' systems upgraded one at a time (`maintenance`),
//! under the cluster's one-writer lease.

use std::time::Duration;

use reconciler_spec::Role;

use super::{judge, load, CliError, Console, LoadOptions, UpgradeArgs};
use crate::maintenance::order::{self, Order, Reason};
use crate::maintenance::rolling::{placed_tasks, Rolling};
use crate::maintenance::{MaintenanceError, SwarmLink};
use crate::node::fleet::{Fleet, DEFAULT_FACTS_MAX_AGE};
use crate::observed::LocalSwarm;
use crate::swarm::lease::{LeaseClock, LeaseKeeper, LeaseState};
use crate::swarm::Swarm;

/// How long the upgrade's hold on the lease lasts between renewals.
const LEASE_TTL: Duration = Duration::from_secs(30);

pub(super) async fn upgrade(
    args: UpgradeArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let spec = load(&args.dir, load_options, console.err)?;
    judge(&spec, &args.policy, console.err)?;
    let access = args.access.access(None);
    let mut fleet = Fleet::new(DEFAULT_FACTS_MAX_AGE).counting_updates();
    let looked = fleet.look(&spec, access.ssh, access.parallel).await;
    let managers: Vec<String> = spec
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager)
        .filter(|n| {
            looked
                .facts
                .get(&n.name)
                .is_some_and(|f| matches!(f.local_swarm(), Some(LocalSwarm::Active { .. })))
        })
        .map(|n| n.name.clone())
        .collect();
    let host = fleet
        .docker_host(&managers)
        .ok_or(crate::node::provision::ProvisionError::NoSwarm)?;
    let swarm = Swarm::connect(&host, &spec.cluster.name, args.docker.docker_timeout).await?;
    let observed = swarm.observe(crate::observed::ServiceScope::All).await?;
    let placed = placed_tasks(&swarm, &observed).await?;
    let order = order::order(&spec, &observed, &looked.facts, &placed, &args.nodes);
    // A board rebooting in a cut-off upgrade does not answer: it is waited for.
    let waited: Vec<&str> = order
        .as_ref()
        .map(|o| {
            o.batches
                .iter()
                .flatten()
                .map(|t| t.node.as_str())
                .collect()
        })
        .unwrap_or_default();
    for failure in &looked.failures {
        let (board, _) = failure.board_and_problem();
        if !waited.contains(&board.as_str()) {
            writeln!(console.err, "Error: {failure}")?;
        }
    }
    let order = order?;
    show(&order, &spec, console)?;
    if order.batches.is_empty() {
        return Ok(0);
    }
    if !args.auto_approve && !super::swarm::confirm(console)? {
        writeln!(console.err, "Upgrade cancelled.")?;
        return Ok(1);
    }
    let holder = format!("upgrade@{}", crate::runtime::default_holder());
    let clock = take_lease(&swarm, &holder, console).await?;
    let link = std::sync::Arc::new(SwarmLink::new(
        swarm.clone(),
        &spec.cluster.name,
        args.docker.docker_timeout,
    ));
    let current = std::sync::Arc::clone(&link);
    let keeper = LeaseKeeper::start_recovering(
        std::sync::Arc::new(move || current.get()),
        holder.clone(),
        LEASE_TTL,
        clock,
    );
    let rolling = Rolling {
        spec: &spec,
        link: &link,
        sessions: &looked.sessions,
        ssh: access.ssh,
        lease: keeper.guard(),
        progress: super::swarm::stderr_progress(super::ProgressStyle::Plain),
    };
    let result = rolling.take(&order.batches).await;
    let clock = keeper.stop().await;
    let _ = link.get().release_lease(&holder, &clock).await;
    result?;
    let upgraded: usize = order.batches.iter().map(Vec::len).sum();
    writeln!(
        console.out,
        "\nUpgrade complete: {upgraded} board(s) upgraded."
    )?;
    Ok(0)
}

/// Takes the one-writer lease, waiting while a holder that stopped renewing
/// it (a killed upgrade) runs out; a holder that keeps it (a running
/// controller) is an error.
async fn take_lease(
    swarm: &Swarm,
    holder: &str,
    console: &mut Console<'_>,
) -> Result<LeaseClock, CliError> {
    let mut clock = LeaseClock::default();
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match swarm.acquire_lease(holder, LEASE_TTL, &mut clock).await? {
            LeaseState::Held => return Ok(clock),
            // A standby takes a lease once it saw it unchanged for its ttl
            // (at most a few minutes): longer, and it is being renewed.
            LeaseState::HeldBy { holder } if started.elapsed() > Duration::from_secs(300) => {
                return Err(CliError::LeaseHeld { holder })
            }
            LeaseState::HeldBy { holder } => {
                if !said {
                    writeln!(console.err, "Waiting for the one-writer lease held by {holder} (taken once it has gone unrenewed for its ttl)...")?;
                    said = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The order as a person reads it.
fn show(
    order: &Order,
    spec: &reconciler_spec::Spec,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let maintenance = &spec.maintenance;
    let reboot = match maintenance.reboot {
        reconciler_spec::RebootPolicy::WhenRequired => "reboot when required",
        reconciler_spec::RebootPolicy::Always => "reboot",
        reconciler_spec::RebootPolicy::Never => "no reboot",
    };
    if order.batches.is_empty() {
        writeln!(
            console.out,
            "Nothing to upgrade: every board is up to date."
        )?;
    } else {
        writeln!(
            console.out,
            "Upgrade, one step after the other (workers {} at a time, managers one at a time):",
            maintenance.max_unavailable
        )?;
    }
    for (step, batch) in order.batches.iter().enumerate() {
        for turn in batch {
            let why = match &turn.reason {
                Reason::Resume(stage) => format!("resuming at {}", stage.as_str()),
                Reason::Updates(n) => format!("{n} package(s) to upgrade"),
                Reason::RebootPending => "a reboot is pending".to_string(),
                Reason::Asked => "asked for".to_string(),
            };
            writeln!(
                console.out,
                "  {}. node.{} ({}): {why} → drain, upgrade, {reboot}, back",
                step + 1,
                turn.node,
                turn.role.as_str()
            )?;
        }
    }
    if !order.up_to_date.is_empty() {
        writeln!(console.out, "Up to date: {}.", order.up_to_date.join(", "))?;
    }
    Ok(())
}

impl From<MaintenanceError> for CliError {
    fn from(error: MaintenanceError) -> Self {
        CliError::Maintenance(error)
    }
}
