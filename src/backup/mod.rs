//! Backups and restores of a whole instance, taken while the server runs and accepts triggers
//! and pushes. A backup is one streamed archive (see `archive`): the database as one consistent
//! snapshot (with the secret key), then, for that snapshot, every hosted repository as a bundle
//! of its refs, SSH's known hosts, every job's log and every artifacts archive, and a manifest
//! with their checksums. Mirrors, local repositories and caches are left out (the manifest says
//! so): they are fetched again or rebuilt. A restore checks the whole archive in a staging
//! folder beside the data dir before it moves anything into place.

mod archive;
mod client;
mod restore;

pub use archive::Manifest;
pub use client::download;
pub use restore::restore;

use crate::clock;
use crate::config::layout;
use crate::git::{Origin, bundle};
use crate::storage::{self, BackupInfo, Store};
use archive::{RepositoryEntry, RepositoryKind};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What a backup leaves out, and how each comes back.
const LEFT_OUT: [&str; 4] = [
    "mirrors of imported projects: fetched again from their origin on first use",
    "repositories imported from a path on the server: read in place, not copied",
    "caches: rebuilt by the next jobs",
    "builds and job workspaces: made afresh for each job",
];

/// One backup at a time per process: each holds a database snapshot and a temporary copy.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Why a backup could not start.
#[derive(Debug)]
pub enum SnapshotError {
    /// Another backup is being taken.
    Busy,
    /// The data dir could not be read or copied.
    Failed(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Busy => write!(f, "a backup is being taken already; try again when it is done"),
            SnapshotError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// What went into an archive.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Hosted repositories with refs.
    pub repositories: usize,
    /// Job logs.
    pub logs: usize,
    /// Artifacts archives.
    pub artifacts: usize,
}

/// A database snapshot, copied, from which the rest of a backup is written.
pub struct Snapshot {
    work: PathBuf,
    data_dir: PathBuf,
    info: BackupInfo,
    created_at: crate::domain::Millis,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.work);
        RUNNING.store(false, Ordering::Release);
    }
}

/// Copies the database of `store` (whose data dir is `data_dir`) as it is now, with the secret
/// key, into a private folder under `<data-dir>/backups`.
pub fn snapshot(store: &Store, data_dir: &Path) -> Result<Snapshot, SnapshotError> {
    take(data_dir, &data_dir.join("backups"), |out, key, at| {
        store.backup(out, key, at)
    })
}

/// Takes a snapshot with `copy` into a private work folder under `work_parent`.
fn take(
    data_dir: &Path,
    work_parent: &Path,
    copy: impl FnOnce(&Path, &[u8], crate::domain::Millis) -> Result<BackupInfo, storage::Error>,
) -> Result<Snapshot, SnapshotError> {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(SnapshotError::Busy);
    }
    let work = work_parent.join(format!(".spur-backup-{}", uuid::Uuid::new_v4().simple()));
    let created_at = clock::now();
    // From here on, dropping the snapshot cleans up and lets the next backup start.
    let mut snap = Snapshot {
        work,
        data_dir: data_dir.to_path_buf(),
        info: BackupInfo {
            rows: 0,
            schema_version: 0,
            projects: Vec::new(),
            jobs: Vec::new(),
            artifacts: Vec::new(),
        },
        created_at,
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| SnapshotError::Failed(format!("{what}: {e}"));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&snap.work)
        .map_err(|e| failed("cannot create the backup's work folder", &e))?;
    let key = fs::read(data_dir.join(layout::SECRET_KEY)).map_err(|e| failed("cannot read the secret key", &e))?;
    snap.info = copy(&snap.work.join(archive::DATABASE), &key, created_at)
        .map_err(|e| failed("cannot copy the database", &e))?;
    Ok(snap)
}

impl Snapshot {
    /// The schema version of the copied database.
    pub fn schema_version(&self) -> u64 {
        self.info.schema_version
    }

    /// Writes the whole archive to `out`, entry by entry; answers the output and what went in.
    pub fn write<W: Write>(&self, out: W) -> Result<(W, Summary), String> {
        let io = |e: std::io::Error| format!("cannot write the backup: {e}");
        let mut w = archive::Writer::new(out);
        let mut summary = Summary::default();
        w.add_file(archive::DATABASE, &self.work.join(archive::DATABASE))
            .map_err(io)?;
        let repos_dir = self.data_dir.join(layout::REPOSITORIES);
        let mut repositories = Vec::new();
        for project in &self.info.projects {
            let mut entry = RepositoryEntry {
                project: project.full_path.clone(),
                repo_name: project.repo_name.clone(),
                kind: RepositoryKind::Local,
                bundle: None,
                default_branch: project.default_branch.clone(),
                origin: None,
            };
            match Origin::of(project) {
                Origin::Local(_) => {}
                Origin::Remote(url) => {
                    entry.kind = RepositoryKind::Mirror;
                    entry.origin = Some(url);
                }
                Origin::Hosted => {
                    entry.kind = RepositoryKind::Hosted;
                    if !archive::valid_repo_name(&project.repo_name) {
                        return Err(format!("project {} has an unexpected folder name", project.full_path));
                    }
                    let repo = repos_dir.join(format!("{}.git", project.repo_name));
                    let file = self.work.join(format!("{}.bundle", project.repo_name));
                    let name = format!("{}/{}.git.bundle", layout::REPOSITORIES, project.repo_name);
                    if repo.is_dir() && bundle::bundle_all(&repo, &file)? {
                        w.add_file(&name, &file).map_err(io)?;
                        let _ = fs::remove_file(&file);
                        entry.bundle = Some(name);
                        summary.repositories += 1;
                    }
                }
            }
            repositories.push(entry);
        }
        w.add_file("repositories/.ssh/known_hosts", &repos_dir.join(".ssh/known_hosts"))
            .map_err(io)?;
        let traces = self.data_dir.join(layout::TRACES);
        for id in &self.info.jobs {
            if w.add_file(
                &format!("{}/{id}.log", layout::TRACES),
                &traces.join(format!("{id}.log")),
            )
            .map_err(io)?
            {
                summary.logs += 1;
            }
        }
        let artifacts = self.data_dir.join(layout::ARTIFACTS);
        for id in &self.info.artifacts {
            if w.add_file(
                &format!("{}/{id}.zip", layout::ARTIFACTS),
                &artifacts.join(format!("{id}.zip")),
            )
            .map_err(io)?
            {
                summary.artifacts += 1;
            }
        }
        let manifest = Manifest {
            format: archive::FORMAT.into(),
            spur_version: env!("CARGO_PKG_VERSION").into(),
            schema_version: self.info.schema_version,
            created_at: clock::iso8601(self.created_at),
            files: Vec::new(),
            repositories,
            left_out: LEFT_OUT.iter().map(|s| s.to_string()).collect(),
        };
        let out = w.finish(manifest).map_err(io)?;
        Ok((out, summary))
    }
}

/// Backs up a stopped server's data dir into `out` (which must not exist), changing nothing in
/// the data dir.
pub fn backup_offline(data_dir: &Path, out: &Path) -> Result<Summary, String> {
    if out.exists() {
        return Err(format!("{} exists already", out.display()));
    }
    let db = data_dir.join(layout::DATABASE);
    if !db.is_file() {
        return Err(format!("{} holds no spur database", data_dir.display()));
    }
    if let Err(redb::DatabaseError::DatabaseAlreadyOpen) = redb::ReadOnlyDatabase::open(&db).map(drop) {
        return Err(format!(
            "a spur is running on {}: back it up with --url and an administrator's token",
            data_dir.display()
        ));
    }
    let work_parent = std::path::absolute(out).map_err(|e| e.to_string())?;
    let work_parent = work_parent.parent().unwrap_or(Path::new("/"));
    let snap = take(data_dir, work_parent, |out, key, at| {
        storage::backup_file(&db, out, key, at)
    })
    .map_err(|e| e.to_string())?;
    let partial = partial_path(out);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    let result = snap
        .write(std::io::BufWriter::with_capacity(1 << 18, file))
        .and_then(|(w, summary)| {
            let file = w.into_inner().map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            fs::rename(&partial, out).map_err(|e| e.to_string())?;
            Ok(summary)
        });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// The name a file is written under until it is complete.
fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}
