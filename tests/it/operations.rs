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

/// Pushes `commit` of `work` to `branch` of the hosted project at `url`; true once acknowledged.
fn push(work: &std::path::Path, url: &str, refspec: &str) -> bool {
    std::process::Command::new("git")
        .args(["push", "-q", url, refspec])
        .current_dir(work)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
        .status
        .success()
}

const BUILD: &str = "build:\n  script:\n    - echo built-marker-42\n    - mkdir -p out && echo artifact-content > out/result.txt\n  artifacts:\n    paths: [out/]\n";

#[tokio::test]
async fn a_backup_taken_under_trigger_and_push_load_restores_the_whole_instance() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = Repo::new();
    let mut s = Server::start_on(&data, &["--concurrent", "1"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;

    // A hosted project: its code exists only in spur. Its push pipeline leaves a log and artifacts.
    let (status, hosted) = send(s.root(reqwest::Method::POST, "/projects").form(&[("name", "hosted")])).await;
    assert_eq!(status, 201, "{hosted}");
    let hid = hosted["id"].as_u64().unwrap();
    let push_url = format!("{}/root/hosted.git", s.base).replacen("://", &format!("://root:{ROOT_TOKEN}@"), 1);
    let work = Repo::with_files(&[(".gitlab-ci.yml", BUILD)]);
    assert!(push(work.path(), &push_url, "main"));
    let first = work.sha("main");
    let built = crate::support::wait_for(&s, &format!("/projects/{hid}/pipelines?per_page=1"), |v| {
        v[0]["status"] == "success" || v[0]["status"] == "failed"
    })
    .await;
    assert_eq!(built[0]["status"], "success", "{built}");
    let (_, jobs) = send(s.root(
        reqwest::Method::GET,
        &format!("/projects/{hid}/pipelines/{}/jobs", built[0]["id"]),
    ))
    .await;
    let job = jobs[0]["id"].as_u64().unwrap();
    let log = crate::support::job_log(&s, hid, &job).await;
    assert!(log.contains("built-marker-42"), "{log}");

    // Load: triggers on one project, pushes of new commits to another branch of the hosted one.
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let pushed = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let triggers = {
        let (acked, stop, http, url, token) = (
            acked.clone(),
            stop.clone(),
            s.http.clone(),
            s.api(&format!("/projects/{pid}/trigger/pipeline")),
            token.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
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
    let pushes = {
        let (pushed, stop, url, work) = (
            pushed.clone(),
            stop.clone(),
            push_url.clone(),
            work.path().to_path_buf(),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Relaxed) {
                n += 1;
                crate::support::git(&work, &["commit", "-q", "--allow-empty", "-m", &format!("load {n}")]);
                let sha = crate::support::git(&work, &["rev-parse", "HEAD"]).trim().to_string();
                if push(&work, &url, "HEAD:refs/heads/load") {
                    pushed.lock().unwrap().push(sha);
                }
            }
        })
    };
    let started = std::time::Instant::now();
    while (acked.lock().unwrap().len() <= 10 || pushed.lock().unwrap().len() < 2)
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<u64> = acked.lock().unwrap().clone();
    let pushed_before: Vec<String> = pushed.lock().unwrap().clone();
    let file = dir.path().join("online.tar.gz");
    let (base, file_arg) = (s.base.clone(), file.to_str().unwrap().to_string());
    let out =
        tokio::task::spawn_blocking(move || spur_cli(&["backup", "--url", &base, "--token", ROOT_TOKEN, &file_arg]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Relaxed);
    triggers.await.unwrap();
    pushes.join().unwrap();
    assert!(before.len() > 10 && pushed_before.len() >= 2, "the load ran");
    let (status, _) = send(s.anon(reqwest::Method::POST, "/admin/backup")).await;
    assert_eq!(status, 401, "backups need an administrator");

    // A partial or damaged archive is refused before the data dir is touched.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut flipped_bytes = bytes.clone();
    let middle = flipped_bytes.len() / 2;
    flipped_bytes[middle] ^= 0x40;
    let flipped = dir.path().join("flipped.tar.gz");
    std::fs::write(&flipped, &flipped_bytes).unwrap();
    let untouched = dir.path().join("untouched");
    for bad in [&cut, &flipped] {
        let out = spur_cli(&[
            "restore",
            "--data-dir",
            untouched.to_str().unwrap(),
            bad.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("damaged") || err.contains("cut short"), "{err}");
        assert!(!untouched.exists(), "a refused restore created the data dir");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(leftovers.is_empty(), "a refused restore left its staging folder");

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
    for sha in pushed_before.iter().chain([&first]) {
        let (status, _) = send(r.root(
            reqwest::Method::GET,
            &format!("/projects/{hid}/repository/commits/{sha}"),
        ))
        .await;
        assert_eq!(status, 200, "commit {sha} pushed before the backup is missing");
    }
    let (_, branches) = send(r.root(reqwest::Method::GET, &format!("/projects/{hid}/repository/branches"))).await;
    let names: Vec<&str> = branches
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&"main") && names.contains(&"load"), "{branches}");
    let trace = r
        .root(reqwest::Method::GET, &format!("/projects/{hid}/jobs/{job}/trace"))
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), 200);
    assert!(
        trace.text().await.unwrap().contains("built-marker-42"),
        "the job's log is restored"
    );
    let zip = r
        .root(reqwest::Method::GET, &format!("/projects/{hid}/jobs/{job}/artifacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200, "the job's artifacts are restored");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip.bytes().await.unwrap().to_vec())).unwrap();
    let mut content = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("out/result.txt").unwrap(), &mut content).unwrap();
    assert_eq!(content.trim(), "artifact-content");
    let (status, _) = send(
        r.http
            .post(r.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "the restored key still opens the trigger token");
    // The restored hosted repository takes pushes again.
    let restored_url = format!("{}/root/hosted.git", r.base).replacen("://", &format!("://root:{ROOT_TOKEN}@"), 1);
    crate::support::git(work.path(), &["commit", "-q", "--allow-empty", "-m", "after restore"]);
    assert!(push(work.path(), &restored_url, "HEAD:refs/heads/main"));

    // A running server's data dir is not restored over, even with --force.
    let out = spur_cli(&[
        "restore",
        "--force",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));

    // A stopped server is backed up from its data dir (which stays as it was); restoring over
    // an instance needs --force.
    s.kill9();
    let before_backup = std::fs::read(data.join("spur.redb")).unwrap();
    let offline = dir.path().join("offline.tar.gz");
    let out = spur_cli(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        offline.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::read(data.join("spur.redb")).unwrap() == before_backup,
        "an offline backup changed the data dir"
    );
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
    let r = Server::start_on(&restored, &["--concurrent", "0"]);
    let last = pushed.lock().unwrap().last().cloned().unwrap();
    let (status, _) = send(r.root(
        reqwest::Method::GET,
        &format!("/projects/{hid}/repository/commits/{last}"),
    ))
    .await;
    assert_eq!(status, 200, "the offline backup holds the hosted repository");
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
    // The line is written after the deletion's commit, which the 404 may beat.
    while !s.log_text().contains("retention deleted old pipelines and logs") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the deletion was not logged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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

#[tokio::test]
async fn a_backup_downloads_over_https_from_behind_a_tls_proxy() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A private CA and a certificate it signs for 127.0.0.1, as a proxy in front of spur has.
    crate::support::test_certificates(d);
    let s = Server::start();
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_proxy.py");
    let mut proxy = std::process::Command::new("python3")
        .args([
            script,
            d.join("server.pem").to_str().unwrap(),
            d.join("server.key").to_str().unwrap(),
            &port,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("https://127.0.0.1:{}", line.trim());
    let file = d.join("over-tls.tar.gz");
    let ca = d.join("ca.pem");
    let (u, f, c) = (
        url.clone(),
        file.to_str().unwrap().to_string(),
        ca.to_str().unwrap().to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        spur_cli(&["backup", "--url", &u, "--cacert", &c, "--token", ROOT_TOKEN, &f])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let untrusted = d.join("untrusted.tar.gz");
    let (u, f) = (url.clone(), untrusted.to_str().unwrap().to_string());
    let out = tokio::task::spawn_blocking(move || spur_cli(&["backup", "--url", &u, "--token", ROOT_TOKEN, &f]))
        .await
        .unwrap();
    drop(proxy);
    assert!(!out.status.success(), "a certificate no trusted CA signed is refused");
    assert!(!untrusted.exists() && !d.join("untrusted.tar.gz.partial").exists());
    let restored = d.join("restored");
    let out = spur_cli(&[
        "restore",
        "--data-dir",
        restored.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
