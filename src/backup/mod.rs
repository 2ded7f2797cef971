//! Backups and restores of a whole instance, taken while the server runs and accepts triggers
//! and pushes. A backup is one streamed archive (see `archive`): the database as one consistent
//! snapshot (with the secret key), then, for that snapshot, every hosted repository as a bundle
//! of its refs, SSH's known hosts, every job's log and every artifacts archive, and a manifest
//! with their checksums. Mirrors, local repositories and caches are left out (the manifest says
//! so): they are fetched again or rebuilt. A restore checks the whole archive in a staging
//! folder beside the data dir before it moves anything into place.

mod archive;
mod client;

pub use archive::Manifest;
pub use client::download;

use crate::clock;
use crate::config::layout;
use crate::git::{Origin, bundle};
use crate::storage::{self, BackupInfo, Store};
use archive::{RepositoryEntry, RepositoryKind};
use std::fs;
use std::io::{Read, Write};
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
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(SnapshotError::Busy);
    }
    let work = data_dir
        .join("backups")
        .join(format!(".backup-{}", uuid::Uuid::new_v4().simple()));
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
    snap.info = store
        .backup(&snap.work.join(archive::DATABASE), &key, created_at)
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

/// Backs up a stopped server's data dir into `out` (which must not exist).
pub fn backup_offline(data_dir: &Path, out: &Path) -> Result<Summary, String> {
    if out.exists() {
        return Err(format!("{} exists already", out.display()));
    }
    let store = Store::open(&data_dir.join(layout::DATABASE)).map_err(|e| match e {
        storage::Error::AlreadyOpen => format!(
            "a spur is running on {}: back it up with --url and an administrator's token",
            data_dir.display()
        ),
        other => other.to_string(),
    })?;
    let snap = snapshot(&store, data_dir).map_err(|e| e.to_string())?;
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

/// What a restore puts into the data dir, the database last (without it, the dir holds no
/// instance, and the restore may be run again).
const RESTORED: [&str; 5] = [
    layout::TRACES,
    layout::ARTIFACTS,
    layout::REPOSITORIES,
    layout::SECRET_KEY,
    layout::DATABASE,
];

/// Restores the backup `file` into `data_dir`: refuses a data dir that holds an instance
/// unless `force`, and refuses a damaged or partial archive before touching the data dir.
pub fn restore(file: &Path, data_dir: &Path, force: bool) -> Result<Summary, String> {
    if !force && let Some(found) = RESTORED.iter().find(|n| data_dir.join(n).exists()) {
        return Err(format!(
            "{} holds {found} already; restore into an empty data dir or pass --force",
            data_dir.display()
        ));
    }
    let mut input = fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut magic = [0u8; 2];
    let gzip = input.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(input);
    if !gzip {
        return restore_database_only(file, data_dir);
    }
    let absolute = std::path::absolute(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    let staging = parent.join(format!(".{name}.restoring-{}", uuid::Uuid::new_v4().simple()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| format!("cannot create the staging folder {}: {e}", staging.display()))?;
    let result = fs::File::open(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
        .and_then(|f| archive::read(std::io::BufReader::with_capacity(1 << 18, f), Some(&staging)))
        .and_then(|manifest| assemble(&staging, &manifest))
        .and_then(|summary| install(&staging, &absolute).map(|_| summary));
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Turns the checked entries in `staging` into a data dir's files: the database from its copy,
/// the key, and each repository (hosted ones from their bundles, mirrors empty).
fn assemble(staging: &Path, manifest: &Manifest) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let copy = staging.join(archive::DATABASE);
    let key = storage::restore_backup(&copy, &staging.join(layout::DATABASE)).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(&copy);
    write_private(&staging.join(layout::SECRET_KEY), &key)?;
    for dir in [layout::TRACES, layout::ARTIFACTS, layout::REPOSITORIES] {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(staging.join(dir))
            .map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    let listed = |name: &str| manifest.files.iter().any(|f| f.path == name);
    for repo in &manifest.repositories {
        if !archive::valid_repo_name(&repo.repo_name) {
            return Err(format!("the manifest names a repository folder {:?}", repo.repo_name));
        }
        let path = staging
            .join(layout::REPOSITORIES)
            .join(format!("{}.git", repo.repo_name));
        let fail = |e: String| format!("cannot restore the repository of {}: {e}", repo.project);
        match repo.kind {
            RepositoryKind::Hosted => {
                let expected = format!("{}/{}.git.bundle", layout::REPOSITORIES, repo.repo_name);
                let bundle = match &repo.bundle {
                    Some(b) if *b == expected && listed(b) => Some(staging.join(b)),
                    Some(b) => return Err(fail(format!("the manifest names the bundle {b}"))),
                    None => None,
                };
                bundle::restore_bundle(bundle.as_deref(), &path, repo.default_branch.as_deref()).map_err(fail)?;
                if let Some(b) = bundle {
                    let _ = fs::remove_file(b);
                    summary.repositories += 1;
                }
            }
            RepositoryKind::Mirror => {
                let url = repo.origin.as_deref().unwrap_or_default();
                if !matches!(Origin::classify(Some(url)), Ok(Origin::Remote(_))) {
                    return Err(fail(format!("the manifest gives the origin {url:?}")));
                }
                bundle::empty_mirror(&path, url).map_err(fail)?;
            }
            RepositoryKind::Local => {}
        }
    }
    summary.logs = manifest.files.iter().filter(|f| f.path.starts_with("traces/")).count();
    summary.artifacts = manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("artifacts/"))
        .count();
    Ok(summary)
}

/// Moves the assembled data dir's parts from `staging` into `data_dir`, replacing what is there.
fn install(staging: &Path, data_dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    for name in RESTORED {
        let target = data_dir.join(name);
        let replace = |e: std::io::Error| format!("cannot replace {}: {e}", target.display());
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&target).map_err(replace)?,
            Ok(_) => fs::remove_file(&target).map_err(replace)?,
            Err(_) => {}
        }
        fs::rename(staging.join(name), &target).map_err(|e| format!("cannot put {name} in place: {e}"))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Restores a backup of the database alone (what spur wrote before whole-instance backups).
fn restore_database_only(file: &Path, data_dir: &Path) -> Result<Summary, String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let staging = data_dir.join("spur.redb.restoring");
    let _ = fs::remove_file(&staging);
    let key = storage::restore_backup(file, &staging).map_err(|e| {
        format!(
            "{} is neither a spur backup archive nor a database backup: {e}",
            file.display()
        )
    })?;
    let key_path = data_dir.join(layout::SECRET_KEY);
    let _ = fs::remove_file(&key_path);
    write_private(&key_path, &key)?;
    fs::rename(&staging, data_dir.join(layout::DATABASE))
        .map_err(|e| format!("cannot put the database in place: {e}"))?;
    Ok(Summary::default())
}
