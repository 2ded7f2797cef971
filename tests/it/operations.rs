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
