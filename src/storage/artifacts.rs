//! Which jobs have an artifacts archive, how large, and until when. The archives themselves are
//! files under `<data-dir>/artifacts/` (see `crate::artifacts`).

use super::codec::{decode, encode, get_json};
use super::tables::ARTIFACTS;
use super::{Error, Store};
use crate::domain::{ArtifactsFile, Millis};
use redb::ReadableTable;

impl Store {
    /// Records a job's artifacts archive (replacing an earlier one).
    pub async fn put_artifacts(&self, job_id: u64, file: ArtifactsFile) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(ARTIFACTS)?.insert(job_id, encode(&file)?.as_slice())?;
            Ok(())
        })
        .await
    }

    /// A job's artifacts archive, if it has one.
    pub fn artifacts(&self, job_id: u64) -> Result<Option<ArtifactsFile>, Error> {
        self.read(|tx| get_json(&tx.open_table(ARTIFACTS)?, job_id))
    }

    /// Forgets a job's artifacts archive.
    pub async fn delete_artifacts(&self, job_id: u64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(ARTIFACTS)?.remove(job_id)?;
            Ok(())
        })
        .await
    }

    /// Jobs whose artifacts expired before `now`.
    pub fn expired_artifacts(&self, now: Millis) -> Result<Vec<u64>, Error> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(ARTIFACTS)?.iter()? {
                let (id, bytes) = entry?;
                let file: ArtifactsFile = decode(bytes.value())?;
                if file.expire_at.is_some_and(|at| at <= now) {
                    out.push(id.value());
                }
            }
            Ok(out)
        })
    }
}
