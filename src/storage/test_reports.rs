//! Jobs' unit test reports and their counts.

use super::codec::{decode, encode, get_json};
use super::tables::{TEST_REPORTS, TEST_SUMMARIES};
use super::{Error, Store};
use crate::domain::{JobTestReport, TestCounts};

impl Store {
    /// Stores a job's test report and its counts, replacing what the job had.
    pub async fn put_test_report(&self, job_id: u64, report: JobTestReport, counts: TestCounts) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(TEST_REPORTS)?
                .insert(job_id, encode(&report)?.as_slice())?;
            tx.open_table(TEST_SUMMARIES)?
                .insert(job_id, encode(&counts)?.as_slice())?;
            Ok(())
        })
        .await
    }

    /// Forgets a job's test report (the job is erased).
    pub async fn delete_test_report(&self, job_id: u64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(TEST_REPORTS)?.remove(job_id)?;
            tx.open_table(TEST_SUMMARIES)?.remove(job_id)?;
            Ok(())
        })
        .await
    }

    /// A job's test report, if it has one.
    pub fn test_report(&self, job_id: u64) -> Result<Option<JobTestReport>, Error> {
        self.read(|tx| get_json(&tx.open_table(TEST_REPORTS)?, job_id))
    }

    /// The counts of each of `job_ids` that has a test report, in the order given.
    pub fn test_counts(&self, job_ids: &[u64]) -> Result<Vec<(u64, TestCounts)>, Error> {
        self.read(|tx| {
            let table = tx.open_table(TEST_SUMMARIES)?;
            let mut out = Vec::new();
            for &id in job_ids {
                if let Some(found) = redb::ReadableTable::get(&table, id)? {
                    out.push((id, decode(found.value())?));
                }
            }
            Ok(out)
        })
    }
}
