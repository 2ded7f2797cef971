//! Reading what lies between commits, with the `git` CLI: the refs that contain a commit, a
//! commit's line counts, the commits and file diffs between two commits, and the command that
//! streams an archive of a tree. Every argument is a full commit SHA or a fixed flag, never a
//! name from a request, and every output is bounded.

use super::Repos;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// At most this many bytes of diff are read for a comparison; beyond it the diffs are cut.
pub const MAX_DIFF_BYTES: usize = 8 << 20;
/// At most this many files are listed in a comparison (GitLab's `max_files` safety limit).
pub const MAX_DIFF_FILES: usize = 1000;
/// At most this many commits are listed in a comparison.
pub const MAX_COMPARE_COMMITS: usize = 10_000;
/// At most this many refs are listed as containing a commit.
pub const MAX_CONTAINING: usize = 10_000;
/// A file's patch larger than this is left out of a comparison (GitLab's 200 KiB patch limit).
pub const MAX_PATCH_BYTES: usize = 200 << 10;
/// Files larger than this are compared as binary: git never loads them to diff line by line.
const BIG_FILE_THRESHOLD: &str = "core.bigFileThreshold=2m";

/// How many of these `git` commands (diffs, stats, archives, containing refs) run at once;
/// more wait, so that a burst of requests cannot take the machine's memory.
pub static GIT_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// git's empty tree, the parent of a root commit.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// One file's change between two commits (GitLab's `Diff` entity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDiff {
    /// The path before.
    pub old_path: String,
    /// The path after.
    pub new_path: String,
    /// The mode before (`0` when added).
    pub a_mode: String,
    /// The mode after (`0` when deleted).
    pub b_mode: String,
    /// The hunks (from the first `@@`), or git's line for a binary file.
    pub diff: String,
    /// Added.
    pub new_file: bool,
    /// Renamed.
    pub renamed_file: bool,
    /// Deleted.
    pub deleted_file: bool,
    /// The patch was over [`MAX_PATCH_BYTES`] and is left out.
    pub too_large: bool,
}

/// The commits and diffs between two commits.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// The commits reachable from `to` and not from the base, oldest first.
    pub commits: Vec<String>,
    /// The changed files.
    pub diffs: Vec<FileDiff>,
    /// Whether the diffs were cut at a limit.
    pub overflow: bool,
    /// Whether both ends are the same commit.
    pub same: bool,
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs `git -C path args`, reading at most `cap` bytes of its output.
fn run_capped(path: &Path, args: &[&str], cap: usize) -> Result<(Vec<u8>, bool), String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["-c", BIG_FILE_THRESHOLD])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("git: {e}"))?;
    let mut out = Vec::new();
    let stdout = child.stdout.take().ok_or("git: no output")?;
    stdout
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("git: {e}"))?;
    let cut = out.len() > cap;
    if cut {
        out.truncate(cap);
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("git: {e}"))?;
    if !status.success() && !cut {
        return Err(format!("git {} failed", args.first().unwrap_or(&"")));
    }
    Ok((out, cut))
}

impl Repos {
    /// The branches and the tags whose history contains commit `sha`, sorted by name.
    pub fn refs_containing(&self, path: &Path, sha: &str) -> Result<(Vec<String>, Vec<String>), String> {
        if !is_sha(sha) {
            return Err("not a commit id".into());
        }
        let contains = format!("--contains={sha}");
        let args = [
            "for-each-ref",
            &contains,
            "--format=%(refname)",
            "refs/heads",
            "refs/tags",
        ];
        let (out, _) = run_capped(path, &args, 64 << 20)?;
        let (mut branches, mut tags) = (Vec::new(), Vec::new());
        for line in String::from_utf8_lossy(&out).lines().take(MAX_CONTAINING) {
            if let Some(b) = line.strip_prefix("refs/heads/") {
                branches.push(b.to_string());
            } else if let Some(t) = line.strip_prefix("refs/tags/") {
                tags.push(t.to_string());
            }
        }
        Ok((branches, tags))
    }

    /// The branches whose history contains commit `sha`, sorted by name.
    pub fn branches_containing(&self, path: &Path, sha: &str) -> Result<Vec<String>, String> {
        if !is_sha(sha) {
            return Err("not a commit id".into());
        }
        let contains = format!("--contains={sha}");
        let args = ["for-each-ref", &contains, "--format=%(refname:lstrip=2)", "refs/heads"];
        let (out, _) = run_capped(path, &args, 64 << 20)?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .take(MAX_CONTAINING)
            .map(str::to_string)
            .collect())
    }

    /// Lines added and deleted by commit `sha` against its first parent (the empty tree for a
    /// root commit).
    pub fn commit_stats(&self, path: &Path, sha: &str) -> Result<(u64, u64), String> {
        if !is_sha(sha) {
            return Err("not a commit id".into());
        }
        let parent = self.first_parent(path, sha)?;
        let base = parent.as_deref().unwrap_or(EMPTY_TREE);
        let args = [
            "diff",
            "--numstat",
            "--no-ext-diff",
            "--no-textconv",
            "--find-renames",
            base,
            sha,
        ];
        let (out, _) = run_capped(path, &args, MAX_DIFF_BYTES)?;
        let (mut added, mut deleted) = (0u64, 0u64);
        for line in String::from_utf8_lossy(&out).lines() {
            let mut parts = line.split('\t');
            added += parts.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            deleted += parts.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
        Ok((added, deleted))
    }

    /// The first parent of commit `sha`, if it has one.
    pub fn first_parent(&self, path: &Path, sha: &str) -> Result<Option<String>, String> {
        let repo = self.open_repo(path)?.to_thread_local();
        let id = gix::ObjectId::from_hex(sha.as_bytes()).map_err(|e| e.to_string())?;
        let commit = repo.find_commit(id).map_err(|e| e.to_string())?;
        Ok(commit.parent_ids().next().map(|p| p.to_string()))
    }

    /// The commits and diffs from `from` to `to`: from their merge base unless `straight`.
    pub fn compare(&self, path: &Path, from: &str, to: &str, straight: bool) -> Result<Comparison, String> {
        if !is_sha(from) || !is_sha(to) {
            return Err("not a commit id".into());
        }
        let base = if straight {
            from.to_string()
        } else {
            let (out, _) = run_capped(path, &["merge-base", from, to], 4096)?;
            let base = String::from_utf8_lossy(&out).trim().to_string();
            if is_sha(&base) { base } else { from.to_string() }
        };
        let range = format!("{base}..{to}");
        let max = format!("--max-count={MAX_COMPARE_COMMITS}");
        let (out, _) = run_capped(path, &["rev-list", "--reverse", &max, &range], 1 << 20)?;
        let commits = String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| is_sha(l))
            .map(str::to_string)
            .collect();
        let args = [
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--find-renames",
            "--full-index",
            &base,
            to,
        ];
        let (patch, cut) = run_capped(path, &args, MAX_DIFF_BYTES)?;
        let (diffs, more) = parse_patch(&String::from_utf8_lossy(&patch));
        Ok(Comparison {
            commits,
            diffs,
            overflow: cut || more,
            same: from == to,
        })
    }

    /// Whether `file` (a checked relative path) names a file or folder at commit `sha`.
    pub fn path_exists(&self, path: &Path, sha: &str, file: &str) -> bool {
        let Ok(repo) = self.open_repo(path).map(|r| r.to_thread_local()) else {
            return false;
        };
        let Ok(id) = gix::ObjectId::from_hex(sha.as_bytes()) else {
            return false;
        };
        repo.find_commit(id)
            .ok()
            .and_then(|c| c.tree().ok())
            .and_then(|t| t.lookup_entry_by_path(file).ok().flatten())
            .is_some()
    }

    /// The command that writes an archive (`tar`, `tar.gz`, `tar.bz2` or `zip`) of commit
    /// `sha` (only `only` inside it, when given: a checked path that exists) with every path
    /// under `prefix/`, to its standard output.
    pub fn archive_command(
        &self,
        path: &Path,
        sha: &str,
        format: &str,
        prefix: &str,
        only: Option<&str>,
    ) -> Option<tokio::process::Command> {
        if !is_sha(sha) || !matches!(format, "tar" | "tar.gz" | "tar.bz2" | "zip") {
            return None;
        }
        let mut cmd = tokio::process::Command::new("git");
        cmd.arg("-C")
            .arg(path)
            .args(["-c", BIG_FILE_THRESHOLD, "-c", "tar.tar.bz2.command=bzip2 -c"])
            .arg("archive")
            .arg(format!("--format={format}"))
            .arg(format!("--prefix={prefix}/"))
            .arg(sha)
            .args(only.map(|p| ["--", p]).into_iter().flatten())
            .env("GIT_LITERAL_PATHSPECS", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        Some(cmd)
    }
}

/// Splits `git diff` output into files. Answers whether files were left out at the limit.
fn parse_patch(text: &str) -> (Vec<FileDiff>, bool) {
    let mut out: Vec<FileDiff> = Vec::new();
    let mut in_hunks = false;
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            if out.len() == MAX_DIFF_FILES {
                return (out, true);
            }
            let (a, b) = split_header_paths(rest.trim_end_matches('\n'));
            out.push(FileDiff {
                old_path: a,
                new_path: b,
                ..FileDiff::default()
            });
            in_hunks = false;
            continue;
        }
        let Some(file) = out.last_mut() else { continue };
        if in_hunks {
            if file.diff.len() + line.len() > MAX_PATCH_BYTES {
                // Too large to show, as GitLab leaves such a patch out.
                file.diff.clear();
                in_hunks = false;
                file.too_large = true;
            } else if !file.too_large {
                file.diff.push_str(line);
            }
            continue;
        }
        if file.too_large {
            continue;
        }
        let l = line.trim_end_matches('\n');
        if l.starts_with("@@") || l.starts_with("Binary files ") {
            in_hunks = true;
            file.diff.push_str(line);
        } else if let Some(m) = l.strip_prefix("new file mode ") {
            file.new_file = true;
            file.b_mode = m.to_string();
            file.a_mode = "0".into();
        } else if let Some(m) = l.strip_prefix("deleted file mode ") {
            file.deleted_file = true;
            file.a_mode = m.to_string();
            file.b_mode = "0".into();
        } else if let Some(m) = l.strip_prefix("old mode ") {
            file.a_mode = m.to_string();
        } else if let Some(m) = l.strip_prefix("new mode ") {
            file.b_mode = m.to_string();
        } else if let Some(p) = l.strip_prefix("rename from ") {
            file.renamed_file = true;
            file.old_path = unquote(p);
        } else if let Some(p) = l.strip_prefix("rename to ") {
            file.new_path = unquote(p);
        } else if let Some(p) = l.strip_prefix("--- a/") {
            file.old_path = unquote(p);
        } else if let Some(p) = l.strip_prefix("+++ b/") {
            file.new_path = unquote(p);
        } else if let Some(index) = l.strip_prefix("index ")
            && let Some((_, mode)) = index.split_once(' ')
        {
            file.a_mode = mode.to_string();
            file.b_mode = mode.to_string();
        }
    }
    (out, false)
}

/// The two paths of `diff --git a/x b/y` (equal for anything but a rename, where the
/// `rename from/to` lines correct them).
fn split_header_paths(rest: &str) -> (String, String) {
    let half = rest.len() / 2;
    let (a, b) = rest.split_at(half.min(rest.len()));
    let (a, b) = (unquote(a.trim_end()), unquote(b.trim_start()));
    let a = a.strip_prefix("a/").map(str::to_string).unwrap_or(a.clone());
    let b = b.strip_prefix("b/").map(str::to_string).unwrap_or(b.clone());
    (a, b)
}

/// A path as git prints it: C-quoted when it holds special characters.
fn unquote(p: &str) -> String {
    let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return p.to_string();
    };
    let mut bytes = Vec::new();
    let mut chars = inner.bytes().peekable();
    while let Some(c) = chars.next() {
        if c != b'\\' {
            bytes.push(c);
            continue;
        }
        match chars.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(d @ b'0'..=b'7') => {
                let mut v = (d - b'0') as u32;
                for _ in 0..2 {
                    if let Some(&n @ b'0'..=b'7') = chars.peek() {
                        v = v * 8 + (n - b'0') as u32;
                        chars.next();
                    }
                }
                bytes.push(v as u8);
            }
            Some(other) => bytes.push(other),
            None => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_patch_into_files() {
        let patch = "diff --git a/a.txt b/a.txt\nindex 1111111..2222222 100644\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x\n+y\ndiff --git a/new b/new\nnew file mode 100755\nindex 0000000..3333333\n--- /dev/null\n+++ b/new\n@@ -0,0 +1 @@\n+z\ndiff --git a/old b/renamed\nsimilarity index 100%\nrename from old\nrename to renamed\ndiff --git \"a/sp\\303\\244ce\" \"b/sp\\303\\244ce\"\ndeleted file mode 100644\nBinary files \"a/sp\\303\\244ce\" and /dev/null differ\n";
        let (files, cut) = parse_patch(patch);
        assert!(!cut);
        assert_eq!(files.len(), 4);
        assert_eq!(
            (files[0].a_mode.as_str(), files[0].diff.as_str()),
            ("100644", "@@ -1 +1 @@\n-x\n+y\n")
        );
        assert!(files[1].new_file && files[1].b_mode == "100755" && files[1].a_mode == "0");
        assert!(files[2].renamed_file && files[2].old_path == "old" && files[2].new_path == "renamed");
        assert!(files[3].deleted_file && files[3].old_path == "späce");
        assert!(files[3].diff.starts_with("Binary files"));
        let huge = format!(
            "diff --git a/big b/big\n--- a/big\n+++ b/big\n@@ -1 +1,9999 @@\n{}diff --git a/small b/small\n--- a/small\n+++ b/small\n@@ -1 +1 @@\n-a\n+b\n",
            "+--- a/looks-like-a-header\n".repeat(9999)
        );
        let (files, _) = parse_patch(&huge);
        assert_eq!(files.len(), 2);
        assert!(
            files[0].too_large && files[0].diff.is_empty(),
            "a patch over 200 KiB is left out"
        );
        assert_eq!(
            (files[0].old_path.as_str(), files[1].diff.as_str()),
            ("big", "@@ -1 +1 @@\n-a\n+b\n")
        );
    }
}
