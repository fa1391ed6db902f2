//! `plan` and `apply`: the boards (with `--ssh`), then the swarm, shown
//! before anything is written.

use reconciler_spec::{LoadOptions, Spec};

use super::{load, ApplyArgs, CliError, ConnectArgs, Console, PlanArgs, ProgressStyle};
use crate::apply::ApplyOptions;
use crate::node::fleet::{Fleet, DEFAULT_FACTS_MAX_AGE};
use crate::node::provision::{BoardWork, Provisioned};
use crate::pipeline::{self, Reach, Reached};
use crate::plan::{render, Plan, PlanOptions};
use crate::swarm::{Swarm, SwarmError};

/// What `plan` and `apply` show before deciding: the spec, where the swarm
/// is (after planning the boards), and its plan when a swarm exists.
struct Prepared {
    spec: Spec,
    reach: Reach,
    reached: Reached,
    /// `None` while no swarm exists yet (only the boards can be planned).
    planned: Option<(Swarm, Plan)>,
    /// Why the swarm could not be planned while boards still need steps: the
    /// steps may be what brings it back (a manager's Docker to start after a
    /// power cut), so they come first and the swarm is planned after them.
    deferred: Option<SwarmError>,
    /// The boards' sessions and the Docker tunnel (with `--ssh`), open until the command ends.
    fleet: Fleet,
}

impl ConnectArgs {
    fn reach(&self) -> Reach {
        self.boards.reach(&self.docker)
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            allow_mass_delete: self.allow_mass_delete,
            manage_membership: self.boards.ssh,
        }
    }
}

/// Progress goes to the process's stderr as it happens: bars on a
/// terminal, plain lines elsewhere.
fn stderr_progress(style: ProgressStyle) -> crate::progress::SharedProgress {
    match style {
        ProgressStyle::Bars => std::sync::Arc::new(std::sync::Mutex::new(
            crate::progress::Bars::new(std::io::stderr(), crate::progress::terminal_width()),
        )),
        ProgressStyle::Plain => std::sync::Arc::new(std::sync::Mutex::new(
            crate::progress::Lines::new(std::io::stderr()),
        )),
    }
}

/// Loads the spec (before any Docker call or SSH connection), learns what the
/// boards need (with `--ssh`), connects to a manager, observes and plans.
async fn prepare(
    args: &ConnectArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<Prepared, CliError> {
    let spec = load(&args.dir, load_options, console.err)?;
    let reach = args.reach();
    let mut fleet = Fleet::new(DEFAULT_FACTS_MAX_AGE);
    let reached = pipeline::reach(
        &spec,
        &reach,
        &mut fleet,
        BoardWork::PlanOnly,
        stderr_progress(console.progress),
    )
    .await?;
    let mut deferred = None;
    let planned = match &reached.docker_host {
        Some(host) => match plan_swarm(host, &spec, &reached, args).await {
            Ok(planned) => Some(planned),
            Err(CliError::Swarm(error)) if reached.board_work() => {
                deferred = Some(error);
                None
            }
            Err(error) => return Err(error),
        },
        None => None,
    };
    Ok(Prepared {
        spec,
        reach,
        reached,
        planned,
        deferred,
        fleet,
    })
}

async fn plan_swarm(
    host: &str,
    spec: &Spec,
    reached: &Reached,
    args: &ConnectArgs,
) -> Result<(Swarm, Plan), CliError> {
    let swarm = Swarm::connect(host, &spec.cluster.name, args.docker.docker_timeout).await?;
    let (_, plan) =
        pipeline::observe_and_plan(&swarm, spec, &reached.identities(), args.plan_options())
            .await?;
    Ok((swarm, plan))
}

pub(super) async fn plan(
    args: PlanArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let prepared = prepare(&args.connect, load_options, console).await?;
    let empty = Plan::default();
    let plan = prepared.planned.as_ref().map_or(&empty, |(_, plan)| plan);
    if args.json {
        let document = render::plan_document(
            plan,
            &prepared.spec.warnings,
            prepared
                .reached
                .boards
                .as_ref()
                .map(Provisioned::part)
                .as_ref(),
            prepared.planned.is_some(),
        );
        serde_json::to_writer_pretty(&mut *console.out, &document)?;
        writeln!(console.out)?;
    } else {
        if let Some(boards) = &prepared.reached.boards {
            write!(console.out, "{}", render::boards_text(&boards.part()))?;
            if prepared.planned.is_none() && prepared.deferred.is_none() {
                writeln!(console.out, "The swarm does not exist yet: its changes are planned once the boards have formed it.")?;
            }
        }
        if prepared.planned.is_some() {
            write!(console.out, "{}", render::text(plan))?;
        }
    }
    if let Some(error) = prepared.deferred {
        // The boards' steps are shown; the swarm itself cannot be planned now.
        return Err(error.into());
    }
    let changes = !plan.is_empty() || prepared.reached.board_work() || prepared.planned.is_none();
    Ok(if args.detailed_exitcode && changes {
        2
    } else {
        0
    })
}

pub(super) async fn apply(
    args: ApplyArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let prepared = prepare(&args.connect, load_options, console).await?;
    if let Some(boards) = &prepared.reached.boards {
        write!(console.out, "{}", render::boards_text(&boards.part()))?;
    }
    if let Some((_, plan)) = &prepared.planned {
        write!(console.out, "{}", render::text(plan))?;
    }
    let unreachable = prepared
        .reached
        .boards
        .as_ref()
        .map_or(0, |b| b.failures.len());
    let swarm_work = prepared
        .planned
        .as_ref()
        .is_none_or(|(_, plan)| !plan.is_empty());
    if !swarm_work && !prepared.reached.board_work() {
        return Ok(u8::from(unreachable > 0));
    }
    if prepared.spec.controller.suspend {
        writeln!(
            console.out,
            "\nNot applying: the spec sets [controller] suspend = true."
        )?;
        return Ok(0);
    }
    if !args.auto_approve && !confirm(console)? {
        writeln!(console.out, "Apply cancelled.")?;
        return Ok(1);
    }
    // `after` is honoured even with --no-wait: only the final wait is skipped.
    let options = ApplyOptions {
        wait: true,
        wait_at_end: !args.no_wait,
        timeout: args.timeout,
        ..ApplyOptions::default()
    };
    let Prepared {
        spec,
        reach,
        reached,
        planned,
        deferred,
        mut fleet,
    } = prepared;
    if let Some(error) = &deferred {
        writeln!(
            console.err,
            "The swarm cannot be planned yet ({error}); doing the boards' steps first."
        )?;
    }
    let mut failures = 0;
    let (swarm, plan) = match planned {
        Some((swarm, plan)) if !reached.board_work() => (swarm, plan),
        _ => {
            // Bootstrap for real, then plan the swarm as it now is.
            let (swarm, plan, board_failures) =
                boards_then_swarm(&spec, &reach, &mut fleet, &args.connect, console).await?;
            failures += board_failures;
            (swarm, plan)
        }
    };
    let report = match console.progress {
        ProgressStyle::Bars => {
            let mut bars = stderr_progress(ProgressStyle::Bars);
            pipeline::execute(&swarm, &plan, &spec, &reach, options, &mut bars).await?
        }
        ProgressStyle::Plain => {
            let mut lines = crate::progress::Lines::new(&mut *console.err);
            pipeline::execute(&swarm, &plan, &spec, &reach, options, &mut lines).await?
        }
    };
    let summary = plan.summary();
    writeln!(
        console.out,
        "\nApply complete! Resources: {} added, {} changed, {} destroyed. ({} Docker write calls)",
        summary.add, summary.change, summary.destroy, report.writes
    )?;
    if failures > 0 {
        writeln!(console.err, "Error: {failures} board(s) could not be brought in; see above. The next apply retries them.")?;
        return Ok(1);
    }
    Ok(0)
}

/// `apply --ssh` with board work: the boards' steps for real, then the swarm
/// planned as it now is. Returns how many boards failed (reported on stderr).
async fn boards_then_swarm(
    spec: &Spec,
    reach: &Reach,
    fleet: &mut Fleet,
    connect: &ConnectArgs,
    console: &mut Console<'_>,
) -> Result<(Swarm, Plan, usize), CliError> {
    let done = pipeline::reach(
        spec,
        reach,
        fleet,
        BoardWork::Do,
        stderr_progress(console.progress),
    )
    .await?;
    let board_failures = done.boards.as_ref().map_or(&[][..], |b| &b.failures[..]);
    for failure in board_failures {
        writeln!(console.err, "Error: {failure}")?;
    }
    let host = done
        .docker_host
        .clone()
        .ok_or(crate::node::provision::ProvisionError::NoSwarm)?;
    let swarm = Swarm::connect(&host, &spec.cluster.name, connect.docker.docker_timeout).await?;
    let (_, plan) =
        pipeline::observe_and_plan(&swarm, spec, &done.identities(), connect.plan_options())
            .await?;
    if !plan.is_empty() {
        write!(
            console.out,
            "\nSwarm changes after bootstrapping:\n{}",
            render::text(&plan)
        )?;
    }
    Ok((swarm, plan, board_failures.len()))
}

fn confirm(console: &mut Console<'_>) -> Result<bool, CliError> {
    let Some(input) = console.input.as_mut() else {
        return Err(CliError::NoTerminal);
    };
    write!(
        console.out,
        "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    )?;
    console.out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
