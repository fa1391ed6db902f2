//! Triggers from outside the loop: Docker's event stream and the watched
//! spec directory. They only say "look again".

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::http::Shared;
use crate::reconcile::Trigger;
use crate::swarm::Swarm;

/// Docker events become triggers. The stream follows `host` when it changes
/// (a new tunnel with `--ssh`) and, after a break, resumes where it left
/// off by the daemon's clock, so a change made meanwhile is still seen;
/// a broken stream also triggers one reconcile (which reconnects the tunnel).
pub(super) async fn watch_docker_events(
    mut host: watch::Receiver<Option<String>>,
    call_timeout: Duration,
    triggers: mpsc::UnboundedSender<Trigger>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut resume: Option<i64> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let current = host.borrow_and_update().clone();
        let ended = match current {
            Some(current) => match Swarm::connect(&current, "", call_timeout).await {
                Ok(swarm) => {
                    let watching = EventWatch {
                        triggers: &triggers,
                        shared: &shared,
                    };
                    watching
                        .follow(&swarm, &mut resume, &mut host, &mut shutdown)
                        .await
                }
                Err(error) => {
                    shared
                        .metrics
                        .docker_errors
                        .with_label_values(&[error.operation().as_str()])
                        .inc();
                    StreamEnd::Broke
                }
            },
            None => StreamEnd::Broke,
        };
        match ended {
            StreamEnd::Shutdown => return,
            StreamEnd::Moved => continue,
            StreamEnd::Broke => {}
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            moved = host.changed() => if moved.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Why an event stream stopped being followed.
enum StreamEnd {
    Shutdown,
    /// Docker is now reached elsewhere: follow the new host at once.
    Moved,
    Broke,
}

struct EventWatch<'a> {
    triggers: &'a mpsc::UnboundedSender<Trigger>,
    shared: &'a Shared,
}

impl EventWatch<'_> {
    /// Follows one stream, resumed from `resume`, which it moves forward to
    /// the last time it is sure to have seen.
    async fn follow(
        &self,
        swarm: &Swarm,
        resume: &mut Option<i64>,
        host: &mut watch::Receiver<Option<String>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> StreamEnd {
        let started = swarm.daemon_time().await.ok().flatten();
        let mut events = Box::pin(swarm.events(*resume));
        let mut seen = started;
        let ended = loop {
            tokio::select! {
                _ = shutdown.changed() => break StreamEnd::Shutdown,
                moved = host.changed() => {
                    break if moved.is_err() { StreamEnd::Shutdown } else { StreamEnd::Moved };
                }
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        tracing::debug!(kind = %event.kind, "docker event");
                        seen = seen.max(event.time);
                        if self.triggers.send(Trigger::DockerEvent).is_err() {
                            break StreamEnd::Shutdown;
                        }
                    }
                    Some(Err(error)) => {
                        self.shared.metrics.docker_errors.with_label_values(&[error.operation().as_str()]).inc();
                        tracing::info!(%error, "lost Docker's event stream: reconciling now");
                        let _ = self.triggers.send(Trigger::EventsLost);
                        break StreamEnd::Broke;
                    }
                    None => {
                        tracing::info!("Docker's event stream ended: reconciling now");
                        let _ = self.triggers.send(Trigger::EventsLost);
                        break StreamEnd::Broke;
                    }
                }
            }
        };
        *resume = (*resume).max(seen);
        ended
    }
}

/// How long a spec directory must be quiet before a change triggers a
/// reconcile, so an editor saving several files is seen as one change.
const FILE_SETTLE: Duration = Duration::from_millis(300);

/// Watches a spec directory with notify, debounced by [`FILE_SETTLE`].
pub(super) fn watch_directory(
    path: &std::path::Path,
    triggers: mpsc::UnboundedSender<Trigger>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (raw, mut raw_events) = mpsc::unbounded_channel::<()>();
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !event.kind.is_access() {
                let _ = raw.send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the spec directory; relying on the resync timer");
            return None;
        }
    };
    if let Err(error) = watcher.watch(path, notify::RecursiveMode::Recursive) {
        tracing::warn!(%error, path = %path.display(), "cannot watch the spec directory; relying on the resync timer");
        return None;
    }
    tokio::spawn(async move {
        while raw_events.recv().await.is_some() {
            loop {
                match tokio::time::timeout(FILE_SETTLE, raw_events.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            if triggers.send(Trigger::FileChanged).is_err() {
                return;
            }
        }
    });
    Some(watcher)
}
