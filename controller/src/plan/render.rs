//! Showing a plan to people (terraform-style text) and to programs (JSON).

use std::fmt::Write as _;

use serde::Serialize;

use super::{Action, FieldChange, ObjectKind, Operation, Plan, Summary};

/// The plan as text: `+` create, `~` update with `old -> new`, `-` destroy, and a summary line.
pub fn text(plan: &Plan) -> String {
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
            render_action(action, &mut out);
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
        Operation::Remove => "will be destroyed",
    };
    format!("{}.{} {what}", action.kind().as_str(), action.name())
}

fn render_action(action: &Action, out: &mut String) {
    let kind = action.kind().as_str();
    let name = action.name();
    let symbol = match action.operation() {
        Operation::Create => "+",
        Operation::Update => "~",
        Operation::Remove => "-",
    };
    let _ = writeln!(out, "  # {}", describe(action));
    let _ = writeln!(out, "  {symbol} {kind} \"{name}\"");
    for change in action.changes() {
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
