//! Running jobs as a separate unprivileged user (`--job-user`, when spur runs as root): the
//! user is looked up in `/etc/passwd`, the data dir is locked down so that only its `builds/`
//! folder can be traversed (the secret key, the database, mirrors, logs and caches stay
//! root's), and each job's folders are handed to that user before its shells start (the shells
//! drop root's uid, gid and supplementary groups). It does not hide other processes, the
//! network, or world-readable files of the host: a container or VM is the stronger fence.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The user jobs run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl JobUser {
    /// Looks `name` up in `/etc/passwd`; refuses root and unknown users.
    pub fn lookup(name: &str) -> Result<JobUser, String> {
        let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
        let user = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[0] == name).then(|| (f[2].parse::<u32>(), f[3].parse::<u32>()))
            })
            .next()
            .ok_or_else(|| format!("no user {name:?} (create it with: useradd --system --no-create-home {name})"))?;
        let (Ok(uid), Ok(gid)) = user else {
            return Err(format!("/etc/passwd has no valid ids for {name:?}"));
        };
        if uid == 0 {
            return Err("--job-user must not be root".into());
        }
        Ok(JobUser {
            name: name.to_string(),
            uid,
            gid,
        })
    }

    /// Hands `path` and everything below it to the user (links themselves, not their targets).
    pub fn give(&self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))?;
        let meta = fs::symlink_metadata(path)?;
        if meta.is_dir() {
            for entry in fs::read_dir(path)? {
                self.give(&entry?.path())?;
            }
        }
        Ok(())
    }
}

/// Makes the data dir traversable but not listable, and everything in it root's own except
/// `builds/`, which jobs must reach.
pub fn lock_down(data_dir: &Path) -> io::Result<()> {
    let set = |p: &Path, mode: u32| -> io::Result<()> {
        match fs::set_permissions(p, fs::Permissions::from_mode(mode)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    for dir in ["cache", "backups"] {
        fs::create_dir_all(data_dir.join(dir))?;
    }
    set(data_dir, 0o711)?;
    for file in ["secret.key", "spur.redb", "initial_root_credentials"] {
        set(&data_dir.join(file), 0o600)?;
    }
    for dir in ["repositories", "traces", "cache", "backups"] {
        set(&data_dir.join(dir), 0o700)?;
    }
    set(&data_dir.join("builds"), 0o711)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_unknown_users_are_refused() {
        assert!(JobUser::lookup("root").is_err());
        assert!(JobUser::lookup("no-such-user-for-spur").is_err());
    }
}
