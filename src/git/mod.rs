//! All git access: where a project's repository lives, preparing it (validate a local path, clone
//! a mirror of a remote, or init a hosted bare repository), fetching mirrors (one fetch in flight
//! per project, shared by every caller), and resolving refs in process with gix, without
//! spawning a process per request. The `git` CLI is used for clone, fetch, compare, archives and
//! backup bundles, with arguments as argv, never through a shell.

use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod browse;
pub mod bundle;
mod compare;
mod remote;
pub use browse::{Blob, RefEntry};
pub use compare::{Comparison, FileDiff, GIT_WORK};

pub use crate::outbound::GitPin;
use remote::is_scp_like;
pub use remote::{RemoteAuth, generate_deploy_key, is_ssh_url, list_refs, split_credentials};

/// How long a clone or fetch may take before it is abandoned.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a project's repository comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A repository on this machine, read in place (always fresh).
    Local(PathBuf),
    /// A remote repository, mirrored into the data dir and fetched before refs are resolved.
    Remote(String),
    /// No import URL: a bare repository hosted in the data dir.
    Hosted,
}

impl Origin {
    /// Where a project's repository comes from (an unreadable stored `import_url`, which the
    /// checks at creation never let in, counts as hosted).
    pub fn of(project: &crate::domain::Project) -> Origin {
        Origin::classify(project.import_url.as_deref()).unwrap_or(Origin::Hosted)
    }

    /// Classifies an `import_url`, strictly: an absolute path or `file://` URL is local;
    /// `https://`, `http://`, `ssh://` and `git://` URLs with a host, and the exact scp-like
    /// form `user@host:path`, are remote; anything else (option-like values, relative paths,
    /// other schemes) is refused.
    pub fn classify(import_url: Option<&str>) -> Result<Origin, String> {
        let Some(url) = import_url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Origin::Hosted);
        };
        let invalid = || "is not a valid URL or absolute path".to_string();
        if url.starts_with('-') || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid());
        }
        if let Some(path) = url.strip_prefix("file://") {
            return if path.starts_with('/') {
                Ok(Origin::Local(PathBuf::from(path)))
            } else {
                Err(invalid())
            };
        }
        if url.starts_with('/') {
            return Ok(Origin::Local(PathBuf::from(url)));
        }
        if url.contains("://") {
            // One reading only: what spur checks must be what git and curl connect to, so
            // nothing that parsers read differently (backslashes, user names on git://) passes.
            let authority = url
                .split_once("://")
                .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
            let plain = |c: char| c.is_ascii_alphanumeric() || "-._~:@[]%!$&'()*+,;=".contains(c);
            if url.contains('\\') || !authority.chars().all(plain) {
                return Err(invalid());
            }
            let parsed = reqwest::Url::parse(url).map_err(|_| invalid())?;
            if parsed.scheme() == "git" && (!parsed.username().is_empty() || parsed.password().is_some()) {
                return Err(invalid());
            }
            let host_ok = parsed.host_str().is_some_and(|h| !h.is_empty() && !h.starts_with('-'));
            let scheme_ok = matches!(parsed.scheme(), "https" | "http" | "ssh" | "git");
            let user_ok = !parsed.username().starts_with('-');
            return if host_ok && scheme_ok && user_ok {
                Ok(Origin::Remote(url.to_string()))
            } else {
                Err("is blocked: Only allowed schemes are http, https, ssh, git".into())
            };
        }
        if is_scp_like(url) {
            return Ok(Origin::Remote(url.to_string()));
        }
        Err(invalid())
    }
}

/// A ref resolved the way GitLab resolves a pipeline's ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// Short name (`main`, `v1.0`).
    pub short: String,
    /// Whether it is a tag.
    pub tag: bool,
    /// The commit, 40 hex characters.
    pub sha: String,
}

/// Why a ref did not resolve; the texts are GitLab's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefError {
    /// No such branch or tag.
    NotFound,
    /// Both a branch and a tag have this short name.
    Ambiguous,
    /// The ref exists but does not lead to a commit.
    NoCommit,
    /// The repository could not be read.
    Repository(String),
}

impl RefError {
    /// GitLab's message for the error.
    pub fn message(&self) -> &str {
        match self {
            RefError::NotFound => "Reference not found",
            RefError::Ambiguous => "Ref is ambiguous",
            RefError::NoCommit => "Commit not found",
            RefError::Repository(_) => "Repository could not be read",
        }
    }
}

type FetchFuture = Shared<BoxFuture<'static, Result<(), String>>>;

/// Entries kept in the peel cache before it is cleared.
const PEEL_CACHE_LIMIT: usize = 100_000;
/// Commit trees kept in memory before the cache is cleared.
const TREE_CACHE_LIMIT: usize = 64;
/// Largest file read from a commit (a `.gitlab-ci.yml` or an included file).
const MAX_FILE_BYTES: usize = 4 << 20;

/// The files of one commit: every blob's path, and its object id for reading it.
pub struct CommitFiles {
    /// The commit message.
    pub message: String,
    paths: Vec<String>,
    blobs: HashMap<String, gix::ObjectId>,
    /// Files already read: a file at a commit never changes.
    contents: Mutex<HashMap<String, Option<Arc<str>>>>,
    repo: gix::ThreadSafeRepository,
}

/// Who made a commit and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// The message's first line.
    pub title: String,
    /// The whole message.
    pub message: String,
    /// The author's name.
    pub author_name: String,
    /// The author's email.
    pub author_email: String,
    /// When it was authored (milliseconds).
    pub authored_at: i64,
    /// The committer's name.
    pub committer_name: String,
    /// The committer's email.
    pub committer_email: String,
    /// When it was committed (milliseconds).
    pub committed_at: i64,
    /// The parents' ids, first parent first.
    pub parent_ids: Vec<String>,
}

impl CommitFiles {
    /// The paths whose content differs between this commit and `other` (added, removed or
    /// changed; a rename is both paths), sorted: `git diff --name-only` without rename detection.
    pub fn changed_against(&self, other: &CommitFiles) -> Vec<String> {
        let mut out: Vec<String> = self
            .blobs
            .iter()
            .filter(|(path, id)| other.blobs.get(*path) != Some(id))
            .map(|(path, _)| path.clone())
            .chain(other.blobs.keys().filter(|p| !self.blobs.contains_key(*p)).cloned())
            .collect();
        out.sort();
        out
    }

    /// Every file path at the commit.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The text of `file` at the commit, if it exists, is text, and is not too large.
    pub fn read(&self, file: &str) -> Option<String> {
        let file = file.trim_start_matches('/');
        if let Some(cached) = self.contents.lock().ok().and_then(|c| c.get(file).cloned()) {
            return cached.map(|text| text.to_string());
        }
        let text: Option<Arc<str>> = self.blobs.get(file).and_then(|id| {
            let repo = self.repo.to_thread_local();
            // The header's size first: a huge blob compresses to almost nothing in a push.
            if repo.find_header(*id).ok()?.size() > MAX_FILE_BYTES as u64 {
                return None;
            }
            let blob = repo.find_object(*id).ok()?;
            String::from_utf8(blob.data.clone()).ok().map(Arc::from)
        });
        if let Ok(mut contents) = self.contents.lock() {
            contents.insert(file.to_string(), text.clone());
        }
        text.map(|t| t.to_string())
    }
}

/// The repositories of every project, opened once and kept.
pub struct Repos {
    mirrors_dir: PathBuf,
    open: Mutex<HashMap<PathBuf, gix::ThreadSafeRepository>>,
    /// Object id → the commit it peels to. Objects never change, so this never goes stale; it
    /// spares reading (and mapping) the object on every trigger.
    peeled: Mutex<HashMap<gix::ObjectId, gix::ObjectId>>,
    /// Commit id → its file listing; a commit's tree never changes.
    trees: Mutex<HashMap<gix::ObjectId, Arc<CommitFiles>>>,
    /// Commits' authors and dates, by id.
    infos: Mutex<HashMap<gix::ObjectId, Arc<CommitInfo>>>,
    fetches: Arc<Mutex<HashMap<PathBuf, FetchFuture>>>,
}

impl Repos {
    /// Repositories whose mirrors and hosted copies live in `mirrors_dir`.
    pub fn new(mirrors_dir: PathBuf) -> Repos {
        Repos {
            mirrors_dir,
            open: Mutex::new(HashMap::new()),
            peeled: Mutex::new(HashMap::new()),
            trees: Mutex::new(HashMap::new()),
            infos: Mutex::new(HashMap::new()),
            fetches: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Where the repository stored as `repo_name` with `origin` is read from.
    pub fn path_of(&self, repo_name: &str, origin: &Origin) -> PathBuf {
        match origin {
            Origin::Local(p) => p.clone(),
            Origin::Remote(_) | Origin::Hosted => self.mirrors_dir.join(format!("{repo_name}.git")),
        }
    }

    /// Resolves `name` as GitLab does: `refs/heads/X`, `refs/tags/X`, or a short name that must
    /// be exactly one of a branch or a tag. A bare SHA is not a ref. Synchronous and in process.
    pub fn resolve(&self, path: &Path, name: &str) -> Result<ResolvedRef, RefError> {
        if !valid_ref_name(name) {
            return Err(RefError::NotFound);
        }
        let repo = self.open_repo(path).map_err(RefError::Repository)?.to_thread_local();
        let (short, tag, target) = if let Some(b) = name.strip_prefix("refs/heads/") {
            (b, false, lookup(&repo, name)?)
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            (t, true, lookup(&repo, name)?)
        } else {
            let branch = lookup(&repo, &format!("refs/heads/{name}"))?;
            let tag = lookup(&repo, &format!("refs/tags/{name}"))?;
            match (branch, tag) {
                (Some(_), Some(_)) => return Err(RefError::Ambiguous),
                (Some(b), None) => (name, false, Some(b)),
                (None, t) => (name, true, t),
            }
        };
        let id = target.ok_or(RefError::NotFound)?;
        let commit = self.peel_to_commit(&repo, id)?;
        Ok(ResolvedRef {
            short: short.to_string(),
            tag,
            sha: commit.to_string(),
        })
    }

    /// Who made commit `sha` and when (for the API's `commit` objects); cached.
    pub fn commit_info(&self, path: &Path, sha: &str) -> Result<Arc<CommitInfo>, String> {
        let id = gix::ObjectId::from_hex(sha.as_bytes()).map_err(|e| format!("bad commit id: {e}"))?;
        if let Some(info) = self.infos.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(info);
        }
        let repo = self.open_repo(path)?.to_thread_local();
        let commit = repo
            .find_commit(id)
            .map_err(|e| format!("cannot read commit {sha}: {e}"))?;
        let message = commit.message_raw_sloppy().to_string();
        let person = |s: Result<gix::actor::SignatureRef<'_>, _>| -> (String, String, i64) {
            match s {
                Ok(s) => (
                    s.name.to_string(),
                    s.email.to_string(),
                    s.time().map(|t| t.seconds * 1000).unwrap_or_default(),
                ),
                Err(_) => Default::default(),
            }
        };
        let author = person(commit.author());
        let committer = person(commit.committer());
        let info = Arc::new(CommitInfo {
            title: message.lines().next().unwrap_or_default().to_string(),
            message,
            author_name: author.0,
            author_email: author.1,
            authored_at: author.2,
            committer_name: committer.0,
            committer_email: committer.1,
            committed_at: committer.2,
            parent_ids: commit.parent_ids().map(|p| p.to_string()).collect(),
        });
        if let Ok(mut cache) = self.infos.lock() {
            if cache.len() >= TREE_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(id, info.clone());
        }
        Ok(info)
    }

    /// The repository's tag names (short), unsorted.
    pub fn tags(&self, path: &Path) -> Result<Vec<String>, String> {
        let repo = self.open_repo(path)?.to_thread_local();
        let platform = repo.references().map_err(|e| e.to_string())?;
        let tags = platform.tags().map_err(|e| e.to_string())?;
        Ok(tags
            .filter_map(Result::ok)
            .map(|r| r.name().shorten().to_string())
            .take(10_000)
            .collect())
    }

    /// A full commit SHA as a resolved ref (for `include:project` and components pinned to a
    /// commit), when the repository has that commit.
    pub fn resolve_sha(&self, path: &Path, sha: &str) -> Option<ResolvedRef> {
        if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let repo = self.open_repo(path).ok()?.to_thread_local();
        let id = gix::ObjectId::from_hex(sha.as_bytes()).ok()?;
        let commit = self.peel_to_commit(&repo, id).ok()?;
        Some(ResolvedRef {
            short: sha.to_string(),
            tag: false,
            sha: commit.to_string(),
        })
    }

    /// The commit `id` (a commit or a tag) peels to, from the cache or the object database.
    fn peel_to_commit(&self, repo: &gix::Repository, id: gix::ObjectId) -> Result<gix::ObjectId, RefError> {
        if let Some(commit) = self.peeled.lock().ok().and_then(|p| p.get(&id).copied()) {
            return Ok(commit);
        }
        let object = repo.find_object(id).map_err(|_| RefError::NoCommit)?;
        let commit = object
            .peel_to_kind(gix::object::Kind::Commit)
            .map_err(|_| RefError::NoCommit)?
            .id;
        if let Ok(mut peeled) = self.peeled.lock() {
            if peeled.len() >= PEEL_CACHE_LIMIT {
                peeled.clear();
            }
            peeled.insert(id, commit);
        }
        Ok(commit)
    }

    /// The files of commit `sha` (cached: a commit's tree never changes).
    pub fn commit_files(&self, path: &Path, sha: &str) -> Result<Arc<CommitFiles>, String> {
        let id = gix::ObjectId::from_hex(sha.as_bytes()).map_err(|e| format!("bad commit id: {e}"))?;
        if let Some(files) = self.trees.lock().ok().and_then(|t| t.get(&id).cloned()) {
            return Ok(files);
        }
        let sync = self.open_repo(path)?;
        let repo = sync.to_thread_local();
        let commit = repo
            .find_commit(id)
            .map_err(|e| format!("cannot read commit {sha}: {e}"))?;
        let message = commit.message_raw_sloppy().to_string();
        let tree = commit.tree().map_err(|e| format!("cannot read commit {sha}: {e}"))?;
        let entries = tree
            .traverse()
            .breadthfirst
            .files()
            .map_err(|e| format!("cannot list commit {sha}: {e}"))?;
        let mut paths = Vec::new();
        let mut blobs = HashMap::new();
        for entry in entries.into_iter().filter(|e| e.mode.is_blob()) {
            let file = entry.filepath.to_string();
            blobs.insert(file.clone(), entry.oid);
            paths.push(file);
        }
        let files = Arc::new(CommitFiles {
            message,
            paths,
            blobs,
            contents: Mutex::new(HashMap::new()),
            repo: sync,
        });
        if let Ok(mut trees) = self.trees.lock() {
            if trees.len() >= TREE_CACHE_LIMIT {
                trees.clear();
            }
            trees.insert(id, files.clone());
        }
        Ok(files)
    }

    /// Forgets a repository (after its project is deleted); hosted and mirrored copies are removed.
    pub async fn forget(&self, repo_name: &str, origin: &Origin) {
        let path = self.path_of(repo_name, origin);
        if let Ok(mut open) = self.open.lock() {
            open.remove(&path);
        }
        if !matches!(origin, Origin::Local(_)) {
            let _ = tokio::fs::remove_dir_all(&path).await;
        }
    }

    fn open_repo(&self, path: &Path) -> Result<gix::ThreadSafeRepository, String> {
        let mut open = self.open.lock().map_err(|_| "repository table poisoned".to_string())?;
        if let Some(repo) = open.get(path) {
            return Ok(repo.clone());
        }
        let repo = gix::open(path)
            .map_err(|e| format!("cannot open repository: {e}"))?
            .into_sync();
        open.insert(path.to_path_buf(), repo.clone());
        Ok(repo)
    }
}

/// The object a ref points at, if the ref exists; symbolic refs are followed. Reads only the
/// ref, never the object.
fn lookup(repo: &gix::Repository, full_name: &str) -> Result<Option<gix::ObjectId>, RefError> {
    // A name git could never store (too long for a file name, or not a valid ref name) names
    // no ref: "Reference not found", never a repository error.
    let storable = full_name.len() <= 1024 && full_name.split('/').all(|part| part.len() <= 255);
    if !storable || gix::refs::FullName::try_from(full_name).is_err() {
        return Ok(None);
    }
    let reference = repo
        .try_find_reference(full_name)
        .map_err(|e| RefError::Repository(e.to_string()))?;
    match reference {
        None => Ok(None),
        Some(mut r) => match r.target().try_id() {
            Some(id) => Ok(Some(id.to_owned())),
            None => r
                .peel_to_id()
                .map(|id| Some(id.detach()))
                .map_err(|_| RefError::NoCommit),
        },
    }
}

/// The branch HEAD points at, if HEAD is a branch.
/// The branch HEAD names, if it exists: an empty repository (unborn HEAD) has none yet.
fn default_branch(repo: &gix::Repository) -> Option<String> {
    let name = repo.head_name().ok()??;
    let full = name.as_bstr().to_string();
    repo.find_reference(full.as_str()).ok()?;
    full.strip_prefix("refs/heads/").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_import_urls() {
        assert_eq!(Origin::classify(None), Ok(Origin::Hosted));
        assert_eq!(
            Origin::classify(Some("/srv/repo")),
            Ok(Origin::Local("/srv/repo".into()))
        );
        assert_eq!(
            Origin::classify(Some("file:///srv/repo")),
            Ok(Origin::Local("/srv/repo".into()))
        );
        assert!(matches!(
            Origin::classify(Some("https://example.com/a.git")),
            Ok(Origin::Remote(_))
        ));
        assert!(matches!(
            Origin::classify(Some("git@example.com:a/b.git")),
            Ok(Origin::Remote(_))
        ));
        assert!(Origin::classify(Some("relative/path")).is_err());
        for hostile in [
            "../../..//x@y/../../data/repositories/abc.git",
            "x@y/../z:a",
            "-oProxyCommand=touch /tmp/pwned",
            "ssh://-oProxyCommand=x/a",
            "git@-oProxyCommand=x:a",
            "git@host:-upload-pack=x",
            "ext::sh -c touch% /tmp/pwned",
            "ftp://example.com/a.git",
            "http://127.0.0.1:1\\@8.8.8.8/g.git",
            "git://user@example.com/a.git",
            "file://relative",
        ] {
            assert!(Origin::classify(Some(hostile)).is_err(), "{hostile} must be refused");
        }
    }
}

/// Whether `name` is a ref name `git check-ref-format --allow-onelevel` accepts: no `..`, `@{`,
/// control characters, spaces or any of `~^:?*[\`; no component that starts with `.` or ends
/// with `.lock`; no empty component, no leading `-`, no trailing `/` or `.`; not `@`.
pub fn valid_ref_name(name: &str) -> bool {
    if name.is_empty() || name == "@" || name.starts_with('-') || name.ends_with('/') || name.ends_with('.') {
        return false;
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return false;
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return false;
    }
    name.split('/')
        .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

#[cfg(test)]
mod ref_name_tests {
    use super::valid_ref_name;

    #[test]
    fn ref_names_follow_check_ref_format() {
        for good in [
            "main",
            "feature/x",
            "v1.0",
            "refs/heads/main",
            "a-b_c",
            "release-2026.11",
        ] {
            assert!(valid_ref_name(good), "{good}");
        }
        for bad in [
            "",
            "@",
            "-main",
            "main/",
            "main.",
            "../main",
            "a..b",
            "a@{1}",
            "a//b",
            "ma in",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            ".hidden",
            "x/.y",
            "main.lock",
            "x/y.lock",
            "tab\t",
        ] {
            assert!(!valid_ref_name(bad), "{bad:?}");
        }
    }
}
