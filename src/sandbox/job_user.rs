//! `--job-user`: one named unprivileged user, looked up in `/etc/passwd`, that every job runs
//! as when spur runs as root (instead of a uid of its own from `--job-uids`).

use std::fs;

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
