//! The status page at `/`: a picture of the cluster, like Swarm Viz, and
//! what the controller is doing about it.
//!
//! One column per node with the tasks placed on it, coloured by state; the
//! services with running/desired; the pending plan in the `+ ~ -` form of
//! `reconciler plan`; the last reconciles; errors with their reason; the
//! lease holder. Everything is rendered from [`Status`] by the minijinja
//! templates in `controller/templates/status/`, which escape every value
//! (their names end in `.html`). The page loads nothing from elsewhere (a Pi LAN has no
//! internet): its style and its one small script are inline. The script
//! fetches the body again from `/api/page` every two seconds and swaps it
//! in, so the page stays live without a reload; without scripts it reloads
//! itself every ten seconds.

use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

use crate::reconcile::ReconcileResult;
use crate::status::{ReconcileStatus, Status};

/// The page's templates, parsed once (a template that does not parse is a
/// bug, caught by `the_templates_parse`).
static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("page.html", include_str!("../templates/status/page.html"))?;
    env.add_template("body.html", include_str!("../templates/status/body.html"))?;
    Ok(env)
});

/// What Rust works out for the templates (they only print).
#[derive(Debug, Serialize)]
struct View<'a> {
    revision: &'a str,
    /// The revision's first 12 characters.
    revision_short: &'a str,
    /// The newest fetched revision, shortened, when it is not the one in force.
    refused_short: Option<&'a str>,
    /// How many changes are pending.
    drift: usize,
    /// The badge: whether the swarm matches the spec, in words a person
    /// can trust (never "in sync" while a plan or a revision is refused).
    sync: Sync,
    /// The last plan was refused for safety: the pending plan is what was
    /// refused, and nothing of it is applied.
    plan_refused: Option<&'a str>,
    /// The pending plan's lines with their colour; `None` when nothing is pending.
    plan_lines: Option<Vec<PlanLine<'a>>>,
    history: Vec<HistoryRow>,
    /// When the picture was read, as `HH:MM:SS` UTC, and its age in
    /// seconds when drawn (the script keeps the age current).
    picture_clock: String,
    picture_age: u64,
}

#[derive(Debug, Serialize)]
struct Sync {
    /// `ok`, `warn`, `bad` or empty (not known yet).
    class: &'static str,
    text: String,
}

/// The badge from the last reconcile's result and the pending changes.
fn sync(status: &Status, drift: usize) -> Sync {
    let sync = |class, text: String| Sync { class, text };
    let reason = status.last_error.as_ref().map_or("-", |e| e.reason);
    match status.last_reconcile.as_ref().map(|r| r.result) {
        None => sync("", "not reconciled yet".into()),
        Some(ReconcileResult::Refused) if status.spec_valid => {
            sync("bad", format!("plan refused ({reason}): not applied"))
        }
        Some(ReconcileResult::Refused | ReconcileResult::InvalidSpec) => {
            sync("bad", "newest revision refused: not applied".into())
        }
        Some(ReconcileResult::Error) => sync("bad", format!("last reconcile failed ({reason})")),
        Some(ReconcileResult::Success | ReconcileResult::Standby) if drift == 0 => {
            sync("ok", "in sync".into())
        }
        Some(_) if drift == 1 => sync("warn", "1 change pending".into()),
        Some(_) => sync("warn", format!("{drift} changes pending")),
    }
}

#[derive(Debug, Serialize)]
struct PlanLine<'a> {
    class: &'static str,
    text: &'a str,
}

#[derive(Debug, Serialize)]
struct HistoryRow {
    started_at: u64,
    clock: String,
    triggers: String,
    class: &'static str,
    result: &'static str,
    duration_ms: u64,
    add: usize,
    change: usize,
    destroy: usize,
    drift: usize,
    writes: u64,
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

fn view(status: &Status) -> View<'_> {
    let revision = status.revision.as_deref().unwrap_or("none yet");
    let refused_short = (status.fetched_revision.as_deref() != status.revision.as_deref())
        .then(|| short(status.fetched_revision.as_deref().unwrap_or("-")));
    let plan_lines = status.pending_plan.as_deref().map(|plan| {
        plan.lines()
            .map(|text| PlanLine {
                class: match text.trim_start().chars().next() {
                    Some('+') => "add",
                    Some('~') => "change",
                    Some('-') => "destroy",
                    _ => "",
                },
                text,
            })
            .collect()
    });
    let drift = status.pending.len();
    let plan_refused = status
        .last_reconcile
        .as_ref()
        .filter(|r| r.result == ReconcileResult::Refused && status.spec_valid)
        .map(|_| status.last_error.as_ref().map_or("-", |e| e.reason));
    View {
        revision,
        revision_short: short(revision),
        refused_short,
        drift,
        sync: sync(status, drift),
        plan_refused,
        plan_lines,
        history: status.history.iter().map(history_row).collect(),
        picture_clock: status.picture_at.map(clock).unwrap_or_default(),
        picture_age: status
            .picture_at
            .map_or(0, |at| crate::timestamp::unix_now().saturating_sub(at)),
    }
}

fn history_row(r: &ReconcileStatus) -> HistoryRow {
    HistoryRow {
        started_at: r.started_at,
        clock: clock(r.started_at),
        triggers: r.triggers.join(", "),
        class: match r.result {
            ReconcileResult::Success => "ok",
            ReconcileResult::Standby => "muted",
            ReconcileResult::Error | ReconcileResult::Refused | ReconcileResult::InvalidSpec => {
                "bad"
            }
        },
        result: r.result.as_str(),
        duration_ms: r.duration_ms,
        add: r.plan.add,
        change: r.plan.change,
        destroy: r.plan.destroy,
        drift: r.drift,
        writes: r.writes,
    }
}

/// What the page says when a template fails (a bug).
const DRAWING_FAILED: &str =
    "<p>The status page could not be drawn (a bug in reconciler): see the log and /api/status.</p>";

/// `template` rendered with the status (and `body`, already rendered); a
/// failure (a bug) is shown in the page rather than ending the controller.
fn render_template(template: &str, status: &Status, body: Option<String>) -> String {
    let Ok(env) = TEMPLATES.as_ref() else {
        return DRAWING_FAILED.to_string();
    };
    let rendered = env.get_template(template).and_then(|t| {
        t.render(minijinja::context! {
            status => minijinja::Value::from_serialize(status),
            view => minijinja::Value::from_serialize(view(status)),
            body => body.map(minijinja::Value::from_safe_string),
        })
    });
    rendered.unwrap_or_else(|error| {
        tracing::error!(%error, "status page");
        DRAWING_FAILED.to_string()
    })
}

/// The whole page: head, style, the live body and the script.
pub fn render(status: &Status) -> String {
    render_template("page.html", status, Some(body(status)))
}

/// What changes: everything inside `<main>`, also served alone at `/api/page`.
pub fn body(status: &Status) -> String {
    render_template("body.html", status, None)
}

/// `HH:MM:SS` UTC of a unix time; the script shows it in local time.
fn clock(unix: u64) -> String {
    let day = unix % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::NodeState;
    use crate::status::{BoardStatus, NodeStatus, ServiceStatus, TaskHealth, TaskStatus};

    #[test]
    fn values_are_escaped() {
        let status = Status {
            source: "git <evil>".into(),
            spec_error: Some("a.toml:1:1: error: `x` & <y>".into()),
            services: vec![ServiceStatus {
                name: "web".into(),
                desired: Some(2),
                running: 1,
                wanted: 2,
                in_spec: true,
                update_state: None,
                error: Some("no suitable node (<1>)".into()),
                image: "web:<1>".into(),
                ports: vec![
                    crate::status::PublishedPort {
                        published: 8080,
                        protocol: "tcp".into(),
                        host_mode: false,
                    },
                    crate::status::PublishedPort {
                        published: 53,
                        protocol: "udp".into(),
                        host_mode: true,
                    },
                ],
                group: Some("stack shop".into()),
            }],
            ..Status::default()
        };
        let html = render(&status);
        assert!(html.contains("git &lt;evil&gt;"));
        assert!(html.contains("`x` &amp; &lt;y&gt;"));
        assert!(!html.contains("<evil>"));
        assert!(html.contains("<td class=\"warn\">1 / 2</td>"));
        assert!(html.contains("no suitable node (&lt;1&gt;)"));
        assert!(html.contains("<code>web:&lt;1&gt;</code>"));
        assert!(html.contains("<a class=\"port\" data-port=\"8080\" href=\"#\""));
        assert!(html.contains(">53/udp (host)</span>"));
        assert!(html.contains("web <small class=\"muted\">(stack shop)</small>"));
    }

    #[test]
    fn a_node_column_shows_its_board_and_tasks() {
        let node = NodeStatus {
            id: "abc".into(),
            hostname: "pi1".into(),
            role: reconciler_spec::Role::Manager,
            leader: true,
            availability: reconciler_spec::Availability::Active,
            state: NodeState::Ready,
            architecture: "aarch64".into(),
            engine_version: "28.2.2".into(),
            labels: [("zone".to_string(), "shelf".to_string())].into(),
            board: Some(BoardStatus {
                node: "pi1".into(),
                model: Some("Raspberry Pi 4 Model B Rev 1.4".into()),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                temperature: Some("48.3'C".into()),
                throttled: Some("0x50005".into()),
                throttling: crate::health::throttling_in_words("0x50005"),
                health: crate::health::Measurements {
                    memory_available_bytes: Some(3 << 30),
                    memory_total_bytes: Some(4 << 30),
                    ..crate::health::Measurements::default()
                },
                conditions: vec![crate::health::Condition {
                    kind: crate::health::ConditionKind::RebootRequired,
                    severity: crate::health::Severity::Info,
                    message: "a reboot is pending".into(),
                }],
            }),
            tasks: vec![TaskStatus {
                service: "web".into(),
                slot: Some(2),
                state: crate::observed::TaskState::Starting,
                health: TaskHealth::Starting,
                error: None,
            }],
        };
        let html = body(&Status {
            nodes: vec![node],
            ..Status::default()
        });
        for part in [
            "data-node=\"pi1\"",
            "manager (leader)",
            "aarch64",
            "Raspberry Pi 4 Model B Rev 1.4",
            "temperature 48.3&#x27;C",
            "memory 3072 of 4096 MiB free",
            "data-condition=\"reboot-required\" data-severity=\"info\" title=\"a reboot is pending\">reboot-required</span>",
            "<span class=\"bad\" title=\"vcgencmd get_throttled = 0x50005\">under-voltage now, throttled now, under-voltage since boot, throttled since boot</span>",
            "zone=shelf",
            "<div class=\"task starting\" data-service=\"web\" data-state=\"starting\" title=\"starting\">web.2 <small>starting</small></div>",
        ] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
    }

    fn reconciled(result: ReconcileResult) -> Option<ReconcileStatus> {
        Some(ReconcileStatus {
            result,
            triggers: vec!["timer".into()],
            started_at: 0,
            duration_ms: 5,
            plan: crate::plan::Summary::default(),
            drift: 0,
            writes: 0,
        })
    }

    /// Regression (issue 24): while the controller refused a mass delete,
    /// the badge said "in sync" and the plan "Nothing pending".
    #[test]
    fn regression_a_refused_plan_is_never_shown_as_in_sync() {
        let refused = Status {
            spec_valid: true,
            last_reconcile: reconciled(ReconcileResult::Refused),
            last_error: Some(crate::status::ErrorStatus {
                message: "refusing to delete 2 of 2 managed services".into(),
                class: crate::failure::ErrorClass::NeedsPerson,
                reason: "mass_delete",
            }),
            pending: vec!["a".into(), "b".into()],
            pending_plan: Some("  - service \"a\"\n  - service \"b\"\n".into()),
            ..Status::default()
        };
        let html = body(&refused);
        assert!(html.contains("class=\"chip bad\" id=\"drift\" data-drift=\"2\">plan refused (mass_delete): not applied"), "{html}");
        assert!(
            html.contains("id=\"plan-refused\" data-reason=\"mass_delete\""),
            "{html}"
        );
        assert!(html.contains("<span class=\"destroy\">  - service &quot;a&quot;</span>"));
        assert!(!html.contains("in sync") && !html.contains("the swarm matches the spec"));

        let invalid = Status {
            spec_valid: false,
            last_reconcile: reconciled(ReconcileResult::InvalidSpec),
            ..Status::default()
        };
        let html = body(&invalid);
        assert!(
            html.contains(">newest revision refused: not applied<"),
            "{html}"
        );
        assert!(html.contains("Nothing pending against the revision in force."));

        let synced = Status {
            spec_valid: true,
            last_reconcile: reconciled(ReconcileResult::Success),
            ..Status::default()
        };
        let html = body(&synced);
        assert!(
            html.contains("class=\"chip ok\" id=\"drift\" data-drift=\"0\">in sync<"),
            "{html}"
        );
        assert!(html.contains("Nothing pending: the swarm matches the spec."));
    }

    #[test]
    fn the_pending_plan_is_coloured_by_its_symbols() {
        let status = Status {
            last_reconcile: reconciled(ReconcileResult::Success),
            pending: vec!["service.web will be updated in place".into()],
            pending_plan: Some("  ~ service \"web\"\n      ~ replicas: 3 -> 2\n  + network \"n\"\n  - service \"old\"\n".into()),
            ..Status::default()
        };
        let html = body(&status);
        assert!(html.contains("<span class=\"change\">  ~ service &quot;web&quot;</span>"));
        assert!(html.contains("<span class=\"change\">      ~ replicas: 3 -&gt; 2</span>"));
        assert!(html.contains("<span class=\"add\">  + network &quot;n&quot;</span>"));
        assert!(html.contains("<span class=\"destroy\">  - service &quot;old&quot;</span>"));
        assert!(html.contains("data-drift=\"1\">1 change pending"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let html = render(&Status::default());
        for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(!html.contains(external), "{external} in the page");
        }
        assert!(html.contains("fetch('api/page'"));
    }

    /// Every template parses (a broken one would only show in the page).
    #[test]
    fn the_templates_parse() {
        if let Err(error) = TEMPLATES.as_ref() {
            panic!("{error:#}");
        }
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock(86_400 + 3600 * 13 + 61), "13:01:01");
    }
}
