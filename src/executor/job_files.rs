//! `spur job-files`: the helper that moves a job's caches and artifacts, run inside the job's
//! own fence (its uid, its Landlock domain) so that whatever it follows (a link the job
//! planted, a FIFO, a folder swapped for a link) reaches only what the job itself may reach.
//! spur opens the archive files itself and hands them over as standard input (to unpack) or
//! standard output (to pack); the helper reports one JSON line on standard error.
//!
//! - `extract [--keep-links]`: unpacks the zip on stdin into the current folder (entries that
//!   would leave it are skipped; links are skipped unless `--keep-links`, as caches keep them).
//! - `cache PATTERN...`: zips what the patterns name (globs, folders whole, links as links) to
//!   stdout; reports how many patterns matched.
//! - `artifacts SPEC_JSON`: zips what an `artifacts:` spec names to stdout; reports the files
//!   and the patterns that matched nothing.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use serde_json::json;
use zip::write::SimpleFileOptions;

/// Runs the helper with its arguments (after `job-files`); the process's exit code.
pub fn main(args: &[OsString]) -> i32 {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let result = match args.split_first() {
        Some((op, rest)) if op == "extract" => stdin_file()
            .and_then(|archive| extract_into(archive, Path::new("."), rest.iter().any(|a| a == "--keep-links")))
            .map(|files| json!({ "files": files })),
        Some((op, rest)) if op == "cache" => pack_cache(rest),
        Some((op, rest)) if op == "artifacts" => pack_artifacts(rest.first().map(String::as_str).unwrap_or("")),
        _ => Err(io::Error::other("usage: spur job-files extract|cache|artifacts")),
    };
    match result {
        Ok(report) => {
            eprintln!("{report}");
            0
        }
        Err(e) => {
            eprintln!("{}", json!({ "error": e.to_string() }));
            1
        }
    }
}

fn stdin_file() -> io::Result<File> {
    Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
}

fn stdout_file() -> io::Result<File> {
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

/// Opens a regular file for reading without blocking on a FIFO or following a final link.
fn open_regular(path: &Path) -> io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    Ok(file.metadata()?.is_file().then_some(file))
}

/// Unpacks `archive` into `dest`: entries that would leave it are skipped, and links unless
/// `keep_links`; answers how many entries were written.
fn extract_into(archive: File, dest: &Path, keep_links: bool) -> io::Result<usize> {
    let mut zip = zip::ZipArchive::new(archive).map_err(io::Error::other)?;
    let mut written = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(io::Error::other)?;
        let Some(rel) = entry.enclosed_name() else { continue };
        let target = dest.join(rel);
        if entry.is_symlink() {
            if keep_links {
                let mut link = String::new();
                io::Read::read_to_string(&mut entry, &mut link)?;
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(link, &target)?;
                written += 1;
            }
            continue;
        }
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&target);
        let mut file = File::create(&target)?;
        io::copy(&mut entry, &mut file)?;
        if let Some(mode) = entry.unix_mode() {
            let perms = std::os::unix::fs::PermissionsExt::from_mode(mode & 0o777);
            std::fs::set_permissions(&target, perms)?;
        }
        written += 1;
    }
    Ok(written)
}

/// A pattern that stays inside the current folder (no absolute paths, no `..`).
pub fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path.trim_end_matches('/'));
    let ok = !p.as_os_str().is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    ok.then(|| p.to_path_buf())
}

fn pack_cache(patterns: &[String]) -> io::Result<serde_json::Value> {
    let mut zip = zip::ZipWriter::new(stdout_file()?);
    let mut found = 0;
    for pattern in patterns {
        let Some(rel) = safe_relative(pattern) else { continue };
        let Ok(matches) = glob::glob(&rel.to_string_lossy()) else {
            continue;
        };
        let mut any = false;
        for path in matches.flatten() {
            any = true;
            add_entry(&mut zip, &path, true)?;
        }
        found += usize::from(any);
    }
    zip.finish().map_err(io::Error::other)?.flush()?;
    Ok(json!({ "found": found }))
}

/// Adds `path` (relative to the current folder) to `zip`: a file, a folder whole, or a link.
fn add_entry(zip: &mut zip::ZipWriter<File>, path: &Path, keep_links: bool) -> io::Result<()> {
    let path = path.strip_prefix(".").unwrap_or(path);
    if path.starts_with(".git") {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(path)?;
    let name = path.to_string_lossy();
    if meta.file_type().is_symlink() {
        if keep_links {
            let target = std::fs::read_link(path)?;
            zip.add_symlink(name, target.to_string_lossy(), SimpleFileOptions::default())
                .map_err(io::Error::other)?;
        }
    } else if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            add_entry(zip, &entry, keep_links)?;
        }
    } else if let Some(mut file) = open_regular(path)? {
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata()?.permissions());
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777);
        zip.start_file(name, options).map_err(io::Error::other)?;
        io::copy(&mut file, zip)?;
    }
    Ok(())
}

fn pack_artifacts(spec: &str) -> io::Result<serde_json::Value> {
    let spec: crate::domain::ArtifactsSpec =
        serde_json::from_str(spec).map_err(|e| io::Error::other(format!("bad artifacts spec: {e}")))?;
    let untracked = if spec.untracked { untracked_files() } else { Vec::new() };
    let here = PathBuf::from(".");
    let found = super::artifacts::collect(&here, &spec, &untracked)?;
    let mut zip = zip::ZipWriter::new(stdout_file()?);
    let mut files = 0;
    for rel in &found.files {
        let Some(mut file) = open_regular(rel)? else { continue };
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata()?.permissions());
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777);
        zip.start_file(rel.to_string_lossy(), options)
            .map_err(io::Error::other)?;
        io::copy(&mut file, &mut zip)?;
        files += 1;
    }
    zip.finish().map_err(io::Error::other)?.flush()?;
    Ok(json!({ "files": files, "unmatched": found.unmatched }))
}

/// Files git does not track here (`artifacts:untracked`); git runs as the job, in its fence.
fn untracked_files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        // The checkout's own config is the job's to write: nothing in it may run a program
        // here (`core.fsmonitor` is a command git runs).
        .args([
            "-c",
            "safe.directory=*",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
            "ls-files",
            "--others",
            "-z",
        ])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_unpack_inside_the_folder_only() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let exec = SimpleFileOptions::default().unix_permissions(0o755);
        for (name, options) in [
            ("../evil", SimpleFileOptions::default()),
            ("/tmp/spur-evil-abs", SimpleFileOptions::default()),
            ("out/tool", exec),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(b"x").unwrap();
        }
        zip.add_symlink("link", "/etc/hostname", SimpleFileOptions::default())
            .unwrap();
        zip.finish().unwrap();
        let dest = dir.path().join("d");
        std::fs::create_dir_all(&dest).unwrap();
        // `../evil` is skipped; the absolute name lands inside `dest`, as the zip crate reads it.
        assert_eq!(extract_into(File::open(&path).unwrap(), &dest, false).unwrap(), 2);
        assert!(!dir.path().join("evil").exists());
        assert!(dest.join("tmp/spur-evil-abs").exists());
        let mode = std::fs::metadata(dest.join("out/tool")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o755);
        assert!(
            std::fs::symlink_metadata(dest.join("link")).is_err(),
            "links are skipped for artifacts"
        );
        assert_eq!(extract_into(File::open(&path).unwrap(), &dest, true).unwrap(), 3);
        assert!(
            std::fs::symlink_metadata(dest.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn cache_paths_stay_inside_the_project() {
        assert!(safe_relative("vendor/").is_some());
        assert!(safe_relative("./node_modules").is_some());
        assert!(safe_relative("../etc").is_none());
        assert!(safe_relative("/etc").is_none());
        assert!(safe_relative("a/../../b").is_none());
        assert!(safe_relative("").is_none());
    }
}
