//! The Landlock half of the job fence: the ruleset every job process gets (system folders
//! readable, its own folders writable, the usual devices, no signals or abstract sockets out of
//! the domain), applying it between fork and exec, and `spur sandbox-exec`, which applies it
//! inside bubblewrap.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope,
};

/// The Landlock ABI whose rights spur asks for (best effort below it).
const ABI_WANTED: ABI = ABI::V6;

/// Device nodes a job may read and write (its terminal, sinks, randomness). Not `/dev/shm`:
/// the host's is shared by every job and outlives them (bwrap gives each job a private one).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// Applies the ruleset to the calling thread (in a child between fork and exec).
pub(super) fn restrict_self(ruleset: &OwnedFd) -> io::Result<()> {
    // SAFETY: prctl and the landlock_restrict_self system call take plain integers.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The message of a job that cannot be fenced.
pub(super) fn missing(what: &str) -> String {
    format!("{what}; start spur with --job-sandbox none to run jobs without isolation")
}

/// Checks that this kernel enforces Landlock.
pub(super) fn landlock_probe() -> Result<(), String> {
    build_ruleset(&[], &[]).map(|_| ()).map_err(|e| e.to_string())
}

/// A Landlock ruleset: `readable` paths readable and executable, `writable` ones fully usable,
/// the usual devices readable and writable, everything else denied; no signals or abstract
/// sockets out of the domain. Errors when the kernel does not enforce Landlock.
pub fn build_ruleset(readable: &[PathBuf], writable: &[PathBuf]) -> io::Result<OwnedFd> {
    let fail = |e: landlock::RulesetError| io::Error::other(missing(&format!("Landlock: {e}")));
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .map_err(fail)?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)
        .map_err(fail)?
        .create()
        .map_err(fail)?;
    let mut rules = Vec::new();
    let mut grant = |path: &Path, access: landlock::BitFlags<AccessFs>| {
        // A location this machine does not have grants nothing.
        if let Ok(fd) = PathFd::new(path) {
            rules.push(Ok::<_, landlock::RulesetError>(PathBeneath::new(fd, access)));
        }
    };
    for p in readable {
        grant(p, AccessFs::from_read(ABI_WANTED));
    }
    for p in DEVICES {
        grant(Path::new(p), AccessFs::from_all(ABI_WANTED));
    }
    for p in writable {
        grant(p, AccessFs::from_all(ABI_WANTED));
    }
    let ruleset = ruleset.add_rules(rules).map_err(fail)?;
    let fd: Option<OwnedFd> = ruleset.into();
    fd.ok_or_else(|| {
        io::Error::other(missing(
            "Landlock is not available in this kernel (Linux 5.13 or later with landlock among its LSMs)",
        ))
    })
}

/// `spur sandbox-exec --read P... --write P... -- PROGRAM ARGS...`: applies the Landlock domain
/// to itself and becomes PROGRAM (used inside bubblewrap, whose mounts a domain would forbid).
pub fn sandbox_exec(args: &[OsString]) -> io::Error {
    let (mut readable, mut writable) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--read") => readable.extend(it.next().map(PathBuf::from)),
            Some("--write") => writable.extend(it.next().map(PathBuf::from)),
            Some("--") => break,
            _ => return io::Error::other(format!("sandbox-exec: unexpected argument {a:?}")),
        }
    }
    let rest: Vec<&OsString> = it.collect();
    let Some((program, program_args)) = rest.split_first() else {
        return io::Error::other("sandbox-exec: no program");
    };
    let ruleset = match build_ruleset(&readable, &writable) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if let Err(e) = restrict_self(&ruleset) {
        return e;
    }
    drop(ruleset);
    std::process::Command::new(program).args(program_args).exec()
}
