//! Links between pipelines: each project's CI/CD job token allowlist, which pipeline an upstream
//! job created, and the size of each pipeline hierarchy.

use super::tables::{DOWNSTREAM, HIERARCHY_SIZES, JOB_TOKEN_ALLOWLIST, JOB_TOKEN_SCOPE_OFF};
use super::{Error, Refusal, Store, ids_under};
use redb::ReadableTable;

impl Store {
    /// Whether jobs of `source` may use their token on `target` (a project always may on itself).
    pub fn job_token_allowed(&self, target: u64, source: u64) -> Result<bool, Error> {
        if target == source {
            return Ok(true);
        }
        self.read(|tx| {
            Ok(tx.open_table(JOB_TOKEN_ALLOWLIST)?.get((target, source))?.is_some()
                || tx.open_table(JOB_TOKEN_SCOPE_OFF)?.get(target)?.is_some())
        })
    }

    /// Whether `target` enforces its inbound allowlist (on unless turned off).
    pub fn job_token_scope_enabled(&self, target: u64) -> Result<bool, Error> {
        self.read(|tx| Ok(tx.open_table(JOB_TOKEN_SCOPE_OFF)?.get(target)?.is_none()))
    }

    /// Turns `target`'s inbound allowlist on or off.
    pub async fn set_job_token_scope(&self, target: u64, enabled: bool) -> Result<(), Error> {
        self.write(move |tx| {
            let mut off = tx.open_table(JOB_TOKEN_SCOPE_OFF)?;
            if enabled {
                off.remove(target)?;
            } else {
                off.insert(target, ())?;
            }
            Ok(())
        })
        .await
    }

    /// The projects on `target`'s allowlist, by id.
    pub fn job_token_allowlist(&self, target: u64) -> Result<Vec<u64>, Error> {
        self.read(|tx| ids_under(&tx.open_table(JOB_TOKEN_ALLOWLIST)?, target))
    }

    /// Adds `source` to `target`'s allowlist; `Taken` when it is there already.
    pub async fn allow_job_token(&self, target: u64, source: u64) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let mut list = tx.open_table(JOB_TOKEN_ALLOWLIST)?;
            if list.get((target, source))?.is_some() {
                return Ok(Err(Refusal::Taken("target_project_id")));
            }
            list.insert((target, source), ())?;
            Ok(Ok(()))
        })
        .await
    }

    /// Removes `source` from `target`'s allowlist.
    pub async fn disallow_job_token(&self, target: u64, source: u64) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let removed = tx.open_table(JOB_TOKEN_ALLOWLIST)?.remove((target, source))?.is_some();
            Ok(if removed { Ok(()) } else { Err(Refusal::NotFound) })
        })
        .await
    }

    /// The pipeline an upstream job created.
    pub fn downstream_of(&self, job_id: u64) -> Result<Option<u64>, Error> {
        self.read(|tx| Ok(tx.open_table(DOWNSTREAM)?.get(job_id)?.map(|g| g.value())))
    }

    /// How many pipelines the hierarchy under `root_id` holds (1 for a lone pipeline).
    pub fn hierarchy_size(&self, root_id: u64) -> Result<u64, Error> {
        self.read(|tx| Ok(tx.open_table(HIERARCHY_SIZES)?.get(root_id)?.map_or(1, |g| g.value())))
    }
}
