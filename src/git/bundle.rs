//! Repositories in backups: every ref of a bare repository, read at one moment, written into a
//! git bundle; a bare repository made again from one; an empty mirror that its next fetch fills.
//! Synchronous (backups run on a blocking thread), the `git` CLI, full paths only.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `git` with `args` and answers its standard output, or its error output as the error.
fn git(args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let output = Command::new("git")
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let err = String::from_utf8_lossy(&output.stderr);
        Err(format!("git {}: {}", lossy(args), err.trim()))
    }
}

fn lossy(args: &[&std::ffi::OsStr]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes every ref of the bare repository `repo` into the bundle `out`. The refs are read once,
/// when git starts: a push that lands meanwhile is either wholly in the bundle or wholly out of
/// it. Answers `false`, writing nothing, for a repository without any ref (nothing was pushed).
pub fn bundle_all(repo: &Path, out: &Path) -> Result<bool, String> {
    let first = git(&[
        "--git-dir".as_ref(),
        repo.as_os_str(),
        "for-each-ref".as_ref(),
        "--count=1".as_ref(),
        "--format=%(refname)".as_ref(),
    ])?;
    if first.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    git(&[
        "--git-dir".as_ref(),
        repo.as_os_str(),
        "bundle".as_ref(),
        "create".as_ref(),
        "--quiet".as_ref(),
        out.as_os_str(),
        "--all".as_ref(),
    ])?;
    Ok(true)
}

/// Makes the bare repository `repo` (which must not exist) from `bundle` (none: an empty
/// repository), with HEAD on `head` when given.
pub fn restore_bundle(bundle: Option<&Path>, repo: &Path, head: Option<&str>) -> Result<(), String> {
    git(&["init".as_ref(), "--bare".as_ref(), "--quiet".as_ref(), repo.as_os_str()])?;
    if let Some(bundle) = bundle {
        let dir = ["--git-dir".as_ref(), repo.as_os_str()];
        git(&[
            &dir[..],
            &[
                "bundle".as_ref(),
                "verify".as_ref(),
                "--quiet".as_ref(),
                bundle.as_os_str(),
            ],
        ]
        .concat())?;
        git(&[
            &dir[..],
            &[
                "fetch".as_ref(),
                "--quiet".as_ref(),
                bundle.as_os_str(),
                "+refs/*:refs/*".as_ref(),
            ],
        ]
        .concat())?;
    }
    if let Some(branch) = head.filter(|b| super::valid_ref_name(b)) {
        let target = format!("refs/heads/{branch}");
        git(&[
            "--git-dir".as_ref(),
            repo.as_os_str(),
            "symbolic-ref".as_ref(),
            "HEAD".as_ref(),
            target.as_ref(),
        ])?;
    }
    Ok(())
}

/// Makes an empty bare mirror of `url` at `repo` (which must not exist): its next fetch fills it.
pub fn empty_mirror(repo: &Path, url: &str) -> Result<(), String> {
    git(&["init".as_ref(), "--bare".as_ref(), "--quiet".as_ref(), repo.as_os_str()])?;
    git(&[
        "--git-dir".as_ref(),
        repo.as_os_str(),
        "remote".as_ref(),
        "add".as_ref(),
        "--mirror=fetch".as_ref(),
        "--".as_ref(),
        "origin".as_ref(),
        url.as_ref(),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_bundle_brings_back_every_ref_and_an_empty_repository_stays_empty() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        run(dir.path(), &["init", "--bare", "-q", bare.to_str().unwrap()]);
        let bundle = dir.path().join("b.bundle");
        assert!(
            !bundle_all(&bare, &bundle).unwrap(),
            "an empty repository has nothing to bundle"
        );
        assert!(!bundle.exists());

        let work = dir.path().join("work");
        run(dir.path(), &["init", "-q", "-b", "trunk", work.to_str().unwrap()]);
        run(&work, &["commit", "-q", "--allow-empty", "-m", "one"]);
        run(&work, &["tag", "v1"]);
        run(
            &work,
            &[
                "push",
                "-q",
                bare.to_str().unwrap(),
                "trunk",
                "v1",
                "trunk:refs/heads/other",
            ],
        );
        assert!(bundle_all(&bare, &bundle).unwrap());

        let copy = dir.path().join("copy.git");
        restore_bundle(Some(&bundle), &copy, Some("trunk")).unwrap();
        let refs = git(&["--git-dir".as_ref(), copy.as_os_str(), "show-ref".as_ref()]).unwrap();
        let refs = String::from_utf8(refs).unwrap();
        for name in ["refs/heads/trunk", "refs/heads/other", "refs/tags/v1"] {
            assert!(refs.contains(name), "{name} missing: {refs}");
        }
        let head = git(&[
            "--git-dir".as_ref(),
            copy.as_os_str(),
            "symbolic-ref".as_ref(),
            "HEAD".as_ref(),
        ])
        .unwrap();
        assert_eq!(String::from_utf8(head).unwrap().trim(), "refs/heads/trunk");

        let garbage = dir.path().join("garbage.bundle");
        std::fs::write(&garbage, b"not a bundle").unwrap();
        assert!(restore_bundle(Some(&garbage), &dir.path().join("bad.git"), None).is_err());
    }
}
