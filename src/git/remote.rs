//! Talking to other repositories with the `git` CLI: cloning and fetching mirrors (signed in
//! with the project's credentials or deploy key, pinned to the addresses the outbound policy
//! checked), new hosted repositories, deploy keys, scp-like URLs, and listing refs.

use super::{FETCH_TIMEOUT, Origin, Repos, default_branch};
use futures_util::FutureExt;
use std::path::{Path, PathBuf};

/// Whether `url` is exactly `user@host:path`: a plain user name, a host name, and a path that
/// is not option-like, with no `/` before the `:`.
pub(super) fn is_scp_like(url: &str) -> bool {
    let Some((login, path)) = url.split_once(':') else {
        return false;
    };
    let Some((user, host)) = login.split_once('@') else {
        return false;
    };
    let word = |s: &str, extra: &[char]| {
        !s.is_empty() && !s.starts_with('-') && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    word(user, &['.', '_', '-']) && word(host, &['.', '-']) && !path.is_empty() && !path.starts_with('-')
}

/// Splits the credentials off an http(s) URL: `https://user:token@host/p.git` becomes
/// `https://host/p.git` and `user:token`. Other URLs are returned as they are.
pub fn split_credentials(url: &str) -> (String, Option<String>) {
    for scheme in ["https://", "http://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let host_end = rest.find('/').unwrap_or(rest.len());
            if let Some(at) = rest[..host_end].rfind('@') {
                let userinfo = &rest[..at];
                return (format!("{scheme}{}", &rest[at + 1..]), Some(userinfo.to_string()));
            }
        }
    }
    (url.to_string(), None)
}

/// How spur signs in to a mirror's origin.
#[derive(Clone, Default)]
pub enum RemoteAuth {
    /// Anonymously.
    #[default]
    None,
    /// HTTP Basic with `user:token` (from the `import_url`).
    Basic(String),
    /// SSH with the project's deploy key (an OpenSSH private key).
    SshKey(Vec<u8>),
}

/// Whether an import URL is reached over SSH (`ssh://` or `user@host:path`).
pub fn is_ssh_url(url: &str) -> bool {
    url.starts_with("ssh://") || is_scp_like(url)
}

use crate::outbound::GitPin;

/// `-c` arguments that pin git to the addresses the outbound policy checked.
fn pin_args(pin: &GitPin) -> Vec<String> {
    pin.config.iter().flat_map(|c| ["-c".to_string(), c.clone()]).collect()
}

/// Environment variables for one git run.
type GitEnv = Vec<(String, String)>;

/// A private key written for one git run; removed when dropped.
struct KeyFile(PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Single-quotes a path for `GIT_SSH_COMMAND`, which git runs through a shell.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Environment for a git run that signs in with `auth`: HTTP credentials as `GIT_CONFIG_*`
/// (never on the command line), or `GIT_SSH_COMMAND` with the deploy key in a private file
/// that lives as long as the returned guard.
fn auth_env(auth: &RemoteAuth, keys_dir: &Path, pin: &GitPin) -> Result<(GitEnv, Option<KeyFile>), String> {
    use base64::Engine;
    let pinned: String = pin
        .ssh_options
        .iter()
        .map(|o| format!(" -o {}", shell_quote(Path::new(o))))
        .collect();
    match auth {
        RemoteAuth::None if pinned.is_empty() => Ok((Vec::new(), None)),
        RemoteAuth::None => Ok((
            vec![(
                "GIT_SSH_COMMAND".into(),
                format!("ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new{pinned}"),
            )],
            None,
        )),
        RemoteAuth::Basic(userinfo) => {
            let decoded = percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy();
            let basic = base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes());
            Ok((
                vec![
                    ("GIT_CONFIG_COUNT".into(), "1".into()),
                    ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
                    ("GIT_CONFIG_VALUE_0".into(), format!("Authorization: Basic {basic}")),
                ],
                None,
            ))
        }
        RemoteAuth::SshKey(private) => {
            use std::io::Write;
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(keys_dir);
            let path = keys_dir.join(format!("key-{}", uuid::Uuid::new_v4().simple()));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot write the deploy key: {e}"))?;
            let guard = KeyFile(path.clone());
            file.write_all(private)
                .map_err(|e| format!("cannot write the deploy key: {e}"))?;
            let known_hosts = keys_dir.join("known_hosts");
            let command = format!(
                "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}{pinned}",
                shell_quote(&path),
                shell_quote(&known_hosts)
            );
            Ok((vec![("GIT_SSH_COMMAND".into(), command)], Some(guard)))
        }
    }
}

/// A new ed25519 deploy key made by `ssh-keygen`: (the public key line, the private key).
pub async fn generate_deploy_key(dir: &Path, comment: &str) -> Result<(String, Vec<u8>), String> {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    let path = dir.join(format!("new-{}", uuid::Uuid::new_v4().simple()));
    let _guard = (KeyFile(path.clone()), KeyFile(path.with_extension("pub")));
    let status = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    if !status.success() {
        return Err("ssh-keygen failed".into());
    }
    let private = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
    let public = tokio::fs::read_to_string(path.with_extension("pub"))
        .await
        .map_err(|e| e.to_string())?;
    Ok((public.trim().to_string(), private))
}

impl Repos {
    /// Makes the repository of a new project ready: checks a local one, clones a remote one,
    /// inits a hosted one. Returns the default branch, if any.
    pub async fn prepare(
        &self,
        repo_name: &str,
        origin: &Origin,
        auth: &RemoteAuth,
        pin: &GitPin,
    ) -> Result<Option<String>, String> {
        let path = self.path_of(repo_name, origin);
        match origin {
            Origin::Local(p) => {
                if !p.is_dir() {
                    return Err("is not a git repository on this server".to_string());
                }
            }
            Origin::Remote(url) => {
                remove_stale(&path).await?;
                let mut args = pin_args(pin);
                args.extend([
                    "clone".into(),
                    "--mirror".into(),
                    "--quiet".into(),
                    "--".into(),
                    url.clone(),
                    path.display().to_string(),
                ]);
                let (env, _key) = auth_env(auth, &self.keys_dir(), pin)?;
                let cloned = run_git_with(None, args, env).await;
                if cloned.is_err() && matches!(auth, RemoteAuth::SshKey(_)) {
                    // The deploy key is new: the forge does not know it yet. Keep an empty mirror
                    // that the next fetch fills, once the key is added there.
                    self.empty_mirror(&path, url).await?;
                    return Ok(None);
                }
                cloned.map_err(|_| "could not be cloned".to_string())?;
            }
            Origin::Hosted => {
                remove_stale(&path).await?;
                let args = vec![
                    "init".into(),
                    "--bare".into(),
                    "--quiet".into(),
                    path.display().to_string(),
                ];
                run_git(None, args).await?;
            }
        }
        let path2 = path.clone();
        let this_open = self
            .open_repo(&path2)
            .map_err(|_| "is not a git repository".to_string())?;
        Ok(default_branch(&this_open.to_thread_local()))
    }

    /// Brings a remote mirror up to date; local and hosted repositories are always fresh.
    /// Concurrent callers for one repository share a single fetch.
    pub async fn refresh(
        &self,
        repo_name: &str,
        origin: &Origin,
        auth: &RemoteAuth,
        pin: &GitPin,
    ) -> Result<(), String> {
        if !matches!(origin, Origin::Remote(_)) {
            return Ok(());
        }
        let path = self.path_of(repo_name, origin);
        let fetch = {
            let mut fetches = self.fetches.lock().map_err(|_| "fetch table poisoned".to_string())?;
            match fetches.get(&path) {
                Some(f) => f.clone(),
                None => {
                    let table = self.fetches.clone();
                    let key = path.clone();
                    let mut args = pin_args(pin);
                    args.extend([
                        "--git-dir".into(),
                        path.display().to_string(),
                        "fetch".into(),
                        "--prune".into(),
                        "--quiet".into(),
                        "origin".into(),
                    ]);
                    let (env, key_file) = auth_env(auth, &self.keys_dir(), pin)?;
                    let f = async move {
                        let result = run_git_with(None, args, env).await;
                        drop(key_file);
                        if let Ok(mut t) = table.lock() {
                            t.remove(&key);
                        }
                        result
                    }
                    .boxed()
                    .shared();
                    fetches.insert(path.clone(), f.clone());
                    f
                }
            }
        };
        fetch.await
    }

    /// Where deploy keys are written for the length of one git run (and SSH's known hosts).
    fn keys_dir(&self) -> PathBuf {
        self.mirrors_dir.join(".ssh")
    }

    /// A bare mirror of `url` with nothing fetched yet.
    async fn empty_mirror(&self, path: &Path, url: &str) -> Result<(), String> {
        remove_stale(path).await?;
        let dir = path.display().to_string();
        run_git(
            None,
            vec!["init".into(), "--bare".into(), "--quiet".into(), dir.clone()],
        )
        .await?;
        let args = vec![
            "--git-dir".into(),
            dir,
            "remote".into(),
            "add".into(),
            "--mirror=fetch".into(),
            "--".into(),
            "origin".into(),
            url.to_string(),
        ];
        run_git(None, args).await
    }

    /// The default branch of a mirror after its first fetch: `main`, else `master`, else the
    /// first branch; HEAD is pointed at it.
    pub async fn adopt_default_branch(&self, path: &Path) -> Option<String> {
        let refs = list_refs(path).await.ok()?;
        let branches: Vec<&str> = refs.keys().filter_map(|r| r.strip_prefix("refs/heads/")).collect();
        let pick = ["main", "master"]
            .into_iter()
            .find(|b| branches.contains(b))
            .or_else(|| branches.first().copied())?
            .to_string();
        let head = format!("refs/heads/{pick}");
        let args = vec![
            "--git-dir".into(),
            path.display().to_string(),
            "symbolic-ref".into(),
            "HEAD".into(),
            head,
        ];
        run_git(None, args).await.ok()?;
        Some(pick)
    }
}

async fn remove_stale(path: &Path) -> Result<(), String> {
    if path.exists() {
        tokio::fs::remove_dir_all(path)
            .await
            .map_err(|e| format!("cannot clear {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Every branch and tag of a repository: full ref name → commit (tags peeled).
pub async fn list_refs(path: &Path) -> Result<std::collections::BTreeMap<String, String>, String> {
    let output = tokio::time::timeout(
        FETCH_TIMEOUT,
        tokio::process::Command::new("git")
            .arg("-C")
            .arg(path)
            .args([
                "for-each-ref",
                "--format=%(refname)%00%(objectname)%00%(*objectname)",
                "refs/heads",
                "refs/tags",
            ])
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "git timed out".to_string())?
    .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!("git for-each-ref failed with {}", output.status));
    }
    let mut refs = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut parts = line.split('\0');
        let (Some(name), Some(object)) = (parts.next(), parts.next()) else {
            continue;
        };
        let peeled = parts.next().filter(|p| !p.is_empty()).unwrap_or(object);
        refs.insert(name.to_string(), peeled.to_string());
    }
    Ok(refs)
}

/// Runs `git` with `args` (argv, no shell), no prompts, bounded in time.
async fn run_git(dir: Option<&Path>, args: Vec<String>) -> Result<(), String> {
    run_git_with(dir, args, Vec::new()).await
}

/// `run_git` with extra environment (credentials as git configuration).
async fn run_git_with(dir: Option<&Path>, args: Vec<String>, env: Vec<(String, String)>) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(&args)
        .envs(env)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let output = tokio::time::timeout(FETCH_TIMEOUT, cmd.output())
        .await
        .map_err(|_| "git timed out".to_string())?
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        // stderr may echo a URL with credentials: keep it out of messages and logs.
        Err(format!(
            "git {} failed with {}",
            args.first().map_or("", String::as_str),
            output.status
        ))
    }
}
