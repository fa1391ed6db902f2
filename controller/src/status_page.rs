//! The status page at `/`: a picture of the cluster, like Swarm Viz, and
//! what the controller is doing about it.
//!
//! One column per node with the tasks placed on it, coloured by state; the
//! services with running/desired; the pending plan in the `+ ~ -` form of
//! `reconciler plan`; the last reconciles; errors with their reason; the
//! lease holder. Everything is rendered here from [`Status`], every value
//! escaped. The page loads nothing from elsewhere (a Pi LAN has no
//! internet): its style and its one small script are inline. The script
//! fetches the body again from `/api/page` every two seconds and swaps it
//! in, so the page stays live without a reload; without scripts it reloads
//! itself every ten seconds.

use std::fmt::Write as _;

use crate::failure::ErrorClass;
use crate::observed::{NodeState, UpdateState};
use crate::reconcile::ReconcileResult;
use crate::status::{NodeStatus, ReconcileStatus, Status, TaskStatus};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "\
:root{--ok:#1a7f37;--warn:#b35900;--bad:#c62828;--muted:#6b7280;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5em 1em;padding:.6em 1em;background:#24292f;color:#fff}
header h1{font-size:1.1em;margin:0}
header a{color:#fff}
#live-dot{font-size:.85em;color:#9be9a8}
body.stale #live-dot{color:#ff8182}
main{padding:0 1em 1em}
h2{font-size:1.05em;margin:1.2em 0 .5em}
.chips{display:flex;flex-wrap:wrap;gap:.4em;margin:.8em 0}
.chip{border:1px solid var(--line);border-radius:1em;padding:.1em .7em;font-size:.9em;background:var(--bg)}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.muted{color:var(--muted)}
.alert{border-left:4px solid var(--bad);background:#fff5f5;padding:.5em .8em;margin:.8em 0}
.alert h2{margin:.2em 0;color:var(--bad)}
pre{background:var(--bg);padding:.7em;white-space:pre-wrap;word-break:break-word;margin:.4em 0;font-size:.85em}
.nodes{display:flex;gap:.8em;overflow-x:auto;padding-bottom:.5em;align-items:flex-start}
.node{flex:0 0 15em;border:1px solid var(--line);border-radius:6px;background:var(--bg)}
.node>div{padding:.4em .6em}
.node-head{border-bottom:1px solid var(--line);background:#fff;border-radius:6px 6px 0 0}
.node-head b{font-size:1.05em;word-break:break-all}
.node.down{opacity:.6;border-color:var(--bad)}
.facts{font-size:.8em;color:var(--muted);line-height:1.4}
.label{display:inline-block;font-size:.75em;border:1px solid var(--line);border-radius:3px;padding:0 .3em;margin:.1em .1em 0 0;background:#fff}
.task{border-radius:4px;padding:.25em .5em;margin:.3em 0;font-size:.9em;color:#fff;word-break:break-all}
.task small{opacity:.85}
.task.running{background:var(--ok)}
.task.starting{background:var(--warn)}
.task.failing{background:var(--bad)}
.task.stopped{background:var(--muted)}
.empty{font-size:.85em;color:var(--muted);padding:.3em 0}
.table{overflow-x:auto}
table{border-collapse:collapse;font-size:.9em;min-width:100%}
td,th{border-bottom:1px solid var(--line);padding:.3em .6em;text-align:left;vertical-align:top}
th{background:var(--bg)}
#history td{white-space:nowrap}
.plan .add{color:var(--ok)}.plan .change{color:var(--warn)}.plan .destroy{color:var(--bad)}
footer{padding:1em;font-size:.85em;color:var(--muted)}
@media (max-width:600px){.node{flex-basis:80vw}main{padding:0 .5em .5em}}
";

/// Swaps in the body from `/api/page` every two seconds (only when it
/// changed, keeping the node row's sideways scroll), shows local times, and
/// marks the page stale when the controller stops answering.
const SCRIPT: &str = "\
(function(){
var live=document.getElementById('live'),dot=document.getElementById('live-dot'),last=null;
function times(){var t=live.querySelectorAll('time[data-unix]');for(var i=0;i<t.length;i++){t[i].textContent=new Date(1000*t[i].getAttribute('data-unix')).toLocaleTimeString();}}
function tick(){fetch('api/page',{cache:'no-store'}).then(function(r){if(!r.ok){throw new Error(r.status);}return r.text();}).then(function(text){
if(text!==last){var row=live.querySelector('.nodes'),x=row?row.scrollLeft:0;live.innerHTML=text;last=text;times();row=live.querySelector('.nodes');if(row){row.scrollLeft=x;}}
document.body.classList.remove('stale');dot.textContent='\\u25cf live '+new Date().toLocaleTimeString();
}).catch(function(){document.body.classList.add('stale');dot.textContent='\\u25cf controller not answering';});}
times();setInterval(tick,2000);
})();
";

/// The whole page: head, style, the live body and the script.
pub fn render(status: &Status) -> String {
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>\n\
         <title>reconciler</title>\n<style>\n",
    );
    html.push_str(STYLE);
    html.push_str("</style>\n</head><body>\n<header><h1>reconciler</h1>");
    let _ = write!(
        html,
        "<span>{}</span><span id=\"live-dot\">\u{25cf} live</span>",
        escape(&status.source)
    );
    html.push_str("</header>\n<main id=\"live\">\n");
    html.push_str(&body(status));
    html.push_str("</main>\n<footer><a href=\"api/status\">JSON</a> · <a href=\"metrics\">metrics</a> · <a href=\"readyz\">readyz</a></footer>\n<script>\n");
    html.push_str(SCRIPT);
    html.push_str("</script>\n</body></html>\n");
    html
}

/// What changes: everything inside `<main>`, also served alone at `/api/page`.
pub fn body(status: &Status) -> String {
    let mut html = String::new();
    chips(&mut html, status);
    problems(&mut html, status);
    nodes(&mut html, status);
    services(&mut html, status);
    pending(&mut html, status);
    history(&mut html, status);
    html
}

fn chip(html: &mut String, class: &str, text: &str) {
    let _ = write!(html, "<span class=\"chip {class}\">{text}</span>");
}

/// The state of the controller at a glance.
fn chips(html: &mut String, status: &Status) {
    html.push_str("<div class=\"chips\" id=\"summary\">");
    let revision = status.revision.as_deref().unwrap_or("none yet");
    let short = revision.get(..12).unwrap_or(revision);
    chip(
        html,
        "",
        &format!(
            "revision <code title=\"{}\">{}</code>",
            escape(revision),
            escape(short)
        ),
    );
    if status.fetched_revision.as_deref() != status.revision.as_deref() {
        let fetched = status.fetched_revision.as_deref().unwrap_or("-");
        chip(
            html,
            "bad",
            &format!(
                "newest fetched <code>{}</code> refused",
                escape(fetched.get(..12).unwrap_or(fetched))
            ),
        );
    }
    if status.spec_valid {
        chip(html, "ok", "spec valid");
    } else {
        chip(html, "bad", "spec refused");
    }
    let mode = status
        .mode
        .map_or("-", reconciler_spec::ControllerMode::as_str);
    chip(html, "", &format!("mode {mode}"));
    if status.suspended {
        chip(html, "warn", "suspended");
    }
    let lease = match &status.lease {
        crate::status::LeaseStatus::Held => {
            format!("lease held by this controller ({})", escape(&status.holder))
        }
        other => format!("lease {}", escape(&other.to_string())),
    };
    chip(html, "", &lease);
    if status.docker_reachable {
        chip(html, "ok", "Docker reachable");
    } else {
        chip(html, "bad", "Docker unreachable");
    }
    let drift = status.pending.len();
    let _ = write!(
        html,
        "<span class=\"chip {}\" id=\"drift\" data-drift=\"{drift}\">{}</span>",
        if drift == 0 { "ok" } else { "warn" },
        match drift {
            0 => "in sync".to_string(),
            1 => "1 change pending".to_string(),
            n => format!("{n} changes pending"),
        }
    );
    html.push_str("</div>\n");
}

/// The errors in force, each with what it needs and its short reason.
fn problems(html: &mut String, status: &Status) {
    if let Some(error) = &status.spec_error {
        let _ = writeln!(
            *html,
            "<div class=\"alert\" id=\"spec-error\"><h2>The newest revision was refused</h2><pre>{}</pre></div>",
            escape(error)
        );
    }
    if let Some(error) = &status.last_error {
        let needs = match error.class {
            ErrorClass::Retryable => "retrying",
            ErrorClass::NeedsPerson => "waiting for a change by a person",
            ErrorClass::Bug => "a bug in reconciler, please report it",
        };
        let _ = writeln!(
            *html,
            "<div class=\"alert\" id=\"last-error\" data-reason=\"{reason}\"><h2>The last reconcile failed ({needs}; reason <code>{reason}</code>)</h2><pre>{}</pre></div>",
            escape(&error.message),
            reason = error.reason,
        );
    }
    if !status.board_problems.is_empty() {
        html.push_str("<div class=\"alert\" id=\"board-problems\"><h2>Boards not reached or failed (the others went on; the next reconcile tries again)</h2><ul>");
        for problem in &status.board_problems {
            let _ = write!(
                *html,
                "<li data-node=\"{node}\" data-reason=\"{reason}\"><b>{node}</b> (reason <code>{reason}</code>): {}</li>",
                escape(&problem.error.message),
                node = escape(&problem.node),
                reason = problem.error.reason,
            );
        }
        html.push_str("</ul></div>\n");
    }
    if let Some(error) = &status.source_error {
        let _ = writeln!(
            *html,
            "<div class=\"alert\" id=\"source-error\" data-reason=\"{reason}\"><h2>The source cannot be fetched (reason <code>{reason}</code>); the last good revision stays in force</h2><pre>{}</pre></div>",
            escape(&error.message),
            reason = error.reason,
        );
    }
}

fn task(html: &mut String, task: &TaskStatus) {
    let name = match task.slot {
        Some(slot) => format!("{}.{slot}", task.service),
        None => task.service.clone(),
    };
    let title = task.error.as_deref().unwrap_or(task.state.as_str());
    let _ = write!(
        html,
        "<div class=\"task {health}\" data-service=\"{service}\" data-state=\"{state}\" title=\"{title}\">{name} <small>{state}</small></div>",
        health = task.health.as_str(),
        service = escape(&task.service),
        state = task.state.as_str(),
        title = escape(title),
        name = escape(&name),
    );
}

/// One column per node, Swarm Viz style.
fn nodes(html: &mut String, status: &Status) {
    let _ = write!(
        html,
        "<h2>Nodes ({})</h2>\n<div class=\"nodes\">",
        status.nodes.len()
    );
    for node in &status.nodes {
        node_column(html, node);
    }
    if !status.unplaced.is_empty() {
        html.push_str("<section class=\"node\" data-node=\"\" id=\"unplaced\"><div class=\"node-head\"><b>not placed</b><div class=\"facts\">tasks no node takes (yet)</div></div><div>");
        for t in &status.unplaced {
            task(html, t);
        }
        html.push_str("</div></section>");
    }
    if status.nodes.is_empty() {
        html.push_str("<p class=\"empty\">No swarm seen yet.</p>");
    }
    html.push_str("</div>\n");
}

fn node_column(html: &mut String, node: &NodeStatus) {
    let ready = node.state == NodeState::Ready;
    let _ = write!(
        html,
        "<section class=\"node{}\" data-node=\"{}\" data-node-id=\"{}\"><div class=\"node-head\"><b>{}</b><div>{}{} · <span class=\"{}\">{}</span> · {}</div><div class=\"facts\">{} · Docker {}",
        if ready { "" } else { " down" },
        escape(&node.hostname),
        escape(&node.id),
        escape(&node.hostname),
        node.role.as_str(),
        if node.leader { " (leader)" } else { "" },
        if ready { "ok" } else { "bad" },
        node.state.as_str(),
        node.availability.as_str(),
        escape(&node.architecture),
        escape(&node.engine_version),
    );
    if let Some(board) = &node.board {
        let _ = write!(html, "<br>board <b>{}</b>", escape(&board.node));
        if let Some(model) = &board.model {
            let _ = write!(html, "<br>{}", escape(model));
        }
        if !board.os.is_empty() {
            let _ = write!(html, "<br>{}", escape(&board.os));
        }
        if let Some(temperature) = &board.temperature {
            let _ = write!(html, "<br>temperature {}", escape(temperature));
        }
        if let Some(throttled) = &board.throttled {
            let class = if throttled == "0x0" { "ok" } else { "bad" };
            let _ = write!(
                html,
                "<br>throttled <span class=\"{class}\">{}</span>",
                escape(throttled)
            );
        }
    }
    html.push_str("</div>");
    for (key, value) in &node.labels {
        let _ = write!(
            html,
            "<span class=\"label\">{}={}</span>",
            escape(key),
            escape(value)
        );
    }
    html.push_str("</div><div>");
    for t in &node.tasks {
        task(html, t);
    }
    if node.tasks.is_empty() {
        html.push_str("<div class=\"empty\">no tasks</div>");
    }
    html.push_str("</div></section>");
}

fn services(html: &mut String, status: &Status) {
    let _ = write!(
        html,
        "<h2>Services ({})</h2>\n<div class=\"table\"><table id=\"services\"><tr><th>service</th><th>running / desired</th><th>update</th><th>problem</th></tr>\n",
        status.services.len()
    );
    for service in &status.services {
        let desired = service
            .desired
            .map_or_else(|| format!("{} (global)", service.wanted), |n| n.to_string());
        let converged = service.desired.unwrap_or(service.wanted) == service.running;
        let class = if converged { "ok" } else { "warn" };
        let stray = if service.in_spec {
            ""
        } else {
            " <small class=\"muted\">(not in the spec)</small>"
        };
        let _ = writeln!(
            html,
            "<tr data-service=\"{name}\"><td>{name}{stray}</td><td class=\"{class}\">{} / {desired}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
            service.running,
            service.update_state.map_or("", UpdateState::as_str),
            escape(service.error.as_deref().unwrap_or("")),
            name = escape(&service.name),
        );
    }
    html.push_str("</table></div>\n");
}

/// The plan the controller would carry out now, as `reconciler plan` prints it.
fn pending(html: &mut String, status: &Status) {
    html.push_str("<h2>Pending plan</h2>\n");
    let Some(plan) = &status.pending_plan else {
        html.push_str(
            "<p class=\"empty\" id=\"plan\">Nothing pending: the swarm matches the spec.</p>\n",
        );
        return;
    };
    html.push_str("<pre class=\"plan\" id=\"plan\">");
    for line in plan.lines() {
        let class = match line.trim_start().chars().next() {
            Some('+') => "add",
            Some('~') => "change",
            Some('-') => "destroy",
            _ => "",
        };
        let _ = writeln!(html, "<span class=\"{class}\">{}</span>", escape(line));
    }
    html.push_str("</pre>\n");
}

/// `HH:MM:SS` UTC of a unix time; the script shows it in local time.
fn clock(unix: u64) -> String {
    let day = unix % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

fn history(html: &mut String, status: &Status) {
    html.push_str("<h2>Last reconciles</h2>\n<div class=\"table\"><table id=\"history\"><tr><th>started</th><th>trigger</th><th>result</th><th>took</th><th>plan</th><th>drift</th><th>writes</th></tr>\n");
    for reconcile in &status.history {
        history_row(html, reconcile);
    }
    html.push_str("</table></div>\n");
    if status.history.is_empty() {
        html.push_str("<p class=\"empty\">No reconcile yet.</p>\n");
    }
}

fn history_row(html: &mut String, r: &ReconcileStatus) {
    let class = match r.result {
        ReconcileResult::Success => "ok",
        ReconcileResult::Standby => "muted",
        _ => "bad",
    };
    let _ = writeln!(
        html,
        "<tr><td><time data-unix=\"{unix}\">{} UTC</time></td><td>{}</td><td class=\"{class}\">{}</td><td>{} ms</td><td>+{} ~{} -{}</td><td>{}</td><td>{}</td></tr>",
        clock(r.started_at),
        escape(&r.triggers.join(", ")),
        r.result.as_str(),
        r.duration_ms,
        r.plan.add,
        r.plan.change,
        r.plan.destroy,
        r.drift,
        r.writes,
        unix = r.started_at,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{BoardStatus, ServiceStatus, TaskHealth};

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
            }],
            ..Status::default()
        };
        let html = render(&status);
        assert!(html.contains("git &lt;evil&gt;"));
        assert!(html.contains("`x` &amp; &lt;y&gt;"));
        assert!(!html.contains("<evil>"));
        assert!(html.contains("<td class=\"warn\">1 / 2</td>"));
        assert!(html.contains("no suitable node (&lt;1&gt;)"));
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
            }),
            tasks: vec![TaskStatus {
                service: "web".into(),
                slot: Some(2),
                state: crate::observed::TaskState::Starting,
                health: TaskHealth::Starting,
                error: None,
            }],
        };
        let mut html = String::new();
        node_column(&mut html, &node);
        for part in [
            "data-node=\"pi1\"",
            "manager (leader)",
            "aarch64",
            "Raspberry Pi 4 Model B Rev 1.4",
            "temperature 48.3&#39;C",
            "throttled <span class=\"bad\">0x50005</span>",
            "zone=shelf",
            "<div class=\"task starting\" data-service=\"web\" data-state=\"starting\" title=\"starting\">web.2 <small>starting</small></div>",
        ] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
    }

    #[test]
    fn the_pending_plan_is_coloured_by_its_symbols() {
        let status = Status {
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

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock(86_400 + 3600 * 13 + 61), "13:01:01");
    }
}
