//! Showing a plan to people (terraform-style text) and to programs (JSON).

use std::fmt::Write as _;

use serde::Serialize;

use super::boards::{NodePlan, Step};
use super::{Action, Departure, FieldChange, ObjectKind, Operation, Plan, Summary};

/// Whether environment values are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvValues {
    /// For the person at the terminal who runs `plan` (names that look
    /// secret are masked all the same).
    Shown,
    /// For the status page and `/api/status`, which more people can read:
    /// a variable is said to change, never with its value (`MYSQL_PWD`, a
    /// webhook URL with its token).
    Hidden,
}

/// The plan as text: `+` create, `~` update with `old -> new`, `-` destroy, and a summary line.
pub fn text(plan: &Plan) -> String {
    render(plan, EnvValues::Shown)
}

/// [`text`] for the status page and `/api/status`: environment variables
/// are named, their values not written.
pub fn text_without_env_values(plan: &Plan) -> String {
    render(plan, EnvValues::Hidden)
}

fn render(plan: &Plan, env: EnvValues) -> String {
    let mut out = String::new();
    if plan.is_empty() && plan.warnings.is_empty() {
        out.push_str("No changes. The swarm matches the spec.\n");
    } else if plan.is_empty() {
        // Nothing to do, but the swarm is not what the spec says (see the warnings).
        out.push_str("No changes.\n");
    } else {
        out.push_str("Reconciler will perform the following actions:\n");
        for action in &plan.actions {
            out.push('\n');
            render_action(action, env, &mut out);
        }
        out.push('\n');
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "Warning: {warning}");
    }
    if !plan.is_empty() {
        let Summary {
            add,
            change,
            destroy,
        } = plan.summary();
        let _ = writeln!(
            out,
            "Plan: {add} to add, {change} to change, {destroy} to destroy."
        );
    }
    out
}

/// One line saying what an action does, e.g. `service.web will be created`.
pub fn describe(action: &Action) -> String {
    let what = match action.operation() {
        Operation::Create => "will be created",
        Operation::Update => match action {
            Action::UpdateService { drift: true, .. } => {
                "will be updated in place (drift: changed outside reconciler)"
            }
            _ => "will be updated in place",
        },
        Operation::Remove => match action {
            Action::RemoveNode {
                departure: Departure::Leave,
                ..
            } => "will be destroyed (drained, then told to leave over SSH once the board confirms it is this node)",
            Action::RemoveNode {
                departure: Departure::Forget,
                ..
            } => "will be destroyed (down past down_node_grace: its object is removed, the board is not contacted)",
            _ => "will be destroyed",
        },
    };
    format!("{}.{} {what}", action.kind().as_str(), action.name())
}

fn render_action(action: &Action, env: EnvValues, out: &mut String) {
    let kind = action.kind().as_str();
    let name = action.name();
    let symbol = match action.operation() {
        Operation::Create => "+",
        Operation::Update => "~",
        Operation::Remove => "-",
    };
    let _ = writeln!(out, "  # {}", describe(action));
    let _ = writeln!(out, "  {symbol} {kind} \"{name}\"");
    for mut change in action.changes() {
        if env == EnvValues::Hidden && change.field.starts_with("env.") {
            let hidden = |v: Option<String>| v.map(|_| "(value not shown)".to_string());
            change.old = hidden(change.old);
            change.new = hidden(change.new);
        }
        render_change(&change, out);
    }
}

fn render_change(change: &FieldChange, out: &mut String) {
    let _ = match (&change.old, &change.new) {
        (None, Some(new)) => writeln!(out, "      + {} = {new}", change.field),
        (Some(old), None) => writeln!(out, "      - {} = {old}", change.field),
        (Some(old), Some(new)) => writeln!(out, "      ~ {}: {old} -> {new}", change.field),
        (None, None) => Ok(()),
    };
}

/// The JSON document of `plan --json`. `format_version` changes only on breaking changes.
#[derive(Debug, Serialize)]
pub struct PlanJson<'a> {
    pub format_version: u32,
    pub actions: Vec<ActionJson<'a>>,
    /// The plan's warnings; the CLI adds the spec's (`file:line:col: warning: ...`).
    pub warnings: Vec<String>,
    pub summary: Summary,
    pub changed: bool,
}

#[derive(Debug, Serialize)]
pub struct ActionJson<'a> {
    pub operation: Operation,
    pub kind: ObjectKind,
    pub name: &'a str,
    pub drift: bool,
    pub changes: Vec<FieldChange>,
}

pub fn json(plan: &Plan) -> PlanJson<'_> {
    PlanJson {
        format_version: 1,
        actions: plan
            .actions
            .iter()
            .map(|a| ActionJson {
                operation: a.operation(),
                kind: a.kind(),
                name: a.name(),
                drift: matches!(a, Action::UpdateService { drift: true, .. }),
                changes: a.changes(),
            })
            .collect(),
        warnings: plan.warnings.clone(),
        summary: plan.summary(),
        changed: !plan.is_empty(),
    }
}

/// The boards' part of a plan under `--ssh`: each board's steps, and why
/// the boards that could not be looked at were not (as a person reads it).
#[derive(Debug, Clone)]
pub struct BoardsPart<'a> {
    /// The steps each board needs (or got).
    pub plans: &'a [NodePlan],
    /// Each board that was not reached or failed a step, and why.
    pub failures: Vec<BoardFailure>,
    /// What the boards cannot be given, for a person to act on.
    pub notes: &'a [String],
}

/// A board that was not reached or failed a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFailure {
    /// The board as a group line names it: `pi1`, or `pi1 (10.0.0.1:22)`
    /// when its address is what tells the boards' problems apart.
    pub board: String,
    /// What went wrong, without the board: the same for every board it hit.
    pub problem: String,
    /// The whole message, for one board alone.
    pub text: String,
}

impl std::fmt::Display for BoardFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The failures with one line per distinct problem, naming every board it
/// hit: a missing key on four boards is one line, not four.
pub fn grouped_failures(failures: &[BoardFailure]) -> Vec<String> {
    let mut groups: Vec<Vec<&BoardFailure>> = Vec::new();
    for failure in failures {
        match groups.iter_mut().find(|g| g[0].problem == failure.problem) {
            Some(group) => group.push(failure),
            None => groups.push(vec![failure]),
        }
    }
    groups
        .into_iter()
        .map(|group| match group.as_slice() {
            [one] => one.text.clone(),
            many => {
                let boards: Vec<&str> = many.iter().map(|f| f.board.as_str()).collect();
                format!("nodes {}: {}", boards.join(", "), many[0].problem)
            }
        })
        .collect()
}

/// The boards' steps, in the style of the plan.
pub fn boards_text(boards: &BoardsPart<'_>) -> String {
    let mut out = String::new();
    for plan in boards.plans {
        let what = if plan.steps.iter().all(Step::is_board_config) {
            "configured"
        } else {
            "bootstrapped"
        };
        let _ = writeln!(
            out,
            "  # node.{} will be {what}\n  ~ node \"{}\"",
            plan.node, plan.node
        );
        for step in &plan.steps {
            let _ = writeln!(out, "      + {}", step.describe());
            for line in step.detail() {
                let _ = writeln!(out, "          {line}");
            }
        }
        out.push('\n');
    }
    for line in grouped_failures(&boards.failures) {
        let _ = writeln!(out, "Warning: {line}");
    }
    for note in boards.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    if !boards.plans.is_empty() {
        let bootstrapped = boards
            .plans
            .iter()
            .filter(|p| !p.steps.iter().all(Step::is_board_config))
            .count();
        let configured = boards.plans.len() - bootstrapped;
        let mut parts = Vec::new();
        if bootstrapped > 0 {
            parts.push(format!("{bootstrapped} to bootstrap"));
        }
        if configured > 0 {
            parts.push(format!("{configured} to configure"));
        }
        let _ = writeln!(out, "Boards: {}.", parts.join(", "));
    }
    if !boards.failures.is_empty() {
        // What follows speaks for the swarm, not for these boards.
        let _ = writeln!(
            out,
            "Boards: {} not checked (above); the next apply tries again.",
            boards.failures.len()
        );
    }
    out
}

/// `plan --json`: the plan, the spec's warnings after the plan's, and with
/// `--ssh` what each board needs and which could not be reached.
#[derive(Debug, Serialize)]
pub struct PlanDocument<'a> {
    #[serde(flatten)]
    pub plan: PlanJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<BoardsJson>,
    /// With `--ssh`: whether a swarm existed to plan against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm_planned: Option<bool>,
    /// Services the plan leaves alone that do not run as many tasks as
    /// they should (`service`, `running`, `desired`, `error`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_converged: Vec<crate::observed::Unconverged>,
}

#[derive(Debug, Serialize)]
pub struct BoardsJson {
    pub bootstrap: Vec<BoardStepsJson>,
    pub unreachable: Vec<String>,
    /// What the boards cannot be given (a `docker_users` entry no board has).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BoardStepsJson {
    pub node: String,
    pub steps: Vec<String>,
}

pub fn plan_document<'a>(
    plan: &'a Plan,
    spec_warnings: impl Iterator<Item = String>,
    boards: Option<&BoardsPart<'_>>,
    swarm_planned: bool,
) -> PlanDocument<'a> {
    let mut plan_json = json(plan);
    plan_json.warnings.extend(spec_warnings);
    PlanDocument {
        plan: plan_json,
        boards: boards.map(|b| BoardsJson {
            bootstrap: b
                .plans
                .iter()
                .map(|p| BoardStepsJson {
                    node: p.node.clone(),
                    steps: p.steps.iter().map(|s| s.describe()).collect(),
                })
                .collect(),
            unreachable: b.failures.iter().map(ToString::to_string).collect(),
            notes: b.notes.to_vec(),
        }),
        swarm_planned: boards.map(|_| swarm_planned),
        not_converged: Vec::new(),
    }
}

/// What `plan` says about services that do not run as the spec says: with
/// no change to write, this replaces "the swarm matches the spec".
pub fn unconverged_text(plan: &Plan, unconverged: &[crate::observed::Unconverged]) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes to write, but the swarm does not run the spec yet:\n");
    } else {
        out.push_str("\nNot running as the spec says (left alone by this plan):\n");
    }
    for service in unconverged {
        out.push_str(&format!(
            "  service.{}: {}/{} tasks running{}\n",
            service.service,
            service.running,
            service.desired,
            service
                .error
                .as_ref()
                .map(|e| format!("; newest task error: {e}"))
                .unwrap_or_default()
        ));
    }
    out
}
