//! The status page in a real browser: Debian's headless Chromium loads the
//! page of a running controller, finds every node column and every task
//! where `docker service ps` says it runs, sees a drift made behind the
//! controller's back appear and then clear without a reload, lays out on a
//! phone-sized screen, and requests nothing but the controller itself.
//! Screenshots are kept in `target/test-artifacts/`. The controller logs
//! JSON meanwhile: every line is one whole event, none a fragment, and the
//! writes carry their object, operation and revision.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use reconciler_tests::browser::{artifact_path, Browser};
use reconciler_tests::controller::Controller;
use reconciler_tests::*;

fn spec_in_mode(mode: &str) -> String {
    format!(
        "[cluster]\nname = \"p-page\"\n\n[controller]\nmode = \"{mode}\"\n\n\
         [service.ppage-web]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = 2\n\
         ports = [{{ target = 80, published = 18095 }}]\n\n\
         [service.ppage-api]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\nreplicas = 1\n"
    )
}

/// `(task name, node hostname)` of the running tasks of our services, as
/// `docker service ps` (the reference) reports them.
fn reference_tasks() -> BTreeSet<(String, String)> {
    ["ppage-web", "ppage-api"]
        .iter()
        .flat_map(|service| wanted_tasks(service))
        .filter(|(_, _, state)| state == "Running")
        .map(|(name, node, _)| (name, node))
        .collect()
}

/// `(task name, node column)` of every running task of ours the page shows.
const PAGE_TASKS: &str =
    "JSON.stringify([...document.querySelectorAll('section.node')].flatMap(n => \
    [...n.querySelectorAll('.task.running')].filter(t => t.dataset.service.startsWith('ppage-')) \
    .map(t => [t.firstChild.textContent.trim(), n.dataset.node])))";

fn page_tasks(browser: &mut Browser) -> BTreeSet<(String, String)> {
    let text = browser.evaluate(PAGE_TASKS);
    let pairs: Vec<(String, String)> =
        serde_json::from_str(text.as_str().unwrap_or("[]")).expect("task pairs");
    pairs.into_iter().collect()
}

fn wait_page(
    browser: &mut Browser,
    what: &str,
    check: impl Fn(&mut Browser) -> Result<(), String>,
) {
    wait_until(what, Duration::from_secs(90), || check(browser));
}

#[test]
fn the_status_page_shows_the_cluster_live_in_a_real_browser() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("p-page", "ppage-");
    let spec = SpecDir::new("p-page");
    spec.write("cluster.toml", &spec_in_mode("apply"));
    let dir = spec.arg();
    let controller = Controller::start_with(
        &["--dir", &dir],
        &["--interval", "1h"],
        reconciler_tests::controller::SecretFrom::File,
        &[("RECONCILER_LOG_FORMAT", "json")],
    );
    wait_until("both services to run", Duration::from_secs(90), || {
        let tasks = reference_tasks();
        (tasks.len() == 3)
            .then_some(())
            .ok_or(format!("running: {tasks:?}\n{}", controller.process.log()))
    });

    let mut browser = Browser::start();
    let url = format!("http://{}/", controller.address);
    browser.navigate(&url);
    // Set once: still there at the end only if the page never reloaded.
    browser.evaluate("window.loadedOnce = true");

    // Every node of the swarm has its column, and every task is in the
    // column of the node Docker says it runs on.
    let nodes: BTreeSet<String> = docker(&["node", "ls", "--format", "{{.Hostname}}"])
        .lines()
        .map(str::to_string)
        .collect();
    wait_page(
        &mut browser,
        "a column per node and every task placed as docker service ps says",
        |b| {
            let columns: BTreeSet<String> = serde_json::from_str::<Vec<String>>(
            b.evaluate("JSON.stringify([...document.querySelectorAll('section.node[data-node-id]')].map(n => n.dataset.node))")
                .as_str()
                .unwrap_or("[]"),
        )
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
            let shown = page_tasks(b);
            let reference = reference_tasks();
            if columns == nodes && shown == reference && reference.len() == 3 {
                Ok(())
            } else {
                Err(format!("columns {columns:?} (swarm: {nodes:?}); tasks {shown:?} (docker service ps: {reference:?})"))
            }
        },
    );
    let services = browser.evaluate(
        "[...document.querySelectorAll('#services tr[data-service^=\"ppage-\"]')].map(r => r.innerText.replace(/\\s+/g, ' ').trim()).join('; ')",
    );
    assert_eq!(
        services, "ppage-api 1 / 1 local/busybox:1; ppage-web 2 / 2 local/busybox:1 18095/tcp",
        "services table"
    );
    // An ingress port links to the page's own host: every node answers it.
    let link = browser.evaluate("document.querySelector('#services a[data-port]').href");
    assert_eq!(
        link,
        format!("http://{}:18095/", controller.address.ip()),
        "the port's link"
    );
    let lease = browser.evaluate("document.getElementById('summary').innerText");
    assert!(
        lease
            .as_str()
            .unwrap_or("")
            .contains("lease held by this controller"),
        "the lease chip: {lease}"
    );
    browser.screenshot(&artifact_path("status-page.png"));

    // Observe mode, then a drift behind the controller's back: the page
    // shows it (chip, plan in the `plan` form, the third task) without a reload.
    spec.write("cluster.toml", &spec_in_mode("observe"));
    wait_page(&mut browser, "the page to say mode observe", |b| {
        let chips = b.evaluate("document.getElementById('summary').innerText");
        chips
            .as_str()
            .unwrap_or("")
            .contains("mode observe")
            .then_some(())
            .ok_or(format!("{chips}"))
    });
    docker(&["service", "scale", "--detach", "ppage-web=3"]);
    wait_page(&mut browser, "the drift to appear on the page", |b| {
        let drift = b.evaluate("document.getElementById('drift').dataset.drift");
        let plan = b.evaluate("(document.getElementById('plan') || {}).innerText || ''");
        let tasks = page_tasks(b)
            .iter()
            .filter(|(t, _)| t.starts_with("ppage-web."))
            .count();
        let plan = plan.as_str().unwrap_or("");
        if drift == "1"
            && plan.contains("~ service \"ppage-web\"")
            && plan.contains("replicas: 3 -> 2")
            && tasks == 3
        {
            Ok(())
        } else {
            Err(format!("drift {drift}, {tasks} web tasks, plan:\n{plan}"))
        }
    });
    let colour =
        browser.evaluate("getComputedStyle(document.querySelector('.plan .change')).color");
    assert_eq!(colour, "rgb(179, 89, 0)", "a change line is amber");
    browser.screenshot(&artifact_path("status-page-drift.png"));

    // Back to apply: the controller corrects the drift and the page clears.
    spec.write("cluster.toml", &spec_in_mode("apply"));
    wait_page(&mut browser, "the drift to clear on the page", |b| {
        let drift = b.evaluate("document.getElementById('drift').dataset.drift");
        let tasks = page_tasks(b)
            .iter()
            .filter(|(t, _)| t.starts_with("ppage-web."))
            .count();
        let history = b.evaluate("document.getElementById('history').innerText");
        if drift == "0" && tasks == 2 && history.as_str().unwrap_or("").contains("~1") {
            Ok(())
        } else {
            Err(format!(
                "drift {drift}, {tasks} web tasks, history:\n{history}"
            ))
        }
    });
    assert_eq!(
        browser.evaluate("window.loadedOnce === true"),
        true,
        "the page reloaded instead of updating itself"
    );

    // A commit that would delete every service: the controller refuses it,
    // and the page says so (badge, the refused plan's `-` lines), never
    // "in sync"; nothing is removed. Restored, the badge clears.
    spec.write(
        "cluster.toml",
        "[cluster]\nname = \"p-page\"\n\n[controller]\nmode = \"apply\"\n",
    );
    wait_page(&mut browser, "the refusal to show on the page", |b| {
        let badge = b.evaluate("document.getElementById('drift').innerText");
        let class = b.evaluate("document.getElementById('drift').className");
        let reason = b.evaluate(
            "(document.getElementById('plan-refused') || {dataset: {}}).dataset.reason || ''",
        );
        let plan = b.evaluate("(document.getElementById('plan') || {}).innerText || ''");
        let plan = plan.as_str().unwrap_or("");
        if badge == "plan refused (mass_delete): not applied"
            && class == "chip bad"
            && reason == "mass_delete"
            && plan.contains("- service \"ppage-web\"")
            && plan.contains("- service \"ppage-api\"")
        {
            Ok(())
        } else {
            Err(format!(
                "badge {badge} ({class}), refused {reason}, plan:\n{plan}"
            ))
        }
    });
    browser.screenshot(&artifact_path("status-page-refused.png"));
    assert_eq!(reference_tasks().len(), 3, "a refused plan removed tasks");
    spec.write("cluster.toml", &spec_in_mode("apply"));
    wait_page(&mut browser, "the badge to say in sync again", |b| {
        let badge = b.evaluate("document.getElementById('drift').innerText");
        (badge == "in sync")
            .then_some(())
            .ok_or(format!("badge {badge}"))
    });

    // On a phone: node columns stack in a scrolling row, the page itself
    // never scrolls sideways.
    browser.emulate_phone(Some(390));
    browser.navigate(&url);
    wait_page(&mut browser, "the page to lay out on a phone", |b| {
        let fits = b.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1");
        let tasks = page_tasks(b).len();
        (fits == true && tasks == 3).then_some(()).ok_or(format!(
            "scrollWidth {} > innerWidth {}; {tasks} tasks",
            b.evaluate("document.documentElement.scrollWidth"),
            b.evaluate("window.innerWidth")
        ))
    });
    browser.screenshot(&artifact_path("status-page-phone.png"));

    // Nothing came from anywhere but the controller.
    let origin = format!("http://{}/", controller.address);
    let requested = browser.requested_urls();
    assert!(
        requested.iter().any(|u| u.ends_with("/api/page")),
        "{requested:?}"
    );
    let foreign: Vec<&String> = requested
        .iter()
        .filter(|u| !u.starts_with(&origin))
        .collect();
    assert!(
        foreign.is_empty(),
        "requests outside the controller: {foreign:?}"
    );

    // The log: one JSON event per line, each a whole sentence with its fields.
    let log = controller.process.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON event per line ({e}): {line:?}"))
        })
        .collect();
    for event in &events {
        let message = event["message"].as_str().unwrap_or_default();
        assert!(
            message.split_whitespace().count() >= 2,
            "a log line is a fragment: {event}"
        );
    }
    let corrected = events
        .iter()
        .find(|e| e["object"] == "service.ppage-web" && e["operation"] == "update");
    let corrected = corrected.unwrap_or_else(|| panic!("no write event for the drift:\n{log}"));
    assert!(
        corrected["revision"]
            .as_str()
            .is_some_and(|r| r.starts_with("dir-")),
        "{corrected}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["writes"] == 1 && e["change"] == 1 && e["duration_ms"].is_u64()),
        "no reconcile summary for the correction:\n{log}"
    );
    println!(
        "screenshots: {}",
        artifact_path("status-page*.png").display()
    );
}
