//! Reading a repository for the API: branches and tags with their commits, a file's blob at a
//! ref, a tree listing, and the history of a ref (optionally of one path). Read-only and
//! bounded; names and paths are looked up in git's object database, never passed to a command.

use super::{RefError, Repos, ResolvedRef};
use std::path::Path;

/// A branch or a tag and the commit it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    /// The short name.
    pub name: String,
    /// The commit.
    pub sha: String,
    /// An annotated tag's message (tags only).
    pub message: Option<String>,
    /// An annotated tag's object id (tags only).
    pub target: Option<String>,
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The object id.
    pub id: String,
    /// The last path component.
    pub name: String,
    /// `tree`, `blob` or `commit` (a submodule).
    pub kind: &'static str,
    /// The path from the repository root.
    pub path: String,
    /// The git mode, in octal (`100644`).
    pub mode: String,
}

/// A file at a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The blob's id.
    pub id: String,
    /// The commit it was read at.
    pub commit: String,
    /// The content.
    pub data: Vec<u8>,
    /// Whether the mode is executable.
    pub executable: bool,
}

/// At most this many entries in one tree listing or one history walk.
pub const MAX_LISTED: usize = 100_000;
/// At most this many commits are examined for a path-filtered history.
pub const MAX_PATH_WALK: usize = 10_000;
/// A history walk stops after this long, answering what it found.
pub const WALK_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);
/// The largest file served through the API.
pub const MAX_BLOB_BYTES: usize = 10 << 20;

impl Repos {
    /// The branches (`tags: false`) or tags, sorted by name.
    pub fn list_refs(&self, path: &Path, tags: bool) -> Result<Vec<RefEntry>, String> {
        let repo = self.open_repo(path)?.to_thread_local();
        let platform = repo.references().map_err(|e| e.to_string())?;
        let iter = if tags {
            platform.tags().map_err(|e| e.to_string())?
        } else {
            platform.local_branches().map_err(|e| e.to_string())?
        };
        let mut out = Vec::new();
        for reference in iter.filter_map(Result::ok).take(MAX_LISTED) {
            let name = reference.name().shorten().to_string();
            let direct = reference.target().try_id().map(|id| id.to_owned());
            let Some(direct) = direct else { continue };
            let Ok(commit) = self.peel_to_commit(&repo, direct) else {
                continue;
            };
            let (message, target) = match repo.find_object(direct).ok().and_then(|o| o.try_into_tag().ok()) {
                Some(tag) => (
                    tag.decode().ok().map(|t| t.message.to_string()),
                    Some(direct.to_string()),
                ),
                None => (None, tags.then(|| commit.to_string())),
            };
            out.push(RefEntry {
                name,
                sha: commit.to_string(),
                message,
                target,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A ref name, a commit SHA (full, or abbreviated to 7 characters or more), or either
    /// followed by `~N` / `^N` (as GitLab's API resolves them) as a commit. Other revision
    /// syntax (`:/text`, `@{...}`, ranges) is not taken.
    pub fn resolve_any(&self, path: &Path, name: &str) -> Result<ResolvedRef, RefError> {
        match self.resolve(path, name) {
            Ok(r) => Ok(r),
            Err(e) => self
                .resolve_sha(path, name)
                .or_else(|| self.resolve_revision(path, name))
                .ok_or(e),
        }
    }

    /// A short SHA or a `~N`/`^N` expression, through gix's revision parser.
    fn resolve_revision(&self, path: &Path, name: &str) -> Option<ResolvedRef> {
        let base = name.split(['~', '^']).next().unwrap_or_default();
        let suffix = &name[base.len()..];
        let short_sha = base.len() >= 7 && base.bytes().all(|b| b.is_ascii_hexdigit());
        let plain_suffix = suffix.bytes().all(|b| b.is_ascii_digit() || b == b'~' || b == b'^');
        let plain_base = !base.is_empty()
            && base.len() <= 255
            && !base.contains("..")
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
        if !(plain_base && plain_suffix && (short_sha || !suffix.is_empty())) || name.len() > 300 {
            return None;
        }
        let repo = self.open_repo(path).ok()?.to_thread_local();
        let start = match self.resolve(path, base) {
            Ok(r) => gix::ObjectId::from_hex(r.sha.as_bytes()).ok()?,
            Err(_) if short_sha => {
                let prefix = gix::hash::Prefix::from_hex(base).ok()?;
                // An ambiguous prefix resolves to nothing, as git refuses it.
                repo.objects.lookup_prefix(prefix, None).ok()??.ok()?
            }
            Err(_) => return None,
        };
        let mut commit = self.peel_to_commit(&repo, start).ok()?;
        // `~N`: N first parents back; `^N`: the Nth parent (`^` alone: the first).
        let mut rest = suffix;
        while let Some(op) = rest.chars().next() {
            let digits: String = rest[1..].chars().take_while(char::is_ascii_digit).collect();
            rest = &rest[1 + digits.len()..];
            let n: usize = if digits.is_empty() { 1 } else { digits.parse().ok()? };
            let parents = |id: gix::ObjectId| -> Option<Vec<gix::ObjectId>> {
                Some(repo.find_commit(id).ok()?.parent_ids().map(|p| p.detach()).collect())
            };
            match op {
                '~' if n <= super::browse::MAX_PATH_WALK => {
                    for _ in 0..n {
                        commit = *parents(commit)?.first()?;
                    }
                }
                '^' if n == 0 => {}
                '^' => commit = *parents(commit)?.get(n - 1)?,
                _ => return None,
            }
        }
        Some(ResolvedRef {
            short: name.to_string(),
            tag: false,
            sha: commit.to_string(),
        })
    }

    /// The file `file` at `commit`, if it is a blob within the size limit.
    pub fn blob_at(&self, path: &Path, commit: &str, file: &str) -> Result<Option<Blob>, String> {
        let repo = self.open_repo(path)?.to_thread_local();
        let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| e.to_string())?;
        let tree = repo
            .find_commit(id)
            .map_err(|e| e.to_string())?
            .tree()
            .map_err(|e| e.to_string())?;
        let Some(entry) = tree.lookup_entry_by_path(file).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        // A symbolic link reads as its target's path, as GitLab serves it.
        if !entry.mode().is_blob() && !entry.mode().is_link() {
            return Ok(None);
        }
        // The header's size before inflating: a huge blob compresses to almost nothing.
        let size = repo.find_header(entry.object_id()).map_err(|e| e.to_string())?.size();
        if size > MAX_BLOB_BYTES as u64 {
            return Err(format!("the file is larger than {MAX_BLOB_BYTES} bytes"));
        }
        let object = repo.find_object(entry.object_id()).map_err(|e| e.to_string())?;
        Ok(Some(Blob {
            id: entry.object_id().to_string(),
            commit: commit.to_string(),
            data: object.data.clone(),
            executable: entry.mode().is_executable(),
        }))
    }

    /// The entries of the tree at `dir` (`""` for the root) in `commit`; every entry below it
    /// when `recursive`. `None` when `dir` is not a tree.
    pub fn tree_at(
        &self,
        path: &Path,
        commit: &str,
        dir: &str,
        recursive: bool,
    ) -> Result<Option<Vec<TreeEntry>>, String> {
        let repo = self.open_repo(path)?.to_thread_local();
        let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| e.to_string())?;
        let root = repo
            .find_commit(id)
            .map_err(|e| e.to_string())?
            .tree()
            .map_err(|e| e.to_string())?;
        let dir = dir.trim_matches('/');
        let start = if dir.is_empty() {
            root
        } else {
            match root.lookup_entry_by_path(dir).map_err(|e| e.to_string())? {
                Some(e) if e.mode().is_tree() => repo
                    .find_object(e.object_id())
                    .map_err(|e| e.to_string())?
                    .try_into_tree()
                    .map_err(|e| e.to_string())?,
                _ => return Ok(None),
            }
        };
        let mut out = Vec::new();
        let mut pending = vec![(dir.to_string(), start.id)];
        while let Some((prefix, tree_id)) = pending.pop() {
            let tree = repo
                .find_object(tree_id)
                .map_err(|e| e.to_string())?
                .try_into_tree()
                .map_err(|e| e.to_string())?;
            let decoded = tree.decode().map_err(|e| e.to_string())?;
            for entry in &decoded.entries {
                let name = entry.filename.to_string();
                let full = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                let kind = if entry.mode.is_tree() {
                    "tree"
                } else if entry.mode.is_commit() {
                    "commit"
                } else {
                    "blob"
                };
                if recursive && entry.mode.is_tree() {
                    pending.push((full.clone(), entry.oid.to_owned()));
                }
                out.push(TreeEntry {
                    id: entry.oid.to_string(),
                    name,
                    kind,
                    path: full,
                    mode: format!("{:06o}", entry.mode.value()),
                });
                if out.len() >= MAX_LISTED {
                    return Err(format!("the tree has more than {MAX_LISTED} entries"));
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Some(out))
    }

    /// The commits reachable from `tip`, newest first, that touch `file` (when given) and were
    /// committed within `since..=until` (milliseconds); skips `offset`, answers at most `limit`
    /// and whether more follow.
    pub fn history(
        &self,
        path: &Path,
        tip: &str,
        file: Option<&str>,
        window: (Option<i64>, Option<i64>),
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, bool), String> {
        let repo = self.open_repo(path)?.to_thread_local();
        let id = gix::ObjectId::from_hex(tip.as_bytes()).map_err(|e| e.to_string())?;
        let walk = repo
            .rev_walk([id])
            .sorting(gix::revision::walk::Sorting::ByCommitTime(Default::default()))
            .all()
            .map_err(|e| e.to_string())?;
        // Each commit's entry is looked up once (as itself, then as a parent).
        let mut seen: std::collections::HashMap<gix::ObjectId, Option<gix::ObjectId>> =
            std::collections::HashMap::new();
        let mut entry_id = |commit: gix::ObjectId, file: &str| -> Option<gix::ObjectId> {
            if let Some(found) = seen.get(&commit) {
                return *found;
            }
            let found = repo
                .find_commit(commit)
                .ok()
                .and_then(|c| c.tree().ok())
                .and_then(|t| t.lookup_entry_by_path(file).ok().flatten().map(|e| e.object_id()));
            if seen.len() > 2 * MAX_PATH_WALK {
                seen.clear();
            }
            seen.insert(commit, found);
            found
        };
        let limit_walk = if file.is_some() { MAX_PATH_WALK } else { MAX_LISTED };
        let started = std::time::Instant::now();
        let (mut skipped, mut out) = (0usize, Vec::new());
        for (walked, info) in walk.enumerate() {
            if walked >= limit_walk || started.elapsed() > WALK_BUDGET {
                break;
            }
            let info = info.map_err(|e| e.to_string())?;
            let time = info.commit_time.unwrap_or_default() * 1000;
            if window.0.is_some_and(|since| time < since) || window.1.is_some_and(|until| time > until) {
                continue;
            }
            if let Some(file) = file {
                let own = entry_id(info.id, file);
                let parents: Vec<gix::ObjectId> = info.parent_ids().map(|p| p.detach()).collect();
                let changed = if parents.is_empty() {
                    own.is_some()
                } else {
                    parents.iter().all(|p| entry_id(*p, file) != own)
                };
                if !changed {
                    continue;
                }
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(info.id.to_string());
        }
        Ok((out, false))
    }
}
