//! Durability and the data dir: every acknowledged trigger survives `kill -9`; one data dir, one
//! server; secrets are not stored in plain text.

use crate::support::{ROOT_TOKEN, Repo, Server, send, spawn};
use reqwest::Method;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A server on a data dir that outlives it, with a project and a trigger token.
struct Crashable {
    _dir: tempfile::TempDir,
    _repo: Repo,
    data: std::path::PathBuf,
    s: Server,
    pid: u64,
    token: String,
}

async fn crashable() -> Crashable {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let repo = Repo::new();
    let s = Server::start_on(&data, &[]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    Crashable {
        _dir: dir,
        _repo: repo,
        data,
        s,
        pid,
        token,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_triggers_survive_kill_9() {
    let Crashable {
        _dir,
        _repo,
        data,
        mut s,
        pid,
        token,
    } = crashable().await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (http, url, token, stop) = (s.http.clone(), url.clone(), token.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match http
                    .post(&url)
                    .form(&[("token", token.as_str()), ("ref", "main")])
                    .send()
                    .await
                {
                    Ok(resp) if resp.status() == 201 => {
                        if let Ok(body) = resp.json::<serde_json::Value>().await {
                            acknowledged.push(body["id"].as_u64().unwrap_or(0));
                        }
                    }
                    _ => {}
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.await.unwrap());
    }
    assert!(acknowledged.len() > 50, "the load did not run: {}", acknowledged.len());
    let s = Server::start_on(&data, &[]);
    let (status, _) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?per_page=1"))).await;
    assert_eq!(status, 200);
    for id in &acknowledged {
        let (status, p) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
        assert_eq!(status, 200, "pipeline {id} was acknowledged but is gone: {p}");
    }
    // and the ids keep counting up after the restart
    let (status, p) = send(
        s.http
            .post(url.replace(&url[..url.find("/api").unwrap()], &s.base))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
    assert!(p["id"].as_u64().unwrap() > *acknowledged.iter().max().unwrap());
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let s = Server::start();
    let second = spawn(&s.data_dir, &[]);
    let err = second.expect_err("a second spur must not start");
    assert!(err.contains("another spur is already using the data dir"), "{err}");
}

#[tokio::test]
async fn tokens_and_variables_are_not_stored_in_plain_text() {
    let Crashable {
        _dir,
        _repo,
        data,
        mut s,
        pid,
        token,
    } = crashable().await;
    let (_, pat) = s.user("someone").await;
    let secret_value = "s3cr3t-variable-value-7781";
    let (status, _) = send(s.http.post(s.api(&format!("/projects/{pid}/trigger/pipeline"))).form(&[
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[PASSWORD]", secret_value),
    ]))
    .await;
    assert_eq!(status, 201);
    s.kill9();
    let db = std::fs::read(data.join("spur.redb")).unwrap();
    let contains = |needle: &str| db.windows(needle.len()).any(|w| w == needle.as_bytes());
    for secret in [
        token.as_str(),
        pat.as_str(),
        ROOT_TOKEN,
        secret_value,
        "root-password-123",
    ] {
        assert!(!contains(secret), "{secret} is in the database file");
    }
    assert!(!s.log_text().contains(&token) && !s.log_text().contains(secret_value));
}
