//! Running token work off the async reactor, bounded to the size of the session pool.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::TokenError;

/// Runs blocking token calls on tokio's blocking threads, at most `permits` at a time, so a
/// slow token queues requests here instead of pinning every blocking thread (DESIGN.md
/// principle 5).
#[derive(Debug, Clone)]
pub struct HsmRunner {
    permits: Arc<Semaphore>,
}

impl HsmRunner {
    /// A runner admitting `permits` concurrent calls; use the token's session capacity.
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a permit is free.
    pub async fn run<T, F>(&self, work: F) -> Result<T, TokenError>
    where
        F: FnOnce() -> Result<T, TokenError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TokenError::Unavailable("HSM runner closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| TokenError::Unavailable(format!("HSM worker failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_runs_more_than_its_permits_at_once() {
        let runner = HsmRunner::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (runner, running, peak) = (runner.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                runner
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
