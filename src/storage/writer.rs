//! The single writer: one thread owns redb's one write transaction and commits every operation
//! that arrived while the previous commit was in flight in one batch (group commit). A caller is
//! answered only after the commit that holds its operation returned, so an acknowledged write
//! survives a crash; one fsync serves the whole batch. When the disk fails a commit, that batch
//! is refused and the writer reopens the file (see `slot`) before it takes the next one.

use super::Error;
use super::slot::Slot;
use redb::{Database, WriteTransaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// At most this many operations share one transaction, to bound commit latency.
const MAX_BATCH: usize = 512;

/// Counters about group commit, for benchmarks and metrics.
#[derive(Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Operations committed.
    pub operations: AtomicU64,
}

/// One queued operation, type-erased so that one queue carries them all.
trait Job: Send {
    /// Runs the operation inside the batch's transaction.
    fn run(&mut self, tx: &WriteTransaction) -> Result<(), Error>;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, outcome: Result<(), Error>);
}

struct TypedJob<F, R> {
    op: Option<F>,
    result: Option<Result<R, Error>>,
    reply: oneshot::Sender<Result<R, Error>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnOnce(&WriteTransaction) -> Result<R, Error> + Send,
    R: Send,
{
    fn run(&mut self, tx: &WriteTransaction) -> Result<(), Error> {
        let result = match self.op.take() {
            Some(op) => op(tx),
            None => Err(Error::Closed),
        };
        let failed = result.as_ref().err().map(Error::shallow_clone);
        self.result = Some(result);
        failed.map_or(Ok(()), Err)
    }

    fn finish(self: Box<Self>, outcome: Result<(), Error>) {
        let answer = match (self.result, outcome) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(e)) => Err(e),
            (Some(Ok(r)), Ok(())) => Ok(r),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(Error::Closed),
        };
        let _ = self.reply.send(answer);
    }
}

/// A cheap handle that queues operations for the writer thread.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    /// Group-commit counters.
    pub stats: Arc<WriterStats>,
}

impl Writer {
    /// Starts the writer thread for the database in `slot`.
    pub(super) fn start(slot: Arc<Slot>) -> std::io::Result<Writer> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("spur-writer".into())
            .spawn(move || run_writer(&slot, &jobs, &thread_stats))?;
        Ok(Writer { queue, stats })
    }

    /// Queues `op` and resolves once the transaction holding it committed (or failed).
    pub async fn write<R, F>(&self, op: F) -> Result<R, Error>
    where
        F: FnOnce(&WriteTransaction) -> Result<R, Error> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            op: Some(op),
            result: None,
            reply,
        };
        self.queue.send(Box::new(job)).map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

fn run_writer(slot: &Slot, jobs: &mpsc::Receiver<Box<dyn Job>>, stats: &WriterStats) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = slot.writable().and_then(|db| commit_batch(&db, &mut batch));
        match &outcome {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.operations.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(Error::DiskFull { free, .. }) => {
                tracing::warn!(free, size = batch.len(), "the disk is full: a write batch was refused");
            }
            Err(e) => {
                tracing::error!(error = %e, size = batch.len(), "write batch failed; every operation in it was refused")
            }
        }
        let failed_io = matches!(outcome, Err(Error::Io(_)));
        for job in batch {
            job.finish(outcome.as_ref().map(|_| ()).map_err(Error::shallow_clone));
        }
        if failed_io {
            // redb refuses every later read and write on this handle. Nothing of the batch was
            // acknowledged; reopen the file, refusing what arrives meanwhile.
            reopen(slot, jobs);
        }
    }
}

/// Reopens the database after a failed commit, retrying each second; operations that arrive
/// meanwhile are refused with the reason.
fn reopen(slot: &Slot, jobs: &mpsc::Receiver<Box<dyn Job>>) {
    loop {
        match slot.reopen() {
            Ok(()) => {
                tracing::warn!("the database was reopened after a failed commit; writes go on");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the database yet; retrying");
                let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
                while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                    match jobs.recv_timeout(left) {
                        Ok(job) => job.finish(Err(Error::Io(e.to_string()))),
                        Err(mpsc::RecvTimeoutError::Timeout) => break,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
    }
}

/// Runs every job in one transaction and commits it. Any job's error aborts the whole batch:
/// operations return domain refusals as values, so an `Err` here means storage itself failed.
fn commit_batch(db: &Database, batch: &mut [Box<dyn Job>]) -> Result<(), Error> {
    let tx = db.begin_write()?;
    for job in batch.iter_mut() {
        job.run(&tx)?;
    }
    tx.commit()?;
    Ok(())
}
