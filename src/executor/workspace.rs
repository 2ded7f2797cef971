//! A job's working folders under the builds folder: the checkout of the pipeline's commit (with
//! a `.git` of its own), and a private folder holding its `home/` and `tmp/` (writable by the
//! job), its file variables (`files/`) and its scripts (`scripts/`), both written before any of
//! the job's processes start and only readable by them. Removed when the job ends; leftovers of
//! a crash are removed on start. Per-project caches live under `<data-dir>/cache/`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Removes workspaces left by a previous run (never the job helper's copy of spur) and makes
/// the builds folder.
pub fn clean_builds_dir(dir: &Path, shared: bool) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name() == crate::sandbox::HELPER_NAME {
                continue;
            }
            let path = entry.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
    let mode = if shared { 0o711 } else { 0o700 };
    if let Err(e) = fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the builds folder");
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
}

/// The folders of one running job.
#[derive(Clone)]
pub struct Workspace {
    /// The checkout (`CI_PROJECT_DIR`), the job's.
    pub project_dir: PathBuf,
    /// spur's folder around the job's private ones.
    pub private_dir: PathBuf,
    /// `HOME`, the job's.
    pub home: PathBuf,
    /// `TMPDIR`, the job's.
    pub tmp: PathBuf,
    /// File variables: readable by the job, not writable.
    pub files: PathBuf,
    /// The generated scripts: readable by the job, not writable.
    pub scripts: PathBuf,
    /// `(uid, gid)` the job runs as, when not spur's: its folders are handed over.
    pub owner: Option<(u32, u32)>,
    /// Its scripts run in containers, whose root could write a linked file: object files are
    /// copied, never linked.
    pub contained: bool,
    /// A contained job's root-owned folder around its checkout (see `set_gate`).
    pub gate: Option<PathBuf>,
}

impl Workspace {
    /// The folders job `job_id` will have under `builds` (nothing is created yet).
    pub fn at(builds: &Path, job_id: u64) -> Workspace {
        let private_dir = builds.join(format!("{job_id}.tmp"));
        Workspace {
            project_dir: builds.join(job_id.to_string()),
            home: private_dir.join("home"),
            tmp: private_dir.join("tmp"),
            files: private_dir.join("files"),
            scripts: private_dir.join("scripts"),
            private_dir,
            owner: None,
            contained: false,
            gate: None,
        }
    }

    /// The folders of a job whose scripts run in containers: its checkout behind a gate.
    pub fn contained_at(builds: &Path, job_id: u64) -> Workspace {
        let gate = builds.join(format!("{job_id}.gate"));
        Workspace {
            project_dir: gate.join(job_id.to_string()),
            contained: true,
            gate: Some(gate),
            ..Workspace::at(builds, job_id)
        }
    }

    /// The folders the job may write.
    pub fn writable(&self) -> Vec<PathBuf> {
        vec![self.project_dir.clone(), self.home.clone(), self.tmp.clone()]
    }

    /// The folders the job may only read.
    pub fn readable(&self) -> Vec<PathBuf> {
        vec![self.files.clone(), self.scripts.clone()]
    }

    /// Creates the folders for a job running as `owner` (spur's own user when `None`).
    pub fn create(&mut self, owner: Option<(u32, u32)>) -> io::Result<()> {
        self.owner = owner;
        let ws = &*self;
        ws.remove();
        let traversable = if owner.is_some() { 0o711 } else { 0o700 };
        mkdir(&ws.private_dir, traversable)?;
        mkdir(&ws.files, traversable)?;
        mkdir(&ws.scripts, if owner.is_some() { 0o755 } else { 0o700 })?;
        for own in [&ws.home, &ws.tmp] {
            mkdir(own, 0o700)?;
            ws.give(own)?;
        }
        if let Some(gate) = &ws.gate {
            mkdir(gate, 0o711)?;
        }
        // spur's until the checkout is in it; then the job's.
        mkdir(&ws.project_dir, 0o700)?;
        Ok(())
    }

    /// Checks out `sha` of `repository` into the (empty) project folder with a `.git` of its
    /// own, then hands the tree to the job's user. The object files are the job's own copies, or
    /// (for a job under another uid) hard links to the mirror's files, which stay root's and
    /// read-only: nothing the job can write is shared with the mirror or another job. One
    /// `git checkout` process does the rest.
    pub fn checkout(&self, repository: &Path, sha: &str) -> Result<(), String> {
        let source = objects_dir(repository)?;
        let dot_git = self.project_dir.join(".git");
        let write = |path: &str, text: &str| -> Result<(), String> {
            let file = dot_git.join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
        };
        write("HEAD", &format!("{sha}\n"))?;
        write(
            "config",
            "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n",
        )?;
        for dir in ["refs/heads", "refs/tags"] {
            fs::create_dir_all(dot_git.join(dir)).map_err(|e| e.to_string())?;
        }
        if source.join("info/alternates").exists() {
            // A repository that borrows objects itself: let git copy what it needs.
            let _ = fs::remove_dir_all(&dot_git);
            let target = self.project_dir.to_string_lossy().to_string();
            let from = repository.to_string_lossy().to_string();
            git(
                None,
                &[
                    "clone",
                    "--quiet",
                    "--local",
                    "--no-hardlinks",
                    "--no-checkout",
                    "--",
                    &from,
                    &target,
                ],
            )?;
        } else {
            self.share_objects(&source, &dot_git.join("objects"))
                .map_err(|e| format!("cannot copy the repository's objects: {e}"))?;
        }
        git(
            Some(&self.project_dir),
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--force",
                "--detach",
                sha,
            ],
        )?;
        self.give_tree(&self.project_dir).map_err(|e| e.to_string())
    }

    /// Fills `to` with the object files of `from`: hard links (root's read-only files) when the
    /// job runs under another uid, copies otherwise (a link would let a job of spur's own uid
    /// change the mirror's file).
    fn share_objects(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let target = to.join(entry.file_name());
            if kind.is_dir() {
                self.share_objects(&entry.path(), &target)?;
            } else if kind.is_file() {
                use std::os::unix::fs::MetadataExt;
                let read_only = entry.metadata().is_ok_and(|m| m.mode() & 0o222 == 0);
                let linked = self.owner.is_some()
                    && !self.contained
                    && read_only
                    && fs::hard_link(entry.path(), &target).is_ok();
                if !linked {
                    fs::copy(entry.path(), &target)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a file variable (readable, not writable, by the job) and returns its path.
    pub fn file_variable(&self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let path = self.files.join(name);
        write_new(&path, contents, 0o400)?;
        self.give(&path)?;
        Ok(path)
    }

    /// Writes a script (spur's, readable by the job) and returns its path.
    pub fn script(&self, name: &str, text: &str) -> io::Result<PathBuf> {
        let path = self.scripts.join(name);
        let mode = if self.owner.is_some() { 0o644 } else { 0o600 };
        write_new(&path, text.as_bytes(), mode)?;
        Ok(path)
    }

    /// Gives the job's user back everything a container's root made in the checkout (walking
    /// without recursion, never through a link) and drops set-id bits. Fails closed: on any
    /// error, a tree too deep or too large, the checkout is removed and the error answered, so
    /// that nothing the container made (a set-uid-root file) outlives the gate.
    pub fn reclaim(&self) -> io::Result<()> {
        let walked = self.reclaim_walk();
        if walked.is_err() {
            let _ = fs::remove_dir_all(&self.project_dir);
        }
        walked
    }

    fn reclaim_walk(&self) -> io::Result<()> {
        let (uid, gid) = self.owner.map_or((None, None), |(u, g)| (Some(u), Some(g)));
        let hand_back = |path: &Path, meta: &fs::Metadata| -> io::Result<()> {
            use std::os::unix::fs::MetadataExt;
            if uid.is_some() {
                std::os::unix::fs::lchown(path, uid, gid)?;
            }
            if meta.is_file() && meta.mode() & 0o6000 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o1777))?;
            }
            Ok(())
        };
        let top = fs::symlink_metadata(&self.project_dir)?;
        if !top.is_dir() {
            return Err(io::Error::other("the checkout is no longer a folder"));
        }
        hand_back(&self.project_dir, &top)?;
        let mut stack = vec![(self.project_dir.clone(), 0usize)];
        let mut seen = 0usize;
        while let Some((dir, depth)) = stack.pop() {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                seen += 1;
                if seen > MAX_RECLAIMED {
                    return Err(io::Error::other("too many files in the checkout"));
                }
                let path = entry.path();
                let meta = fs::symlink_metadata(&path)?;
                hand_back(&path, &meta)?;
                if meta.is_dir() {
                    if depth >= MAX_RECLAIM_DEPTH {
                        return Err(io::Error::other("folders nested too deep in the checkout"));
                    }
                    stack.push((path, depth + 1));
                }
            }
        }
        Ok(())
    }

    /// Opens (`0711`) or closes (`0700`, root's) the gate in front of a contained job's
    /// checkout: closed while a container runs, so no user of the host reaches what the
    /// container's root makes before `reclaim` checked it.
    pub fn set_gate(&self, open: bool) -> io::Result<()> {
        match &self.gate {
            Some(gate) => fs::set_permissions(gate, fs::Permissions::from_mode(if open { 0o711 } else { 0o700 })),
            None => Ok(()),
        }
    }

    /// Removes both folders (never following a link the job left).
    pub fn remove(&self) {
        let _ = fs::remove_dir_all(&self.project_dir);
        let _ = fs::remove_dir_all(&self.private_dir);
        if let Some(gate) = &self.gate {
            let _ = fs::remove_dir_all(gate);
        }
    }

    fn give(&self, path: &Path) -> io::Result<()> {
        match self.owner {
            Some((uid, gid)) => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }

    /// Hands a tree spur just made (before any job process ran) to the job's user, all but the
    /// object files, which stay root's and read-only (they may be the mirror's own, linked).
    fn give_tree(&self, path: &Path) -> io::Result<()> {
        if self.owner.is_none() {
            return Ok(());
        }
        let objects = self.project_dir.join(".git").join("objects");
        let meta = fs::symlink_metadata(path)?;
        if meta.is_file() && path.starts_with(&objects) {
            return Ok(());
        }
        self.give(path)?;
        if meta.is_dir() {
            for entry in fs::read_dir(path)? {
                self.give_tree(&entry?.path())?;
            }
        }
        Ok(())
    }
}

/// The object store of a repository: `<repo>/.git/objects` for a working copy, `<repo>/objects`
/// for a bare one.
fn objects_dir(repository: &Path) -> Result<PathBuf, String> {
    let candidates = [repository.join(".git").join("objects"), repository.join("objects")];
    candidates
        .into_iter()
        .find(|p| p.is_dir())
        .and_then(|p| p.canonicalize().ok())
        .ok_or_else(|| format!("{} is not a git repository spur can read", repository.display()))
}

/// The most entries `reclaim` walks.
const MAX_RECLAIMED: usize = 2_000_000;
/// The deepest folder `reclaim` walks into.
const MAX_RECLAIM_DEPTH: usize = 256;

fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().mode(mode).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Creates a new file (never an existing one, never through a link) with `contents`.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(contents)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

fn git(dir: Option<&Path>, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The archive of a project's cache for `key` (the key is digested: it never names a path).
pub fn cache_archive(data_dir: &Path, project_id: u64, key: &str) -> PathBuf {
    let digest = blake3::hash(key.as_bytes()).to_hex();
    data_dir
        .join("cache")
        .join(project_id.to_string())
        .join(format!("{}.zip", &digest[..32]))
}

/// A new private staging file beside `archive` (spur's folder), for a helper to write into.
pub fn staging_file(archive: &Path) -> io::Result<(PathBuf, fs::File)> {
    let dir = archive.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let path = dir.join(format!(".staging-{}", uuid::Uuid::new_v4().simple()));
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    Ok((path, file))
}
