//! An end-to-end run with a runner client nobody here wrote: `gitlab-python-runner` 14.3.20
//! (with `gitlab-emulator` 1.1.9, from the venv `tests/run` creates) registers with the
//! instance registration token shown on the admin Runners page, takes the jobs of a pipeline,
//! clones over HTTP with the job token, streams the log, uploads and downloads artifacts,
//! reports the final state, and stops when a job is canceled.

use crate::support::{Repo, Server, job_log, send, wait_for};
use crate::ui::Browser;
use reqwest::Method;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The venv's Python with gitlab-python-runner (`SPUR_TEST_RUNNER_PYTHON`, default
/// `target/runner-venv/bin/python`).
fn runner_python() -> PathBuf {
    let path = std::env::var_os("SPUR_TEST_RUNNER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/runner-venv/bin/python"));
    assert!(
        path.exists(),
        "no gitlab-python-runner at {}: run tests/run, which installs it",
        path.display()
    );
    path
}

fn runner(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(runner_python());
    cmd.args(["-m", "GitlabPyRunner"])
        .args(args)
        .current_dir(dir)
        .env("SHELL", "/bin/bash");
    cmd
}

/// Runs the runner to the end; answers its output.
fn run_to_end(dir: &Path, args: &[&str]) -> String {
    let out = runner(dir, args).stdin(Stdio::null()).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const CONFIG: &str = r#"
stages: [build, test]
build:
  stage: build
  tags: [python]
  script:
    - echo "built by $CI_JOB_NAME"
    - mkdir -p out
    - git rev-parse HEAD > out/commit.txt
  artifacts:
    paths: [out/]
test:
  stage: test
  tags: [python]
  script:
    - echo "tested $(cat out/commit.txt)"
"#;

const SLOW: &str = r#"
slow:
  tags: [python]
  script:
    - echo started
    - sleep 6
    - echo finished
"#;

async fn registration_token(s: &Server) -> String {
    let mut browser = Browser::new(s);
    browser.sign_in("root", "root-password-123").await;
    let (status, page, _) = browser.get("/admin/runners").await;
    assert_eq!(status, 200);
    let marker = "id=\"registration-token\" value=\"";
    let i = page.find(marker).unwrap() + marker.len();
    page[i..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn gitlab_python_runner_runs_a_pipeline_end_to_end() {
    let s = Server::start_with(&["--concurrent", "0"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    let work = tempfile::tempdir().unwrap();
    let token = registration_token(&s).await;

    let out = run_to_end(
        work.path(),
        &[
            "--register",
            &s.base,
            "--regtoken",
            &token,
            "--desc",
            "e2e-py",
            "--tag",
            "python",
            "--shell",
            "/bin/bash",
            "--type",
            "shell",
        ],
    );
    let config = std::fs::read_to_string(work.path().join("gitlab-runner.yml")).unwrap_or_else(|_| panic!("{out}"));
    assert!(config.contains("token"), "{config}");
    let (_, runners) = send(s.root(Method::GET, "/runners/all")).await;
    assert_eq!(runners[0]["description"], "e2e-py", "{runners}");

    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let pipeline = p["id"].as_u64().unwrap();
    // One job per run (`--once`): build, then test, which gets build's artifacts.
    for _ in 0..2 {
        let out = run_to_end(work.path(), &["--start", "gitlab-runner.yml", "--once"]);
        assert!(out.contains("success=True"), "{out}");
    }
    let p = wait_for(&s, &format!("/projects/{pid}/pipelines/{pipeline}"), |p| {
        p["status"] != "running"
    })
    .await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}/jobs"))).await;
    assert_eq!(p["status"], "success", "{jobs}");
    let find = |name: &str| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
            .clone()
    };
    let build = find("build");
    assert_eq!(build["runner"]["description"], "e2e-py");
    let log = job_log(&s, pid, &build["id"]).await;
    assert!(log.contains("built by build"), "{log}");
    assert!(build["artifacts_file"]["size"].as_u64().unwrap() > 0, "{build}");
    let log = job_log(&s, pid, &find("test")["id"]).await;
    assert!(log.contains(&format!("tested {}", repo.sha("main"))), "{log}");

    // Cancel: the runner learns it from a 403 on its next report and stops.
    let slow = Repo::with_files(&[(".gitlab-ci.yml", SLOW)]);
    let slow_pid = s.project("slow", slow.path()).await;
    let (_, p) = send(
        s.root(Method::POST, &format!("/projects/{slow_pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    let slow_pipeline = p["id"].as_u64().unwrap();
    let mut child = runner(work.path(), &["--start", "gitlab-runner.yml", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let jobs_path = format!("/projects/{slow_pid}/pipelines/{slow_pipeline}/jobs");
    let jobs = wait_for(&s, &jobs_path, |j| j[0]["status"] == "running").await;
    let job_id = jobs[0]["id"].as_u64().unwrap();
    wait_for(&s, &format!("/projects/{slow_pid}/jobs/{job_id}"), |_| true).await;
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{slow_pid}/jobs/{job_id}/cancel"))).await;
    assert_eq!(status, 201);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the runner never stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("was cancelled"), "{text}");
    let (_, job) = send(s.root(Method::GET, &format!("/projects/{slow_pid}/jobs/{job_id}"))).await;
    assert_eq!(job["status"], "canceled");

    // Unregistering removes the runner.
    let out = run_to_end(work.path(), &["--unregister"]);
    let (_, runners) = send(s.root(Method::GET, "/runners/all")).await;
    assert_eq!(runners, serde_json::json!([]), "{out}");
}
