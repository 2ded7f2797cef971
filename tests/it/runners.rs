//! GitLab runners at the protocol level: creating and registering runners, handing out jobs
//! (tags, exactly once, long polling), state updates, the live log at exact offsets, cancel
//! through `Job-Status`, silent runners, git over HTTP with the job token, and artifacts.

use crate::support::{ROOT_TOKEN, Repo, Server, git, job_log, send, send_raw, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A protocol-level runner: the calls gitlab-runner makes, nothing more.
pub struct Runner {
    http: reqwest::Client,
    base: String,
    /// Its authentication token.
    pub token: String,
}

impl Runner {
    /// An admin-created runner (`POST /user/runners`) with `tags`.
    pub async fn create(s: &Server, tags: &str, run_untagged: bool) -> Runner {
        let (status, body) = send(s.root(Method::POST, "/user/runners").json(&json!({
            "runner_type": "instance_type", "description": format!("test {tags}"),
            "tag_list": tags, "run_untagged": run_untagged,
        })))
        .await;
        assert_eq!(status, 201, "{body}");
        let token = body["token"].as_str().unwrap().to_string();
        assert!(token.starts_with("glrt-"), "{token}");
        Runner {
            http: crate::support::http_client(),
            base: s.base.clone(),
            token,
        }
    }

    /// `POST /jobs/request`; `last_update` turns on long polling.
    pub async fn request(&self, last_update: Option<&str>) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut body = json!({"token": self.token, "info": {"name": "test-runner", "features": {"trace_reset": true}}});
        if let Some(v) = last_update {
            body["last_update"] = json!(v);
        }
        let resp = self
            .http
            .post(format!("{}/api/v4/jobs/request", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
    }

    /// `PUT /jobs/:id` with `state` (and more fields); status and `Job-Status`.
    pub async fn update(&self, job: &Value, fields: Value) -> (u16, String) {
        let mut body = json!({"token": job["token"]});
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        let resp = self
            .http
            .put(format!("{}/api/v4/jobs/{}", self.base, job["id"]))
            .header("JOB-TOKEN", job["token"].as_str().unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), header(resp.headers(), "job-status"))
    }

    /// `PATCH /jobs/:id/trace` with `Content-Range: start-end` (inclusive end, as Go sends).
    pub async fn patch(&self, job: &Value, start: usize, bytes: &str) -> (u16, String, String) {
        let end = (start + bytes.len()).saturating_sub(1);
        let resp = self
            .http
            .patch(format!("{}/api/v4/jobs/{}/trace", self.base, job["id"]))
            .header("JOB-TOKEN", job["token"].as_str().unwrap())
            .header("Content-Type", "text/plain")
            .header("Content-Range", format!("{start}-{end}"))
            .body(bytes.to_string())
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            header(resp.headers(), "range"),
            header(resp.headers(), "job-status"),
        )
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The value of variable `key` in a job payload.
pub fn variable<'a>(job: &'a Value, key: &str) -> &'a Value {
    job["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in the payload"))
}

const CONFIG: &str = r#"
stages: [build, test]
variables:
  GREETING: hello
compile:
  stage: build
  tags: [linux]
  before_script: [echo before]
  script: [echo "$GREETING", make]
  after_script: [echo after]
  artifacts:
    name: bin-$CI_JOB_NAME
    paths: [out/]
    expire_in: 1 week
check:
  stage: test
  tags: [linux]
  script: [ls out]
"#;

/// A server without the built-in executor, a project, and a triggered pipeline.
async fn setup(config: &str, extra: &[&str]) -> (Server, Repo, u64, u64) {
    let mut flags = vec!["--concurrent", "0", "--runner-poll-timeout", "2s"];
    flags.extend_from_slice(extra);
    let s = Server::start_with(&flags);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config), ("README.md", "# demo\n")]);
    let pid = s.project("demo", repo.path()).await;
    let pipeline = trigger(&s, pid).await;
    (s, repo, pid, pipeline)
}

/// Triggers a pipeline on `main` as root; answers its id.
pub async fn trigger(s: &Server, pid: u64) -> u64 {
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_u64().unwrap()
}

#[tokio::test]
async fn admins_create_runners_and_runners_verify_and_unregister() {
    let s = Server::start();
    let (_, member) = s.user("dev").await;
    let body = json!({"runner_type": "instance_type"});
    let (status, _) = send(s.as_token(&member, Method::POST, "/user/runners").json(&body)).await;
    assert_eq!(status, 403);
    let (status, _) = send(s.anon(Method::POST, "/user/runners").json(&body)).await;
    assert_eq!(status, 401);
    let (status, e) = send(s.root(Method::POST, "/user/runners").json(&json!({}))).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("runner_type is missing")));
    let (status, e) = send(
        s.root(Method::POST, "/user/runners")
            .json(&json!({"runner_type": "instance_type", "run_untagged": false})),
    )
    .await;
    assert_eq!(status, 400, "{e}");

    let runner = Runner::create(&s, "docker, linux", false).await;
    // The admin list filters as GitLab's does.
    let (_, tagged) = send(s.root(Method::GET, "/runners/all?tag_list=docker,linux&type=instance_type")).await;
    assert_eq!(tagged.as_array().unwrap().len(), 1, "{tagged}");
    let (_, none) = send(s.root(Method::GET, "/runners/all?tag_list=windows")).await;
    assert_eq!(none, json!([]));
    let (_, paused) = send(s.root(Method::GET, "/runners/all?paused=True")).await;
    assert_eq!(paused, json!([]));
    let (status, _) = send(s.root(Method::GET, "/runners/all?type=alien")).await;
    assert_eq!(status, 400);
    let verify = s
        .http
        .post(s.api("/runners/verify"))
        .json(&json!({"token": runner.token, "system_id": "s_0123456789ab"}));
    let resp = send_raw(verify).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "content-type"), "application/json");
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["token"], runner.token.as_str());
    let (status, _) = send(
        s.http
            .post(s.api("/runners/verify"))
            .json(&json!({"token": "glrt-nope"})),
    )
    .await;
    assert_eq!(status, 403);

    let (status, _) = send(
        s.http
            .get(s.api("/runners/router/discovery"))
            .header("RUNNER-TOKEN", &runner.token),
    )
    .await;
    assert_eq!(status, 501, "no job router: the runner falls back to polling");
    let (status, list) = send(s.root(Method::GET, "/runners/all")).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["status"], "online", "{list}");
    let id = list[0]["id"].as_u64().unwrap();
    let (_, details) = send(s.root(Method::GET, &format!("/runners/{id}"))).await;
    assert_eq!(details["tag_list"], json!(["docker", "linux"]));
    assert_eq!(details["run_untagged"], false);
    let (status, _) = send(s.as_token(&member, Method::GET, "/runners/all")).await;
    assert_eq!(status, 403);
    let (status, paused) = send(
        s.root(Method::PUT, &format!("/runners/{id}"))
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!((status, &paused["paused"]), (200, &json!(true)));

    // Managers: a known system_id goes, an unknown one is 404.
    let del = |system_id: &str| {
        s.http
            .delete(s.api("/runners/managers"))
            .json(&json!({"token": runner.token, "system_id": system_id}))
    };
    assert_eq!(send(del("s_unknown")).await.0, 404);
    assert_eq!(send(del("s_0123456789ab")).await.0, 204);
    // Unregistering deletes the runner; its token is dead.
    let (status, _) = send(
        s.http
            .delete(s.api("/runners"))
            .form(&[("token", runner.token.as_str())]),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        s.http
            .post(s.api("/jobs/request"))
            .json(&json!({"token": runner.token})),
    )
    .await;
    assert_eq!(status, 403);
    let (_, list) = send(s.root(Method::GET, "/runners/all")).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn jobs_go_to_runners_with_their_tags_exactly_once() {
    let (s, repo, pid, pipeline) = setup(CONFIG, &[]).await;
    let docker = Runner::create(&s, "docker", true).await;
    let linux = Runner::create(&s, "linux,docker", false).await;
    let (status, _, headers) = docker.request(None).await;
    assert_eq!(status, 204, "the docker runner lacks the linux tag");
    assert!(!header(&headers, "x-gitlab-last-update").is_empty());

    let (status, job, headers) = linux.request(None).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(job["job_info"]["name"], "compile");
    assert_eq!(job["job_info"]["project_full_path"], "root/demo");
    assert_eq!(job["git_info"]["sha"], repo.sha("main").as_str());
    assert_eq!(job["git_info"]["ref"], "main");
    assert_eq!(job["git_info"]["ref_type"], "branch");
    assert_eq!(job["git_info"]["protected"], true, "the default branch");
    assert_eq!(variable(&job, "CI_COMMIT_REF_PROTECTED")["value"], "true");
    let repo_url = job["git_info"]["repo_url"].as_str().unwrap();
    assert_eq!(
        repo_url,
        format!("{}/root/demo.git", s.base).replacen(
            "://",
            &format!("://gitlab-ci-token:{}@", job["token"].as_str().unwrap()),
            1
        )
    );
    assert_eq!(
        job["git_info"]["refspecs"][0],
        format!("+{}:refs/pipelines/{pipeline}", repo.sha("main")).as_str()
    );
    assert_eq!(
        job["steps"][0]["script"],
        json!(["echo before", "echo \"$GREETING\"", "make"])
    );
    assert_eq!(job["steps"][1]["name"], "after_script");
    assert_eq!(job["steps"][1]["when"], "always");
    assert_eq!(job["runner_info"]["timeout"], 3600);
    assert_eq!(job["artifacts"][0]["paths"], json!(["out/"]));
    assert_eq!(job["artifacts"][0]["name"], "bin-compile");
    assert_eq!(job["dependencies"], json!([]));
    let token = variable(&job, "CI_JOB_TOKEN");
    assert_eq!(
        (&token["value"], &token["masked"], &token["public"]),
        (&job["token"], &json!(true), &json!(false))
    );
    for key in [
        "CI_SERVER_URL",
        "CI_PROJECT_PATH",
        "CI_COMMIT_SHA",
        "CI_CONFIG_PATH",
        "CI_JOB_URL",
        "CI_PIPELINE_ID",
        "GITLAB_USER_LOGIN",
    ] {
        variable(&job, key);
    }
    assert_eq!(variable(&job, "GREETING")["value"], "hello");
    assert_eq!(variable(&job, "CI_PROJECT_PATH")["value"], "root/demo");

    // The job is taken: nobody gets it again, and the API shows it running on that runner.
    let (status, _, _) = linux.request(None).await;
    assert_eq!(status, 204);
    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", job["id"]))).await;
    assert_eq!(shown["status"], "running");
    assert_eq!(shown["runner"]["description"], "test linux,docker");
}

#[tokio::test]
async fn the_log_is_appended_at_exact_offsets_and_states_end_the_job() {
    let (s, _repo, pid, pipeline) = setup(CONFIG, &[]).await;
    let runner = Runner::create(&s, "linux", false).await;
    let (_, job, _) = runner.request(None).await;
    let (status, job_status) = runner.update(&job, json!({"state": "running"})).await;
    assert_eq!((status, job_status.as_str()), (200, "running"));

    assert_eq!(
        runner.patch(&job, 0, "hello ").await,
        (202, "0-6".into(), "running".into())
    );
    assert_eq!(runner.patch(&job, 6, "world\n").await.0, 202);
    // A patch that does not start where the log ends is refused with the length to resume at.
    let (status, range, _) = runner.patch(&job, 3, "xyz").await;
    assert_eq!((status, range.as_str()), (416, "0-12"));
    assert_eq!(job_log(&s, pid, &job["id"]).await, "hello world\n");
    // No Content-Range: 400; a wrong job token: 403.
    let url = format!("{}/api/v4/jobs/{}/trace", s.base, job["id"]);
    let token = job["token"].as_str().unwrap();
    let (status, _) = send(s.http.patch(&url).header("JOB-TOKEN", token).body("x")).await;
    assert_eq!(status, 400);
    let (status, _) = send(
        s.http
            .patch(&url)
            .header("JOB-TOKEN", "glcbt-wrong")
            .header("Content-Range", "12-12")
            .body("x"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, e) = send(
        s.http
            .put(format!("{}/api/v4/jobs/{}", s.base, job["id"]))
            .json(&json!({"token": token, "state": "exploded"})),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("state does not have a valid value"))
    );

    let (status, job_status) = runner
        .update(
            &job,
            json!({"state": "failed", "failure_reason": "script_failure", "exit_code": 2}),
        )
        .await;
    assert_eq!((status, job_status.as_str()), (200, "failed"));
    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", job["id"]))).await;
    assert_eq!(
        (&shown["status"], &shown["failure_reason"]),
        (&json!("failed"), &json!("script_failure"))
    );
    // The job is over: its token no longer reports anything.
    let (status, job_status) = runner.update(&job, json!({"state": "success"})).await;
    assert_eq!((status, job_status.as_str()), (403, "failed"));
    assert_eq!(runner.patch(&job, 12, "late").await.0, 403);
    let p = wait_for(&s, &format!("/projects/{pid}/pipelines/{pipeline}"), |p| {
        p["status"] == "failed"
    })
    .await;
    assert_eq!(p["status"], "failed");
}

#[tokio::test]
async fn a_canceled_job_stops_its_runner_through_job_status() {
    let (s, _repo, pid, _pipeline) = setup(CONFIG, &[]).await;
    let runner = Runner::create(&s, "linux", false).await;
    let (_, job, _) = runner.request(None).await;
    assert_eq!(runner.patch(&job, 0, "working\n").await.0, 202);
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{}/cancel", job["id"]))).await;
    assert_eq!(status, 201);
    let (status, _, job_status) = runner.patch(&job, 8, "more\n").await;
    assert_eq!((status, job_status.as_str()), (403, "canceled"));
    let (status, job_status) = runner.update(&job, json!({"state": "success"})).await;
    assert_eq!((status, job_status.as_str()), (403, "canceled"));
    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", job["id"]))).await;
    assert_eq!(shown["status"], "canceled");
}

#[tokio::test]
async fn a_runner_that_cancels_gracefully_gets_canceling_and_runs_its_after_script() {
    let (s, _repo, pid, _pipeline) = setup(CONFIG, &[]).await;
    let runner = Runner::create(&s, "linux", false).await;
    let body = json!({"token": runner.token, "info": {"features": {"cancel_gracefully": true}}});
    let (status, job) = send(s.http.post(s.api("/jobs/request")).json(&body)).await;
    assert_eq!(status, 201);
    assert_eq!(runner.patch(&job, 0, "working\n").await.0, 202);
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{}/cancel", job["id"]))).await;
    assert_eq!(status, 201);
    // The runner is told to cancel gracefully: it may still send its after_script's output.
    assert_eq!(
        runner.patch(&job, 8, "after\n").await,
        (202, "0-14".into(), "canceling".into())
    );
    assert_eq!(
        runner.update(&job, json!({"state": "running"})).await,
        (200, "canceling".into())
    );
    assert_eq!(
        runner
            .update(&job, json!({"state": "failed", "failure_reason": "job_canceled"}))
            .await,
        (200, "canceled".into())
    );
    // Then the job is over for it.
    assert_eq!(runner.patch(&job, 14, "late\n").await.0, 403);
    assert_eq!(job_log(&s, pid, &job["id"]).await, "working\nafter\n");
    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", job["id"]))).await;
    assert_eq!(shown["status"], "canceled");
}

#[tokio::test]
async fn idle_runners_are_held_until_a_job_arrives() {
    let s = Server::start_with(&["--concurrent", "0", "--runner-poll-timeout", "10s"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo hi]\n")]);
    let pid = s.project("demo", repo.path()).await;
    let runner = Runner::create(&s, "", true).await;
    let (status, _, headers) = runner.request(None).await;
    assert_eq!(status, 204);
    let version = header(&headers, "x-gitlab-last-update");
    let started = Instant::now();
    let waiting = runner.request(Some(&version));
    let triggering = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger(&s, pid).await
    };
    let ((status, job, _), _) = tokio::join!(waiting, triggering);
    assert_eq!(status, 201, "{job}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
}

#[tokio::test]
async fn long_polls_end_in_204_and_runners_that_go_silent_fail_their_job() {
    let (s, _repo, pid, pipeline) = setup(CONFIG, &["--runner-job-timeout", "2s"]).await;
    let runner = Runner::create(&s, "linux", false).await;
    let (_, job, _) = runner.request(None).await;
    // The next job waits for `compile`: the poll is held for --runner-poll-timeout, then 204.
    let started = Instant::now();
    let (status, _, headers) = runner.request(Some("0")).await;
    assert_eq!(status, 204);
    assert_eq!(header(&headers, "gitlab-ci-builds-polling"), "yes");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // The runner never reports on `compile` again: it fails as a runner system failure.
    let shown = wait_for(&s, &format!("/projects/{pid}/jobs/{}", job["id"]), |j| {
        j["status"] == "failed"
    })
    .await;
    assert_eq!(shown["failure_reason"], "runner_system_failure");
    assert!(job_log(&s, pid, &job["id"]).await.contains("has not reported"));
    let p = wait_for(&s, &format!("/projects/{pid}/pipelines/{pipeline}"), |p| {
        p["status"] == "failed"
    })
    .await;
    assert_eq!(p["status"], "failed");
}

#[tokio::test]
async fn runners_clone_over_http_with_the_job_token_and_users_with_a_token() {
    let (s, repo, pid, _pipeline) = setup(CONFIG, &[]).await;
    let runner = Runner::create(&s, "linux", false).await;
    let (_, job, _) = runner.request(None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = job["git_info"]["repo_url"].as_str().unwrap();
    // What gitlab-runner does: init, fetch the refspecs shallowly, check out the sha.
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q"]);
    let mut fetch = vec!["fetch", "-q", "--depth", "20", url];
    let specs: Vec<String> = job["git_info"]["refspecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    fetch.extend(specs.iter().map(String::as_str));
    git(&work, &fetch);
    git(
        &work,
        &["checkout", "-q", "-f", job["git_info"]["sha"].as_str().unwrap()],
    );
    assert!(work.join("README.md").exists());

    // Without credentials: a Basic challenge; with a wrong token: refused.
    let refs = format!("{}/root/demo.git/info/refs?service=git-upload-pack", s.base);
    let resp = send_raw(s.http.get(&refs)).await;
    assert_eq!(resp.status(), 401);
    assert!(header(resp.headers(), "www-authenticate").starts_with("Basic"));
    let resp = send_raw(s.http.get(&refs).basic_auth("gitlab-ci-token", Some("glcbt-wrong"))).await;
    assert_eq!(resp.status(), 401);
    let resp = send_raw(
        s.http
            .get(&refs)
            .basic_auth("gitlab-ci-token", Some(job["token"].as_str().unwrap())),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(resp.headers(), "content-type"),
        "application/x-git-upload-pack-advertisement"
    );
    // Pushing is refused.
    let push = format!("{}/root/demo.git/info/refs?service=git-receive-pack", s.base);
    assert_eq!(
        send_raw(s.http.get(&push).basic_auth("root", Some(ROOT_TOKEN)))
            .await
            .status(),
        403
    );

    // Users: a reporter clones with a personal access token; a stranger's project is not found.
    let (uid, pat) = s.user("rita").await;
    let user_url = |user: &str, token: &str| {
        format!("{}/root/demo.git", s.base).replacen("://", &format!("://{user}:{token}@"), 1)
    };
    let denied = std::process::Command::new("git")
        .args(["ls-remote", &user_url("rita", &pat)])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(!denied.status.success());
    s.add_member(pid, uid, 20).await;
    git(dir.path(), &["clone", "-q", &user_url("rita", &pat), "mine"]);
    assert_eq!(git(&dir.path().join("mine"), &["rev-parse", "HEAD"]), repo.sha("main"));
    // Once the job ends its token no longer opens the repository.
    runner.update(&job, json!({"state": "success"})).await;
    let resp = send_raw(
        s.http
            .get(&refs)
            .basic_auth("gitlab-ci-token", Some(job["token"].as_str().unwrap())),
    )
    .await;
    assert_eq!(resp.status(), 401);
}

/// A zip holding `files`, made with the `zip` crate as a runner would.
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn runners_upload_artifacts_and_later_jobs_and_users_download_them() {
    let (s, _repo, pid, _pipeline) = setup(
        CONFIG,
        &["--retention-interval", "1s", "--max-artifacts-bytes", "100000"],
    )
    .await;
    let runner = Runner::create(&s, "linux", false).await;
    let (_, compile, _) = runner.request(None).await;
    let upload = |job: &Value| format!("{}/api/v4/jobs/{}/artifacts", s.base, job["id"]);
    let token = compile["token"].as_str().unwrap().to_string();

    // Too large: 413, nothing kept.
    let big = "x".repeat(200_000);
    let part = reqwest::multipart::Part::bytes(big.into_bytes()).file_name("artifacts.zip");
    let form = reqwest::multipart::Form::new().part("file", part);
    let (status, _) = send(
        s.http
            .post(upload(&compile))
            .header("JOB-TOKEN", &token)
            .multipart(form),
    )
    .await;
    assert_eq!(status, 413);
    // Streamed with chunked encoding, the format and type as form fields (curl, as the Rust
    // runner client sends it).
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, zip_of(&[("out/app", "binary"), ("out/notes.txt", "notes")])).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Transfer-Encoding: chunked",
        ])
        .args(["-H", &format!("JOB-TOKEN: {token}")])
        .args([
            "-F",
            &format!("file=@{}", archive.display()),
            "-F",
            "artifact_format=zip",
            "-F",
            "artifact_type=archive",
        ])
        .arg(upload(&compile))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201");
    // A junit report is gzip, one member a file, as gitlab-runner packs it: it becomes the
    // job's test report. Other reports are accepted and not kept.
    let mut gz = gzip(br#"<testsuite name="a"><testcase classname="c" name="one"/></testsuite>"#);
    gz.extend(gzip(
        br#"<testsuite name="b"><testcase name="two"><failure>boom</failure></testcase></testsuite>"#,
    ));
    for (kind, format, body) in [("junit", "gzip", gz), ("dotenv", "gzip", gzip(b"A=1"))] {
        let part = reqwest::multipart::Part::bytes(body).file_name("junit.xml.gz");
        let form = reqwest::multipart::Form::new().part("file", part);
        let url = format!("{}?artifact_type={kind}&artifact_format={format}", upload(&compile));
        assert_eq!(
            send(s.http.post(url).header("JOB-TOKEN", &token).multipart(form))
                .await
                .0,
            201
        );
    }
    let pipeline_id = compile["job_info"]["pipeline_id"].as_u64().unwrap();
    let (_, report) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/pipelines/{pipeline_id}/test_report"),
    ))
    .await;
    assert_eq!(
        (&report["total_count"], &report["failed_count"]),
        (&2.into(), &1.into()),
        "{report}"
    );
    assert_eq!(report["test_suites"][0]["name"], "compile");
    assert_eq!(report["test_suites"][0]["test_cases"][0]["system_output"], "boom");
    // A small gzip that unpacks past --max-test-report-bytes is refused like a large one.
    let bomb = gzip(&vec![b' '; 20 << 20]);
    let part = reqwest::multipart::Part::bytes(bomb).file_name("junit.xml.gz");
    let form = reqwest::multipart::Form::new().part("file", part);
    let url = format!("{}?artifact_type=junit&artifact_format=gzip", upload(&compile));
    assert_eq!(
        send(s.http.post(url).header("JOB-TOKEN", &token).multipart(form))
            .await
            .0,
        413
    );
    runner.update(&compile, json!({"state": "success"})).await;

    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", compile["id"]))).await;
    assert_eq!(shown["artifacts_file"]["filename"], "bin-compile.zip", "{shown}");
    assert!(shown["artifacts_expire_at"].is_string(), "expire_in: 1 week");

    // The next stage's job lists compile as a dependency and downloads it with its own token.
    let (status, check, _) = runner.request(None).await;
    assert_eq!(status, 201);
    let dep = &check["dependencies"][0];
    assert_eq!((&dep["id"], &dep["name"]), (&compile["id"], &json!("compile")));
    assert_eq!(dep["artifacts_file"]["filename"], "bin-compile.zip");
    let url = format!("{}/api/v4/jobs/{}/artifacts", s.base, compile["id"]);
    let resp = send_raw(s.http.get(&url).header("JOB-TOKEN", dep["token"].as_str().unwrap())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        std::fs::read(&archive).unwrap().as_slice()
    );
    assert_eq!(send(s.http.get(&url).header("JOB-TOKEN", "glcbt-nope")).await.0, 401);

    // Users download it through the API; strangers to the private project cannot.
    let user_url = format!("/projects/{pid}/jobs/{}/artifacts", compile["id"]);
    let resp = send_raw(s.root(Method::GET, &user_url)).await;
    assert_eq!(resp.status(), 200);
    assert!(header(resp.headers(), "content-disposition").contains("bin-compile.zip"));
    let (_, stranger) = s.user("stranger").await;
    assert_eq!(send(s.as_token(&stranger, Method::GET, &user_url)).await.0, 404);
    runner.update(&check, json!({"state": "success"})).await;

    // The runner's jobs, as administrators list them.
    let (_, runners) = send(s.root(Method::GET, "/runners/all")).await;
    let runner_id = runners[0]["id"].as_u64().unwrap();
    let (_, owned) = send(s.root(Method::GET, "/runners")).await;
    assert_eq!(
        owned,
        json!([]),
        "an instance runner is nobody's own (GitLab's ci_owned_runners)"
    );
    assert_eq!(send(s.root(Method::GET, "/runners?type=bogus")).await.0, 400);
    let (status, jobs) = send(s.root(Method::GET, &format!("/runners/{runner_id}/jobs?sort=asc"))).await;
    assert_eq!(status, 200, "{jobs}");
    let ids: Vec<&Value> = jobs.as_array().unwrap().iter().map(|j| &j["id"]).collect();
    assert_eq!(ids, vec![&compile["id"], &check["id"]]);
    assert_eq!(jobs[0]["project"]["id"].as_u64(), Some(pid));
    let (_, failed) = send(s.root(Method::GET, &format!("/runners/{runner_id}/jobs?status=failed"))).await;
    assert_eq!(failed, json!([]));
    assert_eq!(
        send(s.root(Method::GET, &format!("/runners/{runner_id}/jobs?status=nope")))
            .await
            .0,
        400
    );
    assert_eq!(
        send(s.as_token(&stranger, Method::GET, &format!("/runners/{runner_id}/jobs")))
            .await
            .0,
        403
    );

    // Erasing a job removes its log and artifacts, once; a Developer may erase only their own.
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    let erase = format!("/projects/{pid}/jobs/{}/erase", compile["id"]);
    assert_eq!(send(s.as_token(&dev, Method::POST, &erase)).await.0, 403);
    let (status, erased) = send(s.root(Method::POST, &erase)).await;
    assert_eq!(status, 201, "{erased}");
    assert!(erased["erased_at"].is_string());
    assert!(erased.get("artifacts_file").is_none(), "{erased}");
    assert_eq!(send_raw(s.root(Method::GET, &user_url)).await.status(), 404);
    let trace = send_raw(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}/trace", compile["id"]))).await;
    assert_eq!(trace.text().await.unwrap(), "");
    assert_eq!(
        send(s.root(Method::POST, &erase)).await,
        (403, json!({"message": "403 Forbidden - Job is not erasable!"}))
    );
}

#[tokio::test]
async fn expired_artifacts_are_deleted() {
    let config = "make:\n  script: [mkdir -p out, echo built > out/result]\n  artifacts:\n    paths: [out/]\n    expire_in: 2 seconds\n";
    let s = Server::start_with(&["--concurrent", "1", "--retention-interval", "1s"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let pipeline = trigger(&s, pid).await;
    let p = crate::support::finished_pipeline(&s, pid, pipeline).await;
    assert_eq!(p["status"], "success");
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}/jobs"))).await;
    let job_id = jobs[0]["id"].as_u64().unwrap();
    assert!(jobs[0]["artifacts_file"]["size"].as_u64().unwrap() > 0, "{jobs}");
    let file = s.data_dir.join(format!("artifacts/{job_id}.zip"));
    assert!(file.exists());
    wait_for(&s, &format!("/projects/{pid}/jobs/{job_id}"), |j| {
        j["artifacts_file"].is_null()
    })
    .await;
    // The record goes first (a crash leaves a stray file, never a record without its file);
    // the file follows the commit the API already shows.
    let start = std::time::Instant::now();
    while file.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the expired file stayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{job_id}/artifacts")))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn the_built_in_executor_keeps_artifacts_and_hands_them_to_dependencies() {
    let config = r#"
stages: [build, test]
build:
  stage: build
  script:
    - mkdir -p out/logs
    - echo compiled > out/app
    - echo noise > out/logs/debug.log
    - ln -s /etc/hostname out/host-link
  artifacts:
    paths: [out/, missing/]
    exclude: ["out/logs/**"]
lint:
  stage: build
  script: [echo lint > lint.txt]
  artifacts:
    paths: [lint.txt]
    when: on_failure
test:
  stage: test
  script:
    - cat out/app
    - test ! -e out/logs/debug.log && echo "no logs"
    - test ! -e lint.txt && echo "no lint"
only-build:
  stage: test
  dependencies: []
  script: [test ! -e out/app && echo "no deps"]
"#;
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let pipeline = trigger(&s, pid).await;
    let p = crate::support::finished_pipeline(&s, pid, pipeline).await;
    let (_, jobs) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/pipelines/{pipeline}/jobs?per_page=50"),
    ))
    .await;
    assert_eq!(p["status"], "success", "{jobs}");
    let find = |name: &str| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
            .clone()
    };
    let build_log = job_log(&s, pid, &find("build")["id"]).await;
    assert!(build_log.contains("missing/: no matching files"), "{build_log}");
    assert!(
        build_log.contains("Uploading artifacts for successful job"),
        "{build_log}"
    );
    assert!(
        find("lint")["artifacts_file"].is_null(),
        "when: on_failure keeps nothing on success"
    );
    let test_log = job_log(&s, pid, &find("test")["id"]).await;
    assert!(test_log.contains("Downloading artifacts for build"), "{test_log}");
    assert!(
        test_log.contains("compiled") && test_log.contains("no logs") && test_log.contains("no lint"),
        "{test_log}"
    );
    assert!(job_log(&s, pid, &find("only-build")["id"]).await.contains("no deps"));
    // The archive holds exactly out/app.
    let resp = send_raw(s.root(
        Method::GET,
        &format!("/projects/{pid}/jobs/{}/artifacts", find("build")["id"]),
    ))
    .await;
    let bytes = resp.bytes().await.unwrap();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    assert_eq!(names, ["out/app"]);
}

/// A protocol-level runner that takes jobs until `done` and reports each a success; answers
/// the ids it ran.
async fn drain(runner: Runner, done: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Vec<u64> {
    let mut ran = Vec::new();
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let (status, job, _) = runner.request(Some("0")).await;
        if status == 201 {
            assert_eq!(runner.patch(&job, 0, "remote\n").await.0, 202);
            assert_eq!(runner.update(&job, json!({"state": "success"})).await.0, 200);
            ran.push(job["id"].as_u64().unwrap());
        }
    }
    ran
}

#[tokio::test]
async fn two_runners_and_the_built_in_executor_drain_200_jobs_each_run_once() {
    let mailbox = crate::support::Mailbox::start();
    let config = format!(
        "work:\n  parallel: 50\n  script: [curl -sf -X POST -d 1 \"{}/put/ran-$CI_JOB_ID\"]\n",
        mailbox.url
    );
    let s = Server::start_with(&["--concurrent", "2", "--runner-poll-timeout", "1s"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", &config)]);
    let pid = s.project("demo", repo.path()).await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let a = tokio::spawn(drain(Runner::create(&s, "", true).await, done.clone()));
    let b = tokio::spawn(drain(Runner::create(&s, "", true).await, done.clone()));
    let mut pipelines = Vec::new();
    for _ in 0..4 {
        pipelines.push(trigger(&s, pid).await);
    }
    for p in &pipelines {
        let p = crate::support::finished_pipeline(&s, pid, *p).await;
        assert_eq!(p["status"], "success");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let local: Vec<u64> = mailbox
        .names()
        .iter()
        .filter_map(|n| n.strip_prefix("ran-"))
        .map(|id| id.parse().unwrap())
        .collect();
    let mut all: Vec<u64> = a.iter().chain(&b).chain(&local).copied().collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (200, 200),
        "runner a {}, runner b {}, spur {}",
        a.len(),
        b.len(),
        local.len()
    );
    let mut jobs = Vec::new();
    for p in &pipelines {
        let (_, page) = send(s.root(
            Method::GET,
            &format!("/projects/{pid}/pipelines/{p}/jobs?per_page=100&include_retried=true"),
        ))
        .await;
        jobs.extend(page.as_array().unwrap().iter().map(|j| j["id"].as_u64().unwrap()));
    }
    jobs.sort();
    assert_eq!(jobs, all, "every job ran, once, and no job was retried");
    eprintln!(
        "runner a ran {}, runner b {}, the built-in executor {}",
        a.len(),
        b.len(),
        local.len()
    );
}

#[tokio::test]
async fn a_job_on_a_runner_survives_a_server_restart() {
    let (mut s, _repo, pid, pipeline) = setup(CONFIG, &[]).await;
    let runner = Runner::create(&s, "linux", false).await;
    let (_, job, _) = runner.request(None).await;
    assert_eq!(runner.patch(&job, 0, "before\n").await.0, 202);
    assert!(s.terminate(Duration::from_secs(20)), "spur stops cleanly");
    let data_dir = s.data_dir.clone();
    let s2 = Server::start_on(&data_dir, &["--concurrent", "0"]);
    let runner = Runner {
        base: s2.base.clone(),
        ..runner
    };
    // The runner never noticed: it goes on reporting, and the job ends as it says.
    assert_eq!(
        runner.patch(&job, 7, "after\n").await,
        (202, "0-13".into(), "running".into())
    );
    assert_eq!(runner.update(&job, json!({"state": "success"})).await.0, 200);
    assert_eq!(job_log(&s2, pid, &job["id"]).await, "before\nafter\n");
    let (_, shown) = send(s2.root(Method::GET, &format!("/projects/{pid}/jobs/{}", job["id"]))).await;
    assert_eq!(shown["status"], "success");
    let (_, p) = send(s2.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}"))).await;
    assert_eq!(p["status"], "running", "the next stage's job waits for a runner");
    drop(s);
}

#[tokio::test]
async fn the_admin_runners_page_creates_pauses_and_deletes_runners() {
    let s = Server::start();
    let mut browser = crate::ui::Browser::new(&s);
    browser.sign_in("root", "root-password-123").await;
    let (status, page, _) = browser.get("/admin/runners").await;
    assert_eq!(status, 200);
    let csrf = crate::ui::csrf_of(&page);
    let marker = "id=\"registration-token\" value=\"";
    let old_registration = page[page.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("runner[description]", "<b>ci box</b>"),
        ("runner[tag_list]", "docker, arm64"),
        ("runner[run_untagged]", "true"),
    ];
    let (status, page, _, _) = browser.post("/admin/runners", &form).await;
    assert_eq!(status, 200);
    assert!(page.contains("ci box") && !page.contains("<b>ci box"), "escaped");
    let marker = "id=\"created-runner-token\" readonly value=\"";
    let marker = if page.contains(marker) {
        marker
    } else {
        "id=\"created-runner-token\" value=\""
    };
    let token = page[page.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(token.starts_with("glrt-"), "{token}");
    let (status, _) = send(s.http.post(s.api("/runners/verify")).json(&json!({"token": token}))).await;
    assert_eq!(status, 200);
    let (_, list) = send(s.root(Method::GET, "/runners/all")).await;
    let id = list[0]["id"].as_u64().unwrap();

    // Without the CSRF token nothing changes.
    let (status, _, _, _) = browser.post(&format!("/admin/runners/{id}/pause"), &[]).await;
    assert_eq!(status, 422);
    let (_, details) = send(s.root(Method::GET, &format!("/runners/{id}"))).await;
    assert_eq!(details["paused"], false);
    let (status, _, _, _) = browser
        .post(&format!("/admin/runners/{id}/pause"), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(status, 302);
    let (_, details) = send(s.root(Method::GET, &format!("/runners/{id}"))).await;
    assert_eq!(details["paused"], true);
    let (status, _, _) = Runner {
        http: crate::support::http_client(),
        base: s.base.clone(),
        token: token.clone(),
    }
    .request(None)
    .await;
    assert_eq!(status, 204, "a paused runner gets no job, and no 403");

    // Resetting the registration token ends the old one.
    browser
        .post(
            "/admin/runners/reset_registration_token",
            &[("authenticity_token", &csrf)],
        )
        .await;
    let (status, _) = send(s.http.post(s.api("/runners")).json(&json!({"token": old_registration}))).await;
    assert_eq!(status, 403);
    let (_, page, _) = browser.get("/admin/runners").await;
    let marker = "id=\"registration-token\" value=\"";
    let new_registration = page[page.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(new_registration, old_registration);
    let (status, body) = send(
        s.http
            .post(s.api("/runners"))
            .json(&json!({"token": new_registration, "description": "legacy", "tag_list": "a,b"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token_expires_at"], Value::Null);

    browser
        .post(&format!("/admin/runners/{id}/delete"), &[("authenticity_token", &csrf)])
        .await;
    let (status, _) = send(s.http.post(s.api("/runners/verify")).json(&json!({"token": token}))).await;
    assert_eq!(status, 403);
    // Strangers are sent to sign in.
    let mut other = crate::ui::Browser::new(&s);
    let (status, _, location) = other.get("/admin/runners").await;
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("/users/sign_in"));
}

#[tokio::test]
async fn a_runner_for_protected_refs_takes_only_their_jobs() {
    let s = Server::start_with(&["--concurrent", "0"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo hi]\n")]);
    git(repo.path(), &["branch", "feature"]);
    let pid = s.project("demo", repo.path()).await;
    let body = json!({"runner_type": "instance_type", "access_level": "ref_protected", "run_untagged": true});
    let (status, created) = send(s.root(Method::POST, "/user/runners").json(&body)).await;
    assert_eq!(status, 201, "{created}");
    let runner = Runner {
        http: crate::support::http_client(),
        base: s.base.clone(),
        token: created["token"].as_str().unwrap().to_string(),
    };
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "feature")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(runner.request(None).await.0, 204, "feature is not protected");
    send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    let (status, job, _) = runner.request(None).await;
    assert_eq!(status, 201);
    assert_eq!(job["git_info"]["ref"], "main");
    assert_eq!(job["git_info"]["protected"], true);
}
