//! Idempotency keys: what a keyed pipeline-creating request made, kept for 24 hours.

use super::codec::{decode, get_json};
use super::tables::IDEMPOTENCY_KEYS;
use super::{Error, Store};
use crate::domain::{Millis, Pipeline};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

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

impl Store {
    /// The record of key `id`, if one was stored (expired ones included: callers check).
    pub fn idempotency_record(&self, id: &[u8; 32]) -> Result<Option<IdempotencyRecord>, Error> {
        self.read(|tx| get_json(&tx.open_table(IDEMPOTENCY_KEYS)?, id.as_slice()))
    }

    /// Deletes records created before `cutoff`; answers how many.
    pub async fn delete_idempotency_before(&self, cutoff: Millis) -> Result<usize, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(IDEMPOTENCY_KEYS)?;
            let mut old = Vec::new();
            for entry in table.iter()? {
                let (id, bytes) = entry?;
                let record: IdempotencyRecord = decode(bytes.value())?;
                if record.created_at < cutoff {
                    old.push(id.value().to_vec());
                }
            }
            for id in &old {
                table.remove(id.as_slice())?;
            }
            Ok(old.len())
        })
        .await
    }
}
