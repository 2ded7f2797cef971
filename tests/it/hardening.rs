//! Hardening: failed sign-ins and (when configured) failed triggers are rate-limited per client
//! with GitLab's 429 `Retry later`, without slowing valid callers.

use crate::support::{ROOT_TOKEN, Repo, Server, send};

#[tokio::test]
async fn failed_sign_ins_are_throttled_by_default() {
    let s = Server::start_with(&["--concurrent", "0", "--sign-in-rate-limit", "3"]);
    let client = crate::support::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let attempt = |password: &'static str| {
        let client = client.clone();
        let base = s.base.clone();
        async move {
            let form = client.get(format!("{base}/users/sign_in")).send().await.unwrap();
            let cookie = form
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_string())
                .find(|c| c.starts_with("_spur_csrf="))
                .unwrap_or_default();
            let page = form.text().await.unwrap();
            let marker = "name=\"authenticity_token\" value=\"";
            let csrf = page
                .find(marker)
                .map(|i| page[i + marker.len()..].split('"').next().unwrap().to_string())
                .unwrap_or_default();
            client
                .post(format!("{base}/users/sign_in"))
                .header("Cookie", cookie)
                .form(&[
                    ("authenticity_token", csrf.as_str()),
                    ("user[login]", "root"),
                    ("user[password]", password),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong-password").await.status(), 200);
    }
    let throttled = attempt("root-password-123").await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().get("retry-after").is_some());
    assert_eq!(throttled.text().await.unwrap(), "Retry later\n");
    // The API with a valid token is not slowed.
    let (status, _) = send(s.as_token(ROOT_TOKEN, reqwest::Method::GET, "/user")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_triggers_are_throttled_only_when_configured() {
    for (limit, want) in [("0", 404), ("5", 429)] {
        let s = Server::start_with(&["--concurrent", "0", "--trigger-rate-limit", limit]);
        let repo = Repo::new();
        let pid = s.project("demo", repo.path()).await;
        let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
        for _ in 0..5 {
            let (status, _) = send(s.http.post(&url).form(&[("token", "glptt-wrong"), ("ref", "main")])).await;
            assert_eq!(status, 404);
        }
        let (status, _) = send(s.http.post(&url).form(&[("token", "glptt-wrong"), ("ref", "main")])).await;
        assert_eq!(status, want, "limit {limit}");
    }
}

/// A small xorshift generator: random kill points without another dependency.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test]
async fn twenty_crashes_under_load_lose_no_acknowledged_pipeline_and_run_no_job_twice() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let config = "mark:\n  script: [echo run >> \"$MARKS/$CI_JOB_ID\"]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let mut s = Server::start_on(&data, &["--concurrent", "2"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    for cycle in 0..20 {
        let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
        let mut senders = Vec::new();
        for _ in 0..8 {
            let (http, url, token, acked, marks) =
                (s.http.clone(), url.clone(), token.clone(), acked.clone(), marks.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let form = [
                        ("token", token.as_str()),
                        ("ref", "main"),
                        ("variables[MARKS]", marks.to_str().unwrap()),
                    ];
                    let Ok(r) = http.post(&url).form(&form).send().await else {
                        return;
                    };
                    if r.status() != 201 {
                        return;
                    }
                    let Ok(p) = r.json::<serde_json::Value>().await else {
                        return;
                    };
                    acked.lock().unwrap().push(p["id"].as_u64().unwrap());
                }
            }));
        }
        let wait = 100 + next(&mut seed) % 400;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        s.kill9();
        for sender in senders {
            let _ = sender.await;
        }
        s = Server::start_on(&data, &["--concurrent", "2"]);
        let ids = acked.lock().unwrap().clone();
        for id in ids.iter().rev().take(50) {
            let (status, _) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
            assert_eq!(status, 200, "cycle {cycle}: acknowledged pipeline {id} is lost");
        }
    }
    // Let everything finish: nothing is left running, every acknowledged pipeline exists.
    let ids = acked.lock().unwrap().clone();
    assert!(ids.len() > 100, "the load ran: {}", ids.len());
    eprintln!(
        "crash test: {} pipelines acknowledged across 20 kill -9 cycles",
        ids.len()
    );
    let start = std::time::Instant::now();
    loop {
        let (_, running) = send(s.root(
            reqwest::Method::GET,
            &format!("/projects/{pid}/jobs?scope[]=running&scope[]=pending"),
        ))
        .await;
        if running.as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "jobs never settled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for id in &ids {
        let (status, _) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
        assert_eq!(status, 200, "acknowledged pipeline {id} is lost");
    }
    for entry in std::fs::read_dir(&marks).unwrap() {
        let entry = entry.unwrap();
        let runs = std::fs::read_to_string(entry.path()).unwrap().lines().count();
        assert_eq!(runs, 1, "job {:?} ran {runs} times", entry.file_name());
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log_or_the_database_in_plain_text() {
    let mailbox = crate::support::Mailbox::start();
    let s = Server::start_with(&["--concurrent", "1"]);
    let config = format!(
        "use:\n  script:\n    - {}\n    - echo \"$MASKED_ONE $DEPLOY_KEY\"\n",
        crate::support::put_cmd("job-token", "$CI_JOB_TOKEN")
    );
    let repo = Repo::with_files(&[(".gitlab-ci.yml", &config)]);
    let pid = s.project("demo", repo.path()).await;
    let (uid, user_token) = s.user("sam").await;
    s.add_member(pid, uid, 40).await;
    let (status, _) = send(
        s.root(reqwest::Method::POST, &format!("/projects/{pid}/variables"))
            .form(&[
                ("key", "MASKED_ONE"),
                ("value", "MaskedSecret-1234"),
                ("masked", "true"),
            ]),
    )
    .await;
    assert_eq!(status, 201);
    let (_, trigger_token) = s.trigger_token(&user_token, pid).await;
    let (status, p) = send(s.http.post(s.api(&format!("/projects/{pid}/trigger/pipeline"))).form(&[
        ("token", trigger_token.as_str()),
        ("ref", "main"),
        ("variables[DEPLOY_KEY]", "payload-secret-5678"),
        ("variables[MAILBOX]", mailbox.url.as_str()),
    ]))
    .await;
    assert_eq!(status, 201, "{p}");
    // A browser session too.
    let client = crate::support::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(format!("{}/users/sign_in", s.base)).send().await.unwrap();
    let csrf_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("_spur_csrf="))
        .unwrap();
    let page = form.text().await.unwrap();
    let marker = "name=\"authenticity_token\" value=\"";
    let i = page.find(marker).unwrap() + marker.len();
    let signed_in = client
        .post(format!("{}/users/sign_in", s.base))
        .header("Cookie", csrf_cookie)
        .form(&[
            ("authenticity_token", page[i..].split('"').next().unwrap()),
            ("user[login]", "sam"),
            ("user[password]", "password123"),
        ])
        .send()
        .await
        .unwrap();
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("_spur_session="))
        .unwrap();
    let job_token = mailbox.wait("job-token").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let secrets = [
        ROOT_TOKEN.to_string(),
        "root-password-123".to_string(),
        "password123".to_string(),
        user_token.clone(),
        trigger_token.clone(),
        "MaskedSecret-1234".to_string(),
        "payload-secret-5678".to_string(),
        session.trim_start_matches("_spur_session=").to_string(),
        job_token.clone(),
    ];
    let log = s.log_text();
    let db = std::fs::read(s.data_dir.join("spur.redb")).unwrap();
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log holds a secret");
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the database holds a secret in plain text"
        );
    }
}

const JOB_USER: &str = "spur-job-test";

/// Creates the unprivileged job user (the tests run as root in CI); `None` when not root.
fn job_user() -> Option<&'static str> {
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root.unwrap_or(false) {
        eprintln!("not root: the --job-user test needs root to create and switch users; skipped");
        return None;
    }
    let exists = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .any(|l| l.starts_with(&format!("{JOB_USER}:")));
    if !exists {
        let status = std::process::Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", JOB_USER])
            .status()
            .unwrap();
        assert!(status.success(), "useradd failed");
    }
    Some(JOB_USER)
}

#[tokio::test]
async fn jobs_run_as_the_job_user_cannot_read_the_data_dir() {
    let Some(user) = job_user() else { return };
    // The data dir's parent must be traversable by the job user, as /var/lib is.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let config = r#"probe:
  script:
    - test "$(id -u)" != 0
    - id
    - cat README.md
    - git log --oneline -1
    - if cat "$DATA/secret.key" > /dev/null 2>&1; then echo LEAKED-KEY; exit 1; fi
    - echo secret key unreadable
    - if ls "$DATA/repositories" > /dev/null 2>&1; then echo LEAKED-MIRRORS; exit 1; fi
    - if cat "$DATA/spur.redb" > /dev/null 2>&1; then echo LEAKED-DB; exit 1; fi
    - echo data dir closed
"#;
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config), ("README.md", "hello from the checkout\n")]);
    std::fs::set_permissions(repo.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = Server::start_on(&data, &["--concurrent", "1", "--job-user", user]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = send(s.http.post(s.api(&format!("/projects/{pid}/trigger/pipeline"))).form(&[
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[DATA]", data.to_str().unwrap()),
    ]))
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let start = std::time::Instant::now();
    let pipeline = loop {
        let (_, p) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
        if ["success", "failed"].contains(&p["status"].as_str().unwrap_or("")) {
            break p;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let (_, jobs) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let log = crate::support::job_log(&s, pid, &jobs[0]["id"]).await;
    assert_eq!(pipeline["status"], "success", "{log}");
    for want in [
        "hello from the checkout",
        "secret key unreadable",
        "data dir closed",
        &format!("({user})"),
    ] {
        assert!(log.contains(want), "missing {want:?}:\n{log}");
    }
}

#[test]
fn a_root_or_unknown_job_user_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (user, want) in [("root", "must not be root"), ("no-such-user-here", "no user")] {
        let Err(err) = crate::support::spawn(&dir.path().join(user), &["--job-user", user]) else {
            panic!("spur must refuse to start with --job-user {user}");
        };
        assert!(err.contains(want), "{err}");
    }
}

#[tokio::test]
async fn includes_and_refs_cannot_escape_the_repository() {
    let s = Server::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "a:\n  script: [x]\n")]);
    let pid = s.project("demo", repo.path()).await;
    for (include, want) in [
        ("../../../../etc/passwd.yml", "does not exist"),
        ("/etc/passwd.yml", "does not exist"),
        ("/proc/self/environ", "does not have YAML extension"),
    ] {
        let (status, lint) = send(
            s.root(reqwest::Method::POST, &format!("/projects/{pid}/ci/lint"))
                .json(&serde_json::json!({"content": format!("include: '{include}'\na:\n  script: [x]\n")})),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            lint["errors"][0].as_str().unwrap_or("").contains(want),
            "{include}: {lint}"
        );
    }
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    for bad in [
        "../main",
        "main/../main",
        "ma..in",
        "main.lock",
        "refs/heads/../../HEAD",
        "-main",
        "ma in",
    ] {
        let (status, body) = send(
            s.http
                .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
                .form(&[("token", token.as_str()), ("ref", bad)]),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["message"]["base"][0], "Reference not found", "{bad}");
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn env_secs(name: &str, default: u64) -> std::time::Duration {
    std::time::Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

/// A mixed load (`SPUR_LOAD_SECONDS`, default 60): valid triggers running jobs, wrong tokens,
/// malformed bodies, API reads, page loads and live-log readers. No answer may be a 5xx, no
/// acknowledged pipeline may be missing, and a minute later (`SPUR_LOAD_SETTLE`) resident
/// memory is back within idle + 20 % + 5 MB.
#[tokio::test]
async fn a_mixed_load_gets_no_server_error_and_memory_settles() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [\"seq 1 50\"]\n")]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let trigger_url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    // Warm up, then take the idle figure.
    for _ in 0..20 {
        send(
            s.http
                .post(&trigger_url)
                .form(&[("token", token.as_str()), ("ref", "main")]),
        )
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let idle = rss_kib(s.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let server_errors = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut tasks = Vec::new();
    // Idle pooled connections are dropped before the server's 5-second keep-alive closes them:
    // a POST on a connection the server is closing at that instant is not retried by the
    // client, and would count as a dropped request that spur never saw.
    let load_client = crate::support::http_client_builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    // (kind, requests per second per task, tasks)
    for (kind, per_second, count) in [
        ("trigger", 25u64, 4),
        ("wrong", 25, 2),
        ("malformed", 20, 1),
        ("read", 50, 2),
        ("page", 25, 2),
        ("log", 10, 2),
    ] {
        for _ in 0..count {
            let (stop, errors, requests, acked) =
                (stop.clone(), server_errors.clone(), requests.clone(), acked.clone());
            let (http, base, api, url, token) = (
                load_client.clone(),
                s.base.clone(),
                s.api(""),
                trigger_url.clone(),
                token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let pause = std::time::Duration::from_millis(1000 / per_second);
                while !stop.load(Ordering::Relaxed) {
                    let req = match kind {
                        "trigger" => http.post(&url).form(&[("token", token.as_str()), ("ref", "main")]),
                        "wrong" => http
                            .post(&url)
                            .form(&[("token", "glptt-not-a-real-token"), ("ref", "main")]),
                        "malformed" => http
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .body("{\"ref\": [unclosed"),
                        "read" => http
                            .get(format!("{api}/projects/{pid}/pipelines?per_page=20"))
                            .header("PRIVATE-TOKEN", ROOT_TOKEN),
                        "page" => http.get(format!("{base}/users/sign_in")),
                        _ => http
                            .get(format!("{api}/projects/{pid}/jobs/1/trace"))
                            .header("PRIVATE-TOKEN", ROOT_TOKEN),
                    };
                    let sent = req.send().await;
                    if let Err(e) = &sent {
                        eprintln!("{kind}: no answer: {e}");
                    }
                    if let Ok(resp) = sent {
                        requests.fetch_add(1, Ordering::Relaxed);
                        let status = resp.status().as_u16();
                        if status >= 500 {
                            eprintln!("{kind}: answered {status}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        if kind == "trigger" && status == 201 {
                            let p: serde_json::Value = resp.json().await.unwrap_or_default();
                            if let Some(id) = p["id"].as_u64() {
                                acked.lock().unwrap().push(id);
                            }
                        } else {
                            let _ = resp.bytes().await;
                        }
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(pause).await;
                }
            }));
        }
    }
    let load = env_secs("SPUR_LOAD_SECONDS", 60);
    tokio::time::sleep(load).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let peak = rss_kib(s.pid());
    let ids = acked.lock().unwrap().clone();
    for id in &ids {
        let (status, _) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}"))).await;
        assert_eq!(status, 200, "acknowledged pipeline {id} is missing");
    }
    tokio::time::sleep(env_secs("SPUR_LOAD_SETTLE", 60)).await;
    let settled = rss_kib(s.pid());
    eprintln!(
        "load mix: {} requests in {} s ({:.0}/s), {} pipelines acknowledged, {} server errors; RSS idle {} KiB, end of load {} KiB, settled {} KiB",
        requests.load(Ordering::Relaxed),
        load.as_secs(),
        requests.load(Ordering::Relaxed) as f64 / load.as_secs_f64(),
        ids.len(),
        server_errors.load(Ordering::Relaxed),
        idle,
        peak,
        settled
    );
    assert_eq!(
        server_errors.load(Ordering::Relaxed),
        0,
        "5xx answers or dropped connections under load"
    );
    assert!(
        settled <= idle + idle / 5 + 5 * 1024,
        "memory did not settle: idle {idle} KiB, a minute after the load {settled} KiB"
    );
}

const SANDBOX_PROBE: &str = r#"probe:
  script:
    - cat README.md
    - git log --oneline -1
    - echo written > "$CI_PROJECT_DIR/out.txt"
    - if cat "$DATA/secret.key" > /dev/null 2>&1; then echo LEAKED-KEY; exit 1; fi
    - if ls "$DATA/repositories" > /dev/null 2>&1; then echo LEAKED-MIRRORS; exit 1; fi
    - if ls "$DATA/traces" > /dev/null 2>&1; then echo LEAKED-LOGS; exit 1; fi
    - if touch /usr/spur-was-here 2> /dev/null; then echo WROTE-HOST; exit 1; fi
    - if cat /proc/$SPUR_PID/environ > /dev/null 2>&1; then echo LEAKED-ENVIRON; exit 1; fi
    - if kill -0 $SPUR_PID 2> /dev/null; then echo SIGNALLED-SPUR; exit 1; fi
    - echo sandbox holds
"#;

/// Runs the sandbox probe on a server started as `user` (or as the test's own user) with
/// `--job-sandbox <sandbox>` and answers the job's log and the pipeline's status.
async fn sandbox_probe(user: Option<&str>, sandbox: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let repo = Repo::with_files(&[
        (".gitlab-ci.yml", SANDBOX_PROBE),
        ("README.md", "hello from the checkout\n"),
    ]);
    std::fs::set_permissions(repo.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    if let Some(user) = user {
        // The server and its repository belong to that user (git refuses others' repositories).
        for path in [&data, &repo.path().to_path_buf()] {
            let ok = std::process::Command::new("chown")
                .args(["-R", &format!("{user}:"), path.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
    }
    let s = Server::start_as(user, &data, &["--concurrent", "1", "--job-sandbox", sandbox]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = send(s.http.post(s.api(&format!("/projects/{pid}/trigger/pipeline"))).form(&[
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[DATA]", data.to_str().unwrap()),
        ("variables[SPUR_PID]", &s.pid().to_string()),
    ]))
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let p = crate::support::finished_pipeline(&s, pid, id).await;
    let (_, jobs) = send(s.root(reqwest::Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let log = crate::support::job_log(&s, pid, &jobs[0]["id"]).await;
    (log, p["status"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn both_sandboxes_hide_the_data_dir_and_spur_as_root_and_as_a_user() {
    if std::process::Command::new("bwrap").arg("--version").output().is_err() {
        panic!("bubblewrap is not installed: tests/run installs it");
    }
    // As the test's own user (root in CI: each job gets a uid of its own), then as an
    // unprivileged user (jobs share its uid; bwrap uses user namespaces).
    let mut runs = vec![None];
    if job_user().is_some() {
        runs.push(Some(JOB_USER));
    }
    for user in runs {
        for sandbox in ["landlock", "bwrap"] {
            let (log, status) = sandbox_probe(user, sandbox).await;
            assert_eq!(status, "success", "{sandbox} as {user:?}:\n{log}");
            for want in ["hello from the checkout", "sandbox holds"] {
                assert!(log.contains(want), "{sandbox} as {user:?}, missing {want:?}:\n{log}");
            }
        }
    }
}
