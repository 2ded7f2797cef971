//! Operating spur: health endpoints, request logs that name routes but never secrets, metrics,
//! backups and restores, migrations of older databases, retention.

use crate::support::{ROOT_TOKEN, Repo, Server, send};

#[tokio::test]
async fn health_endpoints_answer_like_gitlabs() {
    let s = Server::start();
    let health = s.http.get(format!("{}/-/health", s.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "GitLab OK");
    let (status, live) = send(s.http.get(format!("{}/-/liveness", s.base))).await;
    assert_eq!((status, live["status"].as_str()), (200, Some("ok")));
    let (status, ready) = send(s.http.get(format!("{}/-/readiness", s.base))).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["storage_check"][0]["status"], "ok");
    assert_eq!(ready["engine_check"][0]["status"], "ok");
}

#[tokio::test]
async fn each_request_is_logged_by_route_without_its_secrets() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, _) = send(s.http.post(format!(
        "{}?token={token}&ref=main",
        s.api(&format!("/projects/{pid}/trigger/pipeline"))
    )))
    .await;
    assert_eq!(status, 201);
    send(s.http.get(format!("{}?private_token={ROOT_TOKEN}", s.api("/user")))).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = s.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("route=/api/v4/projects/{id}/trigger/pipeline") && l.contains("status=201")),
        "{log}"
    );
    assert!(
        !log.contains(&token) && !log.contains(ROOT_TOKEN),
        "a token reached the log"
    );
}

/// What a job looked like in the first released layout (schema version 1): no engine fields.
fn as_first_layout(job: &mut serde_json::Value) {
    let obj = job.as_object_mut().unwrap();
    for key in [
        "settings",
        "queued_at",
        "scheduled_at",
        "failure_reason",
        "exit_code",
        "retried",
        "attempt",
        "runner",
        "bridge",
    ] {
        obj.remove(key);
    }
    obj.insert("status".into(), "Created".into());
}

#[tokio::test]
async fn a_database_of_the_first_layout_is_migrated_and_its_jobs_run() {
    use redb::{ReadableTable, TableDefinition};
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
    const PIPELINES: TableDefinition<u64, &[u8]> = TableDefinition::new("pipelines");
    const ACTIVE_JOBS: TableDefinition<u64, ()> = TableDefinition::new("active_jobs");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "old:\n  script: [echo from-the-old-layout]\n")]);
    let mut s = Server::start_on(&data, &["--concurrent", "0"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
    s.kill9();
    {
        // Rewrite the file as the first released spur left it.
        let db = redb::Database::open(data.join("spur.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            tx.open_table(META).unwrap().insert("schema_version", 1).unwrap();
            let mut jobs = tx.open_table(JOBS).unwrap();
            let all: Vec<(u64, Vec<u8>)> = jobs
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value(), v.value().to_vec())
                })
                .collect();
            for (id, bytes) in all {
                let mut job: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                as_first_layout(&mut job);
                jobs.insert(id, serde_json::to_vec(&job).unwrap().as_slice()).unwrap();
            }
            let mut pipelines = tx.open_table(PIPELINES).unwrap();
            let id = p["id"].as_u64().unwrap();
            let mut pipeline: serde_json::Value =
                serde_json::from_slice(pipelines.get(id).unwrap().unwrap().value()).unwrap();
            pipeline.as_object_mut().unwrap().remove("upstream");
            pipeline["status"] = "Created".into();
            pipelines
                .insert(id, serde_json::to_vec(&pipeline).unwrap().as_slice())
                .unwrap();
            tx.delete_table(ACTIVE_JOBS).unwrap();
        }
        tx.commit().unwrap();
    }
    let s = Server::start_on(&data, &["--concurrent", "1"]);
    let id = p["id"].as_u64().unwrap();
    let start = std::time::Instant::now();
    loop {
        let (_, p) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
        if p["status"] == "success" {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{p}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(s.log_text().contains("migrating the database"));
}
