//! The queue of pending jobs that executors take from. It only hands out job ids: an executor
//! must then ask the scheduler to start the job, which alone decides whether it still may run.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// A pending job as executors see it in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// The job.
    pub job_id: u64,
    /// Its `tags` (the built-in executor takes untagged jobs only).
    pub tags: Vec<String>,
    /// Whether its pipeline's ref is protected (for runners limited to protected refs).
    pub protected_ref: bool,
    /// Its project and `resource_group`, if it has one.
    pub resource_group: Option<(u64, String)>,
}

/// Pending jobs in arrival order, shared by every executor.
#[derive(Default)]
pub struct JobQueue {
    jobs: Mutex<Waiting>,
    arrived: Notify,
    /// Bumped on every push: runners' `X-GitLab-Last-Update`.
    version: AtomicU64,
}

/// The queue itself and the ids in it (a job is queued once).
#[derive(Default)]
struct Waiting {
    order: VecDeque<QueuedJob>,
    ids: HashSet<u64>,
}

impl JobQueue {
    /// Adds a job and wakes the executors.
    pub fn push(&self, job: QueuedJob) {
        if let Ok(mut jobs) = self.jobs.lock()
            && jobs.ids.insert(job.job_id)
        {
            jobs.order.push_back(job);
        }
        self.version.fetch_add(1, Ordering::SeqCst);
        self.arrived.notify_waiters();
    }

    /// Wakes the executors and held runner requests to look at the queue again (a resource
    /// group was let go).
    pub fn wake(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.arrived.notify_waiters();
    }

    /// Takes the oldest job `accept` agrees to run.
    pub fn take(&self, accept: impl Fn(&QueuedJob) -> bool) -> Option<QueuedJob> {
        let mut jobs = self.jobs.lock().ok()?;
        let i = jobs.order.iter().position(accept)?;
        let job = jobs.order.remove(i)?;
        jobs.ids.remove(&job.job_id);
        Some(job)
    }

    /// Waits until a job `accept` agrees to run is taken.
    pub async fn next(&self, accept: impl Fn(&QueuedJob) -> bool) -> QueuedJob {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(job) = self.take(&accept) {
                return job;
            }
            arrived.await;
        }
    }

    /// Takes the oldest job `accept` agrees to run, waiting up to `wait` for one to arrive.
    pub async fn take_within(
        &self,
        accept: impl Fn(&QueuedJob) -> bool,
        wait: std::time::Duration,
    ) -> Option<QueuedJob> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(job) = self.take(&accept) {
                return Some(job);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }

    /// Changes whenever a job is queued (an opaque queue version for long-polling runners).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// How many jobs wait.
    pub fn len(&self) -> usize {
        self.jobs.lock().map_or(0, |j| j.order.len())
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn executors_take_only_what_they_accept_in_order() {
        let q = JobQueue::default();
        q.push(QueuedJob {
            job_id: 1,
            tags: vec!["docker".into()],
            protected_ref: false,
            resource_group: None,
        });
        q.push(QueuedJob {
            job_id: 2,
            tags: vec![],
            protected_ref: false,
            resource_group: None,
        });
        q.push(QueuedJob {
            job_id: 3,
            tags: vec![],
            protected_ref: false,
            resource_group: None,
        });
        q.push(QueuedJob {
            job_id: 3,
            tags: vec![],
            protected_ref: false,
            resource_group: None,
        });
        let untagged = |j: &QueuedJob| j.tags.is_empty();
        assert_eq!(q.next(untagged).await.job_id, 2);
        assert_eq!(q.next(untagged).await.job_id, 3);
        assert!(q.take(untagged).is_none());
        assert_eq!(q.len(), 1);
    }
}
