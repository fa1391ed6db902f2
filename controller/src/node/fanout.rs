//! Node work on many boards at once, with a bound, where one slow or broken
//! board never blocks the others.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Runs `work` for every item with at most `limit` running at once; results
/// come back in the items' order, each one its own success or failure.
pub async fn for_each<T, R, F, Fut>(items: Vec<T>, limit: usize, work: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut handles = Vec::with_capacity(items.len());
    for item in items {
        let permits = Arc::clone(&permits);
        let job = work(item);
        handles.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            job.await
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.await {
            Ok(result) => results.push(result),
            // A panicking job is a bug; surface it rather than hide one board.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn runs_at_most_limit_at_once_and_keeps_order() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let results = for_each((0..10).collect(), 3, |i: u64| {
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100 * (10 - i))).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(results, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
