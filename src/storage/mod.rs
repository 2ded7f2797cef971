//! The redb file: opening it, its schema version, reads through MVCC snapshots and writes through
//! the single group-committing writer. One function per logical operation lives in the
//! submodules. Storage knows nothing of HTTP, roles or git.

mod artifacts;
mod backup;
mod badges;
mod codec;
mod downstream;
mod environments;
mod hooks;
mod idempotency;
mod jobs;
mod migrations;
mod pipelines;
mod project_variables;
mod projects;
mod protected_refs;
mod releases;
mod runners;
mod schedules;
mod sessions;
mod settings;
mod slot;
mod tables;
mod test_reports;
mod triggers;
mod users;
mod writer;

pub use backup::{BackupInfo, backup_file, restore_backup};
pub use environments::new_environment;
pub use idempotency::{IdempotencyRecord, IdempotencyTag};
pub use jobs::{ActiveJob, AddedJob, PipelineChange};
pub use pipelines::{NewJob, NewPipeline, PipelineFilter, PipelineOrder, PipelineScope};
pub use projects::{NewProject, ProjectChange};
pub use protected_refs::{RefSnapshot, default_branch_rule};
pub use schedules::MAX_SCHEDULES;
pub use triggers::NewTrigger;
pub use users::{NewGroup, NewUser};
pub use writer::{Writer, WriterStats};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use std::path::Path;
use std::sync::Arc;

/// The schema version this binary writes. Opening a newer file is refused; an older one is
/// migrated (see `migrations`).
pub const SCHEMA_VERSION: u64 = migrations::LATEST;

/// A storage failure: the disk, the file, or a record that does not decode.
#[derive(Debug)]
pub enum Error {
    /// redb reported an error.
    Db(String),
    /// A stored record did not decode.
    Codec(String),
    /// Another process holds the database.
    AlreadyOpen,
    /// The file was written by a newer spur.
    TooNew(u64),
    /// The writer thread is gone.
    Closed,
    /// The disk failed a write (full, or an I/O error), or the file is being reopened after one.
    Io(String),
    /// Writes are refused: the disk has less free than the reserve.
    DiskFull {
        /// Bytes free.
        free: u64,
        /// Bytes writes need free.
        reserve: u64,
    },
}

impl Error {
    /// A copy for fanning one batch failure out to every caller in it.
    pub fn shallow_clone(&self) -> Error {
        match self {
            Error::Db(s) => Error::Db(s.clone()),
            Error::Codec(s) => Error::Codec(s.clone()),
            Error::AlreadyOpen => Error::AlreadyOpen,
            Error::TooNew(v) => Error::TooNew(*v),
            Error::Closed => Error::Closed,
            Error::Io(s) => Error::Io(s.clone()),
            Error::DiskFull { free, reserve } => Error::DiskFull {
                free: *free,
                reserve: *reserve,
            },
        }
    }

    /// Whether the disk, not the request, is at fault: the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Io(_) | Error::DiskFull { .. })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Db(e) => write!(f, "database error: {e}"),
            Error::Codec(e) => write!(f, "stored record does not decode: {e}"),
            Error::AlreadyOpen => write!(f, "the database is already open in another process"),
            Error::TooNew(v) => write!(
                f,
                "the database has schema version {v}, newer than this spur understands ({SCHEMA_VERSION}); run a newer spur"
            ),
            Error::Closed => write!(f, "the storage writer has stopped"),
            Error::Io(e) => write!(f, "the disk failed a write: {e}"),
            Error::DiskFull { free, reserve } => write!(
                f,
                "the disk holding the data dir is full ({} MiB free; writes need {} MiB): free some space and spur takes writes again",
                free >> 20,
                reserve.div_ceil(1 << 20)
            ),
        }
    }
}

impl std::error::Error for Error {}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Db(e.to_string())
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::TransactionError);

impl From<redb::StorageError> for Error {
    fn from(e: redb::StorageError) -> Error {
        match e {
            redb::StorageError::Io(_) | redb::StorageError::PreviousIo => Error::Io(e.to_string()),
            other => Error::Db(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for Error {
    fn from(e: redb::CommitError) -> Error {
        match e {
            redb::CommitError::Storage(storage) => storage.into(),
            other => Error::Db(other.to_string()),
        }
    }
}

impl From<redb::DatabaseError> for Error {
    fn from(e: redb::DatabaseError) -> Error {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen,
            other => Error::Db(other.to_string()),
        }
    }
}

/// Why an operation was refused without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A unique field's value is taken (the field's name).
    Taken(&'static str),
    /// The record the operation needs does not exist.
    NotFound,
}

/// The database: snapshot reads from any thread, writes through the group-commit writer.
#[derive(Clone)]
pub struct Store {
    slot: Arc<slot::Slot>,
    writer: Writer,
    idempotency: Arc<idempotency::Index>,
}

impl Store {
    /// Opens (or creates) the database file, checks its schema version and starts the writer.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let db = slot::open_file(path)?;
        init_schema(&db)?;
        let idempotency = Arc::new(idempotency::Index::load(&db.begin_read()?)?);
        let slot = Arc::new(slot::Slot::new(path, db));
        let writer = Writer::start(slot.clone()).map_err(|e| Error::Db(e.to_string()))?;
        Ok(Store {
            slot,
            writer,
            idempotency,
        })
    }

    /// Closes the database at shutdown (see `Slot::close`); answers whether it closed cleanly.
    pub fn close(&self) -> bool {
        self.slot.close(std::time::Duration::from_secs(5))
    }

    /// Writes are refused (503) while the disk has less than `bytes` free (0: never).
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.slot.set_min_free(bytes);
    }

    /// Runs `f` on a consistent snapshot. Synchronous: async callers use `spawn_blocking`.
    pub fn read<R>(&self, f: impl FnOnce(&ReadTransaction) -> Result<R, Error>) -> Result<R, Error> {
        let db = self.slot.get()?;
        let tx = db.begin_read()?;
        f(&tx)
    }

    /// Queues `op` for the writer; resolves after the batch that holds it is durable.
    pub async fn write<R, F>(&self, op: F) -> Result<R, Error>
    where
        F: FnOnce(&WriteTransaction) -> Result<R, Error> + Send + 'static,
        R: Send + 'static,
    {
        self.writer.write(op).await
    }

    /// A durable write of nothing of consequence (the `health_checks` counter): proves the
    /// writer runs and the disk takes commits.
    pub async fn touch(&self) -> Result<(), Error> {
        self.write(|tx| {
            let mut meta = tx.open_table(tables::META)?;
            let n = meta.get("health_checks")?.map_or(0, |g| g.value());
            meta.insert("health_checks", n + 1)?;
            Ok(())
        })
        .await
    }

    /// Group-commit counters.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.writer.stats
    }
}

/// Creates every table, records the schema version, refuses files from a newer spur.
fn init_schema(db: &Database) -> Result<(), Error> {
    let tx = db.begin_write()?;
    {
        let meta = tx.open_table(tables::META)?;
        if let Some(v) = meta.get("schema_version")?.map(|g| g.value())
            && v > SCHEMA_VERSION
        {
            return Err(Error::TooNew(v));
        }
    }
    macro_rules! create {
        ($table:ident) => {
            tx.open_table(tables::$table)?;
        };
    }
    tables::for_every_table!(create);
    migrations::run(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Hands out the next id of a kind (`next_<kind>_id` in `META`), starting at 1.
fn next_id(tx: &WriteTransaction, kind: &'static str) -> Result<u64, Error> {
    let mut meta = tx.open_table(tables::META)?;
    let id = meta.get(kind)?.map_or(1, |g| g.value());
    meta.insert(kind, id.saturating_add(1))?;
    Ok(id)
}

/// Reads all records of a JSON table whose `(u64, u64)` index has `first` as its first half.
fn ids_under(index: &impl ReadableTable<(u64, u64), ()>, first: u64) -> Result<Vec<u64>, Error> {
    let mut ids = Vec::new();
    for entry in index.range((first, 0)..=(first, u64::MAX))? {
        let (key, _) = entry?;
        ids.push(key.value().1);
    }
    Ok(ids)
}
