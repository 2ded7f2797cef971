//! The pipeline engine end to end: triggered pipelines run their jobs with the built-in shell
//! executor, in stage order, with GitLab's statuses, logs, variables, masking, cancel, timeout,
//! retry, manual jobs, caches, the job token, the log cap, and recovery after a crash.

use crate::support::{
    Mailbox, ROOT_TOKEN, Repo, Server, finished_pipeline, put_cmd, send, send_raw, wait_cmd, wait_for,
};
use reqwest::Method;
use serde_json::Value;

use std::time::{Duration, Instant};

/// A server with the shell executor on, a project from `config` and a trigger token.
async fn setup(config: &str, extra: &[&str]) -> (Server, Repo, u64, String) {
    let mut flags = vec!["--concurrent", "4"];
    flags.extend_from_slice(extra);
    let s = Server::start_with(&flags);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config), ("README.md", "# demo\n")]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    (s, repo, pid, token)
}

/// Triggers a pipeline on `main` with `vars` and answers its id.
pub(crate) async fn trigger(s: &Server, pid: u64, token: &str, vars: &[(&str, &str)]) -> u64 {
    let mut form = vec![("token".to_string(), token.to_string()), ("ref".into(), "main".into())];
    for (k, v) in vars {
        form.push((format!("variables[{k}]"), v.to_string()));
    }
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&form),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_u64().unwrap()
}

async fn jobs(s: &Server, pid: u64, id: u64, query: &str) -> Vec<Value> {
    let (status, v) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs{query}"))).await;
    assert_eq!(status, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn job<'a>(jobs: &'a [Value], name: &str) -> &'a Value {
    jobs.iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
}

async fn trace(s: &Server, pid: u64, job_id: u64) -> String {
    let resp = send_raw(s.root(Method::GET, &format!("/projects/{pid}/jobs/{job_id}/trace"))).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

const STAGES: &str = r#"
stages: [build, test, deploy]
variables:
  GREETING: hello
build:
  stage: build
  image: ruby:3.3
  before_script: [echo before-script-ran]
  script:
    - echo "$GREETING from $CI_JOB_NAME"
    - echo "triggered=$CI_PIPELINE_TRIGGERED source=$CI_PIPELINE_SOURCE id=$CI_PIPELINE_ID"
    - test -f README.md && test -d .git
    - echo "head=$(git rev-parse HEAD)"
    - cat "$TRIGGER_PAYLOAD"; echo
    - echo "evil=$EVIL"
    - env | sort
  after_script: [echo "after status=$CI_JOB_STATUS"]
flaky-lint:
  stage: test
  script: [echo linting, exit 3]
  allow_failure: true
unit:
  stage: test
  script: [echo unit]
deploy:
  stage: deploy
  script: [echo deployed]
"#;

#[tokio::test]
async fn a_triggered_pipeline_runs_its_stages_with_gitlab_logs_and_statuses() {
    let (s, repo, pid, token) = setup(STAGES, &[]).await;
    let evil = "'; echo pwned; '$(id)";
    let id = trigger(&s, pid, &token, &[("DEPLOY", "prod"), ("EVIL", evil)]).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(
        p["status"], "success",
        "an allowed failure leaves the pipeline successful: {p}"
    );
    assert!(p["started_at"].is_string() && p["finished_at"].is_string(), "{p}");
    let all = jobs(&s, pid, id, "").await;
    assert_eq!(job(&all, "build")["status"], "success");
    assert_eq!(job(&all, "unit")["status"], "success");
    assert_eq!(job(&all, "deploy")["status"], "success");
    let lint = job(&all, "flaky-lint");
    assert_eq!(lint["status"], "failed");
    assert_eq!(lint["failure_reason"], "script_failure");
    assert_eq!(lint["allow_failure"], true);
    let build = job(&all, "build");
    assert!(build["duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(build["runner"]["description"], "spur-shell");
    // Stage order: deploy started after every test job finished.
    let at = |j: &Value, k: &str| j[k].as_str().unwrap().to_string();
    assert!(at(job(&all, "deploy"), "started_at") >= at(job(&all, "unit"), "finished_at"));
    assert!(at(job(&all, "unit"), "started_at") >= at(job(&all, "build"), "finished_at"));

    let log = trace(&s, pid, build["id"].as_u64().unwrap()).await;
    for want in [
        "Running with spur",
        "WARNING: spur has no container engine: image and services are ignored",
        "section_start:",
        "Checking out ",
        "$ echo before-script-ran",
        "before-script-ran",
        "$ echo \"$GREETING from $CI_JOB_NAME\"",
        "hello from build",
        &format!("triggered=true source=trigger id={id}"),
        &format!("head={}", repo.sha("main")),
        "\"DEPLOY\":\"prod\"",
        &format!("evil={evil}"),
        "after status=success",
        "Job succeeded",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
    assert!(
        !log.lines().any(|l| l.trim() == "pwned"),
        "a variable was run as shell:\n{log}"
    );
    // The environment is the job's variables and a fixed base, nothing of the server's.
    for leaked in ["SPUR_ROOT_TOKEN", "SPUR_ROOT_PASSWORD", "RUST_LOG=", "CARGO"] {
        assert!(
            !log.contains(leaked),
            "the server's {leaked} leaked into the job:\n{log}"
        );
    }
    assert!(
        log.contains("PATH=/usr/local/sbin:") && log.contains("CI_JOB_TOKEN=[MASKED]"),
        "{log}"
    );
    let lint_log = trace(&s, pid, lint["id"].as_u64().unwrap()).await;
    assert!(lint_log.contains("ERROR: Job failed: exit code 3"), "{lint_log}");
    // Workspaces are removed when jobs end.
    let builds = s.data_dir.join("builds");
    assert_eq!(
        std::fs::read_dir(&builds).unwrap().count(),
        0,
        "workspaces left in {builds:?}"
    );
}

#[tokio::test]
async fn a_failed_stage_skips_later_ones_and_runs_on_failure_jobs() {
    let config = "build:\n  stage: build\n  script: [exit 1]\ntest:\n  stage: test\n  script: [echo t]\nrescue:\n  stage: test\n  when: on_failure\n  script: [echo rescued]\nreport:\n  stage: deploy\n  when: always\n  script: [echo report]\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let id = trigger(&s, pid, &token, &[]).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed");
    let all = jobs(&s, pid, id, "").await;
    let statuses: Vec<(String, String)> = all
        .iter()
        .map(|j| (j["name"].as_str().unwrap().into(), j["status"].as_str().unwrap().into()))
        .collect();
    for (name, want) in [
        ("build", "failed"),
        ("test", "skipped"),
        ("rescue", "success"),
        ("report", "success"),
    ] {
        assert!(
            statuses.contains(&(name.into(), want.into())),
            "{name} should be {want}: {statuses:?}"
        );
    }
    let (status, failed) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs?scope[]=failed"))).await;
    assert_eq!(status, 200);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    let (status, body) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs?scope[]=bogus"))).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Scope contains invalid value(s)"))
    );
}

#[tokio::test]
async fn masked_variables_and_the_job_token_never_reach_the_log() {
    let config = "show:\n  script:\n    - echo \"secret=$MY_SECRET\"\n    - printf 'split=SECRET_'; sleep 0.3; printf 'VALUE_123\\n'\n    - echo \"token=$CI_JOB_TOKEN\"\n    - cat \"$CONFIG_FILE\"\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    for (key, value, masked, kind) in [
        ("MY_SECRET", "SECRET_VALUE_123", "true", "env_var"),
        ("CONFIG_FILE", "from-a-file-variable", "false", "file"),
    ] {
        let (status, v) = send(s.root(Method::POST, &format!("/projects/{pid}/variables")).form(&[
            ("key", key),
            ("value", value),
            ("masked", masked),
            ("variable_type", kind),
        ]))
        .await;
        assert_eq!(status, 201, "{v}");
    }
    let id = trigger(&s, pid, &token, &[]).await;
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
    let all = jobs(&s, pid, id, "").await;
    let log = trace(&s, pid, job(&all, "show")["id"].as_u64().unwrap()).await;
    assert!(log.contains("secret=[MASKED]"), "{log}");
    assert!(
        log.contains("split=[MASKED]"),
        "a secret split across writes must be masked:\n{log}"
    );
    assert!(log.contains("token=[MASKED]"), "{log}");
    assert!(
        log.contains("from-a-file-variable"),
        "file variables are paths to files:\n{log}"
    );
    assert!(!log.contains("SECRET_VALUE_123") && !log.contains("glcbt-"), "{log}");
}

#[tokio::test]
async fn the_job_token_works_while_the_job_runs_and_then_says_job_is_not_running() {
    let mailbox = Mailbox::start();
    let config = format!(
        "wait:\n  script:\n    - {}\n    - {}\n",
        put_cmd("token", "$CI_JOB_TOKEN"),
        wait_cmd("go")
    );
    let (s, _repo, pid, token) = setup(&config, &[]).await;
    let id = trigger(&s, pid, &token, &[("MAILBOX", &mailbox.url)]).await;
    let job_token = mailbox.wait("token").await;
    assert!(job_token.starts_with("glcbt-"), "{job_token}");
    let (status, me) = send(s.http.get(s.api("/job")).header("JOB-TOKEN", &job_token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["status"], "running");
    assert_eq!(me["pipeline"]["id"], id);
    mailbox.put("go", "1");
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
    let (status, body) = send(s.http.get(s.api("/job")).header("JOB-TOKEN", &job_token)).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Job is not running")));
    let (status, _) = send(s.http.get(s.api("/job")).header("JOB-TOKEN", "glcbt-not-a-token")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn cancel_kills_the_job_runs_after_script_and_shows_the_log_live() {
    let mailbox = Mailbox::start();
    let config = "slow:\n  script:\n    - echo first-line\n    - sleep 30 & wait\n    - curl -sf -X POST -d 1 \"$MAILBOX/put/not-killed\"\n  after_script: [echo \"cleanup status=$CI_JOB_STATUS\"]\nlater:\n  stage: deploy\n  script: [echo never]\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let id = trigger(&s, pid, &token, &[("MAILBOX", &mailbox.url)]).await;
    let all = jobs(&s, pid, id, "").await;
    let slow = job(&all, "slow")["id"].as_u64().unwrap();
    // The log is readable while the job runs.
    let start = Instant::now();
    while !trace(&s, pid, slow).await.contains("first-line") {
        assert!(start.elapsed() < Duration::from_secs(30), "no live log");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (status, j) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{slow}"))).await;
    assert_eq!((status, j["status"].as_str()), (200, Some("running")));
    let (status, j) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{slow}/cancel"))).await;
    assert_eq!(status, 201, "{j}");
    assert_eq!(j["status"], "canceled");
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "canceled");
    let start = Instant::now();
    loop {
        let log = trace(&s, pid, slow).await;
        if log.contains("ERROR: Job failed: canceled") {
            assert!(log.contains("cleanup status=canceled"), "{log}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job(&jobs(&s, pid, id, "").await, "later")["status"], "skipped");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mailbox.get("not-killed").is_none(), "the script went on after cancel");
    // Canceling a finished job answers it unchanged.
    let (status, j) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{slow}/cancel"))).await;
    assert_eq!((status, j["status"].as_str()), (201, Some("canceled")));
}

#[tokio::test]
async fn a_timeout_kills_the_process_group() {
    let config = "hang:\n  timeout: 1s\n  script: [sleep 30]\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let id = trigger(&s, pid, &token, &[]).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed");
    let all = jobs(&s, pid, id, "").await;
    let hang = job(&all, "hang");
    assert_eq!(hang["failure_reason"], "job_execution_timeout");
    assert!(hang["duration"].as_f64().unwrap() < 10.0, "{hang}");
    let log = trace(&s, pid, hang["id"].as_u64().unwrap()).await;
    assert!(
        log.contains("ERROR: Job failed: execution took longer than 1s seconds"),
        "{log}"
    );
}

#[tokio::test]
async fn retry_manual_play_and_pipeline_retry() {
    let mailbox = Mailbox::start();
    let config = "flaky:\n  retry: 1\n  script: [exit 7]\nonce:\n  script: [curl -sf \"$MAILBOX/get/fixed\"]\nship:\n  stage: deploy\n  when: manual\n  script: [echo shipped]\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let id = trigger(&s, pid, &token, &[("MAILBOX", &mailbox.url)]).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed");
    let latest = jobs(&s, pid, id, "").await;
    let with_retried = jobs(&s, pid, id, "?include_retried=true").await;
    assert_eq!(latest.iter().filter(|j| j["name"] == "flaky").count(), 1);
    assert_eq!(
        with_retried.iter().filter(|j| j["name"] == "flaky").count(),
        2,
        "retry: 1 runs twice"
    );
    assert_eq!(job(&latest, "ship")["status"], "skipped");
    // Retrying one job creates a new job; a job that is not finished cannot be retried.
    mailbox.put("fixed", "1");
    let once = job(&latest, "once")["id"].as_u64().unwrap();
    let (status, j) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{once}/retry"))).await;
    assert_eq!(status, 201, "{j}");
    assert_ne!(j["id"].as_u64().unwrap(), once);
    assert_eq!(j["name"], "once");
    let retried_once = j["id"].as_u64().unwrap();
    wait_for(&s, &format!("/projects/{pid}/jobs/{retried_once}"), |j| {
        j["status"] == "success"
    })
    .await;
    // The pipeline retry reruns the failed jobs only, and skipped jobs after them are processed
    // again (the manual job stays skipped because flaky fails again).
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{pid}/pipelines/{id}/retry"))).await;
    assert_eq!(status, 201);
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed");
    let all = jobs(&s, pid, id, "?include_retried=true").await;
    assert_eq!(all.iter().filter(|j| j["name"] == "flaky").count(), 3, "{all:?}");
    assert_eq!(all.iter().filter(|j| j["name"] == "once").count(), 2, "{all:?}");
    assert_eq!(job(&jobs(&s, pid, id, "").await, "ship")["status"], "skipped");
    let (status, body) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{once}/retry"))).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("403 Forbidden - Job is not retryable"))
    );
}

#[tokio::test]
async fn manual_jobs_wait_for_play() {
    let config = "build:\n  script: [echo built]\nship:\n  stage: deploy\n  when: manual\n  script: [echo shipped]\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let id = trigger(&s, pid, &token, &[]).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(
        p["status"], "success",
        "an optional manual job does not hold the pipeline: {p}"
    );
    let ship = job(&jobs(&s, pid, id, "").await, "ship").clone();
    assert_eq!(ship["status"], "manual");
    let ship_id = ship["id"].as_u64().unwrap();
    let (status, j) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{ship_id}/play"))).await;
    assert_eq!(status, 200, "{j}");
    let done = wait_for(&s, &format!("/projects/{pid}/jobs/{ship_id}"), |j| {
        j["status"] == "success"
    })
    .await;
    assert_eq!(done["name"], "ship");
    let (status, body) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{ship_id}/play"))).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("400 Bad request - Unplayable Job"))
    );
    // Developers may act on jobs; reporters may not.
    let (uid, reporter) = s.user("rita").await;
    s.add_member(pid, uid, 20).await;
    let (status, _) = send(s.as_token(
        &reporter,
        Method::POST,
        &format!("/projects/{pid}/jobs/{ship_id}/retry"),
    ))
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_cache_carries_paths_between_pipelines() {
    let config = "fill:\n  cache:\n    key: deps-$CI_COMMIT_REF_SLUG\n    paths: [vendor/]\n  script:\n    - if [ -f vendor/stamp ]; then echo \"cache-hit $(cat vendor/stamp)\"; else echo cache-miss; fi\n    - mkdir -p vendor && echo \"$CI_PIPELINE_ID\" > vendor/stamp\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let first = trigger(&s, pid, &token, &[]).await;
    assert_eq!(finished_pipeline(&s, pid, first).await["status"], "success");
    let second = trigger(&s, pid, &token, &[]).await;
    assert_eq!(finished_pipeline(&s, pid, second).await["status"], "success");
    let log1 = trace(
        &s,
        pid,
        job(&jobs(&s, pid, first, "").await, "fill")["id"].as_u64().unwrap(),
    )
    .await;
    let log2 = trace(
        &s,
        pid,
        job(&jobs(&s, pid, second, "").await, "fill")["id"].as_u64().unwrap(),
    )
    .await;
    assert!(log1.contains("cache-miss"), "{log1}");
    assert!(log2.contains(&format!("cache-hit {first}")), "{log2}");
}

#[tokio::test]
async fn a_log_past_the_cap_is_cut_with_a_notice() {
    let config = "noisy:\n  script: [\"yes 0123456789 | head -c 200000 || true\", echo done-after-cap]\n";
    let (s, _repo, pid, token) = setup(config, &["--max-trace-bytes", "4096"]).await;
    let id = trigger(&s, pid, &token, &[]).await;
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
    let log = trace(
        &s,
        pid,
        job(&jobs(&s, pid, id, "").await, "noisy")["id"].as_u64().unwrap(),
    )
    .await;
    assert!(log.len() < 4096 + 2048, "{} bytes", log.len());
    assert!(log.contains("Job's log exceeded limit of 4096 bytes."), "{log}");
    assert!(!log.contains("done-after-cap"));
    assert!(log.contains("Job succeeded"));
}

#[tokio::test]
async fn after_a_crash_running_jobs_fail_and_pending_ones_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config =
        "slow:\n  script: [sleep 30]\nnext:\n  stage: deploy\n  when: always\n  script: [echo after-restart]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let mut s = Server::start_on(&data, &["--concurrent", "1"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let id = trigger(&s, pid, &token, &[]).await;
    wait_for(&s, &format!("/projects/{pid}/pipelines/{id}"), |p| {
        p["status"] == "running"
    })
    .await;
    s.kill9();
    // A second pipeline created while no executor runs stays pending until one does.
    let s = Server::start_on(&data, &["--concurrent", "1"]);
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed", "{p}");
    let all = jobs(&s, pid, id, "").await;
    let slow = job(&all, "slow");
    assert_eq!(slow["failure_reason"], "runner_system_failure");
    assert_eq!(
        job(&all, "next")["status"],
        "success",
        "when: always still runs after recovery"
    );
    let log = trace(&s, pid, slow["id"].as_u64().unwrap()).await;
    assert!(log.contains("spur stopped while the job was running"), "{log}");
}

#[tokio::test]
async fn pending_jobs_wait_for_an_executor_and_run_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo ran]\n")]);
    let mut s = Server::start_on(&data, &["--concurrent", "0"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let id = trigger(&s, pid, &token, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
    assert_eq!(p["status"], "pending", "--concurrent 0 runs nothing");
    s.kill9();
    let s = Server::start_on(&data, &["--concurrent", "1"]);
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
}

#[tokio::test]
async fn a_delayed_job_keeps_its_timer_and_a_pending_one_its_place_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "later:\n  when: delayed\n  start_in: 2 seconds\n  script: [echo later]\nnow:\n  script: [echo now]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let mut s = Server::start_on(&data, &["--concurrent", "0"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let id = trigger(&s, pid, &token, &[]).await;
    s.kill9();
    let s = Server::start_on(&data, &["--concurrent", "1"]);
    // The pending job runs; the delayed one waits for its timer and then runs too.
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
    let all = jobs(&s, pid, id, "").await;
    assert_eq!(job(&all, "later")["status"], "success", "{all:?}");
}

#[tokio::test]
async fn the_api_pipeline_endpoint_runs_jobs_and_pipelines_can_be_canceled() {
    let config = "wait:\n  script: [sleep 30]\n";
    let (s, _repo, pid, _token) = setup(config, &[]).await;
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    wait_for(&s, &format!("/projects/{pid}/pipelines/{id}"), |p| {
        p["status"] == "running"
    })
    .await;
    let (status, p) = send(s.root(Method::POST, &format!("/projects/{pid}/pipelines/{id}/cancel"))).await;
    assert_eq!((status, p["status"].as_str()), (201, Some("canceled")));
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
    assert_eq!(p["source"], "api");
}

#[tokio::test]
async fn needs_skip_stage_order_and_delayed_jobs_wait_their_delay() {
    let config = "slow:\n  stage: build\n  script: [sleep 1.5]\nquick:\n  stage: build\n  script: [echo q]\nafter-quick:\n  stage: test\n  needs: [quick]\n  script: [echo aq]\nlater:\n  stage: deploy\n  when: delayed\n  start_in: 1 second\n  script: [echo later]\n";
    let (s, _repo, pid, token) = setup(config, &[]).await;
    let id = trigger(&s, pid, &token, &[]).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "success", "{p}");
    let all = jobs(&s, pid, id, "").await;
    let at = |name: &str, k: &str| job(&all, name)[k].as_str().unwrap().to_string();
    assert!(
        at("after-quick", "started_at") < at("slow", "finished_at"),
        "a job with needs starts before its stage's turn: {all:?}"
    );
    let gap = time_ms(&at("later", "started_at")) - time_ms(&at("slow", "finished_at"));
    assert!(gap >= 900, "the delayed job started {gap} ms after its stage's turn");
}

/// Milliseconds of a `2026-01-02T03:04:05.678Z` timestamp within its day (enough for gaps).
fn time_ms(iso: &str) -> i64 {
    let t = &iso[11..23];
    let h: i64 = t[0..2].parse().unwrap();
    let m: i64 = t[3..5].parse().unwrap();
    let s: i64 = t[6..8].parse().unwrap();
    let ms: i64 = t[9..12].parse().unwrap();
    ((h * 60 + m) * 60 + s) * 1000 + ms
}
