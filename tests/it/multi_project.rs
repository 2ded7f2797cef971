//! Multi-project and child pipelines: a running job's `CI_JOB_TOKEN` triggers another project
//! (only if that project's allowlist admits the job's project), reads what GitLab lets a job
//! token read, and stops working when the job ends; `trigger:` jobs create downstream and child
//! pipelines, mirror them with `strategy: depend`, and loops are cut by the depth limits.

use crate::support::{FINAL, ROOT_TOKEN, Repo, Server, finished_pipeline, send};
use reqwest::Method;
use serde_json::Value;

use std::time::{Duration, Instant};

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
    crate::support::job_log(s, pid, &job["id"]).await
}

const UPSTREAM: &str = "hold:\n  script:\n    - curl -sf -X POST --data-binary \"$CI_JOB_TOKEN\" \"$MAILBOX/put/token\"\n    - until curl -sf \"$MAILBOX/get/go\" > /dev/null; do sleep 0.05; done\n";
const DOWNSTREAM: &str = "report:\n  script: [echo \"source=$CI_PIPELINE_SOURCE upstream=$CI_UPSTREAM_PIPELINE_ID job=$CI_UPSTREAM_JOB_ID project=$CI_UPSTREAM_PROJECT_ID from=$FROM\"]\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"pipeline\"\n";

#[tokio::test]
async fn a_running_jobs_token_triggers_an_allowlisting_project() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let mailbox = crate::support::Mailbox::start();
    let a_repo = Repo::with_files(&[(".gitlab-ci.yml", UPSTREAM)]);
    let b_repo = Repo::with_files(&[(".gitlab-ci.yml", DOWNSTREAM)]);
    let a = s.project("alpha", a_repo.path()).await;
    let b = s.project("beta", b_repo.path()).await;
    let c = s.project("gamma", b_repo.path()).await;
    let (_, a_trigger) = s.trigger_token(ROOT_TOKEN, a).await;
    let (status, upstream) = trigger(&s, a, &a_trigger, &[("MAILBOX", &mailbox.url)]).await;
    assert_eq!(status, 201, "{upstream}");
    let job_token = mailbox.wait("token").await;

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
    assert_eq!(finished_pipeline(&s, b, d).await["status"], "success");
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
    mailbox.put("go", "1");
    finished_pipeline(&s, a, upstream["id"].as_u64().unwrap()).await;
    let (status, body) = trigger(&s, b, &job_token, &[]).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Job is not running")));
    let (status, body) = send(with_job(Method::GET, &format!("/projects/{a}/pipelines"))).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Job is not running")));
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{b}/job_token_scope/allowlist/{a}"))).await;
    assert_eq!(status, 204);

    // The allowlist can be turned off (and on again), as GitLab's `PATCH .../job_token_scope`.
    let scope = format!("/projects/{b}/job_token_scope");
    assert_eq!(send(s.root(Method::GET, &scope)).await.1["inbound_enabled"], true);
    let (status, e) = send(s.root(Method::PATCH, &scope).json(&serde_json::json!({}))).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("enabled is missing")));
    let off = serde_json::json!({"enabled": false});
    assert_eq!(send(s.root(Method::PATCH, &scope).json(&off)).await.0, 204);
    assert_eq!(send(s.root(Method::GET, &scope)).await.1["inbound_enabled"], false);
    assert_eq!(
        send(s.root(Method::PATCH, &scope).form(&[("enabled", "true")])).await.0,
        204
    );
    assert_eq!(send(s.root(Method::GET, &scope)).await.1["inbound_enabled"], true);
}

async fn bridges(s: &Server, pid: u64, pipeline: u64) -> Vec<Value> {
    let (status, v) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}/bridges"))).await;
    assert_eq!(status, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn bridge<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no bridge {name}: {all:?}"))
}

const PARENT: &str = r#"
build:
  stage: build
  script: [echo built]
deploy-ok:
  stage: deploy
  variables: {TARGET_ENV: staging}
  trigger: {project: root/beta, strategy: depend}
deploy-bad:
  stage: deploy
  allow_failure: true
  variables: {TARGET_ENV: broken}
  trigger: {project: root/beta, strategy: depend}
fire-and-forget:
  stage: deploy
  variables: {TARGET_ENV: broken}
  trigger: root/beta
missing:
  stage: deploy
  allow_failure: true
  trigger: root/nowhere
child:
  stage: deploy
  trigger: {include: ci/child.yml, strategy: depend}
"#;
const BETA: &str = "check:\n  script: [echo \"env=$TARGET_ENV source=$CI_PIPELINE_SOURCE\", test \"$TARGET_ENV\" = staging]\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"pipeline\"\n";
const CHILD: &str =
    "child-job:\n  script: [echo \"child source=$CI_PIPELINE_SOURCE upstream=$CI_UPSTREAM_PIPELINE_ID\"]\n";

#[tokio::test]
async fn trigger_jobs_create_multi_project_and_child_pipelines() {
    let s = Server::start_with(&["--concurrent", "3"]);
    let a_repo = Repo::with_files(&[(".gitlab-ci.yml", PARENT), ("ci/child.yml", CHILD)]);
    let b_repo = Repo::with_files(&[(".gitlab-ci.yml", BETA)]);
    let a = s.project("alpha", a_repo.path()).await;
    let b = s.project("beta", b_repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, a).await;
    let (status, p) = trigger(&s, a, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let p = finished_pipeline(&s, a, id).await;
    let all = bridges(&s, a, id).await;
    assert_eq!(p["status"], "success", "allowed failures leave it successful: {all:?}");
    let ok = bridge(&all, "deploy-ok");
    assert_eq!(ok["status"], "success");
    assert_eq!(ok["downstream_pipeline"]["project_id"], b);
    let bad = bridge(&all, "deploy-bad");
    assert_eq!(bad["status"], "failed", "depend mirrors the failed downstream pipeline");
    assert_eq!(bad["failure_reason"], "downstream_pipeline_failed");
    let forget = bridge(&all, "fire-and-forget");
    assert_eq!(
        forget["status"], "success",
        "without depend the bridge succeeds once created"
    );
    let missing = bridge(&all, "missing");
    assert_eq!(missing["failure_reason"], "downstream_pipeline_creation_failed");
    let log = crate::support::job_log(&s, a, &missing["id"]).await;
    assert!(
        log.contains("downstream pipeline can not be created, downstream project could not be found"),
        "{log}"
    );
    // The downstream pipeline ran with the forwarded YAML variable and source `pipeline`.
    let down = ok["downstream_pipeline"]["id"].as_u64().unwrap();
    let (_, dp) = send(s.root(Method::GET, &format!("/projects/{b}/pipelines/{down}"))).await;
    assert_eq!(dp["source"], "pipeline");
    assert!(
        trace_of(&s, b, down, "check")
            .await
            .contains("env=staging source=pipeline")
    );
    // The child pipeline: same project and commit, source parent_pipeline.
    let child = bridge(&all, "child");
    assert_eq!(child["status"], "success");
    let c = child["downstream_pipeline"]["id"].as_u64().unwrap();
    let (_, cp) = send(s.root(Method::GET, &format!("/projects/{a}/pipelines/{c}"))).await;
    assert_eq!(
        (cp["source"].as_str(), cp["sha"].as_str()),
        (Some("parent_pipeline"), p["sha"].as_str())
    );
    assert!(
        trace_of(&s, a, c, "child-job")
            .await
            .contains(&format!("child source=parent_pipeline upstream={id}"))
    );
    // Bridges are not in the jobs list, as in GitLab.
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{a}/pipelines/{id}/jobs"))).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
}

#[tokio::test]
async fn self_triggering_configs_stop_at_the_depth_limits() {
    let s = Server::start_with(&["--concurrent", "2", "--max-downstream-depth", "3"]);
    let repo = Repo::with_files(&[
        (
            ".gitlab-ci.yml",
            "again:\n  trigger: root/loop\nnest:\n  trigger: {include: ci/nest.yml}\n",
        ),
        ("ci/nest.yml", "deeper:\n  trigger: {include: ci/nest.yml}\n"),
    ]);
    let pid = s.project("loop", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, _) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201);
    // Each multi-project level adds a pipeline and two nested children below it: 1 + 3 hops,
    // each with 2 child levels.
    let start = Instant::now();
    let total = loop {
        let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?per_page=100"))).await;
        let all = list.as_array().unwrap().clone();
        let settled = all.iter().all(|p| FINAL.contains(&p["status"].as_str().unwrap_or("")));
        if settled && all.len() >= 12 {
            break all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} pipelines: {all:?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(total.len(), 12, "4 multi-project levels x (1 + 2 children)");
    let mut chain_cut = false;
    let mut nest_cut = false;
    for p in &total {
        for b in bridges(&s, pid, p["id"].as_u64().unwrap()).await {
            if b["failure_reason"] == "downstream_pipeline_creation_failed" {
                let log = crate::support::job_log(&s, pid, &b["id"]).await;
                chain_cut |= log.contains("Pipeline chain is too deep");
                nest_cut |= log.contains("Maximum number of nested child pipelines reached");
            }
        }
    }
    assert!(
        chain_cut && nest_cut,
        "both limits fail their bridge with a clear message"
    );
}

#[tokio::test]
async fn canceling_a_parent_cancels_its_child_pipelines() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[
        (
            ".gitlab-ci.yml",
            "child:\n  trigger: {include: ci/child.yml, strategy: depend}\n",
        ),
        ("ci/child.yml", "slow:\n  script: [sleep 30]\n"),
    ]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201);
    let id = p["id"].as_u64().unwrap();
    let start = Instant::now();
    let child = loop {
        let all = bridges(&s, pid, id).await;
        if let Some(c) = all[0]["downstream_pipeline"]["id"].as_u64() {
            let (_, cp) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{c}"))).await;
            if cp["status"] == "running" {
                break c;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the child never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, parent) = send(s.root(Method::POST, &format!("/projects/{pid}/pipelines/{id}/cancel"))).await;
    assert_eq!((status, parent["status"].as_str()), (201, Some("canceled")));
    let cp = finished_pipeline(&s, pid, child).await;
    assert_eq!(
        cp["status"], "canceled",
        "the child pipeline is canceled with its parent"
    );
}

#[tokio::test]
async fn needs_project_and_needs_pipeline_job_bring_artifacts_from_outside_the_pipeline() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let lib_ci = "build:\n  script: [mkdir -p out, echo built-by-lib > out/lib.txt]\n  artifacts:\n    paths: [out/]\n";
    let lib_repo = Repo::with_files(&[(".gitlab-ci.yml", lib_ci)]);
    let lib = s.project("lib", lib_repo.path()).await;
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{lib}/pipeline"))
            .json(&serde_json::json!({"ref": "main"})),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(
        finished_pipeline(&s, lib, p["id"].as_u64().unwrap()).await["status"],
        "success"
    );
    // Artifacts by ref and by path, as scripts fetch them.
    let fetch = |path: String| {
        let s = &s;
        async move {
            let r = s.root(Method::GET, &path).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    };
    let (status, file) = fetch(format!("/projects/{lib}/jobs/artifacts/main/raw/out/lib.txt?job=build")).await;
    assert_eq!((status, file.as_slice()), (200, b"built-by-lib\n".as_slice()));
    let (status, zip) = fetch(format!("/projects/{lib}/jobs/artifacts/main/download?job=build")).await;
    assert_eq!((status, &zip[..2]), (200, b"PK".as_slice()));
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{lib}/pipelines/{}/jobs", p["id"]))).await;
    let (status, file) = fetch(format!("/projects/{lib}/jobs/{}/artifacts/out/lib.txt", jobs[0]["id"])).await;
    assert_eq!((status, file.as_slice()), (200, b"built-by-lib\n".as_slice()));
    for missing in [
        format!("/projects/{lib}/jobs/artifacts/main/raw/out/none.txt?job=build"),
        format!("/projects/{lib}/jobs/artifacts/other/download?job=build"),
        format!("/projects/{lib}/jobs/artifacts/main/download?job=nope"),
    ] {
        assert_eq!(fetch(missing.clone()).await.0, 404, "{missing}");
    }
    assert_eq!(
        fetch(format!("/projects/{lib}/jobs/artifacts/main/download")).await.0,
        400
    );

    let app_ci = "stages: [prepare, use]
gen:
  stage: prepare
  script: [echo from-parent > parent.txt]
  artifacts:
    paths: [parent.txt]
use-lib:
  stage: use
  needs:
    - project: root/lib
      job: build
      ref: main
  script: [cat out/lib.txt]
child:
  stage: use
  trigger:
    include: child.yml
    strategy: depend
";
    let child_ci =
        "use-parent:\n  needs:\n    - pipeline: $PARENT_PIPELINE_ID\n      job: gen\n  script: [cat parent.txt]\n";
    let app_repo = Repo::with_files(&[(".gitlab-ci.yml", app_ci), ("child.yml", child_ci)]);
    let app = s.project("app", app_repo.path()).await;
    let run = || async {
        let (status, p) = send(
            s.root(Method::POST, &format!("/projects/{app}/pipeline"))
                .json(&serde_json::json!({"ref": "main"})),
        )
        .await;
        assert_eq!(status, 201, "{p}");
        let id = p["id"].as_u64().unwrap();
        finished_pipeline(&s, app, id).await;
        id
    };

    // lib's job token allowlist does not admit app yet: no artifacts cross over.
    let id = run().await;
    let log = trace_of(&s, app, id, "use-lib").await;
    assert!(!log.contains("built-by-lib"), "{log}");

    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{lib}/job_token_scope/allowlist"))
            .form(&[("target_project_id", app.to_string())]),
    )
    .await;
    assert!(status == 201 || status == 200, "{body}");
    let id = run().await;
    let log = trace_of(&s, app, id, "use-lib").await;
    assert!(log.contains("built-by-lib"), "{log}");
    let (_, pipelines) = send(s.root(Method::GET, &format!("/projects/{app}/pipelines?per_page=100"))).await;
    let child = pipelines
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["source"] == "parent_pipeline")
        .expect("a child pipeline")
        .clone();
    let log = trace_of(&s, app, child["id"].as_u64().unwrap(), "use-parent").await;
    assert!(log.contains("from-parent"), "{log}");
}
