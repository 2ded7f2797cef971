//! Which files a job's `artifacts:` names (paths, `**` globs, folders whole, untracked files,
//! minus `exclude`), as gitlab-runner's `artifacts-uploader` picks them; `job_files` zips them
//! inside the job's fence. Paths never leave the project dir and links are not followed.

use crate::domain::ArtifactsSpec;
use std::io;
use std::path::{Path, PathBuf};

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
}
