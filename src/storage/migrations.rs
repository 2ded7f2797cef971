//! Numbered schema migrations. A file records the schema version it was written with; opening
//! it runs every migration from that version to [`LATEST`] inside the opening transaction, so a
//! crash mid-way leaves the old file untouched. A new file starts at [`LATEST`].

use super::Error;
use super::codec::decode;
use super::tables::{ACTIVE_JOBS, JOBS, META};
use crate::domain::Job;
use redb::{ReadableTable, WriteTransaction};

/// One step: from `from` to `from + 1`.
struct Migration {
    from: u64,
    what: &'static str,
    run: fn(&WriteTransaction) -> Result<(), Error>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        what: "index the unfinished jobs of files written before the pipeline engine",
        run: index_active_jobs,
    },
    Migration {
        from: 2,
        what: "protect the default branch of projects made before protected branches",
        run: protect_default_branches,
    },
    Migration {
        from: 3,
        what: "keep idempotency keys in time order",
        run: idempotency_in_time_order,
    },
];

/// The schema version this binary writes.
pub const LATEST: u64 = 4;

/// Brings the file to [`LATEST`]: stamps a new file, migrates an older one.
pub fn run(tx: &WriteTransaction) -> Result<(), Error> {
    let mut meta = tx.open_table(META)?;
    let Some(mut version) = meta.get("schema_version")?.map(|g| g.value()) else {
        meta.insert("schema_version", LATEST)?;
        return Ok(());
    };
    drop(meta);
    while version < LATEST {
        let Some(step) = MIGRATIONS.iter().find(|m| m.from == version) else {
            return Err(Error::Db(format!("no migration from schema version {version}")));
        };
        tracing::info!(
            from = version,
            to = version + 1,
            what = step.what,
            "migrating the database"
        );
        (step.run)(tx)?;
        version += 1;
        tx.open_table(META)?.insert("schema_version", version)?;
    }
    Ok(())
}

/// Version 1 had no `ACTIVE_JOBS` index: every job not in a final status is added to it, so that
/// the scheduler finds and runs (or fails) them.
fn index_active_jobs(tx: &WriteTransaction) -> Result<(), Error> {
    let jobs = tx.open_table(JOBS)?;
    let mut active = tx.open_table(ACTIVE_JOBS)?;
    for entry in jobs.iter()? {
        let (id, bytes) = entry?;
        let job: Job = decode(bytes.value())?;
        if !job.status.is_complete() {
            active.insert(id.value(), ())?;
        }
    }
    Ok(())
}

/// Version 2 treated each project's default branch as protected without a rule: the rule GitLab
/// gives a new project's default branch is added, so nothing changes for existing projects.
fn protect_default_branches(tx: &WriteTransaction) -> Result<(), Error> {
    let projects: Vec<crate::domain::Project> = super::codec::all_json(&tx.open_table(super::tables::PROJECTS)?)?;
    for project in projects {
        if let Some(branch) = &project.default_branch {
            super::protected_refs::insert_rule(tx, super::protected_refs::default_branch_rule(project.id, branch))?;
        }
    }
    Ok(())
}

/// Version 3 kept idempotency records by key id: each moves to the time-ordered tables.
fn idempotency_in_time_order(tx: &WriteTransaction) -> Result<(), Error> {
    use super::idempotency::{IdempotencyRecord, IdempotencyTag};
    const BY_KEY: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("idempotency_keys");
    {
        let old = tx.open_table(BY_KEY)?;
        for entry in old.iter()? {
            let (id, bytes) = entry?;
            let (Ok(id), Ok(record)) = (
                <[u8; 32]>::try_from(id.value()),
                decode::<IdempotencyRecord>(bytes.value()),
            ) else {
                continue;
            };
            let tag = IdempotencyTag {
                id,
                fingerprint: [0; 32],
            };
            super::idempotency::put(tx, &tag, &record)?;
        }
    }
    tx.delete_table(BY_KEY)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_before_the_latest_has_a_migration() {
        for from in 1..LATEST {
            assert!(MIGRATIONS.iter().any(|m| m.from == from), "no migration from {from}");
        }
    }
}
