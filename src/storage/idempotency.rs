//! Idempotency keys: what a keyed pipeline-creating request made, kept for 24 hours. Records
//! are appended in time order, in the commit of the pipeline they made: a key's own random
//! order would dirty a page of its own per request in every commit, which cost durable
//! triggers 9 %. An index in memory finds a record by key; it is rebuilt from the small tags
//! table when the store opens and holds at most [`MAX_INDEXED`] keys (past that, the oldest
//! are forgotten first).

use super::codec::{encode, get_json};
use super::tables::{IDEMPOTENCY_RECORDS, IDEMPOTENCY_TAGS};
use super::{Error, Store};
use crate::domain::{Millis, Pipeline};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The most keys remembered at once (about 60 bytes each in memory).
pub const MAX_INDEXED: usize = 500_000;

/// A key's id and its request's fingerprint, handed to `create_pipeline` to store with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyTag {
    /// blake3 of the project, the credential and the key.
    pub id: [u8; 32],
    /// blake3 of the parsed request.
    pub fingerprint: [u8; 32],
}

/// What a key made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The request's fingerprint, hex.
    pub fingerprint: String,
    /// The pipeline as it was created (the answer is rendered from it again).
    pub pipeline: Pipeline,
    /// When.
    pub created_at: Millis,
}

/// Where a record lives: (created at, pipeline id).
type At = (u64, u64);

/// Key id → where its record lives.
#[derive(Default)]
pub(super) struct Index(Mutex<HashMap<[u8; 32], At>>);

impl Index {
    /// The index of every record in `tx`.
    pub(super) fn load(tx: &ReadTransaction) -> Result<Index, Error> {
        let mut map = HashMap::new();
        for entry in tx.open_table(IDEMPOTENCY_TAGS)?.iter()? {
            let (at, id) = entry?;
            if let Ok(id) = <[u8; 32]>::try_from(id.value()) {
                map.insert(id, at.value());
            }
        }
        let index = Index(Mutex::new(map));
        index.bound();
        Ok(index)
    }

    fn get(&self, id: &[u8; 32]) -> Option<At> {
        self.0.lock().ok()?.get(id).copied()
    }

    /// Remembers a committed record.
    pub(super) fn insert(&self, id: [u8; 32], at: At) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(id, at);
        }
        self.bound();
    }

    /// Forgets the oldest tenth when the index is full.
    fn bound(&self) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() < MAX_INDEXED {
            return;
        }
        let mut times: Vec<u64> = map.values().map(|at| at.0).collect();
        let cut = times.len() / 10;
        let (_, nth, _) = times.select_nth_unstable(cut);
        let cutoff = *nth;
        map.retain(|_, at| at.0 > cutoff);
    }

    fn forget_before(&self, cutoff: u64) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, at| at.0 >= cutoff);
        }
    }
}

/// Stores what `tag` made inside the pipeline's own transaction; answers where, for the index
/// (updated once the commit is durable).
pub(super) fn put(tx: &WriteTransaction, tag: &IdempotencyTag, record: &IdempotencyRecord) -> Result<At, Error> {
    let at = (record.created_at.max(0) as u64, record.pipeline.id);
    tx.open_table(IDEMPOTENCY_RECORDS)?
        .insert(at, encode(record)?.as_slice())?;
    tx.open_table(IDEMPOTENCY_TAGS)?.insert(at, tag.id.as_slice())?;
    Ok(at)
}

impl Store {
    /// The record of key `id`, if one was stored (expired ones included: callers check).
    pub fn idempotency_record(&self, id: &[u8; 32]) -> Result<Option<IdempotencyRecord>, Error> {
        let Some(at) = self.idempotency.get(id) else {
            return Ok(None);
        };
        self.read(|tx| get_json(&tx.open_table(IDEMPOTENCY_RECORDS)?, at))
    }

    /// Deletes records created before `cutoff`; answers how many.
    pub async fn delete_idempotency_before(&self, cutoff: Millis) -> Result<usize, Error> {
        let cutoff = cutoff.max(0) as u64;
        let n = self
            .write(move |tx| {
                let mut records = tx.open_table(IDEMPOTENCY_RECORDS)?;
                let mut tags = tx.open_table(IDEMPOTENCY_TAGS)?;
                let old: Vec<At> = tags
                    .range((0, 0)..(cutoff, 0))?
                    .map(|e| e.map(|(at, _)| at.value()))
                    .collect::<Result<_, _>>()?;
                for at in &old {
                    tags.remove(at)?;
                    records.remove(at)?;
                }
                Ok(old.len())
            })
            .await?;
        self.idempotency.forget_before(cutoff);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_index_forgets_its_oldest_keys_first() {
        let index = Index::default();
        for i in 0..MAX_INDEXED as u64 {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&i.to_le_bytes());
            index.insert(id, (i, i));
        }
        let size = index.0.lock().unwrap().len();
        assert!((MAX_INDEXED * 8 / 10..MAX_INDEXED).contains(&size), "{size}");
        let mut newest = [0u8; 32];
        newest[..8].copy_from_slice(&(MAX_INDEXED as u64 - 1).to_le_bytes());
        assert!(index.get(&newest).is_some());
        assert!(index.get(&[0u8; 32]).is_none(), "the oldest went first");
    }
}
