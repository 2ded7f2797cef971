//! GitLab runners: records and the index of their authentication-token digests.

use super::codec::{all_json, encode, get_json};
use super::tables::{RUNNER_TOKENS, RUNNERS};
use super::{Error, Store, next_id};
use crate::domain::Runner;
use redb::ReadableTable;

impl Store {
    /// Stores a new runner (its `id` is assigned here) and indexes its token digest.
    pub async fn create_runner(&self, runner: Runner) -> Result<Runner, Error> {
        self.write(move |tx| {
            let runner = Runner {
                id: next_id(tx, "next_runner_id")?,
                ..runner
            };
            tx.open_table(RUNNERS)?.insert(runner.id, encode(&runner)?.as_slice())?;
            tx.open_table(RUNNER_TOKENS)?
                .insert(runner.token_digest.as_slice(), runner.id)?;
            Ok(runner)
        })
        .await
    }

    /// The runner with `id`.
    pub fn runner(&self, id: u64) -> Result<Option<Runner>, Error> {
        self.read(|tx| get_json(&tx.open_table(RUNNERS)?, id))
    }

    /// The runner whose authentication token has this digest.
    pub fn runner_by_digest(&self, digest: &[u8]) -> Result<Option<Runner>, Error> {
        self.read(|tx| {
            let Some(id) = tx.open_table(RUNNER_TOKENS)?.get(digest)?.map(|g| g.value()) else {
                return Ok(None);
            };
            get_json(&tx.open_table(RUNNERS)?, id)
        })
    }

    /// Every runner, by id.
    pub fn runners(&self) -> Result<Vec<Runner>, Error> {
        self.read(|tx| all_json(&tx.open_table(RUNNERS)?))
    }

    /// Replaces a runner's record (settings, contact time, managers); false if it is gone.
    pub async fn update_runner(&self, runner: Runner) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(RUNNERS)?;
            if table.get(runner.id)?.is_none() {
                return Ok(false);
            }
            table.insert(runner.id, encode(&runner)?.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Deletes a runner and its token; false if it did not exist.
    pub async fn delete_runner(&self, id: u64) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(RUNNERS)?;
            let Some(runner) = get_json::<_, Runner>(&table, id)? else {
                return Ok(false);
            };
            table.remove(id)?;
            tx.open_table(RUNNER_TOKENS)?.remove(runner.token_digest.as_slice())?;
            Ok(true)
        })
        .await
    }
}

/// The `META` counter whose value picks the instance registration token (bumped on reset).
const REGISTRATION_GENERATION: &str = "runner_registration_generation";

impl Store {
    /// Which instance registration token is current.
    pub fn runner_registration_generation(&self) -> Result<u64, Error> {
        self.read(|tx| {
            Ok(tx
                .open_table(super::tables::META)?
                .get(REGISTRATION_GENERATION)?
                .map_or(0, |g| g.value()))
        })
    }

    /// Moves to a new instance registration token; the old one stops working.
    pub async fn bump_runner_registration_generation(&self) -> Result<u64, Error> {
        self.write(|tx| {
            let mut meta = tx.open_table(super::tables::META)?;
            let next = meta.get(REGISTRATION_GENERATION)?.map_or(0, |g| g.value()) + 1;
            meta.insert(REGISTRATION_GENERATION, next)?;
            Ok(next)
        })
        .await
    }
}
