//! The one sequence behind `plan`, `apply` and `run`:
//! boards looked at → [`Gate`] → boards' steps → connect → observe → plan →
//! apply.
//!
//! The steps live here once; each command decides what to show between them
//! and whether to go on through its [`Gate`] (`plan` never writes, `apply`
//! asks the person at the terminal, `run` takes the one-writer lease). The
//! spec is loaded by the caller before any of this runs, so a bad spec never
//! reaches a board or Docker.

use std::collections::BTreeMap;

use reconciler_spec::Spec;

use crate::apply::{ApplyError, ApplyOptions, ApplyReport};
use crate::node::fleet::Fleet;
use crate::node::provision::{self, BoardWork, Progress, ProvisionError, Provisioned};
use crate::node::SshOptions;
use crate::observed::{BoardIdentity, Observed, ServiceScope};
use crate::plan::{self, Plan, PlanError, PlanOptions};
use crate::swarm::{EarlyServices, Swarm, SwarmError};

/// How the swarm is reached.
#[derive(Debug, Clone)]
pub enum Reach {
    /// A manager's Docker socket (`--docker-host`, `DOCKER_HOST`).
    Socket(String),
    /// The spec's boards over SSH (`--ssh`): bootstrap and join them, and
    /// reach a manager's Docker socket through SSH.
    Boards(BoardAccess),
}

impl Reach {
    /// Whether boards are managed: joined, and removed when they leave the spec.
    pub fn manages_boards(&self) -> bool {
        matches!(self, Reach::Boards(_))
    }
}

/// How boards are reached over SSH.
#[derive(Debug, Clone, Copy)]
pub struct BoardAccess {
    pub ssh: SshOptions,
    /// How many boards are worked on at once.
    pub parallel: usize,
}

/// Where the swarm is, after the boards' step.
#[derive(Debug)]
pub struct Reached {
    /// With `--ssh`: what each board needs (or got), and the boards that failed.
    pub boards: Option<Provisioned>,
    /// A manager's Docker API; `None` while no swarm exists yet. With
    /// `--ssh` it goes through the [`Fleet`]'s tunnel, open while the fleet lives.
    pub docker_host: Option<String>,
}

impl Reached {
    /// Whether any board still needs a step.
    pub fn board_work(&self) -> bool {
        self.boards.as_ref().is_some_and(|b| !b.plans.is_empty())
    }

    /// Which swarm node each board that answered is (empty without `--ssh`).
    pub fn identities(&self) -> Identities {
        self.boards
            .as_ref()
            .map(|b| b.identities.clone())
            .unwrap_or_default()
    }
}

/// Board identities by spec node name: see [`BoardIdentity`].
pub type Identities = BTreeMap<String, BoardIdentity>;

/// The boards' step (with [`Reach::Boards`], over the sessions `fleet`
/// keeps), then where a manager answers.
async fn reach(
    spec: &Spec,
    reach: &Reach,
    fleet: &mut Fleet,
    work: BoardWork,
    progress: Progress,
) -> Result<Reached, ProvisionError> {
    match reach {
        Reach::Socket(host) => Ok(Reached {
            boards: None,
            docker_host: Some(host.clone()),
        }),
        Reach::Boards(access) => {
            let boards =
                provision::provision(spec, fleet, access.ssh, access.parallel, work, progress)
                    .await?;
            Ok(Reached {
                docker_host: boards.docker_host.clone(),
                boards: Some(boards),
            })
        }
    }
}

/// What decides whether the boards' steps (writes on the boards) are done
/// after they were looked at: `apply`'s confirmation, `run`'s lease.
#[allow(
    async_fn_in_trait,
    reason = "used with concrete gates only; callers that spawn see their Send-ness"
)]
pub trait Gate {
    /// Why the gate could not decide (the terminal is gone, Docker is
    /// unreachable); the boards' own failures convert into it.
    type Error: From<ProvisionError>;

    /// Asked once, only when some board needs a step, with what the boards
    /// need and where a manager answers. `true` lets the steps be done.
    async fn open(&mut self, looked: &Reached) -> Result<bool, Self::Error>;
}

/// A gate that never opens: the boards are only looked at (`plan`, and
/// `run` in observe mode or suspended).
#[derive(Debug, Clone, Copy)]
pub struct LookOnly;

impl Gate for LookOnly {
    type Error = ProvisionError;

    async fn open(&mut self, _looked: &Reached) -> Result<bool, ProvisionError> {
        Ok(false)
    }
}

/// The boards after [`boards`]: what they needed, and what was done.
#[derive(Debug)]
pub struct Boards {
    /// What each board needed when looked at, and where a manager answered then.
    pub looked: Reached,
    /// After the steps, when some were needed and the gate let them be done.
    pub done: Option<Reached>,
}

impl Boards {
    /// Where things stand now: after the steps when they were done.
    pub fn now(self) -> Reached {
        self.done.unwrap_or(self.looked)
    }
}

/// The boards' step behind a gate: look at every board (with
/// [`Reach::Boards`]); when some need a step and `gate` opens, do the steps.
/// The swarm is planned by the caller afterwards, as it then is.
pub async fn boards<G: Gate>(
    spec: &Spec,
    how: &Reach,
    fleet: &mut Fleet,
    progress: Progress,
    gate: &mut G,
) -> Result<Boards, G::Error> {
    let looked = reach(spec, how, fleet, BoardWork::PlanOnly, progress.clone()).await?;
    if !looked.board_work() || !gate.open(&looked).await? {
        return Ok(Boards { looked, done: None });
    }
    let done = reach(spec, how, fleet, BoardWork::Do, progress).await?;
    Ok(Boards {
        looked,
        done: Some(done),
    })
}

/// Why the swarm could not be observed and planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    /// Docker could not be asked (unreachable, not a manager, a failed list).
    #[error(transparent)]
    Docker(#[from] SwarmError),
    /// The planner refused for safety (quorum, not ours, ...).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan deletes more than the guard allows: refused, with the plan
    /// it refused, so a person sees what would have gone before allowing it.
    #[error("{source}")]
    Refused { plan: Box<Plan>, source: PlanError },
}

/// How [`observe_and_plan`] first looks at the swarm's services.
#[derive(Debug)]
pub enum FirstLook {
    /// At every service (what `run` keeps: its upkeep judges every task).
    All,
    /// At those with a cluster's label, maybe asked for while the spec loaded.
    Managed(Option<EarlyServices>),
}

/// Observes the swarm (with what the boards said about themselves) and plans
/// what makes it match the spec.
///
/// With [`FirstLook::Managed`] it first looks at the services with a
/// cluster's label alone, and keeps that look only when it finds every
/// service of the spec and nothing at all to do or say: other services can
/// only add work (a name taken, a config still in use, a held port), never
/// take it away, so that empty plan is the whole swarm's too. Anything else
/// is planned again on every service.
pub async fn observe_and_plan(
    swarm: &Swarm,
    spec: &Spec,
    boards: &Identities,
    options: PlanOptions,
    first_look: FirstLook,
) -> Result<(Observed, Plan), PlanningError> {
    // The spec's side of the plan first: with the services asked for while
    // the spec loaded, Docker is answering meanwhile.
    let prepared = plan::Prepared::of(spec);
    if let FirstLook::Managed(early) = first_look {
        let mut observed = swarm.observe_managed(early).await?;
        observed.boards = boards.clone();
        if let Ok(plan) = plan::plan_prepared(spec, &prepared, &observed, options) {
            if is_settled(spec, &observed, &plan) {
                tracing::debug!("planned from the managed services: nothing to do");
                return Ok((observed, plan));
            }
        }
    }
    let mut observed = swarm.observe(ServiceScope::All).await?;
    observed.boards = boards.clone();
    let plan = match plan::plan_prepared(spec, &prepared, &observed, options) {
        Err(source @ PlanError::MassDelete { .. }) => {
            let refused = plan::plan_prepared(
                spec,
                &prepared,
                &observed,
                PlanOptions {
                    allow_mass_delete: true,
                    ..options
                },
            )?;
            return Err(PlanningError::Refused {
                plan: Box::new(refused),
                source,
            });
        }
        planned => planned?,
    };
    let summary = plan.summary();
    tracing::debug!(
        add = summary.add,
        change = summary.change,
        destroy = summary.destroy,
        warnings = plan.warnings.len(),
        "planned"
    );
    Ok((observed, plan))
}

/// A plan made from this cluster's services alone that the whole swarm
/// would give too: no action, no warning, and every service of the spec
/// found among the cluster's (one missing may be another's of that name).
fn is_settled(spec: &Spec, observed: &Observed, plan: &Plan) -> bool {
    plan.actions.is_empty()
        && plan.warnings.is_empty()
        && spec
            .services
            .keys()
            .all(|name| observed.services.contains_key(name))
}

/// Executes a plan; boards that leave the spec leave the swarm over SSH.
pub async fn execute(
    swarm: &Swarm,
    plan: &Plan,
    spec: &Spec,
    reach: &Reach,
    options: ApplyOptions,
    progress: &mut dyn crate::progress::Progress,
) -> Result<ApplyReport, ApplyError> {
    let leaver = match reach {
        Reach::Boards(access) => {
            Some(crate::node::Leaver::new(&spec.ssh, access.ssh).pinning(&spec.nodes))
        }
        Reach::Socket(_) => None,
    };
    let report = crate::apply::apply(swarm, plan, options, leaver.as_ref(), progress).await?;
    // The guard of the revision now in force, for the next plan's.
    swarm
        .record_max_delete_fraction(spec.controller.max_delete_fraction)
        .await
        .map_err(|source| ApplyError::Guard { source })?;
    Ok(report)
}
