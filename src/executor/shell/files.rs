//! A job's caches and artifacts: restoring and saving its cache (kept apart for protected and
//! unprotected refs), unpacking its dependencies' artifacts and packing its own, each through
//! `spur job-files` inside the job's fence, with archives spur opened itself.

use super::{DEFAULT_PATH, FILES_TIMEOUT, JobRun, Log, kill_process_group};
use crate::executor::workspace;
use crate::scheduler::JobEnd;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Stdio;

impl JobRun<'_> {
    /// Runs `spur job-files ARGS` in the job's fence with `stdin`/`stdout` as given; answers
    /// its JSON report.
    pub(super) async fn files_helper(
        &self,
        args: &[OsString],
        stdin: Option<std::fs::File>,
        stdout: Option<std::fs::File>,
    ) -> Result<serde_json::Value, String> {
        let mut cmd = self
            .iso
            .helper(self.fence, &self.ws.project_dir, args)
            .map_err(|e| e.to_string())?;
        cmd.env_clear()
            .env("PATH", DEFAULT_PATH)
            .env("HOME", &self.ws.home)
            .env("LANG", "C.UTF-8")
            .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(stdout.map_or_else(Stdio::null, Stdio::from))
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("cannot start the file helper: {e}"))?;
        let pid = child.id();
        let out = match tokio::time::timeout(FILES_TIMEOUT, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| e.to_string())?,
            Err(_) => {
                if let Some(pid) = pid {
                    kill_process_group(pid);
                }
                return Err("took too long".into());
            }
        };
        let text = String::from_utf8_lossy(&out.stderr);
        let report: serde_json::Value = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        match (out.status.success(), report.get("error").and_then(|e| e.as_str())) {
            (true, None) if report.is_object() => Ok(report),
            (_, Some(e)) => Err(e.to_string()),
            _ => Err(format!("the file helper failed ({})", out.status)),
        }
    }

    /// The job's cache key as GitLab stores it: with `-protected` for pipelines of protected
    /// branches and tags and `-non_protected` for the rest, so that a branch anyone may push
    /// can never fill the cache a protected branch's jobs restore.
    fn cache_key(&self) -> Option<String> {
        let key = self.job.settings.cache_key.as_ref()?;
        let protected = crate::protected_refs::is_protected(
            self.spur,
            self.job.project_id,
            &self.pipeline.ref_name,
            self.pipeline.tag,
        )
        .unwrap_or(false);
        Some(format!(
            "{key}-{}",
            if protected { "protected" } else { "non_protected" }
        ))
    }

    pub(super) async fn restore_cache(&self, log: &mut Log) {
        let Some(key) = self.cache_key() else {
            return;
        };
        log.section_start("restore_cache", "Restoring cache");
        log.framing(&format!("\x1b[32;1mChecking cache for {key}...\x1b[0;m\n"));
        let archive = workspace::cache_archive(&self.spur.data_dir, self.job.project_id, &key);
        match open_archive(&archive) {
            Ok(Some(file)) => {
                let args = [OsString::from("extract"), OsString::from("--keep-links")];
                match self.files_helper(&args, Some(file), None).await {
                    Ok(_) => log.framing("\x1b[32;1mSuccessfully extracted cache\x1b[0;m\n"),
                    Err(e) => log.framing(&format!("\x1b[0;33mWARNING: cannot restore the cache: {e}\x1b[0;m\n")),
                }
            }
            Ok(None) => log.framing(&format!(
                "\x1b[0;33mWARNING: cache for {key} not found; the job runs without it\x1b[0;m\n"
            )),
            Err(e) => log.framing(&format!("\x1b[0;33mWARNING: cannot restore the cache: {e}\x1b[0;m\n")),
        }
        log.section_end("restore_cache");
    }

    /// Unpacks the archives of the job's dependencies into the project dir.
    pub(super) async fn download_artifacts(&self, log: &mut Log) {
        let deps = match crate::artifacts::dependencies(self.spur, self.job) {
            Ok(deps) => deps,
            Err(e) => {
                log.framing(&format!(
                    "\x1b[0;33mWARNING: cannot list the job's dependencies: {e}\x1b[0;m\n"
                ));
                return;
            }
        };
        let with_archive: Vec<_> = deps
            .into_iter()
            .filter(|d| matches!(self.spur.store.artifacts(d.id), Ok(Some(_))))
            .collect();
        if with_archive.is_empty() {
            return;
        }
        log.section_start("download_artifacts", "Downloading artifacts");
        for dep in with_archive {
            log.framing(&format!(
                "\x1b[32;1mDownloading artifacts for {} ({})...\x1b[0;m\n",
                dep.name, dep.id
            ));
            let archive = crate::artifacts::path(self.spur, dep.id);
            let done = match open_archive(&archive) {
                Ok(Some(file)) => self.files_helper(&[OsString::from("extract")], Some(file), None).await,
                Ok(None) => Err("the archive is gone".into()),
                Err(e) => Err(e.to_string()),
            };
            match done {
                Ok(report) => log.framing(&format!(
                    "Downloading artifacts from coordinator... ok        id={} files={}\n",
                    dep.id,
                    report["files"].as_u64().unwrap_or(0)
                )),
                Err(e) => log.framing(&format!(
                    "\x1b[0;33mWARNING: cannot unpack the artifacts: {e}\x1b[0;m\n"
                )),
            }
        }
        log.section_end("download_artifacts");
    }

    /// Zips and stores what `artifacts:` names when `artifacts:when` matches how the job
    /// ended; a failed upload fails a successful job, as with gitlab-runner.
    pub(super) async fn upload_artifacts(&self, log: &mut Log, end: JobEnd) -> JobEnd {
        let Some(spec) = self.job.settings.artifacts.clone() else {
            return end;
        };
        let wanted = match spec.when.as_str() {
            "always" => end != JobEnd::Canceled,
            "on_failure" => matches!(end, JobEnd::Failed { .. }),
            _ => end == JobEnd::Success,
        };
        if !wanted {
            return end;
        }
        let title = if end == JobEnd::Success {
            ("upload_artifacts_on_success", "Uploading artifacts for successful job")
        } else {
            ("upload_artifacts_on_failure", "Uploading artifacts for failed job")
        };
        log.section_start(title.0, title.1);
        log.framing("\x1b[32;1mUploading artifacts...\x1b[0;m\n");
        let result = self.archive(&spec, log).await;
        let end = match result {
            Ok(()) => end,
            Err(e) => {
                log.framing(&format!(
                    "\x1b[31;1mERROR: Uploading artifacts to coordinator... {e}\x1b[0;m\n"
                ));
                upload_failed(end)
            }
        };
        log.section_end(title.0);
        end
    }

    async fn archive(&self, spec: &crate::domain::ArtifactsSpec, log: &mut Log) -> Result<(), String> {
        let upload = crate::artifacts::upload_path(self.spur, self.job.id);
        let file = new_private_file(&upload).map_err(|e| e.to_string())?;
        let spec_json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        let args = [OsString::from("artifacts"), OsString::from(spec_json)];
        let packed = self.files_helper(&args, None, Some(file)).await;
        let size = std::fs::metadata(&upload).map(|m| m.len()).unwrap_or(0);
        let report = match packed {
            Ok(r) if size <= self.spur.max_artifacts_bytes => r,
            Ok(_) => Err(format!(
                "the archive is larger than {} bytes",
                self.spur.max_artifacts_bytes
            ))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&upload);
            })?,
            Err(e) => {
                let _ = std::fs::remove_file(&upload);
                return Err(e);
            }
        };
        for pattern in report["unmatched"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
        {
            log.framing(&format!(
                "\x1b[0;33mWARNING: {pattern}: no matching files. Ensure that the artifact path is relative to the working directory ({})\x1b[0;m\n",
                self.ws.project_dir.display()
            ));
        }
        let files = report["files"].as_u64().unwrap_or(0);
        if files == 0 {
            let _ = std::fs::remove_file(&upload);
            log.framing("\x1b[31;1mERROR: No files to upload\x1b[0;m\n");
            return Ok(());
        }
        log.framing(&format!("{files} matching artifact files\n"));
        crate::artifacts::store(self.spur, self.job, upload.clone(), size, None)
            .await
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&upload);
            })?;
        log.framing(&format!(
            "Uploading artifacts as \"archive\" to coordinator... 201 Created  id={} size={size}\n",
            self.job.id
        ));
        Ok(())
    }

    pub(super) async fn save_cache(&self, log: &mut Log) {
        let Some(key) = self.cache_key() else {
            return;
        };
        log.section_start("archive_cache", "Saving cache for successful job");
        log.framing(&format!("\x1b[32;1mCreating cache {key}...\x1b[0;m\n"));
        let archive = workspace::cache_archive(&self.spur.data_dir, self.job.project_id, &key);
        let saved = match workspace::staging_file(&archive) {
            Ok((staging, file)) => {
                let mut args = vec![OsString::from("cache")];
                args.extend(self.job.settings.cache_paths.iter().map(OsString::from));
                let packed = self.files_helper(&args, None, Some(file)).await;
                let size = std::fs::metadata(&staging).map(|m| m.len()).unwrap_or(0);
                let kept = match packed {
                    Ok(_) if size > self.spur.max_artifacts_bytes => Err(format!(
                        "the cache is larger than {} bytes",
                        self.spur.max_artifacts_bytes
                    )),
                    Ok(report) => std::fs::rename(&staging, &archive)
                        .map(|()| report["found"].as_u64().unwrap_or(0))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if kept.is_err() {
                    let _ = std::fs::remove_file(&staging);
                }
                kept
            }
            Err(e) => Err(e.to_string()),
        };
        match saved {
            Ok(found) => log.framing(&format!(
                "{found} of {} cache paths found\n\x1b[32;1mCreated cache\x1b[0;m\n",
                self.job.settings.cache_paths.len()
            )),
            Err(e) => log.framing(&format!("\x1b[0;33mWARNING: cannot save the cache: {e}\x1b[0;m\n")),
        }
        log.section_end("archive_cache");
    }
}

/// How a job ends when an upload after its script failed: a success becomes an
/// `unknown_failure`, as on GitLab; a failure stays what it was.
pub(super) fn upload_failed(end: JobEnd) -> JobEnd {
    if end == JobEnd::Success {
        JobEnd::Failed {
            reason: "unknown_failure".into(),
            exit_code: None,
        }
    } else {
        end
    }
}

/// Opens an archive spur keeps (never through a link); `None` when there is none.
fn open_archive(path: &Path) -> io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a new private file for a helper to write an archive into.
pub(super) fn new_private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}
