//! `artifacts:reports:junit` for the built-in executor: after the job, whatever its end (as
//! gitlab-runner sends reports `when: always`), the fenced helper packs the matching files and
//! spur reads them as the job's test report, bounded by `--max-test-report-bytes`.

use super::{JobRun, Log};
use crate::domain::ArtifactsSpec;
use crate::scheduler::JobEnd;
use std::ffi::OsString;

impl JobRun<'_> {
    /// Reads the job's JUnit files into its test report; a report too large (or unreadable)
    /// fails a job that had succeeded, as a failed upload does on GitLab.
    pub(super) async fn upload_test_reports(&self, log: &mut Log, end: JobEnd) -> JobEnd {
        let junit = &self.job.settings.junit;
        if junit.is_empty() || end == JobEnd::Canceled {
            return end;
        }
        log.framing("\x1b[32;1mUploading artifacts...\x1b[0;m\n");
        match self.read_test_reports().await {
            Ok(Some((files, cases))) => {
                log.framing(&format!(
                    "junit.xml: found {files} matching artifact files and directories\nUploading artifacts as \"junit\" to coordinator... 201 Created  id={} cases={cases}\n",
                    self.job.id
                ));
                end
            }
            Ok(None) => {
                for pattern in junit {
                    log.framing(&format!("\x1b[0;33mWARNING: {pattern}: no matching files\x1b[0;m\n"));
                }
                log.framing("\x1b[31;1mERROR: No files to upload\x1b[0;m\n");
                end
            }
            Err(e) => {
                log.framing(&format!(
                    "\x1b[31;1mERROR: Uploading artifacts as \"junit\" to coordinator... {e}\x1b[0;m\n"
                ));
                super::files::upload_failed(end)
            }
        }
    }

    /// Packs and reads the files; `None` when none matched; else how many and the cases read.
    async fn read_test_reports(&self) -> Result<Option<(u64, usize)>, String> {
        let spec = ArtifactsSpec {
            name: None,
            paths: self.job.settings.junit.clone(),
            exclude: Vec::new(),
            untracked: false,
            when: "always".into(),
            expire_in: None,
        };
        let packing = crate::artifacts::upload_path(self.spur, self.job.id);
        let file = super::files::new_private_file(&packing).map_err(|e| e.to_string())?;
        let spec_json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        let args = [OsString::from("artifacts"), OsString::from(spec_json)];
        let packed = self.files_helper(&args, None, Some(file)).await;
        let limit = self.spur.max_test_report_bytes;
        let opened = std::fs::File::open(&packing);
        let _ = std::fs::remove_file(&packing);
        let report = packed?;
        let files = report["files"].as_u64().unwrap_or(0);
        if files == 0 {
            return Ok(None);
        }
        let file = opened.map_err(|e| e.to_string())?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) > limit {
            return Err(format!(
                "413 Request Entity Too Large: the test report is larger than {limit} bytes"
            ));
        }
        let read = tokio::task::spawn_blocking(move || crate::test_reports::from_zip(file, limit))
            .await
            .map_err(|e| e.to_string())??;
        let cases = read.cases.len();
        crate::test_reports::store(self.spur, self.job.id, read).await?;
        Ok(Some((files, cases)))
    }
}
