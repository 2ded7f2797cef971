//! The single writer: one thread owns redb's one write transaction and commits every operation
//! that arrived while the previous commit was in flight in one batch (group commit). A caller is
//! answered only after the commit that holds its operation returned, so an acknowledged write
//! survives a crash; one fsync serves the whole batch.

use super::Error;
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
    /// Starts the writer thread for `db`.
    pub fn start(db: Arc<Database>) -> std::io::Result<Writer> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("spur-writer".into())
            .spawn(move || run_writer(&db, &jobs, &thread_stats))?;
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

fn run_writer(db: &Database, jobs: &mpsc::Receiver<Box<dyn Job>>, stats: &WriterStats) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit_batch(db, &mut batch);
        if let Err(Error::Io(e)) = &outcome {
            // redb refuses every later write until the file is reopened. Nothing of this batch
            // was acknowledged; stopping lets the supervisor (systemd's Restart=on-failure)
            // start spur again, which reopens the file once the disk takes writes.
            tracing::error!(error = %e, size = batch.len(), "the disk failed a commit (full?); spur stops so that it can be restarted");
            for job in batch {
                job.finish(Err(Error::Io(e.clone())));
            }
            // Let the refused callers' 500 answers go out before the process ends.
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::process::exit(74);
        }
        if outcome.is_ok() {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.operations.fetch_add(batch.len() as u64, Ordering::Relaxed);
        } else {
            tracing::error!(
                size = batch.len(),
                "write batch failed; every operation in it was refused"
            );
        }
        for job in batch {
            job.finish(outcome.as_ref().map(|_| ()).map_err(Error::shallow_clone));
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
