//! How long `apply` takes to give up on a service whose tasks cannot start
//! (issue 24): a typo in the image, a missing bind source, no node that
//! fits. Each is applied with the default 5-minute timeout against this
//! machine's one-node swarm; the figure is the time to the error.
//!
//! Run by hand: `cargo bench -p reconciler-tests --bench fail_fast`.

use std::time::Instant;

use reconciler_tests::{reconciler, require_swarm, Cleanup, SpecDir, IMAGE};

fn main() {
    require_swarm();
    let cases = [
        (
            "an image typo",
            "[service.ff-typo]\nimage = \"local/busybx:1\"\n".to_string(),
        ),
        (
            "a missing bind source",
            format!("[service.ff-bind]\nimage = \"{IMAGE}\"\nmounts = [{{ type = \"bind\", source = \"/no/such/folder\", target = \"/data\" }}]\n"),
        ),
        (
            "no node that fits",
            format!("[service.ff-nowhere]\nimage = \"{IMAGE}\"\nconstraints = [\"node.labels.ff-shelf == z\"]\n"),
        ),
    ];
    for (index, (what, service)) in cases.iter().enumerate() {
        let cluster = format!("b-ff-{index}");
        let _cleanup = Cleanup::new(&cluster, "ff-");
        let spec = SpecDir::new(&cluster);
        spec.write("s.toml", service);
        let started = Instant::now();
        let out = reconciler(&["apply", &spec.arg(), "--auto-approve", "--timeout", "5m"]);
        let took = started.elapsed();
        assert_eq!(out.code, 1, "{what}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot start its tasks"),
            "{what}: {}",
            out.stderr
        );
        println!("apply gave up on {what} in {took:.1?} (timeout 5m)");
    }
}
