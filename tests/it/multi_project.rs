//! Multi-project and child pipelines: a running job's `CI_JOB_TOKEN` triggers another project
//! (only if that project's allowlist admits the job's project), reads what GitLab lets a job
//! token read, and stops working when the job ends; `trigger:` jobs create downstream and child
//! pipelines, mirror them with `strategy: depend`, and loops are cut by the depth limits.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const FINAL: [&str; 4] = ["success", "failed", "canceled", "skipped"];

async fn wait_for(s: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, v) = send(s.root(Method::GET, path)).await;
        if status == 200 && done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gave up waiting on {path}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finished(s: &Server, pid: u64, id: u64) -> Value {
    wait_for(s, &format!("/projects/{pid}/pipelines/{id}"), |p| {
        FINAL.contains(&p["status"].as_str().unwrap_or(""))
    })
    .await
}

async fn wait_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{path:?} never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn trigger(s: &Server, pid: u64, token: &str, vars: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("token".to_string(), token.to_string()), ("ref".into(), "main".into())];
    for (k, v) in vars {
        form.push((format!("variables[{k}]"), v.to_string()));
    }
    send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&form),
    )
    .await
}

async fn trace_of(s: &Server, pid: u64, pipeline: u64, name: &str) -> String {
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}/jobs"))).await;
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap()
        .clone();
    let resp = s
        .root(Method::GET, &format!("/projects/{pid}/jobs/{}/trace", job["id"]))
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

const UPSTREAM: &str = "hold:\n  script:\n    - printf '%s' \"$CI_JOB_TOKEN\" > \"$OUT_DIR/token\"\n    - while [ ! -f \"$OUT_DIR/go\" ]; do sleep 0.05; done\n";
const DOWNSTREAM: &str = "report:\n  script: [echo \"source=$CI_PIPELINE_SOURCE upstream=$CI_UPSTREAM_PIPELINE_ID job=$CI_UPSTREAM_JOB_ID project=$CI_UPSTREAM_PROJECT_ID from=$FROM\"]\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"pipeline\"\n";

#[tokio::test]
async fn a_running_jobs_token_triggers_an_allowlisting_project() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let out = tempfile::tempdir().unwrap();
    let a_repo = Repo::with_files(&[(".gitlab-ci.yml", UPSTREAM)]);
    let b_repo = Repo::with_files(&[(".gitlab-ci.yml", DOWNSTREAM)]);
    let a = s.project("alpha", a_repo.path()).await;
    let b = s.project("beta", b_repo.path()).await;
    let c = s.project("gamma", b_repo.path()).await;
    let (_, a_trigger) = s.trigger_token(ROOT_TOKEN, a).await;
    let (status, upstream) = trigger(&s, a, &a_trigger, &[("OUT_DIR", out.path().to_str().unwrap())]).await;
    assert_eq!(status, 201, "{upstream}");
    let job_token = wait_file(&out.path().join("token")).await;

    // Not on beta's allowlist yet: 404, as for a project that does not exist.
    let (status, body) = trigger(&s, b, &job_token, &[]).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("404 Not Found")));
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{b}/job_token_scope/allowlist"))
            .form(&[("target_project_id", a.to_string())]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["source_project_id"].as_u64(), body["target_project_id"].as_u64()),
        (Some(b), Some(a))
    );
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{b}/job_token_scope/allowlist"))).await;
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![b, a]);

    let (status, downstream) = trigger(&s, b, &job_token, &[("FROM", "alpha")]).await;
    assert_eq!(status, 201, "{downstream}");
    assert_eq!(downstream["source"], "pipeline");
    assert_eq!(downstream["user"]["username"], "root");
    let d = downstream["id"].as_u64().unwrap();
    assert_eq!(finished(&s, b, d).await["status"], "success");
    let (_, up_jobs) = send(s.root(Method::GET, &format!("/projects/{a}/pipelines/{}/jobs", upstream["id"]))).await;
    let up_job = up_jobs[0]["id"].as_u64().unwrap();
    let log = trace_of(&s, b, d, "report").await;
    let want = format!(
        "source=pipeline upstream={} job={up_job} project={a} from=alpha",
        upstream["id"]
    );
    assert!(log.contains(&want), "{log}");

    // The token reads its own project's and allowlisting projects' pipelines and jobs, nothing else.
    let with_job = |m: Method, path: &str| s.http.request(m, s.api(path)).header("JOB-TOKEN", &job_token);
    assert_eq!(
        send(with_job(Method::GET, &format!("/projects/{a}/pipelines"))).await.0,
        200
    );
    assert_eq!(send(with_job(Method::GET, &format!("/projects/{b}/jobs"))).await.0, 200);
    assert_eq!(
        send(with_job(Method::GET, &format!("/projects/{c}/pipelines"))).await.0,
        404
    );
    assert_eq!(
        send(with_job(Method::GET, &format!("/projects/{a}/triggers"))).await.0,
        401
    );
    assert_eq!(
        send(with_job(Method::POST, &format!("/projects/{a}/pipeline")).form(&[("ref", "main")]))
            .await
            .0,
        401
    );
    let (status, _) = send(s.http.get(format!(
        "{}?job_token={job_token}",
        s.api(&format!("/projects/{a}/jobs/{up_job}"))
    )))
    .await;
    assert_eq!(status, 200);

    // When the job ends, its token is recognised but refused.
    std::fs::write(out.path().join("go"), "").unwrap();
    finished(&s, a, upstream["id"].as_u64().unwrap()).await;
    let (status, body) = trigger(&s, b, &job_token, &[]).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Job is not running")));
    let (status, body) = send(with_job(Method::GET, &format!("/projects/{a}/pipelines"))).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Job is not running")));
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{b}/job_token_scope/allowlist/{a}"))).await;
    assert_eq!(status, 204);
}
