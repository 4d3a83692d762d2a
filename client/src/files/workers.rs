//! A pool of sessions that work through a queue of chunk jobs at once.
//!
//! Each worker is a [`Messenger::sibling`] over the same home: its own
//! onion-path state on the same guards, so the jobs spread over both
//! paths without one request waiting for another.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use crate::error::Result;
use crate::home::Home;
use crate::messenger::Messenger;

/// Starts `n` workers that take jobs from `jobs` until it closes, run
/// `work` on each (with the worker's own session), and send its result.
/// The results channel closes when every worker has stopped.
pub(super) fn spawn<J, R, F, Fut>(
    m: &Messenger,
    n: usize,
    jobs: mpsc::Receiver<J>,
    work: F,
) -> Result<mpsc::Receiver<R>>
where
    J: Send + 'static,
    R: Send + 'static,
    F: Fn(Messenger, J) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = (Messenger, R)> + Send + 'static,
{
    let jobs = Arc::new(Mutex::new(jobs));
    let (tx, rx) = mpsc::channel(n.max(1) * 2);
    for _ in 0..n.max(1) {
        let mut worker = m.sibling(Home::open(m.home.dir())?);
        let (jobs, tx, work) = (Arc::clone(&jobs), tx.clone(), work.clone());
        tokio::spawn(async move {
            loop {
                let job = jobs.lock().await.recv().await;
                let Some(job) = job else { break };
                let (back, result) = work(worker, job).await;
                worker = back;
                if tx.send(result).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}
