//! The open database, reopenable in place. Once the disk fails a commit, redb refuses every
//! later read and write until the file is reopened; the slot lets the writer reopen it behind
//! the readers (each read holds the handle only for its snapshot) without a restart. Writes are
//! refused up front while the disk has less than a reserve free, so that redb seldom meets a
//! full disk mid-commit at all.

use super::Error;
use redb::Database;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::DEFAULT_MIN_FREE_BYTES;

/// How long a reopen waits for the reads in progress on the failed handle.
const READS_DRAIN: Duration = Duration::from_secs(30);

/// The database handle, `None` while it is being reopened.
pub(super) struct Slot {
    path: PathBuf,
    db: RwLock<Option<Arc<Database>>>,
    min_free: AtomicU64,
}

/// Opens (or creates) the file with spur's settings.
pub(super) fn open_file(path: &Path) -> Result<Database, Error> {
    // A small page cache: the hot paths touch few pages, and the OS caches the file anyway;
    // a bigger one holds memory long after a burst of work.
    Ok(Database::builder().set_cache_size(1 << 20).create(path)?)
}

fn reopening() -> Error {
    Error::Io("the database is being reopened after the disk failed a write; try again shortly".into())
}

impl Slot {
    /// A slot holding `db`, opened from `path`.
    pub(super) fn new(path: &Path, db: Database) -> Slot {
        Slot {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Arc::new(db))),
            min_free: AtomicU64::new(DEFAULT_MIN_FREE_BYTES),
        }
    }

    /// The handle, for one snapshot or one batch.
    pub(super) fn get(&self) -> Result<Arc<Database>, Error> {
        let guard = self.db.read().map_err(|_| reopening())?;
        guard.as_ref().cloned().ok_or_else(reopening)
    }

    /// Sets the free space below which writes are refused.
    pub(super) fn set_min_free(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// The handle for a batch of writes, once the disk has the reserve free.
    pub(super) fn writable(&self) -> Result<Arc<Database>, Error> {
        let reserve = self.min_free.load(Ordering::Relaxed);
        if reserve > 0
            && let Some(free) = free_bytes(self.path.parent().unwrap_or(Path::new("/")))
            && free < reserve
        {
            return Err(Error::DiskFull { free, reserve });
        }
        self.get()
    }

    /// Closes the database for good at shutdown, once the reads and writes in flight are done
    /// (at most `wait`): redb then records its free pages, so the next start opens the file
    /// without the repair a crash needs. Later reads and writes are refused.
    pub(super) fn close(&self, wait: Duration) -> bool {
        let Some(db) = self.db.write().ok().and_then(|mut guard| guard.take()) else {
            return false;
        };
        let start = Instant::now();
        while Arc::strong_count(&db) > 1 && start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(5));
        }
        match Arc::try_unwrap(db) {
            Ok(db) => {
                drop(db);
                true
            }
            Err(_) => false,
        }
    }

    /// Closes the failed handle (once the reads on it are done) and opens the file again, which
    /// runs redb's repair. The slot stays empty, and reads and writes are refused, until this
    /// succeeds; the caller retries.
    pub(super) fn reopen(&self) -> Result<(), Error> {
        let old = self.db.write().map_err(|_| reopening())?.take();
        if let Some(old) = old {
            let start = Instant::now();
            while Arc::strong_count(&old) > 1 && start.elapsed() < READS_DRAIN {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(old);
        }
        let db = open_file(&self.path)?;
        *self.db.write().map_err(|_| reopening())? = Some(Arc::new(db));
        Ok(())
    }
}

/// Bytes free for unprivileged writers on the filesystem holding `dir` (`None` if unknown).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` is a buffer statvfs fills; it is read
    // only when the call succeeded.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_and_a_reserve_larger_than_the_disk_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|n| n > 0));
        let slot = Slot::new(&dir.path().join("db"), open_file(&dir.path().join("db")).unwrap());
        assert!(slot.writable().is_ok());
        slot.set_min_free(u64::MAX);
        assert!(matches!(slot.writable(), Err(Error::DiskFull { .. })));
        assert!(slot.get().is_ok(), "reads go on");
        slot.reopen().unwrap();
        assert!(slot.get().is_ok());
    }
}
