//! Telling the outside world: project webhooks with GitLab's `Pipeline Hook` and `Job Hook`
//! payloads, retried when the receiver fails, commit statuses to a Gitea-style forge, and the
//! loop guard that keeps a hook pointed at spur's own trigger endpoint from looping.

use crate::support::{ROOT_TOKEN, Repo, Server, finished_pipeline, send};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a `Recorder` received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A tiny HTTP server that records every request and answers with the next scripted status
/// (200 once the script runs out).
pub struct Recorder {
    pub base: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    pub fn start(script: &[u16]) -> Recorder {
        Recorder::start_on(0, script)
    }

    /// A recorder on `port` (0: any free one).
    pub fn start_on(port: u16, script: &[u16]) -> Recorder {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(script.to_vec()));
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let status = {
                    let mut s = statuses.lock().unwrap();
                    if s.is_empty() { 200 } else { s.remove(0) }
                };
                r.lock().unwrap().push(Received {
                    path,
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Recorder { base, received }
    }

    /// Waits until `done` accepts what was received so far.
    pub async fn wait(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = std::time::Instant::now();
        loop {
            let got = self.received.lock().unwrap().clone();
            if done(&got) {
                return got;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "gave up: {got:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const CONFIG: &str = "build:\n  script: [echo building]\n";

/// Adds a webhook to project `pid` with `form`.
async fn add_hook(s: &Server, pid: u64, form: &(impl serde::Serialize + ?Sized)) {
    let (status, hook) = send(s.root(Method::POST, &format!("/projects/{pid}/hooks")).form(form)).await;
    assert_eq!(status, 201, "{hook}");
}

/// Runs a pipeline on `main` to its end; answers its id.
async fn run_pipeline(s: &Server, pid: u64) -> u64 {
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    finished_pipeline(s, pid, id).await;
    id
}

#[tokio::test]
async fn hooks_api_keeps_the_token_secret() {
    let s = Server::start_with(&["--concurrent", "0", "--allow-local-requests"]);
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let base = format!("/projects/{pid}/hooks");
    let (status, e) = send(s.root(Method::POST, &base).form(&[("url", "ftp://x/y")])).await;
    assert_eq!(status, 400, "{e}");
    let (status, hook) = send(s.root(Method::POST, &base).form(&[
        ("url", "http://127.0.0.1:9/h"),
        ("token", "hook-secret-123"),
        ("pipeline_events", "true"),
    ]))
    .await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(
        (&hook["pipeline_events"], &hook["job_events"], &hook["push_events"]),
        (&json!(true), &json!(false), &json!(true))
    );
    assert!(!hook.to_string().contains("hook-secret-123"));
    let id = hook["id"].as_u64().unwrap();
    let (_, list) = send(s.root(Method::GET, &base)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, updated) = send(
        s.root(Method::PUT, &format!("{base}/{id}"))
            .form(&[("job_events", "true")]),
    )
    .await;
    assert_eq!((status, &updated["job_events"]), (200, &json!(true)));
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    assert_eq!(send(s.as_token(&dev, Method::GET, &base)).await.0, 403);
    assert_eq!(send(s.root(Method::DELETE, &format!("{base}/{id}"))).await.0, 204);
    assert_eq!(send(s.root(Method::GET, &format!("{base}/{id}"))).await.0, 404);
    let db = std::fs::read(s.data_dir.join("spur.redb")).unwrap();
    assert!(!db.windows(15).any(|w| w == b"hook-secret-123"), "the token is sealed");
}

#[tokio::test]
async fn pipeline_and_job_events_reach_the_hook_with_retries() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    // The receiver fails the first delivery: it is retried.
    let rec = Recorder::start(&[500]);
    let form = [
        ("url", format!("{}/hook", rec.base)),
        ("token", "s3cret".into()),
        ("pipeline_events", "true".into()),
        ("job_events", "true".into()),
    ];
    add_hook(&s, pid, &form).await;
    let id = run_pipeline(&s, pid).await;
    let got = rec
        .wait(|r| {
            r.iter()
                .any(|x| x.body["object_kind"] == "pipeline" && x.body["object_attributes"]["status"] == "success")
        })
        .await;
    let first = &got[0];
    assert_eq!(first.header("X-Gitlab-Token"), "s3cret");
    let pipelines: Vec<&Received> = got
        .iter()
        .filter(|r| r.header("X-Gitlab-Event") == "Pipeline Hook")
        .collect();
    assert_eq!(
        pipelines[0].body, pipelines[1].body,
        "the failed delivery was sent again"
    );
    let done = pipelines.last().unwrap();
    assert_eq!(done.body["object_attributes"]["id"], id);
    assert_eq!(done.body["object_attributes"]["detailed_status"], "passed");
    assert_eq!(done.body["project"]["path_with_namespace"], "root/demo");
    assert_eq!(done.body["builds"][0]["name"], "build");
    assert_eq!(done.body["commit"]["id"], repo.sha("main").as_str());
    let jobs: Vec<&Received> = got
        .iter()
        .filter(|r| r.header("X-Gitlab-Event") == "Job Hook")
        .collect();
    let statuses: Vec<&str> = jobs.iter().map(|j| j.body["build_status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"running") && statuses.contains(&"success"),
        "{statuses:?}"
    );
    assert_eq!(jobs[0].body["object_kind"], "build");
}

#[tokio::test]
async fn commit_statuses_go_to_the_forge_and_survive_its_outage() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    let forge = Recorder::start(&[503]);
    let form = [
        ("token", "forge-token"),
        ("repository_url", &format!("{}/owner/repo", forge.base)),
    ];
    let (status, i) = send(
        s.root(Method::PUT, &format!("/projects/{pid}/integrations/github"))
            .form(&form),
    )
    .await;
    assert_eq!(status, 200, "{i}");
    assert!(!i.to_string().contains("forge-token"));
    run_pipeline(&s, pid).await;
    let got = forge.wait(|r| r.iter().any(|x| x.body["state"] == "success")).await;
    let sha = repo.sha("main");
    for r in &got {
        assert_eq!(r.path, format!("/api/v1/repos/owner/repo/statuses/{sha}"));
        assert_eq!(r.header("Authorization"), "token forge-token");
    }
    let states: Vec<&str> = got.iter().map(|r| r.body["state"].as_str().unwrap()).collect();
    assert_eq!(states.first(), Some(&"pending"));
    assert_eq!(
        states.last(),
        Some(&"success"),
        "in order, the outage retried: {states:?}"
    );
    assert!(
        got.last().unwrap().body["target_url"]
            .as_str()
            .unwrap()
            .contains("/-/pipelines/")
    );
}

#[tokio::test]
async fn a_hook_pointed_at_spurs_own_trigger_endpoint_cannot_loop() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = format!(
        "{}/api/v4/projects/{pid}/ref/main/trigger/pipeline?token={token}",
        s.base
    );
    let form = [("url", url.as_str()), ("pipeline_events", "true")];
    add_hook(&s, pid, &form).await;
    run_pipeline(&s, pid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn deliveries_wait_in_the_outbox_across_a_restart() {
    let mut s = Server::start_with(&["--allow-local-requests", "--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    // Nothing listens on the hook's port yet: every delivery fails and waits to be retried.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let form = [
        ("url", format!("http://127.0.0.1:{port}/hook")),
        ("pipeline_events", "true".into()),
    ];
    add_hook(&s, pid, &form).await;
    let id = run_pipeline(&s, pid).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.terminate(Duration::from_secs(20)));
    // The receiver comes up, and so does spur: the waiting deliveries go out, in order.
    let rec = Recorder::start_on(port, &[]);
    let data_dir = s.data_dir.clone();
    let s2 = Server::start_on(&data_dir, &["--allow-local-requests", "--concurrent", "1"]);
    let got = rec
        .wait(|r| r.iter().any(|x| x.body["object_attributes"]["status"] == "success"))
        .await;
    assert_eq!(got[0].body["object_attributes"]["id"], id);
    assert_eq!(got.last().unwrap().body["object_attributes"]["status"], "success");
    drop(s2);
}

#[tokio::test]
async fn kill_9_right_after_a_201_loses_no_event() {
    let mut s = Server::start_with(&["--allow-local-requests", "--concurrent", "0"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("crashy", repo.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let form = [
        ("url", format!("http://127.0.0.1:{port}/hook")),
        ("pipeline_events", "true".into()),
    ];
    add_hook(&s, pid, &form).await;
    // Acknowledged pipelines, then the server dies at once, the receiver still down.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, p) = send(
            s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
                .form(&[("ref", "main")]),
        )
        .await;
        assert_eq!(status, 201, "{p}");
        ids.push(p["id"].clone());
    }
    s.kill9();
    let rec = Recorder::start_on(port, &[]);
    let data_dir = s.data_dir.clone();
    let s2 = Server::start_on(&data_dir, &["--allow-local-requests", "--concurrent", "0"]);
    let got = rec
        .wait(|r| {
            ids.iter()
                .all(|id| r.iter().any(|x| x.body["object_attributes"]["id"] == *id))
        })
        .await;
    // Each pipeline's creation (it is `pending` at once: the executor is off) is announced
    // exactly once.
    for id in &ids {
        let announced = got
            .iter()
            .filter(|x| x.body["object_attributes"]["id"] == *id && x.body["object_attributes"]["status"] == "pending")
            .count();
        assert_eq!(announced, 1, "pipeline {id}: {got:#?}");
    }
    drop(s2);
}

#[tokio::test]
async fn a_hook_test_posts_gitlabs_sample_now_and_reports_the_answer() {
    let s = Server::start_with(&["--allow-local-requests"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("hooktest", repo.path()).await;
    let recorder = Recorder::start(&[200, 200, 500]);
    let (status, hook) = send(s.root(Method::POST, &format!("/projects/{pid}/hooks")).form(&[
        ("url", format!("{}/h", recorder.base).as_str()),
        ("token", "test-secret"),
    ]))
    .await;
    assert_eq!(status, 201, "{hook}");
    let test = |trigger: &str| format!("/projects/{pid}/hooks/{}/test/{trigger}", hook["id"]);
    assert_eq!(
        send(s.root(Method::POST, &test("pipeline_events"))).await,
        (422, json!({"message": "Ensure the project has CI pipelines."})),
        "nothing to sample yet"
    );
    assert_eq!(
        send(s.root(Method::POST, &test("push_events"))).await,
        (201, json!({"message": "201 Created"}))
    );
    let got = recorder.wait(|r| !r.is_empty()).await;
    assert_eq!(
        (got[0].header("X-Gitlab-Event"), got[0].header("X-Gitlab-Token")),
        ("Push Hook", "test-secret")
    );
    assert_eq!(got[0].body["after"].as_str(), Some(repo.sha("main").as_str()));
    assert_eq!(got[0].body["ref"], "refs/heads/main");
    run_pipeline(&s, pid).await;
    assert_eq!(send(s.root(Method::POST, &test("pipeline_events"))).await.0, 201);
    let got = recorder.wait(|r| r.len() >= 2).await;
    assert_eq!(got[1].body["object_kind"], "pipeline");
    let (status, failed) = send(s.root(Method::POST, &test("job_events"))).await;
    assert_eq!(status, 422, "the receiver answered 500: {failed}");
    assert_eq!(send(s.root(Method::POST, &test("bogus_events"))).await.0, 400);

    // Every delivery stays in the hook's log, newest first, its secret redacted; a failed one
    // can be sent again.
    let events = format!("/projects/{pid}/hooks/{}/events", hook["id"]);
    let (status, logs) = send(s.root(Method::GET, &events)).await;
    assert_eq!(status, 200, "{logs}");
    let statuses: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["response_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["500", "200", "200"]);
    assert_eq!(logs[0]["trigger"], "job_hooks");
    assert_eq!(logs[0]["request_headers"]["X-Gitlab-Token"], "[REDACTED]");
    assert!(!logs.to_string().contains("test-secret"));
    let (_, failures) = send(s.root(Method::GET, &format!("{events}?status=server_failure"))).await;
    assert_eq!(failures.as_array().map(Vec::len), Some(1));
    let resend = format!("{events}/{}/resend", logs[0]["id"]);
    assert_eq!(
        send(s.root(Method::POST, &resend)).await,
        (201, json!({"response_status": "200"})),
        "the receiver is back"
    );
    let got = recorder.wait(|r| r.len() >= 4).await;
    assert_eq!(got[3].body, got[2].body, "the same event again");
    assert_eq!(got[3].header("X-Gitlab-Token"), "test-secret");
    assert_eq!(
        send(s.root(Method::GET, &events)).await.1.as_array().map(Vec::len),
        Some(4)
    );

    // The same, in the browser: Settings › Webhooks lists recent events with a Resend button.
    let mut b = crate::ui::Browser::new(&s);
    b.sign_in("root", "root-password-123").await;
    let (status, page, _) = b.get("/root/hooktest/-/hooks").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Recent events") && page.contains("job hooks") && page.contains(">500<"),
        "{page}"
    );
    let csrf = crate::ui::csrf_of(&page);
    let retry = format!(
        "/root/hooktest/-/hooks/{}/hook_logs/{}/retry",
        hook["id"], logs[0]["id"]
    );
    let (status, _, location, _) = b.post(&retry, &[("authenticity_token", csrf.as_str())]).await;
    assert_eq!((status, location.as_deref()), (302, Some("/root/hooktest/-/hooks")));
    recorder.wait(|r| r.len() >= 5).await;
    let (status, _, _, _) = b.post(&retry, &[("authenticity_token", "forged")]).await;
    assert_eq!(status, 422, "no CSRF token, no resend");
    // Five resends a minute per user, as GitLab allows.
    for _ in 0..3 {
        assert_eq!(send(s.root(Method::POST, &resend)).await.0, 201);
    }
    let (status, body) = send(s.root(Method::POST, &resend)).await;
    assert_eq!(
        (status, body),
        (
            429,
            json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}})
        )
    );
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    assert_eq!(send(s.as_token(&dev, Method::POST, &test("push_events"))).await.0, 403);
    assert_eq!(send(s.as_token(&dev, Method::GET, &events)).await.0, 403);

    // A delivery the receiver refuses (4xx is final) is given up at once and stays visible.
    let refusing = Recorder::start(&[404, 404, 404]);
    let (_, second) = send(s.root(Method::POST, &format!("/projects/{pid}/hooks")).form(&[
        ("url", format!("{}/h", refusing.base).as_str()),
        ("pipeline_events", "true"),
        ("push_events", "false"),
    ]))
    .await;
    run_pipeline(&s, pid).await;
    let second_events = format!("/projects/{pid}/hooks/{}/events", second["id"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, logs) = send(s.root(Method::GET, &second_events)).await;
        if logs
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["response_status"] == "404"))
        {
            assert_eq!(logs[0]["trigger"], "pipeline_hooks");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log of the refused delivery: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
