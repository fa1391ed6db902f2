//! `plan` and `apply`: the boards (with `--ssh`), then the swarm, shown
//! before anything is written.

use reconciler_spec::{LoadOptions, ServiceMode, Spec};

use super::{judge, load, ApplyArgs, CliError, ConnectArgs, Console, PlanArgs, ProgressStyle};
use crate::apply::ApplyOptions;
use crate::node::fleet::{Fleet, DEFAULT_FACTS_MAX_AGE};
use crate::node::provision::Provisioned;
use crate::observed::Unconverged;
use crate::pipeline::{self, FirstLook, LookOnly, Reached};
use crate::plan::{render, ObjectKind, Plan, PlanOptions};
use crate::swarm::{EarlyServices, Swarm, SwarmError};

use super::preflight::Preflight;

/// `plan --json`: the plan document and, when a swarm was planned, what
/// pre-flight found.
#[derive(serde::Serialize)]
struct PlanOutput<'a> {
    #[serde(flatten)]
    document: render::PlanDocument<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preflight: Option<&'a Preflight>,
}

/// The swarm as planned after the boards were looked at.
struct Planned {
    /// `None` while no swarm exists yet (only the boards can be planned).
    swarm: Option<(Swarm, Plan)>,
    /// What will fail on these boards, found before anything is written.
    preflight: Preflight,
    /// Why the swarm could not be planned while boards still need steps: the
    /// steps may be what brings it back (a manager's Docker to start after a
    /// power cut), so they come first and the swarm is planned after them.
    deferred: Option<SwarmError>,
}

/// Plans the swarm where a manager answered when the boards were looked at.
async fn plan_after_look(
    spec: &Spec,
    looked: &Reached,
    args: &ConnectArgs,
    early: Option<EarlyServices>,
) -> Result<Planned, CliError> {
    let Some(host) = &looked.docker_host else {
        return Ok(Planned {
            swarm: None,
            preflight: Preflight::default(),
            deferred: None,
        });
    };
    match plan_swarm(host, spec, looked, args, early).await {
        Ok((swarm, plan, preflight)) => Ok(Planned {
            swarm: Some((swarm, plan)),
            preflight,
            deferred: None,
        }),
        Err(CliError::Swarm(error)) if looked.board_work() => Ok(Planned {
            swarm: None,
            preflight: Preflight::default(),
            deferred: Some(error),
        }),
        Err(error) => Err(error),
    }
}

impl ConnectArgs {
    fn reach(&self) -> crate::pipeline::Reach {
        self.boards.reach(&self.docker)
    }

    /// Starts asking for the managed services while the spec loads, when
    /// the swarm is reached by its socket (with `--ssh` the boards say
    /// where it is).
    fn early_services(&self) -> Option<EarlyServices> {
        match self.reach() {
            crate::pipeline::Reach::Socket(host) => {
                EarlyServices::start(&host, self.docker.docker_timeout)
            }
            crate::pipeline::Reach::Boards(_) => None,
        }
    }

    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            allow_mass_delete: self.allow_mass_delete,
            manage_membership: self.boards.ssh,
            allow_other_swarm: self.docker.allow_other_swarm,
        }
    }
}

/// Progress goes to the process's stderr as it happens: bars on a
/// terminal, plain lines elsewhere.
pub(super) fn stderr_progress(style: ProgressStyle) -> crate::progress::SharedProgress {
    match style {
        ProgressStyle::Bars => std::sync::Arc::new(std::sync::Mutex::new(
            crate::progress::Bars::new(std::io::stderr(), crate::progress::terminal_width()),
        )),
        ProgressStyle::Plain => std::sync::Arc::new(std::sync::Mutex::new(
            crate::progress::Lines::new(std::io::stderr()),
        )),
    }
}

async fn plan_swarm(
    host: &str,
    spec: &Spec,
    reached: &Reached,
    args: &ConnectArgs,
    early: Option<EarlyServices>,
) -> Result<(Swarm, Plan, Preflight), CliError> {
    let (cluster, timeout) = (&spec.cluster.name, args.docker.docker_timeout);
    let swarm = match args.reach() {
        crate::pipeline::Reach::Socket(_) => Swarm::connect_local(host, cluster, timeout).await?,
        crate::pipeline::Reach::Boards(_) => Swarm::connect(host, cluster, timeout).await?,
    };
    let (observed, plan) = pipeline::observe_and_plan(
        &swarm,
        spec,
        &reached.identities(),
        args.plan_options(),
        FirstLook::Managed(early),
    )
    .await?;
    let preflight = Preflight::gather(&swarm, spec, &observed, &plan, reached).await;
    Ok((swarm, plan, preflight))
}

pub(super) async fn plan(
    args: PlanArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let early = args.connect.early_services();
    let spec = load(&args.connect.dir, load_options, console.err)?;
    let granted = judge(&spec, &args.connect.policy, console.err)?;
    let mut fleet = Fleet::new(DEFAULT_FACTS_MAX_AGE);
    // With a window, the plan says which boards `run` will upgrade in it.
    if spec.maintenance.window.is_some() {
        fleet = fleet.counting_updates();
    }
    let looked = pipeline::boards(
        &spec,
        &args.connect.reach(),
        &mut fleet,
        stderr_progress(console.progress),
        &mut LookOnly,
    )
    .await?
    .now();
    let contact = Contact::of(&spec, &looked);
    let planned = match contact {
        Contact::NoBoard => Planned {
            swarm: None,
            preflight: Preflight::default(),
            deferred: None,
        },
        _ => plan_after_look(&spec, &looked, &args.connect, early).await?,
    };
    let empty = Plan::default();
    let plan = planned.swarm.as_ref().map_or(&empty, |(_, plan)| plan);
    let unconverged = match &planned.swarm {
        Some((swarm, plan)) => not_converged(swarm, &spec, plan).await?,
        None => Vec::new(),
    };
    // What the exit code says and `changed` in --json says, alike.
    let changes = !plan.is_empty() || looked.board_work() || !unconverged.is_empty();
    if args.json {
        let mut document = render::plan_document(
            plan,
            spec.warnings.iter().map(ToString::to_string).chain(granted),
            looked.boards.as_ref().map(Provisioned::part).as_ref(),
            planned.swarm.is_some(),
        );
        document.plan.changed = changes;
        document.not_converged = unconverged;
        let output = PlanOutput {
            document,
            preflight: planned.swarm.as_ref().map(|_| &planned.preflight),
        };
        serde_json::to_writer_pretty(&mut *console.out, &output)?;
        writeln!(console.out)?;
    } else if contact != Contact::NoBoard {
        if let Some(boards) = &looked.boards {
            write!(console.out, "{}", render::boards_text(&boards.part()))?;
            if planned.swarm.is_none() && planned.deferred.is_none() && contact == Contact::Manager
            {
                writeln!(console.out, "No manager is in a swarm yet: the swarm's changes are planned once the boards have formed it.")?;
            }
        }
        if planned.swarm.is_some() {
            if !plan.is_empty() || unconverged.is_empty() {
                write!(console.out, "{}", render::text(plan))?;
            }
            if !unconverged.is_empty() {
                write!(
                    console.out,
                    "{}",
                    render::unconverged_text(plan, &unconverged)
                )?;
            }
            write!(console.out, "{}", planned.preflight.text())?;
        }
    }
    if let Some(error) = planned.deferred {
        // The boards' steps are shown; the swarm itself cannot be planned now.
        return Err(error.into());
    }
    contact.result(&spec, &looked)?;
    planned.preflight.refusal(&args.connect.allow_preflight)?;
    Ok(if args.detailed_exitcode && changes {
        2
    } else {
        0
    })
}

/// The spec's services the plan leaves alone that do not run as many tasks
/// as they should (a failed rollout, an image that cannot be pulled): with
/// those, `plan` must not say the swarm matches the spec. Jobs are left
/// out: their tasks end by design.
async fn not_converged(
    swarm: &Swarm,
    spec: &Spec,
    plan: &Plan,
) -> Result<Vec<Unconverged>, CliError> {
    let touched: std::collections::BTreeSet<&str> = plan
        .actions
        .iter()
        .filter(|a| a.kind() == ObjectKind::Service)
        .map(|a| a.name())
        .collect();
    let wanted: Vec<(&str, Option<u64>)> = spec
        .services
        .iter()
        .filter(|(name, _)| !touched.contains(name.as_str()))
        .filter_map(|(name, service)| match service.mode {
            ServiceMode::Replicated(n) => Some((name.as_str(), Some(n))),
            ServiceMode::Global => Some((name.as_str(), None)),
            ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    Ok(swarm.placement().await?.unconverged(wanted))
}

/// How far `--ssh` got on the first contact: never a claim about the swarm
/// that was not observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    /// Without `--ssh` (the Docker endpoint is asked directly), or the
    /// spec has no boards.
    NotAsked,
    /// No board answered: nothing is known.
    NoBoard,
    /// Boards answered but no manager: the swarm was not looked at.
    NoManager,
    /// A manager answered.
    Manager,
}

impl Contact {
    fn of(spec: &Spec, looked: &Reached) -> Self {
        let Some(boards) = &looked.boards else {
            return Contact::NotAsked;
        };
        if spec.nodes.is_empty() {
            Contact::NotAsked
        } else if boards.answered.is_empty() {
            Contact::NoBoard
        } else if spec
            .nodes
            .values()
            .any(|n| n.role == reconciler_spec::Role::Manager && boards.answered.contains(&n.name))
        {
            Contact::Manager
        } else {
            Contact::NoManager
        }
    }

    /// The error a first contact that reached too little ends with.
    fn result(self, spec: &Spec, looked: &Reached) -> Result<(), CliError> {
        let failures = looked
            .boards
            .as_ref()
            .map(|b| b.part().failures)
            .unwrap_or_default();
        match self {
            Contact::NotAsked | Contact::Manager => Ok(()),
            Contact::NoBoard => Err(CliError::NoBoardReached {
                count: spec.nodes.len(),
                problems: render::grouped_failures(&failures),
            }),
            Contact::NoManager => Err(CliError::NoManagerReached {
                managers: spec
                    .nodes
                    .values()
                    .filter(|n| n.role == reconciler_spec::Role::Manager)
                    .map(|n| n.name.clone())
                    .collect(),
            }),
        }
    }
}

/// `apply`'s gate: everything planned is shown, then the person at the
/// terminal approves it (or `--auto-approve` did). It is asked before the
/// boards' steps when they have some, else once the boards were looked at.
struct Review<'r, 'c> {
    spec: &'r Spec,
    args: &'r ApplyArgs,
    console: &'r mut Console<'c>,
    decision: Option<Decision>,
    /// The managed services asked for while the spec loaded.
    early: Option<EarlyServices>,
}

/// What `apply` does after showing the plan.
enum Decision {
    /// Nothing to change: exit with this code (1 when boards were unreachable).
    NothingToDo(u8),
    /// `[controller] suspend = true`: nothing is written.
    Suspended,
    /// The answer was not `yes`.
    Cancelled,
    /// Go on, with the swarm as planned before the boards' steps.
    Approved(Box<Planned>),
}

impl Review<'_, '_> {
    async fn decide(&mut self, looked: &Reached) -> Result<Decision, CliError> {
        // With no board reached nothing is known: the error says it all.
        let contact = Contact::of(self.spec, looked);
        if contact == Contact::NoBoard {
            contact.result(self.spec, looked)?;
        }
        let planned =
            plan_after_look(self.spec, looked, &self.args.connect, self.early.take()).await?;
        let console = &mut *self.console;
        if let Some(boards) = &looked.boards {
            write!(console.out, "{}", render::boards_text(&boards.part()))?;
        }
        // Without a manager nothing can be joined or deployed.
        contact.result(self.spec, looked)?;
        if let Some((_, plan)) = &planned.swarm {
            write!(console.out, "{}", render::text(plan))?;
            write!(console.out, "{}", planned.preflight.text())?;
            planned
                .preflight
                .refusal(&self.args.connect.allow_preflight)?;
        }
        let unreachable = looked.boards.as_ref().map_or(0, |b| b.failures.len());
        let swarm_work = planned
            .swarm
            .as_ref()
            .is_none_or(|(_, plan)| !plan.is_empty());
        if !swarm_work && !looked.board_work() {
            return Ok(Decision::NothingToDo(u8::from(unreachable > 0)));
        }
        if self.spec.controller.suspend {
            writeln!(
                console.out,
                "\nNot applying: the spec sets [controller] suspend = true."
            )?;
            return Ok(Decision::Suspended);
        }
        if !self.args.auto_approve && !confirm(console)? {
            writeln!(console.out, "Apply cancelled.")?;
            return Ok(Decision::Cancelled);
        }
        if let Some(error) = &planned.deferred {
            writeln!(
                console.err,
                "The swarm cannot be planned yet ({error}); doing the boards' steps first."
            )?;
        }
        Ok(Decision::Approved(Box::new(planned)))
    }
}

impl pipeline::Gate for Review<'_, '_> {
    type Error = CliError;

    async fn open(&mut self, looked: &Reached) -> Result<bool, CliError> {
        let decision = self.decide(looked).await?;
        let approved = matches!(decision, Decision::Approved(_));
        self.decision = Some(decision);
        Ok(approved)
    }
}

pub(super) async fn apply(
    args: ApplyArgs,
    load_options: &LoadOptions,
    console: &mut Console<'_>,
) -> Result<u8, CliError> {
    let early = args.connect.early_services();
    let spec = load(&args.connect.dir, load_options, console.err)?;
    judge(&spec, &args.connect.policy, console.err)?;
    let reach = args.connect.reach();
    let mut fleet = Fleet::new(DEFAULT_FACTS_MAX_AGE);
    let progress = stderr_progress(console.progress);
    let mut review = Review {
        spec: &spec,
        args: &args,
        console,
        decision: None,
        early,
    };
    let boards = pipeline::boards(&spec, &reach, &mut fleet, progress, &mut review).await?;
    let decision = match review.decision.take() {
        Some(decision) => decision,
        // No board needed a step, so the gate was not asked: ask now.
        None => review.decide(&boards.looked).await?,
    };
    let planned = match decision {
        Decision::NothingToDo(0) => return Ok(0),
        Decision::NothingToDo(_) => {
            let failed = failure_texts(&boards.looked).len();
            writeln!(console.err, "Error: {failed} board(s) could not be reached (above); the next apply tries them again.")?;
            return Ok(1);
        }
        Decision::Suspended => return Ok(0),
        Decision::Cancelled => return Ok(1),
        Decision::Approved(planned) => *planned,
    };
    // `after` is honoured even with --no-wait: only the final wait is skipped.
    let options = ApplyOptions {
        wait: true,
        wait_at_end: !args.no_wait,
        timeout: args.timeout,
        ..ApplyOptions::default()
    };
    // What the plan above already said about boards it could not look at.
    let shown: Vec<String> = failure_texts(&boards.looked);
    let (swarm, plan, failures) = match (boards.done, planned.swarm) {
        (None, Some((swarm, plan))) => (swarm, plan, shown.len()),
        (done, earlier) => {
            // The plan's client keeps its pooled connections open until it
            // is dropped; through `--ssh` each is an SSH channel, and a
            // board's sshd opens only so many.
            drop(earlier);
            let now = done.unwrap_or(boards.looked);
            swarm_after_steps(&spec, &now, &shown, &args.connect, console).await?
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
        writeln!(console.err, "Error: {failures} board(s) could not be reached or brought in (above); the next apply retries them.")?;
        return Ok(1);
    }
    Ok(0)
}

/// Each board failure as a person reads it.
fn failure_texts(reached: &Reached) -> Vec<String> {
    reached
        .boards
        .as_ref()
        .map(|b| b.failures.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// After the boards' steps (`apply --ssh`): their failures reported on
/// stderr (those the plan did not show already), and the swarm planned as
/// it now is. Returns how many boards failed.
async fn swarm_after_steps(
    spec: &Spec,
    now: &Reached,
    shown: &[String],
    connect: &ConnectArgs,
    console: &mut Console<'_>,
) -> Result<(Swarm, Plan, usize), CliError> {
    let board_failures = failure_texts(now);
    for failure in board_failures.iter().filter(|f| !shown.contains(f)) {
        writeln!(console.err, "Error: {failure}")?;
    }
    let host = now
        .docker_host
        .clone()
        .ok_or(crate::node::provision::ProvisionError::NoSwarm)?;
    let swarm = Swarm::connect(&host, &spec.cluster.name, connect.docker.docker_timeout).await?;
    let (observed, plan) = pipeline::observe_and_plan(
        &swarm,
        spec,
        &now.identities(),
        connect.plan_options(),
        FirstLook::Managed(None),
    )
    .await?;
    if !plan.is_empty() {
        write!(
            console.out,
            "\nSwarm changes after bootstrapping:\n{}",
            render::text(&plan)
        )?;
    }
    // The swarm did not exist when the plan was shown: its pre-flight
    // (images for these boards' platforms above all) is judged now, before
    // any service is written.
    let preflight = Preflight::gather(&swarm, spec, &observed, &plan, now).await;
    write!(console.out, "{}", preflight.text())?;
    preflight.refusal(&connect.allow_preflight)?;
    Ok((swarm, plan, board_failures.len()))
}

pub(super) fn confirm(console: &mut Console<'_>) -> Result<bool, CliError> {
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
