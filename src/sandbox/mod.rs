//! How the built-in executor fences in every process it starts for a job (its shells and the
//! helper that moves its caches and artifacts): a Landlock domain (the default), bubblewrap with
//! the same Landlock domain inside it, or nothing (`--job-sandbox none`); and, when spur runs
//! as root, an unprivileged uid of the job's own from a range (or one `--job-user`).
//!
//! A Landlock domain lets a job read and execute system locations only (`/usr`, `/etc`, ...,
//! never the data dir: when it lies under one of them, its siblings are granted instead), write
//! its workspace, HOME and TMPDIR only, and keeps it from ptracing (so from reading
//! `/proc/<pid>/environ`, `mem`, `root`, `fd` of) or signalling any process outside it: spur,
//! and every other job, which has a domain of its own.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use job_user::JobUser;
pub mod engine;
pub mod job_user;
pub mod landlock;

use landlock::{build_ruleset, landlock_probe, missing, restrict_self};

/// System locations a job may read and execute.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/sys",
    "/proc",
    "/run/systemd/resolve",
];

/// Which fence jobs run in (`--job-sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    /// No fence: jobs see everything spur's (or the job user's) uid sees.
    None,
    /// A Landlock domain per job (the default).
    Landlock,
    /// bubblewrap (a read-only host, the data dir hidden, private `/tmp`, its own pid
    /// namespace) with the Landlock domain applied inside it.
    Bwrap,
}

impl Sandbox {
    /// Reads `none`, `landlock` or `bwrap`.
    pub fn parse(text: &str) -> Option<Sandbox> {
        match text {
            "none" => Some(Sandbox::None),
            "landlock" => Some(Sandbox::Landlock),
            "bwrap" => Some(Sandbox::Bwrap),
            _ => None,
        }
    }

    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            Sandbox::None => "none",
            Sandbox::Landlock => "landlock",
            Sandbox::Bwrap => "bwrap",
        }
    }
}

/// The uids jobs run as.
enum Identity {
    /// spur's own (spur is not root).
    Own,
    /// One configured user for every job (`--job-user`).
    User(JobUser),
    /// A uid of its own for every running job (spur runs as root).
    Range(UidPool),
}

/// A range of otherwise unused uids, handed out round-robin, one per running job.
struct UidPool {
    first: u32,
    count: u32,
    next: AtomicU32,
    busy: Mutex<HashSet<u32>>,
}

/// A uid taken from the pool for one job; given back (after every process left running under
/// it is killed) when dropped.
pub struct Lease {
    uid: u32,
    pool: std::sync::Weak<Isolation>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        kill_all_of(self.uid);
        if let Some(iso) = self.pool.upgrade()
            && let Identity::Range(pool) = &iso.identity
            && let Ok(mut busy) = pool.busy.lock()
        {
            busy.remove(&self.uid);
        }
    }
}

/// What one job may touch, and as whom it runs.
pub struct Fence {
    /// Folders the job may write (and read and execute in).
    pub writable: Vec<PathBuf>,
    /// Folders and files of the job's the job may only read (its scripts, file variables).
    pub readable: Vec<PathBuf>,
    /// `(uid, gid)` of the job's processes, when not spur's own.
    pub owner: Option<(u32, u32)>,
    _lease: Option<Lease>,
}

/// The executor's isolation settings, fixed at start.
pub struct Isolation {
    /// The fence in force.
    pub sandbox: Sandbox,
    identity: Identity,
    /// Why jobs cannot be fenced as configured (they fail with this message).
    pub unavailable: Option<String>,
    /// Where workspaces live (`CI_BUILDS_DIR`).
    pub builds_dir: PathBuf,
    data_dir: PathBuf,
    /// spur's own binary (the sandbox and file helpers run it).
    exe: PathBuf,
    /// System locations a job may read (the data dir carved out).
    system_read: Vec<PathBuf>,
}

/// The isolation options as configured.
pub struct Options {
    /// `--job-sandbox`.
    pub sandbox: Sandbox,
    /// `--job-user`.
    pub job_user: Option<String>,
    /// `--job-uids`: the first and last uid jobs run as when spur is root.
    pub job_uids: (u32, u32),
    /// `--job-read-path` additions.
    pub read_paths: Vec<PathBuf>,
}

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

impl Isolation {
    /// Settles the isolation for a server whose data dir is `data_dir`: who jobs run as, where
    /// their workspaces live (inside the data dir when job users can reach it, else a fresh
    /// folder under `/var/tmp`), and whether the fence can be built here.
    pub fn new(data_dir: &Path, options: Options) -> Result<Isolation, String> {
        let root = running_as_root();
        let identity = match (&options.job_user, root) {
            (Some(name), true) => Identity::User(JobUser::lookup(name)?),
            (Some(_), false) => return Err("--job-user needs spur to run as root".into()),
            (None, true) => {
                let (first, last) = options.job_uids;
                if first == 0 || last < first {
                    return Err("--job-uids must be a range of non-zero uids, like 2000000000-2000000999".into());
                }
                Identity::Range(UidPool {
                    first,
                    count: last - first + 1,
                    next: AtomicU32::new(0),
                    busy: Mutex::new(HashSet::new()),
                })
            }
            (None, false) => Identity::Own,
        };
        let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let builds_dir = match identity {
            Identity::Own => data_dir.join("builds"),
            _ if traversable_by_others(&data_dir) => data_dir.join("builds"),
            _ => fresh_shared_builds_dir()?,
        };
        let mut exe = std::env::current_exe().map_err(|e| format!("cannot find spur's own binary: {e}"))?;
        if !matches!(identity, Identity::Own) && !reachable_by_others(&exe) {
            // Job uids could not run the helpers from where spur lies (`/root/...`): a copy
            // beside the workspaces, which they can reach by construction.
            exe = copy_helper(&exe, &builds_dir)?;
        }
        let mut system_read = Vec::new();
        for path in SYSTEM_READ
            .iter()
            .map(PathBuf::from)
            .chain(options.read_paths.iter().cloned())
        {
            system_read.extend(grants_without(&path, &data_dir));
        }
        // The binary itself (a single file, even inside the data dir's builds folder).
        system_read.push(exe.clone());
        if let Identity::Range(pool) = &identity {
            pool.sweep();
        }
        let unavailable = match options.sandbox {
            Sandbox::None => None,
            Sandbox::Landlock => landlock_probe().err(),
            Sandbox::Bwrap => bwrap_probe().err().or_else(|| landlock_probe().err()),
        };
        Ok(Isolation {
            sandbox: options.sandbox,
            identity,
            unavailable,
            builds_dir,
            data_dir,
            exe,
            system_read,
        })
    }

    /// One line for the start-up log and the Admin pages: which isolation is in force.
    pub fn describe(&self) -> String {
        let who = match &self.identity {
            Identity::Own => "spur's own user".to_string(),
            Identity::User(u) => format!("the user {} (uid {})", u.name, u.uid),
            Identity::Range(p) => format!("a uid of their own from {}-{}", p.first, p.first + (p.count - 1)),
        };
        let fence = match self.sandbox {
            Sandbox::None => "no sandbox (--job-sandbox none): jobs can read everything their user can".to_string(),
            Sandbox::Landlock => "a Landlock domain each (system folders read-only, their own workspace writable, no access to the data dir or other processes)".to_string(),
            Sandbox::Bwrap => "bubblewrap with a Landlock domain inside (read-only host, data dir hidden, own pid namespace)".to_string(),
        };
        match &self.unavailable {
            Some(why) => format!("jobs run as {who} in {fence}; NOT AVAILABLE HERE, jobs fail: {why}"),
            None => format!("jobs run as {who} in {fence}"),
        }
    }

    /// Removes the builds folder when it is one spur made under `/var/tmp` (at shutdown).
    pub fn remove_shared_builds_dir(&self) {
        if !self.builds_dir.starts_with(&self.data_dir) && self.builds_dir.starts_with("/var/tmp") {
            let _ = std::fs::remove_dir_all(&self.builds_dir);
        }
    }

    /// Whether jobs run under a uid other than spur's.
    pub fn other_uid(&self) -> bool {
        !matches!(self.identity, Identity::Own)
    }

    /// The fence of one job that may write `writable` and read `readable` (besides the system
    /// locations); takes a uid from the range when jobs have their own.
    pub fn fence(self: &std::sync::Arc<Self>, writable: Vec<PathBuf>, readable: Vec<PathBuf>) -> io::Result<Fence> {
        let (owner, lease) = match &self.identity {
            Identity::Own => (None, None),
            Identity::User(u) => (Some((u.uid, u.gid)), None),
            Identity::Range(pool) => {
                // Leftovers of earlier jobs under this uid were killed when it was released
                // (or, after a crash, by the sweep at start).
                let uid = pool.take()?;
                let lease = Lease {
                    uid,
                    pool: std::sync::Arc::downgrade(self),
                };
                (Some((uid, uid)), Some(lease))
            }
        };
        Ok(Fence {
            writable,
            readable,
            owner,
            _lease: lease,
        })
    }

    /// A command that runs `program args` inside `fence`, started in `dir`.
    pub fn command(
        &self,
        fence: &Fence,
        dir: &Path,
        program: &OsStr,
        args: &[OsString],
    ) -> io::Result<tokio::process::Command> {
        if let Some(why) = &self.unavailable {
            return Err(io::Error::other(why.clone()));
        }
        let mut cmd = match self.sandbox {
            Sandbox::None => {
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                c
            }
            Sandbox::Landlock => {
                let ruleset = build_ruleset(&self.readable(fence), &fence.writable)?;
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                // SAFETY: the closure runs in the forked child before exec and makes only two
                // raw system calls (prctl and landlock_restrict_self) on an fd it owns: no
                // allocation, no lock, nothing that is unsafe after fork.
                unsafe {
                    c.pre_exec(move || restrict_self(&ruleset));
                }
                c
            }
            Sandbox::Bwrap => {
                let mut c = tokio::process::Command::new("bwrap");
                c.args(self.bwrap_arguments(fence, dir));
                c.arg("--").arg(&self.exe).arg("sandbox-exec");
                for p in self.readable(fence) {
                    c.arg("--read").arg(p);
                }
                for p in fence.writable.iter().chain(std::iter::once(&PathBuf::from("/tmp"))) {
                    c.arg("--write").arg(p);
                }
                c.arg("--").arg(program).args(args);
                c
            }
        };
        cmd.current_dir(dir);
        if let Some((uid, gid)) = fence.owner {
            // As root, std drops the supplementary groups too before switching to the job's user.
            cmd.uid(uid).gid(gid);
        }
        Ok(cmd)
    }

    /// A command that runs spur's own file helper (`spur job-files ARGS`) inside `fence`.
    pub fn helper(&self, fence: &Fence, dir: &Path, args: &[OsString]) -> io::Result<tokio::process::Command> {
        let mut all = vec![OsString::from("job-files")];
        all.extend(args.iter().cloned());
        self.command(fence, dir, self.exe.as_os_str(), &all)
    }

    fn readable(&self, fence: &Fence) -> Vec<PathBuf> {
        self.system_read.iter().chain(&fence.readable).cloned().collect()
    }

    fn bwrap_arguments(&self, fence: &Fence, dir: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = [
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/dev/shm",
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if self.builds_dir.starts_with(&self.data_dir) || !self.other_uid() {
            a.push("--tmpfs".into());
            a.push(self.data_dir.clone().into_os_string());
        }
        for p in &fence.writable {
            a.extend(["--bind".into(), p.clone().into_os_string(), p.clone().into_os_string()]);
        }
        for p in &fence.readable {
            a.extend([
                "--ro-bind".into(),
                p.clone().into_os_string(),
                p.clone().into_os_string(),
            ]);
        }
        a.extend(["--chdir".into(), dir.as_os_str().to_owned()]);
        a
    }
}

impl UidPool {
    /// Kills every process running under a uid of the range (what jobs of a spur that crashed
    /// left behind), before any job takes one.
    fn sweep(&self) {
        kill_uids(self.first..self.first.saturating_add(self.count));
    }

    fn take(&self) -> io::Result<u32> {
        let mut busy = self
            .busy
            .lock()
            .map_err(|_| io::Error::other("the uid pool is poisoned"))?;
        for _ in 0..self.count {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
            let uid = self.first + i;
            if busy.insert(uid) {
                return Ok(uid);
            }
        }
        Err(io::Error::other("every uid of --job-uids is in use"))
    }
}

/// Kills every process running as `uid` (what a job left behind): scans `/proc` until a pass
/// finds none (a process forking meanwhile is caught by the next pass).
fn kill_all_of(uid: u32) {
    for _ in 0..20 {
        if kill_uids(uid..uid.saturating_add(1)) == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Sends SIGKILL to every process whose uid lies in `uids`; answers how many there were.
fn kill_uids(uids: std::ops::Range<u32>) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if entry.metadata().is_ok_and(|m| uids.contains(&m.uid())) {
            // SAFETY: kill(2) with plain integers.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed += 1;
        }
    }
    killed
}

/// Checks that bubblewrap runs here.
fn bwrap_probe() -> Result<(), String> {
    let ok = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(missing(
            "bubblewrap cannot run here (install the bubblewrap package; unprivileged use needs user namespaces)",
        ))
    }
}

/// `allowed`, or, when `hidden` lies inside it, every sibling on the way down to `hidden`
/// (so that the hidden folder itself is never granted).
fn grants_without(allowed: &Path, hidden: &Path) -> Vec<PathBuf> {
    let Ok(rest) = hidden.strip_prefix(allowed) else {
        return vec![allowed.to_path_buf()];
    };
    let mut out = Vec::new();
    let mut dir = allowed.to_path_buf();
    for part in rest.components() {
        let Ok(entries) = std::fs::read_dir(&dir) else { break };
        for entry in entries.flatten() {
            if entry.file_name() != part.as_os_str() {
                out.push(entry.path());
            }
        }
        dir.push(part);
    }
    out
}

/// Where the copy of spur's binary lives for job uids that cannot reach the original; the
/// builds folder's clean-up at start leaves it.
pub const HELPER_NAME: &str = ".spur-job-helper";

/// Whether other users may run the file at `path`: every folder above it lets them through and
/// the file is readable and executable by them.
fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    traversable_by_others(path) && std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005)
}

/// Copies spur's binary into the builds folder (root's, `0755`) for job uids to run.
fn copy_helper(exe: &Path, builds_dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let fail = |e: io::Error| format!("cannot copy spur's binary for the job helpers: {e}");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(builds_dir)
        .map_err(fail)?;
    let target = builds_dir.join(HELPER_NAME);
    let staging = builds_dir.join(format!("{HELPER_NAME}.new"));
    let _ = std::fs::remove_file(&staging);
    std::fs::copy(exe, &staging).map_err(fail)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
    std::fs::rename(&staging, &target).map_err(fail)?;
    Ok(target)
}

/// Whether every folder from `/` down to `dir` lets other users through (`o+x`).
fn traversable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// A new folder for workspaces that job users can reach, when the data dir's parents do not
/// let them through: `/var/tmp/spur-builds-<random>`, root's, `0711`.
fn fresh_shared_builds_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let suffix = crate::secrets::hex(&crate::secrets::random_array::<8>().map_err(|e| e.to_string())?);
    let dir = PathBuf::from(format!("/var/tmp/spur-builds-{suffix}"));
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_folder_inside_an_allowed_one_is_carved_out() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["a/data", "a/other", "b"] {
            std::fs::create_dir_all(dir.path().join(p)).unwrap();
        }
        let mut grants = grants_without(dir.path(), &dir.path().join("a/data"));
        grants.sort();
        assert_eq!(grants, vec![dir.path().join("a/other"), dir.path().join("b")]);
        assert_eq!(
            grants_without(Path::new("/usr"), dir.path()),
            vec![PathBuf::from("/usr")]
        );
    }

    #[test]
    fn sandbox_names_round_trip() {
        for s in [Sandbox::None, Sandbox::Landlock, Sandbox::Bwrap] {
            assert_eq!(Sandbox::parse(s.name()), Some(s));
        }
        assert_eq!(Sandbox::parse("docker"), None);
    }
}
