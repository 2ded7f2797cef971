//! Artifacts for the built-in executor: after a job, the files its `artifacts:` names are
//! zipped (as gitlab-runner's `artifacts-uploader` does); before a job, its dependencies'
//! archives are unpacked into the project dir. Paths never leave the project dir, entries that
//! would escape it on extraction (`../`, absolute) are skipped, and symlinks are not followed.

use crate::domain::ArtifactsSpec;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;

/// What `collect` found: files (relative to the project dir) and patterns that matched nothing.
#[derive(Debug, Default)]
pub struct Found {
    /// Files to archive, relative, sorted, each once.
    pub files: Vec<PathBuf>,
    /// `paths` entries that matched no file.
    pub unmatched: Vec<String>,
}

/// The files `spec` keeps from `project_dir`: each of `paths` (a file, a folder taken whole, or
/// a glob with `**`), plus untracked files when asked, minus `exclude`.
pub fn collect(project_dir: &Path, spec: &ArtifactsSpec, untracked: &[PathBuf]) -> io::Result<Found> {
    let root = project_dir.canonicalize()?;
    let mut found = Found::default();
    for pattern in &spec.paths {
        let before = found.files.len();
        let full = project_dir.join(pattern.trim_start_matches("./"));
        let Ok(matches) = glob::glob(&full.to_string_lossy()) else {
            found.unmatched.push(pattern.clone());
            continue;
        };
        for path in matches.flatten() {
            add_tree(&root, &path, &mut found.files)?;
        }
        if found.files.len() == before {
            found.unmatched.push(pattern.clone());
        }
    }
    if spec.untracked {
        for rel in untracked {
            add_tree(&root, &project_dir.join(rel), &mut found.files)?;
        }
    }
    let excluded: Vec<glob::Pattern> = spec.exclude.iter().filter_map(|p| glob::Pattern::new(p).ok()).collect();
    found.files.retain(|f| !excluded.iter().any(|p| p.matches_path(f)));
    found.files.sort();
    found.files.dedup();
    Ok(found)
}

/// Adds `path` (a file, or every file below a folder) relative to `root`, if it lies inside.
fn add_tree(root: &Path, path: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let Ok(real) = path.canonicalize() else { return Ok(()) };
    let Ok(rel) = real.strip_prefix(root) else {
        return Ok(());
    };
    if rel.starts_with(".git") {
        return Ok(());
    }
    if meta.is_file() {
        out.push(rel.to_path_buf());
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            add_tree(root, &entry?.path(), out)?;
        }
    }
    Ok(())
}

/// Writes `files` (relative to `project_dir`) into a new zip at `out`; answers its size. Stops
/// with an error once the archive passes `max_bytes`.
pub fn write_zip(project_dir: &Path, files: &[PathBuf], out: &Path, max_bytes: u64) -> io::Result<u64> {
    let mut zip = zip::ZipWriter::new(File::create(out)?);
    for rel in files {
        let path = project_dir.join(rel);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions());
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777);
        zip.start_file(rel.to_string_lossy(), options)
            .map_err(io::Error::other)?;
        io::copy(&mut File::open(&path)?, &mut zip)?;
        if std::fs::metadata(out)?.len() > max_bytes {
            return Err(io::Error::other(format!(
                "the archive is larger than {max_bytes} bytes"
            )));
        }
    }
    let mut file = zip.finish().map_err(io::Error::other)?;
    file.flush()?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    if size > max_bytes {
        return Err(io::Error::other(format!(
            "the archive is larger than {max_bytes} bytes"
        )));
    }
    Ok(size)
}

/// Unpacks a zip into `dest`; entries whose path would leave `dest` and symlinks are skipped.
/// Answers how many files were written.
pub fn extract(archive: &Path, dest: &Path) -> io::Result<usize> {
    let mut zip = zip::ZipArchive::new(File::open(archive)?).map_err(io::Error::other)?;
    let mut written = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(io::Error::other)?;
        let Some(rel) = entry.enclosed_name() else { continue };
        if entry.is_symlink() {
            continue;
        }
        let target = dest.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(paths: &[&str], exclude: &[&str]) -> ArtifactsSpec {
        ArtifactsSpec {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            exclude: exclude.iter().map(|p| p.to_string()).collect(),
            when: "on_success".into(),
            ..ArtifactsSpec::default()
        }
    }

    #[test]
    fn paths_globs_and_excludes_pick_files_inside_the_project_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::create_dir_all(p.join("out/sub")).unwrap();
        std::fs::write(p.join("out/a.bin"), "a").unwrap();
        std::fs::write(p.join("out/sub/b.log"), "b").unwrap();
        std::fs::write(p.join("report.txt"), "r").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), p.join("link")).unwrap();
        let found = collect(
            &p,
            &spec(&["out/", "*.txt", "../secret", "link", "missing/"], &["**/*.log"]),
            &[],
        )
        .unwrap();
        assert_eq!(found.files, [PathBuf::from("out/a.bin"), PathBuf::from("report.txt")]);
        assert_eq!(found.unmatched, ["../secret", "link", "missing/"]);
    }

    #[test]
    fn archives_round_trip_and_escaping_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::create_dir_all(p.join("out")).unwrap();
        std::fs::write(p.join("out/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p.join("out/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let zip_path = dir.path().join("a.zip");
        let size = write_zip(&p, &[PathBuf::from("out/tool")], &zip_path, 1 << 20).unwrap();
        assert!(size > 0);
        assert!(write_zip(&p, &[PathBuf::from("out/tool")], &dir.path().join("b.zip"), 10).is_err());
        let dest = dir.path().join("d");
        assert_eq!(extract(&zip_path, &dest).unwrap(), 1);
        let mode = std::fs::metadata(dest.join("out/tool")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o755);

        // A hostile archive: `../evil` and an absolute path stay out of `dest`.
        let evil = dir.path().join("evil.zip");
        let mut zip = zip::ZipWriter::new(File::create(&evil).unwrap());
        for name in ["../evil", "/tmp/spur-evil-abs", "fine.txt"] {
            zip.start_file(name, SimpleFileOptions::default()).unwrap();
            zip.write_all(b"x").unwrap();
        }
        zip.finish().unwrap();
        let dest = dir.path().join("e");
        extract(&evil, &dest).unwrap();
        assert!(!dir.path().join("evil").exists());
        assert!(dest.join("fine.txt").exists());
        assert!(!dest.join("../evil").exists());
    }
}
