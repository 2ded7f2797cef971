//! Backups of the database: every table of one consistent read snapshot copied into a new redb
//! file, with the data dir's secret key and a little metadata in a table of its own, and what the
//! rest of the backup needs from that same snapshot (the projects, the jobs and which of them
//! have artifacts). A running server keeps committing meanwhile (MVCC); the copy holds exactly
//! what was committed when it began. Restoring copies the tables into a fresh `spur.redb` and
//! hands the key back.

use super::codec::decode;
use super::tables::{self, for_every_table};
use super::{Error, Store};
use crate::domain::Project;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;

/// What a backup holds besides the tables: `secret_key`, `spur_version`, `created_at`.
const BACKUP_META: TableDefinition<&str, &[u8]> = TableDefinition::new("spur_backup");

/// What was backed up.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    /// Rows copied, over all tables.
    pub rows: u64,
    /// The schema version of the copy.
    pub schema_version: u64,
    /// Every project of the snapshot (their repositories go into the backup beside the copy).
    pub projects: Vec<Project>,
    /// Every job of the snapshot, by id (their logs go into the backup).
    pub jobs: Vec<u64>,
    /// The jobs of the snapshot that have an artifacts archive.
    pub artifacts: Vec<u64>,
}

impl Store {
    /// Writes a backup of the current snapshot and `secret_key` to `out` (which must not exist).
    pub fn backup(&self, out: &Path, secret_key: &[u8], created_at: i64) -> Result<BackupInfo, Error> {
        let db = self.slot.get()?;
        backup_snapshot(&db.begin_read()?, out, secret_key, created_at)
    }
}

/// Backs up the database file `path` of a stopped server without changing it (not even a
/// migration): opened read-only, or, when it was not closed cleanly and needs redb's repair, a
/// copy of it is repaired instead. Like [`Store::backup`] otherwise.
pub fn backup_file(path: &Path, out: &Path, secret_key: &[u8], created_at: i64) -> Result<BackupInfo, Error> {
    match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => backup_snapshot(&db.begin_read()?, out, secret_key, created_at),
        Err(redb::DatabaseError::RepairAborted) => {
            let copy = out.with_extension("repairing");
            std::fs::copy(path, &copy).map_err(|e| Error::Io(e.to_string()))?;
            let made = Database::open(&copy)
                .map_err(Error::from)
                .and_then(|db| backup_snapshot(&db.begin_read()?, out, secret_key, created_at));
            let _ = std::fs::remove_file(&copy);
            made
        }
        Err(e) => Err(e.into()),
    }
}

fn backup_snapshot(
    snapshot: &ReadTransaction,
    out: &Path,
    secret_key: &[u8],
    created_at: i64,
) -> Result<BackupInfo, Error> {
    let schema_version = readable_version(snapshot)?;
    let target = Database::builder().create(out)?;
    let tx = target.begin_write()?;
    let rows = copy_every_table(snapshot, &tx)?;
    {
        let mut meta = tx.open_table(BACKUP_META)?;
        meta.insert("secret_key", secret_key)?;
        meta.insert("spur_version", env!("CARGO_PKG_VERSION").as_bytes())?;
        meta.insert("created_at", created_at.to_string().as_bytes())?;
    }
    tx.commit()?;
    let mut projects = Vec::new();
    for entry in snapshot.open_table(tables::PROJECTS)?.iter()? {
        projects.push(decode::<Project>(entry?.1.value())?);
    }
    let keys = |table: TableDefinition<u64, tables::Json>| -> Result<Vec<u64>, Error> {
        let mut ids = Vec::new();
        for entry in snapshot.open_table(table)?.iter()? {
            ids.push(entry?.0.value());
        }
        Ok(ids)
    };
    Ok(BackupInfo {
        rows,
        schema_version,
        projects,
        jobs: keys(tables::JOBS)?,
        artifacts: keys(tables::ARTIFACTS)?,
    })
}

/// The schema version of `snapshot`, refused when a newer spur wrote it.
fn readable_version(snapshot: &ReadTransaction) -> Result<u64, Error> {
    let version = snapshot
        .open_table(tables::META)?
        .get("schema_version")?
        .map_or(0, |g| g.value());
    if version > super::SCHEMA_VERSION {
        return Err(Error::TooNew(version));
    }
    Ok(version)
}

/// Creates the database `target` (which must not exist, made private) from the backup copy
/// `backup` (which may be changed: open a copy); answers the secret key it carries and its
/// projects. Refuses a copy from a newer spur.
pub fn restore_backup(backup: &Path, target: &Path) -> Result<(Vec<u8>, Vec<Project>), Error> {
    use std::os::unix::fs::PermissionsExt;
    let source = Database::open(backup)?;
    let snapshot = source.begin_read()?;
    let key = snapshot
        .open_table(BACKUP_META)
        .map_err(|_| Error::Codec(format!("{} is not a spur backup", backup.display())))?
        .get("secret_key")?
        .map(|g| g.value().to_vec())
        .ok_or_else(|| Error::Codec("the backup holds no secret key".into()))?;
    readable_version(&snapshot)?;
    let mut projects = Vec::new();
    for entry in snapshot.open_table(tables::PROJECTS)?.iter()? {
        projects.push(decode::<Project>(entry?.1.value())?);
    }
    let db = Database::builder().create(target)?;
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::Io(e.to_string()))?;
    let tx = db.begin_write()?;
    copy_every_table(&snapshot, &tx)?;
    tx.commit()?;
    Ok((key, projects))
}

fn copy_every_table(from: &ReadTransaction, to: &WriteTransaction) -> Result<u64, Error> {
    let mut rows = 0;
    macro_rules! copy {
        ($table:ident) => {
            rows += copy_table(from, to, tables::$table)?;
        };
    }
    for_every_table!(copy);
    Ok(rows)
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, Error> {
    let source = match from.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut target = to.open_table(table)?;
    let mut rows = 0;
    for entry in source.iter()? {
        let (k, v) = entry?;
        target.insert(k.value(), v.value())?;
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::TableHandle;

    #[test]
    fn a_backup_holds_every_table_of_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("spur.redb")).unwrap();
        let listed: Vec<String> = store
            .slot
            .get()
            .unwrap()
            .begin_read()
            .unwrap()
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        let out = dir.path().join("backup.redb");
        store.backup(&out, b"k", 0).unwrap();
        let backup = Database::open(&out).unwrap();
        let copied: Vec<String> = backup
            .begin_read()
            .unwrap()
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        for name in &listed {
            assert!(copied.contains(name), "table {name} is not backed up");
        }
        drop(backup);
        let restored = dir.path().join("restored.redb");
        assert_eq!(restore_backup(&out, &restored).unwrap().0, b"k".to_vec());
    }
}
