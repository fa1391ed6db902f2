//! Keeps the status page's picture of the cluster live while someone looks.
//!
//! Reconciles redraw the picture, but tasks move between them (a container
//! starting, failing, moving off a drained board) without any service or
//! node event. While the page or `/api/status` was asked for within
//! [`crate::http::VIEWED_FOR`], this task reads the placement every
//! [`REFRESH`] (three read-only list calls) and redraws it; nobody looking
//! costs nothing. It never writes to Docker, so it needs no lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::Shared;
use crate::swarm::Swarm;

/// How often the picture is redrawn while someone looks.
pub(super) const REFRESH: Duration = Duration::from_secs(2);

/// Runs until `shutdown` turns true; follows Docker to wherever `host` says.
pub(super) async fn keep_picture_live(
    host: watch::Receiver<Option<String>>,
    call_timeout: Duration,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connected: Option<Swarm> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(REFRESH) => {}
            // Someone looked at a picture gone stale: redraw it now.
            () = shared.refresh.notified() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        // Nothing to draw before a reconcile loaded a spec (and its cluster name).
        if !shared.watched() || shared.picture_cluster().is_empty() {
            continue;
        }
        let Some(current) = host.borrow().clone() else {
            continue;
        };
        if connected.as_ref().is_none_or(|s| s.host() != current) {
            // Ownership is judged by the cluster the last reconcile loaded.
            let cluster = shared.picture_cluster();
            connected = Swarm::connect(&current, &cluster, call_timeout).await.ok();
        }
        let Some(swarm) = &connected else { continue };
        if swarm.cluster() != shared.picture_cluster() {
            connected = None;
            continue;
        }
        match swarm.placement().await {
            Ok(placement) => shared.record_placement(&placement),
            Err(error) => {
                tracing::debug!(%error, "could not refresh the status page's picture");
                connected = None;
            }
        }
    }
}
