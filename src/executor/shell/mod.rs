//! Runs one job with bash, as gitlab-runner's shell executor does: a fresh checkout, the job's
//! variables as the whole environment (file variables as paths to private files), one bash for
//! `before_script` + `script` that stops at the first failing command, another for
//! `after_script`, each in its own process group with stdin from `/dev/null`, the output masked
//! into the job log with GitLab's sections and final line. Timeout and cancel kill the group.

use crate::sandbox::{Fence, Isolation};
mod container;
mod container_script;
mod files;
mod process;
mod release;
mod reports;

use super::mask::Masker;
use super::workspace::Workspace;
use crate::context::Spur;
use crate::domain::{CachePolicy, Job, Pipeline, Project};
use crate::git::Origin;
use crate::scheduler::{JobEnd, Started};
use crate::trace::TraceWriter;
pub use process::LIVE_SHELLS;
use process::{kill_process_group, run_bash};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long `after_script` may run (gitlab-runner's default).
const AFTER_SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long packing or unpacking one cache or artifacts archive may take.
const FILES_TIMEOUT: Duration = Duration::from_secs(600);
/// `PATH` of every job unless a variable sets it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A job's log: the trace file behind the masker.
struct Log {
    /// `None` only after the log pump was lost (a panic): the rest of the log is dropped.
    writer: Option<TraceWriter>,
    masker: Masker,
    failed: Option<io::Error>,
}

impl Log {
    fn framing(&mut self, text: &str) {
        if let Some(Err(e)) = self.writer.as_mut().map(|w| w.write_framing(text)) {
            self.failed.get_or_insert(e);
        }
    }

    fn output(&mut self, bytes: &[u8]) {
        let Log { writer, masker, failed } = self;
        masker.push(bytes, &mut |b| {
            if let Some(Err(e)) = writer.as_mut().map(|w| w.write_output(b)) {
                failed.get_or_insert(e);
            }
        });
    }

    fn end_output(&mut self) {
        let Log { writer, masker, failed } = self;
        masker.finish(&mut |b| {
            if let Some(Err(e)) = writer.as_mut().map(|w| w.write_output(b)) {
                failed.get_or_insert(e);
            }
        });
    }

    fn section_start(&mut self, name: &str, header: &str) {
        self.framing(&format!(
            "\x1b[0Ksection_start:{}:{name}\r\x1b[0K\x1b[0K\x1b[36;1m{header}\x1b[0;m\n",
            unix_now()
        ));
    }

    fn section_end(&mut self, name: &str) {
        self.framing(&format!("\x1b[0Ksection_end:{}:{name}\r\x1b[0K\n", unix_now()));
    }
}

fn unix_now() -> i64 {
    crate::clock::now() / 1000
}

/// How one shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellEnd {
    Exited(i32),
    TimedOut,
    Canceled,
}

/// Runs a started job to its end and says how it ended; `None` when it must not run after all
/// (its start could not be stored). Never panics; every failure of spur's own (a checkout, a
/// file) fails the job with `runner_system_failure`.
pub async fn run(spur: Arc<Spur>, started: Started) -> Option<JobEnd> {
    let Started {
        job,
        pipeline,
        token,
        mut cancel,
        durable,
    } = started;
    let writer = match spur.traces.writer(job.id) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(job_id = job.id, error = %e, "cannot open the job log");
            return Some(system_failure());
        }
    };
    let vars = match crate::job_env::job_variables(&spur, job.id) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(job_id = job.id, error = %e, "cannot read the job's variables");
            return Some(system_failure());
        }
    };
    let mut secrets = vars.masked.clone();
    secrets.push(token.clone());
    let log = Log {
        writer: Some(writer),
        masker: Masker::new(&secrets),
        failed: None,
    };
    let iso = spur.isolation.clone();
    let mut ws = if spur.engine.get().is_some() && job.settings.image.is_some() {
        Workspace::contained_at(&iso.builds_dir, job.id)
    } else {
        Workspace::at(&iso.builds_dir, job.id)
    };
    let fence = match iso.fence(ws.writable(), ws.readable()) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(job_id = job.id, error = %e, "cannot fence the job in");
            return Some(system_failure());
        }
    };
    if let Err(e) = ws.create(fence.owner) {
        tracing::error!(job_id = job.id, error = %e, "cannot create the job's workspace");
        return Some(system_failure());
    }
    let job_run = JobRun {
        spur: &spur,
        job: &job,
        pipeline: &pipeline,
        token: &token,
        ws: &ws,
        iso: &iso,
        fence: &fence,
    };
    let (end, mut log) = job_run.execute(log, &vars, &mut cancel, durable).await;
    if let Some(end) = &end {
        log.framing(&final_line(
            end,
            job.settings.timeout_secs.unwrap_or(spur.job_timeout_secs),
        ));
    }
    if let Some(e) = log.failed {
        tracing::warn!(job_id = job.id, error = %e, "could not write all of the job log");
    }
    // Whatever the job left running dies with its uid's lease, then its folders go; in the
    // background, so that the worker takes its next job at once.
    drop(tokio::task::spawn_blocking(move || {
        drop(fence);
        ws.remove();
    }));
    end
}

fn system_failure() -> JobEnd {
    JobEnd::Failed {
        reason: "runner_system_failure".into(),
        exit_code: None,
    }
}

fn final_line(end: &JobEnd, timeout_secs: u64) -> String {
    match end {
        JobEnd::Success => "\x1b[32;1mJob succeeded\x1b[0;m\n".into(),
        JobEnd::Canceled => "\x1b[31;1mERROR: Job failed: canceled\x1b[0;m\n".into(),
        JobEnd::Failed { reason, exit_code } => match (reason.as_str(), exit_code) {
            ("job_execution_timeout", _) => format!(
                "\x1b[31;1mERROR: Job failed: execution took longer than {} seconds\x1b[0;m\n",
                go_duration(timeout_secs)
            ),
            (_, Some(code)) => format!("\x1b[31;1mERROR: Job failed: exit code {code}\x1b[0;m\n"),
            (reason, None) => format!("\x1b[31;1mERROR: Job failed: {reason}\x1b[0;m\n"),
        },
    }
}

/// A duration as Go prints it (`1h0m0s`, `1m30s`, `10s`), as gitlab-runner's messages show it.
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

struct JobRun<'a> {
    spur: &'a Arc<Spur>,
    job: &'a Job,
    pipeline: &'a Pipeline,
    token: &'a str,
    ws: &'a Workspace,
    iso: &'a Isolation,
    fence: &'a Fence,
}

impl JobRun<'_> {
    /// Runs the job, in containers when it has an image and spur an engine, and removes
    /// whatever containers it started.
    async fn execute(
        &self,
        mut log: Log,
        vars: &crate::domain::JobVariables,
        cancel: &mut watch::Receiver<bool>,
        durable: tokio::sync::oneshot::Receiver<bool>,
    ) -> (Option<JobEnd>, Log) {
        let Some(project) = self.spur.store.project(self.job.project_id).ok().flatten() else {
            log.framing("ERROR: the job's project no longer exists\n");
            return (Some(system_failure()), log);
        };
        let mut containers = self.containers(&project.full_path);
        let out = self
            .execute_in(&project, containers.as_mut(), log, vars, cancel, durable)
            .await;
        if let Some(c) = &containers {
            c.remove_all().await;
        }
        out
    }

    async fn execute_in(
        &self,
        project: &Project,
        mut containers: Option<&mut container::Containers>,
        mut log: Log,
        vars: &crate::domain::JobVariables,
        cancel: &mut watch::Receiver<bool>,
        durable: tokio::sync::oneshot::Receiver<bool>,
    ) -> (Option<JobEnd>, Log) {
        let job = self.job;
        let executor = match &containers {
            Some(c) => c.engine_name(),
            None => "shell",
        };
        log.framing(&format!(
            "\x1b[0KRunning with spur {} ({executor} executor)\x1b[0;m\n",
            env!("CARGO_PKG_VERSION")
        ));
        log.section_start("prepare_executor", &format!("Preparing the \"{executor}\" executor"));
        if let Some(c) = containers.as_deref_mut() {
            if let Err(e) = self.prepare_containers(c, project, vars, &mut log).await {
                log.framing(&format!("\x1b[31;1mERROR: Preparation failed: {}\x1b[0;m\n", e.message));
                log.section_end("prepare_executor");
                let end = JobEnd::Failed {
                    reason: e.reason.into(),
                    exit_code: None,
                };
                return (Some(end), log);
            }
        } else {
            log.framing("\x1b[0KUsing Shell (bash) executor...\x1b[0;m\n");
            if job.settings.image.is_some() || !job.settings.services.is_empty() {
                log.framing("\x1b[0;33mWARNING: spur has no container engine: image and services are ignored and the job runs on the spur host\x1b[0;m\n");
            }
        }
        log.section_end("prepare_executor");
        log.section_start("get_sources", "Getting source from Git repository");
        log.framing("\x1b[32;1mFetching changes...\x1b[0;m\n");
        let checked_out = self.checkout(project).await;
        if let Err(e) = checked_out {
            log.framing(&format!(
                "\x1b[31;1mERROR: cannot check out {}: {e}\x1b[0;m\n",
                self.pipeline.sha
            ));
            return (Some(system_failure()), log);
        }
        log.framing(&format!(
            "\x1b[32;1mChecking out {} as detached HEAD (ref is {})...\x1b[0;m\n\n\x1b[32;1mSkipping Git submodules setup\x1b[0;m\n",
            &self.pipeline.sha.get(..8).unwrap_or(&self.pipeline.sha),
            self.pipeline.ref_name
        ));
        log.section_end("get_sources");
        if !durable.await.unwrap_or(false) {
            tracing::warn!(job_id = job.id, "the job's start was not stored; it stays queued");
            return (None, log);
        }
        // Everything spur writes for the job (file variables, scripts) is in place before any
        // process of the job runs, in folders the job cannot write.
        let mounts = containers.as_deref().map(|c| &c.mounts);
        let prepared = self.environment(project, vars, mounts).and_then(|env| {
            let steps: Vec<String> = job.before_script.iter().chain(&job.script).cloned().collect();
            if mounts.is_some() {
                // In a container the variables travel in the script, on the shell's stdin.
                return Ok((env, PathBuf::new(), PathBuf::new()));
            }
            let step = self.ws.script("step_script.sh", &script_text(&steps))?;
            let after = self.ws.script("after_script.sh", &script_text(&job.after_script))?;
            Ok((env, step, after))
        });
        let (env, step_script, after_script) = match prepared {
            Ok(p) => p,
            Err(e) => {
                log.framing(&format!(
                    "\x1b[31;1mERROR: cannot prepare the job's variables and scripts: {e}\x1b[0;m\n"
                ));
                return (Some(system_failure()), log);
            }
        };
        if let Some(why) = &self.iso.unavailable {
            log.framing(&format!("\x1b[31;1mERROR: the job cannot be isolated: {why}\x1b[0;m\n"));
            return (Some(system_failure()), log);
        }
        if job.settings.cache_policy != CachePolicy::Push {
            self.restore_cache(&mut log).await;
        }
        self.download_artifacts(&mut log).await;
        let timeout = Duration::from_secs(job.settings.timeout_secs.unwrap_or(self.spur.job_timeout_secs));
        log.section_start("step_script", "Executing \"step_script\" stage of the job script");
        let (ended, returned) = match containers.as_deref_mut() {
            Some(c) => {
                let steps: Vec<String> = job.before_script.iter().chain(&job.script).cloned().collect();
                let script = container_script::script(&env, &steps);
                self.contained(c, script, timeout, Some(cancel), log).await
            }
            None => self.shell(&step_script, &env, timeout, Some(cancel), log).await,
        };
        log = returned;
        log.section_end("step_script");
        let end = match ended {
            Ok(ShellEnd::Exited(0)) => JobEnd::Success,
            Ok(ShellEnd::Exited(code)) => JobEnd::Failed {
                reason: "script_failure".into(),
                exit_code: Some(code),
            },
            Ok(ShellEnd::TimedOut) => JobEnd::Failed {
                reason: "job_execution_timeout".into(),
                exit_code: None,
            },
            Ok(ShellEnd::Canceled) => JobEnd::Canceled,
            Err(e) => {
                log.framing(&format!("\x1b[31;1mERROR: cannot run the script: {e}\x1b[0;m\n"));
                system_failure()
            }
        };
        let end = match &job.settings.release {
            Some(spec) if end == JobEnd::Success && !self.release_step(&mut log, project, spec, &env).await => {
                JobEnd::Failed {
                    reason: "script_failure".into(),
                    exit_code: Some(1),
                }
            }
            _ => end,
        };
        let stopping = self.spur.shutdown.is_started();
        if !job.after_script.is_empty() && !stopping {
            log = self.after_script(log, containers, &after_script, &env, &end).await;
        }
        if end == JobEnd::Success && job.settings.cache_policy != CachePolicy::Pull {
            self.save_cache(&mut log).await;
        }
        let end = self.upload_artifacts(&mut log, end).await;
        let end = self.upload_test_reports(&mut log, end).await;
        (Some(end), log)
    }

    async fn checkout(&self, project: &Project) -> Result<(), String> {
        let origin = Origin::of(project);
        let repository = self.spur.repos.path_of(&project.repo_name, &origin);
        let sha = self.pipeline.sha.clone();
        let ws = self.ws.clone();
        tokio::task::spawn_blocking(move || ws.checkout(&repository, &sha))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The whole environment: a fixed base, predefined variables, then the job's variables
    /// (later wins); file variables become paths to private files. In a container (`mounts`)
    /// the image keeps its own `PATH` and `HOME`, and paths are the container's.
    fn environment(
        &self,
        project: &Project,
        vars: &crate::domain::JobVariables,
        mounts: Option<&container::Mounts>,
    ) -> io::Result<Vec<(String, String)>> {
        let mut env: Vec<(String, String)> = match mounts {
            None => vec![
                ("PATH".into(), DEFAULT_PATH.into()),
                ("HOME".into(), self.ws.home.to_string_lossy().into()),
                ("TMPDIR".into(), self.ws.tmp.to_string_lossy().into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("SHELL".into(), "/bin/bash".into()),
                ("CI_PROJECT_DIR".into(), self.ws.project_dir.to_string_lossy().into()),
                ("CI_BUILDS_DIR".into(), self.iso.builds_dir.to_string_lossy().into()),
            ],
            Some(m) => vec![
                ("CI_PROJECT_DIR".into(), m.project_dir.clone()),
                ("CI_BUILDS_DIR".into(), "/builds".into()),
            ],
        };
        env.extend(crate::job_env::runtime_variables(
            self.spur,
            project,
            self.pipeline,
            self.job,
            self.token,
        ));
        env.extend(vars.vars.iter().cloned());
        let mut last: HashMap<String, String> = HashMap::new();
        let mut order = Vec::new();
        for (k, v) in env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                continue;
            }
            if !last.contains_key(&k) {
                order.push(k.clone());
            }
            last.insert(k, v);
        }
        let mut out = Vec::with_capacity(order.len());
        for k in order {
            let Some(mut v) = last.remove(&k) else { continue };
            if vars.file_keys.contains(&k) {
                let on_host = self.ws.file_variable(&k, v.as_bytes())?;
                v = match mounts {
                    None => on_host.to_string_lossy().into(),
                    Some(m) => format!("{}/{k}", m.files_dir),
                };
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// Runs a script spur wrote in one bash inside the job's fence.
    async fn shell(
        &self,
        script: &Path,
        env: &[(String, String)],
        timeout: Duration,
        cancel: Option<&mut watch::Receiver<bool>>,
        log: Log,
    ) -> (io::Result<ShellEnd>, Log) {
        let args = [OsString::from("--noprofile"), OsString::from("--norc"), script.into()];
        match self
            .iso
            .command(self.fence, &self.ws.project_dir, "bash".as_ref(), &args)
        {
            Ok(cmd) => run_bash(cmd, Some(env), None, timeout, cancel, log).await,
            Err(e) => (Err(e), log),
        }
    }

    /// Runs `script` (on the shell's stdin) in a new container of the job's image, behind the
    /// closed gate; removes the container and gives the job's user back what its root made.
    async fn contained(
        &self,
        c: &mut container::Containers,
        script: String,
        timeout: Duration,
        cancel: Option<&mut watch::Receiver<bool>>,
        log: Log,
    ) -> (io::Result<ShellEnd>, Log) {
        if let Err(e) = self.ws.set_gate(false) {
            return (Err(e), log);
        }
        let cmd = c.script_command(self.ws);
        let (ended, log) = run_bash(cmd, None, Some(script.into_bytes()), timeout, cancel, log).await;
        c.remove_build().await;
        let ws = self.ws.clone();
        let reclaimed = tokio::task::spawn_blocking(move || ws.reclaim().and_then(|()| ws.set_gate(true)))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
        match reclaimed {
            Ok(()) => (ended, log),
            Err(e) => (Err(io::Error::other(format!("the checkout was removed: {e}"))), log),
        }
    }

    async fn after_script(
        &self,
        mut log: Log,
        containers: Option<&mut container::Containers>,
        script: &Path,
        env: &[(String, String)],
        end: &JobEnd,
    ) -> Log {
        let status = match end {
            JobEnd::Success => "success",
            JobEnd::Canceled => "canceled",
            JobEnd::Failed { .. } => "failed",
        };
        let mut env = env.to_vec();
        env.push(("CI_JOB_STATUS".into(), status.into()));
        log.section_start("after_script", "Running after_script");
        log.framing("\x1b[32;1mRunning after script...\x1b[0;m\n");
        let (ended, mut log) = match containers {
            Some(c) => {
                let text = container_script::script(&env, &self.job.after_script);
                self.contained(c, text, AFTER_SCRIPT_TIMEOUT, None, log).await
            }
            None => self.shell(script, &env, AFTER_SCRIPT_TIMEOUT, None, log).await,
        };
        match ended {
            Ok(ShellEnd::Exited(0)) => {}
            Ok(ShellEnd::Exited(code)) => log.framing(&format!(
                "\x1b[0;33mWARNING: after_script failed, but job will continue unaffected: exit code {code}\x1b[0;m\n"
            )),
            Ok(_) => {
                log.framing("\x1b[0;33mWARNING: after_script timed out, but job will continue unaffected\x1b[0;m\n")
            }
            Err(e) => log.framing(&format!("\x1b[0;33mWARNING: cannot run after_script: {e}\x1b[0;m\n")),
        }
        log.section_end("after_script");
        log
    }
}

/// A bash script that echoes each command as `$ command` (green, like gitlab-runner) and runs
/// it; `set -eo pipefail` stops at the first failing command. Only the repository's own script
/// lines are written here: variables reach the shell as environment, never as text.
fn script_text(lines: &[String]) -> String {
    script_body("set -eo pipefail\nset +o noclobber\n", lines)
}

/// `header`, then each line echoed and run.
fn script_body(header: &str, lines: &[String]) -> String {
    let mut s = String::from(header);
    for line in lines {
        let mut shown = line.lines().next().unwrap_or_default().to_string();
        if line.trim_end().contains('\n') {
            shown.push_str(" # collapsed multi-line command");
        }
        s.push_str("printf '%s\\n' ");
        s.push_str(&single_quote(&format!("\x1b[32;1m$ {shown}\x1b[0;m")));
        s.push('\n');
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Quotes text for bash: `'...'`, with each `'` written as `'\''`.
fn single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_echoes_and_quotes_commands() {
        let text = script_text(&["echo 'hi' $X".to_string(), "a\nb\n".to_string()]);
        assert!(text.starts_with("set -eo pipefail\n"));
        assert!(text.contains("printf '%s\\n' '\x1b[32;1m$ echo '\\''hi'\\'' $X\x1b[0;m'\necho 'hi' $X\n"));
        assert!(text.contains("$ a # collapsed multi-line command"));
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(5), "5s");
    }
}
