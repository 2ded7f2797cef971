//! `spur restore`: brings a backup back into a data dir. Everything is unpacked, checked and
//! assembled in a staging folder inside the data dir (so that it moves in by rename on the same
//! filesystem); only then are the old parts moved aside and the new ones in, the database last,
//! and a failure part-way moves the old ones back. Refuses a data dir a running spur uses.

use super::Summary;
use super::archive::{self, Manifest};
use crate::config::layout;
use crate::domain::Project;
use crate::git::{Origin, bundle};
use crate::storage;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// What a whole-instance restore replaces, the database last (without it, the dir holds no
/// instance, and the restore may be run again).
const PARTS: [&str; 5] = [
    layout::TRACES,
    layout::ARTIFACTS,
    layout::REPOSITORIES,
    layout::SECRET_KEY,
    layout::DATABASE,
];

/// What a database-only backup (spur's format before whole-instance backups) replaces: the
/// logs and artifacts of another instance's jobs must not outlive it under reused ids.
const DATABASE_ONLY_PARTS: [&str; 4] = [layout::TRACES, layout::ARTIFACTS, layout::SECRET_KEY, layout::DATABASE];

/// Restores the backup `file` into `data_dir`: refuses a data dir that a running spur uses, or
/// that holds an instance unless `force`, and a damaged, partial or too new archive before
/// anything in the data dir changes.
pub fn restore(file: &Path, data_dir: &Path, force: bool) -> Result<Summary, String> {
    refuse_if_running(data_dir)?;
    if !force && let Some(found) = PARTS.iter().find(|n| data_dir.join(n).exists()) {
        return Err(format!(
            "{} holds {found} already; restore into an empty data dir or pass --force",
            data_dir.display()
        ));
    }
    let mut input = fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut magic = [0u8; 2];
    let gzip = input.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(input);
    let created = !data_dir.exists();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let staging = data_dir.join(format!(".restoring-{}", uuid::Uuid::new_v4().simple()));
    let result = fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| format!("cannot create the staging folder {}: {e}", staging.display()))
        .and_then(|_| {
            if gzip {
                let input = fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let manifest = archive::read(std::io::BufReader::with_capacity(1 << 18, input), Some(&staging))?;
                let summary = assemble(&staging, &manifest)?;
                install(&staging, data_dir, &PARTS)?;
                Ok(summary)
            } else {
                // Opened from a copy: redb writes to a file it opens.
                fs::copy(file, staging.join(archive::DATABASE))
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                database(&staging).map_err(|e| {
                    format!(
                        "{} is neither a spur backup archive nor a database backup: {e}",
                        file.display()
                    )
                })?;
                for dir in [layout::TRACES, layout::ARTIFACTS] {
                    private_dir(&staging.join(dir))?;
                }
                install(&staging, data_dir, &DATABASE_ONLY_PARTS)?;
                Ok(Summary::default())
            }
        });
    let _ = fs::remove_dir_all(&staging);
    match &result {
        // Caches are not in a backup; those of the instance replaced must not feed its jobs.
        Ok(_) => {
            let _ = fs::remove_dir_all(data_dir.join("cache"));
        }
        Err(_) if created => {
            let _ = fs::remove_dir(data_dir);
        }
        Err(_) => {}
    }
    result
}

/// Refuses when a running spur holds the data dir's database.
fn refuse_if_running(data_dir: &Path) -> Result<(), String> {
    let db = data_dir.join(layout::DATABASE);
    if !db.exists() {
        return Ok(());
    }
    match redb::Database::open(&db) {
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(format!(
            "a spur is running on {}: stop it before restoring",
            data_dir.display()
        )),
        _ => Ok(()),
    }
}

fn private_dir(path: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// Makes `spur.redb` and the key in `staging` from the copy of the database there; answers
/// the projects it holds. A damaged copy is refused, even one that makes redb panic.
fn database(staging: &Path) -> Result<Vec<Project>, String> {
    let copy = staging.join(archive::DATABASE);
    let target = staging.join(layout::DATABASE);
    let made = std::panic::catch_unwind(|| storage::restore_backup(&copy, &target))
        .map_err(|_| "the database in the backup is damaged".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = fs::remove_file(&copy);
    let (key, projects) = made;
    write_private(&staging.join(layout::SECRET_KEY), &key)?;
    Ok(projects)
}

/// Turns the checked entries in `staging` into a data dir's parts: the database and key, and the
/// repository of each project the database holds (hosted ones from their bundles, mirrors empty,
/// to be fetched from the origin the database records).
fn assemble(staging: &Path, manifest: &Manifest) -> Result<Summary, String> {
    if manifest.schema_version > storage::SCHEMA_VERSION {
        return Err(format!(
            "the backup has schema version {}, newer than this spur understands ({}); restore it with a newer spur",
            manifest.schema_version,
            storage::SCHEMA_VERSION
        ));
    }
    let projects = database(staging)?;
    for dir in [layout::TRACES, layout::ARTIFACTS, layout::REPOSITORIES] {
        private_dir(&staging.join(dir))?;
    }
    let mut summary = Summary::default();
    let listed = |name: &str| manifest.files.iter().any(|f| f.path == name);
    for project in &projects {
        let origin = Origin::of(project);
        if matches!(origin, Origin::Local(_)) {
            continue;
        }
        if !archive::valid_repo_name(&project.repo_name) {
            return Err(format!("project {} has an unexpected folder name", project.full_path));
        }
        let path = staging
            .join(layout::REPOSITORIES)
            .join(format!("{}.git", project.repo_name));
        if path.exists() {
            return Err(format!("two projects share the folder of {}", project.full_path));
        }
        let fail = |e: String| format!("cannot restore the repository of {}: {e}", project.full_path);
        match origin {
            Origin::Hosted => {
                let name = format!("{}/{}.git.bundle", layout::REPOSITORIES, project.repo_name);
                let bundle = listed(&name).then(|| staging.join(&name));
                bundle::restore_bundle(bundle.as_deref(), &path, project.default_branch.as_deref()).map_err(fail)?;
                if let Some(b) = bundle {
                    let _ = fs::remove_file(b);
                    summary.repositories += 1;
                }
            }
            Origin::Remote(url) => bundle::empty_mirror(&path, &url).map_err(fail)?,
            Origin::Local(_) => {}
        }
    }
    summary.logs = manifest.files.iter().filter(|f| f.path.starts_with("traces/")).count();
    summary.artifacts = manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("artifacts/"))
        .count();
    Ok(summary)
}

/// Moves `parts` from `staging` into `data_dir`: each old part aside first, then the new one
/// in; on a failure, every part moved so far goes back as it was.
fn install(staging: &Path, data_dir: &Path, parts: &[&str]) -> Result<(), String> {
    let aside = staging.join("replaced");
    private_dir(&aside)?;
    let mut done: Vec<(&str, bool)> = Vec::new();
    let mut failure = None;
    for &name in parts {
        let target = data_dir.join(name);
        let had_old = fs::symlink_metadata(&target).is_ok();
        if had_old && let Err(e) = fs::rename(&target, aside.join(name)) {
            failure = Some(format!("cannot move {} aside: {e}", target.display()));
            break;
        }
        if let Err(e) = fs::rename(staging.join(name), &target) {
            if had_old {
                let _ = fs::rename(aside.join(name), &target);
            }
            failure = Some(format!("cannot put {name} in place: {e}"));
            break;
        }
        done.push((name, had_old));
    }
    let Some(failure) = failure else {
        return Ok(());
    };
    for (name, had_old) in done.into_iter().rev() {
        let target = data_dir.join(name);
        let _ = fs::rename(&target, staging.join(name));
        if had_old {
            let _ = fs::rename(aside.join(name), &target);
        }
    }
    Err(format!("{failure}; the data dir was left as it was"))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_install_puts_every_old_part_back() {
        let dir = tempfile::tempdir().unwrap();
        let (data, staging) = (dir.path().join("data"), dir.path().join("data/.restoring"));
        fs::create_dir_all(&staging).unwrap();
        fs::write(data.join("a"), "old a").unwrap();
        fs::write(data.join("b"), "old b").unwrap();
        fs::write(staging.join("a"), "new a").unwrap();
        // No new "b" in staging: its move fails after "a" moved.
        let err = install(&staging, &data, &["a", "b"]).unwrap_err();
        assert!(err.contains("left as it was"), "{err}");
        assert_eq!(fs::read_to_string(data.join("a")).unwrap(), "old a");
        assert_eq!(fs::read_to_string(data.join("b")).unwrap(), "old b");
        fs::write(staging.join("b"), "new b").unwrap();
        install(&staging, &data, &["a", "b"]).unwrap();
        assert_eq!(fs::read_to_string(data.join("b")).unwrap(), "new b");
    }
}
