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

fn spur_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_spur"))
        .args(args)
        .env_remove("SPUR_TOKEN")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_backup_taken_under_trigger_load_restores_every_acknowledged_pipeline() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = Repo::new();
    let mut s = Server::start_on(&data, &["--concurrent", "0"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (acked, stop, http, url, token) = (
            acked.clone(),
            stop.clone(),
            s.http.clone(),
            s.api(&format!("/projects/{pid}/trigger/pipeline")),
            token.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post(&url)
                    .form(&[("token", token.as_str()), ("ref", "main")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let p: serde_json::Value = r.json().await.unwrap();
                acked.lock().unwrap().push(p["id"].as_u64().unwrap());
            }
        })
    };
    // Some load first (a busy machine acknowledges slowly: wait for it rather than a clock).
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() <= 10 && started.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<u64> = acked.lock().unwrap().clone();
    let file = dir.path().join("online.redb");
    let (base, file_arg) = (s.base.clone(), file.to_str().unwrap().to_string());
    let out =
        tokio::task::spawn_blocking(move || spur_cli(&["backup", "--url", &base, "--token", ROOT_TOKEN, &file_arg]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    assert!(before.len() > 10, "the load ran: {}", before.len());
    let (status, _) = send(s.anon(reqwest::Method::POST, "/admin/backup")).await;
    assert_eq!(status, 401, "backups need an administrator");

    let restored = dir.path().join("restored");
    let out = spur_cli(&[
        "restore",
        "--data-dir",
        restored.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = Server::start_on(&restored, &["--concurrent", "0"]);
    for id in &before {
        let (status, _) = send(r.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
        assert_eq!(status, 200, "pipeline {id} acknowledged before the backup is missing");
    }
    let (status, _) = send(
        r.http
            .post(r.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "the restored key still opens the trigger token");

    // A stopped server is backed up from its data dir; restoring over a database needs --force.
    s.kill9();
    let offline = dir.path().join("offline.redb");
    let out = spur_cli(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        offline.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(r);
    let out = spur_cli(&[
        "restore",
        "--data-dir",
        restored.to_str().unwrap(),
        offline.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = spur_cli(&[
        "restore",
        "--force",
        "--data-dir",
        restored.to_str().unwrap(),
        offline.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn metrics_count_triggers_jobs_and_pipelines_for_administrators_only() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo metrics]\n")]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let (status, p) = send(s.http.post(&url).form(&[("token", token.as_str()), ("ref", "main")])).await;
    assert_eq!(status, 201);
    let (status, _) = send(s.http.post(&url).form(&[("token", "wrong"), ("ref", "main")])).await;
    assert_eq!(status, 404);
    let id = p["id"].as_u64().unwrap();
    let start = std::time::Instant::now();
    while send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}")))
        .await
        .1["status"]
        != "success"
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = s
        .http
        .get(format!("{}/-/metrics", s.base))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "spur_triggers_total{outcome=\"created\"} 1",
        "spur_triggers_total{outcome=\"not_found\"} 1",
        "spur_trigger_duration_seconds_count 2",
        "spur_job_wait_seconds_count 1",
        "spur_jobs_finished_total{status=\"success\"} 1",
        "spur_pipelines_created_total{source=\"trigger\"} 1",
        "spur_jobs{status=\"running\"} 0",
        "spur_queue_depth 0",
        "# TYPE process_resident_memory_bytes gauge",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let (_, user_token) = s.user("someone").await;
    let resp = s
        .http
        .get(format!("{}/-/metrics", s.base))
        .header("PRIVATE-TOKEN", user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = s.http.get(format!("{}/-/metrics", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn retention_deletes_old_finished_pipelines_and_their_logs() {
    let s = Server::start_with(&[
        "--concurrent",
        "1",
        "--keep-pipelines",
        "2s",
        "--retention-interval",
        "1s",
    ]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo old]\n")]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let (_, p) = send(s.http.post(&url).form(&[("token", token.as_str()), ("ref", "main")])).await;
    let id = p["id"].as_u64().unwrap();
    let start = std::time::Instant::now();
    let path = format!("/projects/{pid}/pipelines/{id}");
    while send(s.root(reqwest::Method::GET, &path)).await.1["status"] != "success" {
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let traces = s.data_dir.join("traces");
    assert_eq!(std::fs::read_dir(&traces).unwrap().count(), 1);
    loop {
        let (status, _) = send(s.root(reqwest::Method::GET, &path)).await;
        if status == 404 {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "never pruned");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(std::fs::read_dir(&traces).unwrap().count(), 0, "its log went with it");
    assert!(s.log_text().contains("retention deleted old pipelines and logs"));
}

#[tokio::test]
async fn sigterm_fails_running_jobs_after_the_grace_period_and_pending_ones_run_later() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = Repo::with_files(&[(
        ".gitlab-ci.yml",
        "job:\n  script: [sleep $SLEEP]\n  after_script: [echo after]\n",
    )]);
    let mut s = Server::start_on(&data, &["--concurrent", "1", "--shutdown-grace", "1s"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let mut ids = Vec::new();
    for sleep in ["30", "0"] {
        let (status, p) =
            send(
                s.http
                    .post(&url)
                    .form(&[("token", token.as_str()), ("ref", "main"), ("variables[SLEEP]", sleep)]),
            )
            .await;
        assert_eq!(status, 201);
        ids.push(p["id"].as_u64().unwrap());
    }
    let start = std::time::Instant::now();
    while send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{}", ids[0])))
        .await
        .1["status"]
        != "running"
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stopped = tokio::task::spawn_blocking(move || {
        let ok = s.terminate(std::time::Duration::from_secs(15));
        (ok, s)
    })
    .await
    .unwrap();
    assert!(stopped.0, "spur did not exit cleanly on SIGTERM");
    assert!(stopped.1.log_text().contains("running jobs were failed"));
    drop(stopped);
    let s = Server::start_on(&data, &["--concurrent", "1"]);
    let (_, jobs) = send(s.root(
        reqwest::Method::GET,
        &format!("/projects/{pid}/pipelines/{}/jobs", ids[0]),
    ))
    .await;
    assert_eq!(jobs[0]["status"], "failed");
    assert_eq!(jobs[0]["failure_reason"], "runner_system_failure");
    let log = crate::support::job_log(&s, pid, &jobs[0]["id"]).await;
    assert!(log.contains("spur was stopped while the job was running"), "{log}");
    let path = format!("/projects/{pid}/pipelines/{}", ids[1]);
    while send(s.root(reqwest::Method::GET, &path)).await.1["status"] != "success" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(40),
            "the pending pipeline never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
