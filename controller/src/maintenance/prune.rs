//! Old images taken off the boards (`[maintenance] prune_images`): the
//! images no container uses (running or stopped: a task's image stays
//! while Swarm keeps the task), created longer ago than the policy says,
//! as `docker image prune --all --filter until=` removes them. Boards fill
//! their cards with every version ever deployed otherwise.

use std::time::Duration;

/// How often `run` prunes a board (and once after it starts).
pub const EVERY: Duration = Duration::from_secs(3600);

/// The root script that prunes a board.
pub fn script(older_than: Duration) -> String {
    format!(
        "docker image prune --all --force --filter until={}s\n",
        older_than.as_secs()
    )
}

/// What Docker says it freed (`Total reclaimed space: 1.2GB` → `1.2GB`).
pub fn reclaimed(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Total reclaimed space:"))
        .map(str::trim)
}

/// The image names Docker says it removed (its `untagged:` lines; an
/// image without a name is only counted in the space).
pub fn untagged(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("untagged:"))
        .map(str::trim)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_asks_docker_for_images_older_than_the_policy() {
        assert_eq!(
            script(Duration::from_secs(14 * 24 * 3600)),
            "docker image prune --all --force --filter until=1209600s\n"
        );
    }

    #[test]
    fn dockers_report_is_read() {
        // As Docker 20.10 and 28 print it.
        let out = "Deleted Images:\nuntagged: junk:1\nuntagged: old/web:2\ndeleted: sha256:aa\ndeleted: sha256:bb\n\nTotal reclaimed space: 1.204MB\n";
        assert_eq!(reclaimed(out), Some("1.204MB"));
        assert_eq!(untagged(out), ["junk:1", "old/web:2"]);
        assert_eq!(reclaimed("Total reclaimed space: 0B\n"), Some("0B"));
        assert_eq!(reclaimed(""), None);
    }
}
