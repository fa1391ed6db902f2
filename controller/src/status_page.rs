//! The read-only status page at `/`: what a person wants to see at a glance —
//! revision, last reconcile, pending changes, errors, boards and services.
//! Plain HTML from [`Status`], every value escaped; no scripts, no assets.

use std::fmt::Write as _;

use crate::status::Status;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The whole page; refreshes itself every 10 seconds.
pub fn render(status: &Status) -> String {
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">\n<title>reconciler</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}.bad{color:#b00}.ok{color:#070}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}</style>\n</head><body>\n<h1>reconciler</h1>\n",
    );
    let _ = writeln!(html, "<p>Source: {}</p>", escape(&status.source));
    let revision = status.revision.as_deref().unwrap_or("none yet");
    let _ = writeln!(
        html,
        "<p>Revision in force: <code>{}</code>",
        escape(revision)
    );
    if status.fetched_revision.as_deref() != status.revision.as_deref() {
        let fetched = status.fetched_revision.as_deref().unwrap_or("-");
        let _ = write!(html, " (newest fetched: <code>{}</code>)", escape(fetched));
    }
    html.push_str("</p>\n");
    let spec = if status.spec_valid {
        "<span class=\"ok\">valid</span>"
    } else {
        "<span class=\"bad\">refused</span>"
    };
    let _ = writeln!(
        html,
        "<p>Spec: {spec} · mode: {} · suspended: {} · lease: {} · Docker: {}</p>",
        status
            .mode
            .map_or("-", reconciler_spec::ControllerMode::as_str),
        status.suspended,
        escape(&status.lease.to_string()),
        if status.docker_reachable {
            "<span class=\"ok\">reachable</span>"
        } else {
            "<span class=\"bad\">unreachable</span>"
        }
    );
    if let Some(last) = &status.last_reconcile {
        let class = if last.result == crate::runtime::ReconcileResult::Success {
            "ok"
        } else {
            "bad"
        };
        let _ = writeln!(
            html,
            "<p>Last reconcile: <span class=\"{class}\">{}</span> ({} ms, triggered by {}) · plan: {} to add, {} to change, {} to destroy · Docker writes: {}</p>",
            last.result.as_str(),
            last.duration_ms,
            escape(&last.triggers.join(", ")),
            last.plan.add,
            last.plan.change,
            last.plan.destroy,
            last.writes
        );
    }
    problems(&mut html, status);
    nodes(&mut html, status);
    services(&mut html, status);
    html.push_str("</table>\n<p><a href=\"/api/status\">JSON</a> · <a href=\"/metrics\">metrics</a></p>\n</body></html>\n");
    html
}

/// The error in force and the changes the last plan wanted.
fn problems(html: &mut String, status: &Status) {
    if let Some(error) = &status.spec_error {
        let _ = writeln!(
            *html,
            "<h2 class=\"bad\">Error: the newest revision was refused</h2>\n<pre>{}</pre>",
            escape(error)
        );
    } else if let Some(error) = &status.last_error {
        let needs = match error.class {
            crate::failure::ErrorClass::Retryable => "retrying",
            crate::failure::ErrorClass::NeedsPerson => "waiting for a change by a person",
            crate::failure::ErrorClass::Bug => "a bug in reconciler, please report it",
        };
        let _ = writeln!(
            *html,
            "<h2 class=\"bad\">Error ({needs}: {})</h2>\n<pre>{}</pre>",
            error.reason,
            escape(&error.message)
        );
    }
    if let Some(error) = &status.source_error {
        let _ = writeln!(
            *html,
            "<h2 class=\"bad\">The source cannot be fetched ({}); the last good revision stays in force</h2>\n<pre>{}</pre>",
            error.reason,
            escape(&error.message)
        );
    }
    if !status.pending.is_empty() {
        html.push_str("<h2>Pending changes</h2>\n<ul>\n");
        for line in &status.pending {
            let _ = writeln!(*html, "<li>{}</li>", escape(line));
        }
        html.push_str("</ul>\n");
    }
}

fn nodes(html: &mut String, status: &Status) {
    html.push_str("<h2>Nodes</h2>\n<table><tr><th>hostname</th><th>role</th><th>availability</th><th>state</th><th>labels</th></tr>\n");
    for node in &status.nodes {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let class = if node.state == "ready" { "ok" } else { "bad" };
        let _ = writeln!(
            *html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            escape(&node.hostname),
            escape(&node.role),
            escape(&node.availability),
            escape(&node.state),
            escape(&labels.join(", "))
        );
    }
}

fn services(html: &mut String, status: &Status) {
    html.push_str("</table>\n<h2>Services</h2>\n<table><tr><th>service</th><th>running</th><th>desired</th></tr>\n");
    for service in &status.services {
        let desired = service
            .desired
            .map_or_else(|| "global".to_string(), |n| n.to_string());
        let converged = service.desired.is_none_or(|n| n == service.running);
        let class = if converged { "ok" } else { "bad" };
        let _ = writeln!(
            *html,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            escape(&service.name),
            service.running,
            desired
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ServiceStatus;

    #[test]
    fn values_are_escaped() {
        let status = Status {
            source: "git <evil>".into(),
            spec_error: Some("a.toml:1:1: error: `x` & <y>".into()),
            services: vec![ServiceStatus {
                name: "web".into(),
                desired: Some(2),
                running: 1,
                in_spec: true,
            }],
            ..Status::default()
        };
        let html = render(&status);
        assert!(html.contains("git &lt;evil&gt;"));
        assert!(html.contains("`x` &amp; &lt;y&gt;"));
        assert!(!html.contains("<evil>"));
        assert!(html.contains("<td>web</td><td class=\"bad\">1</td><td>2</td>"));
    }
}
