//! What the live status page costs: the Docker calls a controller makes per
//! minute with nobody looking and while the page is open (it re-reads the
//! placement every 2 s only then), the size of the page's body, and how long
//! `/api/page` and `/api/status` take to answer, with 20 services running.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench status_page` (about
//! two minutes; needs `scripts/setup`). Creates `bpage-00`..`bpage-19` and
//! removes them at the end.

use std::time::{Duration, Instant};

use reconciler_tests::controller::Controller;
use reconciler_tests::proxy::DockerProxy;
use reconciler_tests::{docker, http, require_swarm, wait_until, Cleanup, SpecDir, IMAGE};

const SERVICES: usize = 20;
const WINDOW: Duration = Duration::from_secs(30);

fn per_minute(calls: usize) -> f64 {
    calls as f64 * 60.0 / WINDOW.as_secs_f64()
}

fn main() {
    require_swarm();
    let _cleanup = Cleanup::new("b-page", "bpage-");
    let spec = SpecDir::new("b-page");
    let mut body = String::new();
    for i in 0..SERVICES {
        body.push_str(&format!(
            "[service.bpage-{i:02}]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"86400\"]\n\n"
        ));
    }
    spec.write("services.toml", &body);
    let dir = spec.arg();
    let proxy = DockerProxy::start(Some("/var/run/docker.sock"));
    let host = proxy.host();
    let controller = Controller::start(
        &["--dir", &dir],
        &["--interval", "1h", "--docker-host", &host],
    );
    // Judged with the docker CLI, not /api/status: asking the controller
    // would count as someone looking.
    wait_until("every service to run", Duration::from_secs(300), || {
        let running = docker(&[
            "service",
            "ls",
            "--filter",
            "name=bpage-",
            "--format",
            "{{.Replicas}}",
        ]);
        let done = running.lines().filter(|l| l.starts_with("1/1")).count();
        (done == SERVICES)
            .then_some(())
            .ok_or(format!("{done}/{SERVICES} running"))
    });
    std::thread::sleep(Duration::from_secs(3));

    let before = proxy.requests().len();
    std::thread::sleep(WINDOW);
    let idle = proxy.requests().len() - before;

    let before = proxy.requests().len();
    let started = Instant::now();
    let mut page_times = Vec::new();
    let mut status_times = Vec::new();
    let mut page_bytes = 0;
    while started.elapsed() < WINDOW {
        let t = Instant::now();
        let page = http::get(controller.address, "/api/page").expect("GET /api/page");
        page_times.push(t.elapsed());
        page_bytes = page.body.len();
        let t = Instant::now();
        http::get(controller.address, "/api/status").expect("GET /api/status");
        status_times.push(t.elapsed());
        std::thread::sleep(Duration::from_secs(2));
    }
    let watched = proxy.requests().len() - before;
    let full = http::get(controller.address, "/").expect("GET /");

    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    println!("{SERVICES} services running, one node; {WINDOW:?} windows");
    println!(
        "Docker calls, nobody looking:  {idle} ({:.0}/min)",
        per_minute(idle)
    );
    println!(
        "Docker calls, page open:       {watched} ({:.0}/min)",
        per_minute(watched)
    );
    println!(
        "page: {} bytes in all, body {page_bytes} bytes",
        full.body.len()
    );
    println!(
        "GET /api/page median {:?}, GET /api/status median {:?} ({} each)",
        median(&mut page_times),
        median(&mut status_times),
        page_times.len()
    );
}
