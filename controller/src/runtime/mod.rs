//! The long-running controller behind `reconciler run`.
//!
//! Level-triggered, like kube-runtime: a [`Trigger`] only says "look again";
//! every reconcile starts from the full desired state and a fresh observation.
//! One visible loop ([`run_loop`]) owns the schedule: triggers that arrive
//! while a reconcile runs coalesce into exactly one follow-up, the resync
//! timer fires even without triggers (Docker events are lossy), and failures
//! back off exponentially with jitter until the next success.

mod backoff;
mod controller;
mod report;
mod step;
mod upkeep;
mod viewer;
mod watchers;
mod writer;

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use backoff::Backoff;
pub use controller::{
    default_holder, page_token, run, webhook_secret, RunError, RunOptions, SshPaths,
};

use crate::reconcile::Trigger;

/// The first retry after a failure that may pass; each further one doubles...
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// ...up to this (then jittered down by up to half).
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// How one reconcile went, as far as scheduling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Retry sooner than the resync interval, with backoff.
    Failure,
    /// Retrying cannot help until a person changes something (the spec, a
    /// host key, a refused plan): look again at the resync interval or on the
    /// next trigger, without backoff.
    NeedsPerson,
}

/// The loop: wait for a trigger, the resync timer or shutdown; gather every
/// trigger already queued; reconcile once; schedule the next resync (or the
/// backoff delay after a failure). Returns when `shutdown` turns true.
/// `interval` is asked again after every reconcile, since the spec can change it.
pub async fn run_loop<R, F>(
    mut triggers: mpsc::UnboundedReceiver<Trigger>,
    mut shutdown: watch::Receiver<bool>,
    mut interval: impl FnMut() -> Duration,
    mut backoff: Backoff,
    mut reconcile: R,
) where
    R: FnMut(Vec<Trigger>) -> F,
    F: Future<Output = Outcome>,
{
    let mut next_resync = Instant::now() + interval();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            trigger = triggers.recv() => match trigger {
                Some(trigger) => trigger,
                None => return,
            },
            _ = tokio::time::sleep_until(next_resync) => Trigger::Timer,
        };
        let mut batch = vec![first];
        while let Ok(more) = triggers.try_recv() {
            batch.push(more);
        }
        batch.dedup();
        let outcome = tokio::select! {
            biased;
            // Dropping the reconcile aborts it between Docker calls; each call is
            // atomic on the daemon, and the next start converges from scratch.
            _ = shutdown.changed() => return,
            outcome = reconcile(batch) => outcome,
        };
        next_resync = Instant::now()
            + match outcome {
                Outcome::Success => {
                    backoff.reset();
                    interval()
                }
                Outcome::Failure => backoff.next_delay().min(interval()),
                Outcome::NeedsPerson => interval(),
            };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// 20 triggers sent while a reconcile runs lead to exactly one follow-up.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn triggers_during_a_reconcile_coalesce_into_one_follow_up() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, shutdown) = watch::channel(false);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let loop_calls = Arc::clone(&calls);
        let loop_seen = Arc::clone(&seen);
        let sender = tx.clone();
        let handle = tokio::spawn(run_loop(
            rx,
            shutdown,
            || Duration::from_secs(3600),
            Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            move |batch| {
                let calls = Arc::clone(&loop_calls);
                let seen = Arc::clone(&loop_seen);
                let sender = sender.clone();
                async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(batch);
                    }
                    if n == 0 {
                        for _ in 0..20 {
                            let _ = sender.send(Trigger::Webhook);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Outcome::Success
                }
            },
        ));
        tx.send(Trigger::Startup).ok();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let batches = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            batches,
            vec![vec![Trigger::Startup], vec![Trigger::Webhook]]
        );
        stop.send(true).ok();
        handle.await.ok();
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn resync_runs_without_triggers_and_failures_retry_sooner() {
        let (_tx, rx) = mpsc::unbounded_channel();
        let (stop, shutdown) = watch::channel(false);
        let calls = Arc::new(AtomicUsize::new(0));
        let loop_calls = Arc::clone(&calls);
        let handle = tokio::spawn(run_loop(
            rx,
            shutdown,
            || Duration::from_secs(60),
            Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            move |_| {
                let calls = Arc::clone(&loop_calls);
                async move {
                    // The first two reconciles fail: they are retried within seconds.
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    }
                }
            },
        ));
        // First resync at 60 s, then retries after ~1 s and ~2 s, then every 60 s.
        tokio::time::sleep(Duration::from_secs(65)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        stop.send(true).ok();
        handle.await.ok();
    }

    /// A failure that needs a person is not retried with backoff: the next
    /// look is at the resync interval (or on a trigger, such as a push).
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_failure_that_needs_a_person_waits_for_the_interval() {
        let (_tx, rx) = mpsc::unbounded_channel();
        let (stop, shutdown) = watch::channel(false);
        let calls = Arc::new(AtomicUsize::new(0));
        let loop_calls = Arc::clone(&calls);
        let handle = tokio::spawn(run_loop(
            rx,
            shutdown,
            || Duration::from_secs(60),
            Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            move |_| {
                let calls = Arc::clone(&loop_calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Outcome::NeedsPerson
                }
            },
        ));
        // First look at 60 s; no retry seconds later, the next one at 120 s.
        tokio::time::sleep(Duration::from_secs(65)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        stop.send(true).ok();
        handle.await.ok();
    }
}
