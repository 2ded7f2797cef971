//! The queue of pending jobs that executors take from. It only hands out job ids: an executor
//! must then ask the scheduler to start the job, which alone decides whether it still may run.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A pending job as executors see it in the queue: its id and what decides who may take it
/// (shared with every queued job alike, so a long queue costs 16 bytes a job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// The job.
    pub job_id: u64,
    class: Arc<JobClass>,
}

/// What decides who may take a queued job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobClass {
    /// Its `tags` (the built-in executor takes untagged jobs only).
    pub tags: Vec<String>,
    /// Whether its pipeline's ref is protected (for runners limited to protected refs).
    pub protected_ref: bool,
    /// Its project and `resource_group`, if it has one.
    pub resource_group: Option<(u64, String)>,
}

impl QueuedJob {
    /// A queued job of `class`.
    pub fn new(job_id: u64, class: JobClass) -> QueuedJob {
        QueuedJob {
            job_id,
            class: Arc::new(class),
        }
    }
}

impl std::ops::Deref for QueuedJob {
    type Target = JobClass;

    fn deref(&self) -> &JobClass {
        &self.class
    }
}

/// Pending jobs in arrival order, shared by every executor.
#[derive(Default)]
pub struct JobQueue {
    jobs: Mutex<Waiting>,
    arrived: Notify,
    /// Bumped on every push: runners' `X-GitLab-Last-Update`.
    version: AtomicU64,
}

/// The queue itself, the ids in it (a job is queued once) and the classes its jobs share.
#[derive(Default)]
struct Waiting {
    order: VecDeque<QueuedJob>,
    ids: HashSet<u64>,
    classes: HashSet<Arc<JobClass>>,
}

impl Waiting {
    /// The shared copy of `class`; classes no queued job has any more are let go now and then.
    fn intern(&mut self, class: Arc<JobClass>) -> Arc<JobClass> {
        if let Some(shared) = self.classes.get(&class) {
            return shared.clone();
        }
        if self.classes.len() >= 64.max(2 * self.order.len()) {
            self.classes.retain(|c| Arc::strong_count(c) > 1);
        }
        self.classes.insert(class.clone());
        class
    }
}

impl JobQueue {
    /// Adds a job and wakes the executors.
    pub fn push(&self, job: QueuedJob) {
        if let Ok(mut jobs) = self.jobs.lock()
            && jobs.ids.insert(job.job_id)
        {
            let class = jobs.intern(job.class);
            jobs.order.push_back(QueuedJob {
                job_id: job.job_id,
                class,
            });
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
        q.push(QueuedJob::new(
            1,
            JobClass {
                tags: vec!["docker".into()],
                protected_ref: false,
                resource_group: None,
            },
        ));
        q.push(QueuedJob::new(
            2,
            JobClass {
                tags: vec![],
                protected_ref: false,
                resource_group: None,
            },
        ));
        q.push(QueuedJob::new(
            3,
            JobClass {
                tags: vec![],
                protected_ref: false,
                resource_group: None,
            },
        ));
        q.push(QueuedJob::new(
            3,
            JobClass {
                tags: vec![],
                protected_ref: false,
                resource_group: None,
            },
        ));
        let untagged = |j: &QueuedJob| j.tags.is_empty();
        assert_eq!(q.next(untagged).await.job_id, 2);
        assert_eq!(q.next(untagged).await.job_id, 3);
        assert!(q.take(untagged).is_none());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn queued_jobs_of_one_class_share_it_and_unused_classes_are_let_go() {
        let q = JobQueue::default();
        let class = |tag: &str| JobClass {
            tags: vec![tag.to_string()],
            protected_ref: false,
            resource_group: None,
        };
        for id in 0..1000 {
            q.push(QueuedJob::new(id, class("a")));
        }
        let jobs = q.jobs.lock().unwrap();
        assert!(Arc::ptr_eq(&jobs.order[0].class, &jobs.order[999].class));
        assert_eq!(jobs.classes.len(), 1);
        drop(jobs);
        while q.take(|_| true).is_some() {}
        for id in 1000..1200 {
            q.push(QueuedJob::new(id, class(&id.to_string())));
            assert!(q.take(|j| j.job_id == id).is_some());
        }
        assert!(
            q.jobs.lock().unwrap().classes.len() <= 65,
            "classes of taken jobs are let go"
        );
        assert!(q.is_empty());
    }
}
