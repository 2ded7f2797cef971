//! Live pages over plain HTTP: the job log fetched by cursor (only what it gained, sections
//! opened and closed as operations), ETags that answer 304 until a pipeline changes, the
//! pipeline graph's `needs` links, and manual jobs run with variables (API and page).

use crate::execution::trigger;
use crate::support::{Mailbox, ROOT_TOKEN, Repo, Server, finished_pipeline, job_log, send, wait_cmd};
use crate::ui::{Browser, csrf_of};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn setup(config: &str) -> (Server, Repo, u64, String) {
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    (s, repo, pid, token)
}

fn attribute(page: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let i = page.find(&marker).unwrap_or_else(|| panic!("no {name} in the page")) + marker.len();
    page[i..].split('"').next().unwrap().replace("&#46;", ".")
}

async fn get_with(b: &Browser, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut req = b
        .http
        .get(format!("{}{path}", b.base()))
        .header("Cookie", b.cookie_header());
    if let Some(etag) = etag {
        req = req.header("If-None-Match", etag);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_live_log_sends_only_what_it_gained_and_pages_answer_304_until_they_change() {
    let mailbox = Mailbox::start();
    let config = format!(
        "build:\n  script:\n    - echo first-line\n    - {}\n    - echo second-line\ntest:\n  stage: test\n  needs: [build]\n  script: [echo tested]\n",
        wait_cmd("go")
    );
    let (s, _repo, pid, token) = setup(&config).await;
    let id = trigger(&s, pid, &token, &[("MAILBOX", &mailbox.url)]).await;
    let mut b = Browser::new(&s);
    b.sign_in("root", "root-password-123").await;
    let start = Instant::now();
    let page = loop {
        let (_, page, _) = b.get("/root/demo/-/jobs/1").await;
        if page.contains("first-line") && page.contains("data-live=\"true\"") {
            break page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the job never logged its first line"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The page carries where the script resumes; the first poll brings nothing new.
    let mut cursor = attribute(&page, "data-cursor");
    let (_, body, _) = b.get(&format!("/root/demo/-/jobs/1/trace.json?cursor={cursor}")).await;
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["status"], "running");
    assert!(
        !body.contains("first-line"),
        "what the page holds is not sent again: {body}"
    );
    assert!(
        page.contains("data-n=\"1\""),
        "lines are numbered by the server, folded or not"
    );

    // The pipeline page and the list: an ETag, and 304 while nothing shown changed.
    let pipeline_page = format!("/root/demo/-/pipelines/{id}");
    let resp = get_with(&b, &pipeline_page, None).await;
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(&format!("content=\"{}\"", etag.replace('"', "&#34;"))) || html.contains("spur-etag"),
        "{html}"
    );
    assert!(
        html.contains("data-live-region"),
        "a running pipeline's page stays live"
    );
    assert!(
        html.contains("<noscript><meta http-equiv=\"refresh\""),
        "and reloads itself without scripts"
    );
    assert!(
        html.contains("class=\"needs\"") && html.contains("data-need=\"1\""),
        "test needs build: {html}"
    );
    assert_eq!(get_with(&b, &pipeline_page, Some(&etag)).await.status(), 304);
    let list = get_with(&b, "/root/demo/-/pipelines", None).await;
    let list_etag = list.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(
        get_with(&b, "/root/demo/-/pipelines", Some(&list_etag)).await.status(),
        304
    );

    mailbox.put("go", "1");
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
    let fresh = get_with(&b, &pipeline_page, Some(&etag)).await;
    assert_eq!(fresh.status(), 200, "the finished pipeline is a change");
    assert_ne!(fresh.headers()["etag"].to_str().unwrap(), etag);
    assert!(
        !fresh.text().await.unwrap().contains("data-live-region"),
        "a finished pipeline stops polling"
    );
    assert_eq!(
        get_with(&b, "/root/demo/-/pipelines", Some(&list_etag)).await.status(),
        200
    );
    let (_, job_page, _) = b.get("/root/demo/-/jobs/1").await;
    assert!(
        job_page.contains("/root/demo/-/jobs/1/raw?download=1"),
        "a job with a log offers its download"
    );

    // The rest of the log comes by cursor: each line once, the script's section closed.
    let mut gained = String::new();
    loop {
        let (_, body, _) = b.get(&format!("/root/demo/-/jobs/1/trace.json?cursor={cursor}")).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        for op in v["ops"].as_array().unwrap() {
            gained.push_str(&op.to_string());
        }
        cursor = v["cursor"].as_str().unwrap().to_string();
        if v["complete"] == true && v["more"] == false {
            assert!(v["tail"].is_null());
            break;
        }
    }
    assert!(
        gained.contains("second-line") && !gained.contains("first-line"),
        "{gained}"
    );
    assert!(
        gained.contains("\"close\""),
        "the script's section ends in the chunk: {gained}"
    );
    let full = job_log(&s, pid, &1).await;
    let offset: usize = cursor.split('.').next().unwrap().parse().unwrap();
    assert_eq!(offset, full.len(), "the cursor ends at the log's end");
    // Past the end (an erased log): the script is told to reload.
    let (_, body, _) = b.get("/root/demo/-/jobs/1/trace.json?cursor=99999999.-").await;
    assert!(body.contains("\"reset\":true"), "{body}");
    // A cursor that does not read starts at the beginning, never fails.
    let (status, body, _) = b.get("/root/demo/-/jobs/1/trace.json?cursor=x.y.z").await;
    assert_eq!(status, 200);
    assert!(body.contains("first-line"), "{body}");
}

#[tokio::test]
async fn a_manual_job_runs_with_the_variables_its_runner_sets() {
    let config = "deploy:\n  when: manual\n  variables: {TARGET: from-yaml}\n  script: [echo \"target=$TARGET extra=$EXTRA\"]\nother:\n  when: manual\n  script: [echo \"other=$TARGET\"]\nbridge:\n  when: manual\n  trigger:\n    include: child.yml\n";
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[
        (".gitlab-ci.yml", config),
        ("child.yml", "child:\n  script: [echo child]\n"),
    ]);
    let pid = s.project("demo", repo.path()).await;
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .json(&json!({"ref": "main"})),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let job_id = |name: &str| {
        jobs.as_array().unwrap().iter().find(|j| j["name"] == name).unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let (deploy, other) = (job_id("deploy"), job_id("other"));
    let play = |job: u64, body: Value| {
        send(
            s.root(Method::POST, &format!("/projects/{pid}/jobs/{job}/play"))
                .json(&body),
        )
    };

    // Keys GitLab refuses change nothing.
    let (status, body) = play(
        deploy,
        json!({"job_variables_attributes": [{"key": "BAD-KEY", "value": "x"}]}),
    )
    .await;
    assert_eq!(
        (status, body["message"]["job_variables.key"][0].as_str()),
        (400, Some("can contain only letters, digits and '_'.")),
        "{body}"
    );
    let (status, body) = play(
        deploy,
        json!({"job_variables_attributes": [{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = play(deploy, json!({"job_variables_attributes": "A=1"})).await;
    assert_eq!(status, 400, "{body}");
    let (_, job) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{deploy}"))).await;
    assert_eq!(job["status"], "manual");

    // Played with variables: they win over the job's own.
    let (status, body) = play(
        deploy,
        json!({"job_variables_attributes": [{"key": "TARGET", "value": "from-play"}, {"key": "EXTRA", "value": "x y"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    loop {
        let log = job_log(&s, pid, &deploy).await;
        if log.contains("target=from-play extra=x y") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A retry keeps the played variables (GitLab's job variables) for its page's form.
    let (status, retried) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{deploy}/retry"))).await;
    assert_eq!(status, 201, "{retried}");
    let again = retried["id"].as_u64().unwrap();
    let start = Instant::now();
    let mut state = Value::Null;
    while start.elapsed() < Duration::from_secs(30) {
        let (_, j) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{again}"))).await;
        state = j["status"].clone();
        if state == "manual" || state == "success" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "manual", "a retried manual job waits for its action again");
    // Its page shows the last run's variables in the form, to keep, change or drop.
    let mut root = Browser::new(&s);
    root.sign_in("root", "root-password-123").await;
    let (_, page, _) = root.get(&format!("/root/demo/-/jobs/{again}")).await;
    assert!(
        page.contains("value=\"from-play\"") && page.contains("value=\"EXTRA\""),
        "{page}"
    );
    // Played again without variables, the last run's are dropped, not silently kept.
    let (status, _) = play(again, json!({})).await;
    assert_eq!(status, 200);
    let start = Instant::now();
    loop {
        let log = job_log(&s, pid, &again).await;
        if log.contains("target=from-yaml extra=") {
            break;
        }
        assert!(!log.contains("from-play"), "{log}");
        assert!(start.elapsed() < Duration::from_secs(30), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nobody may set variables here now: variables are refused (403), a bare play is not.
    let (status, body) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .json(&json!({"ci_pipeline_variables_minimum_override_role": "no_one_allowed"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = play(
        other,
        json!({"job_variables_attributes": [{"key": "TARGET", "value": "t"}]}),
    )
    .await;
    assert_eq!(status, 403);

    // The page: a Developer's refused form comes back with what was entered, beside the error.
    send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .json(&json!({"ci_pipeline_variables_minimum_override_role": "developer"})),
    )
    .await;
    let (dev_id, _) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    let mut b = Browser::new(&s);
    b.sign_in("dev", "password123").await;
    let path = format!("/root/demo/-/jobs/{other}");
    let (_, page, _) = b.get(&path).await;
    assert!(page.contains("This job requires a manual action") && page.contains("job_variables_attributes[][key]"));
    let csrf = csrf_of(&page);
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("job_variables_attributes[][key]", "NOT OK"),
        ("job_variables_attributes[][value]", "kept-value-1"),
    ];
    let (status, page, _, _) = b.post(&format!("{path}/play"), &form).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("value=\"NOT OK\"") && page.contains("value=\"kept-value-1\""),
        "{page}"
    );
    assert!(
        page.contains("id=\"play-error\"") && page.contains("Key NOT OK can contain only letters"),
        "{page}"
    );
    assert_eq!(
        page.matches("aria-invalid=\"true\"").count(),
        1,
        "only the row at fault is marked"
    );
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("job_variables_attributes[][key]", "TARGET"),
        ("job_variables_attributes[][value]", "from-page"),
        ("job_variables_attributes[][key]", ""),
        ("job_variables_attributes[][value]", ""),
    ];
    let (status, _, location, _) = b.post(&format!("{path}/play"), &form).await;
    assert_eq!((status, location.as_deref()), (302, Some(path.as_str())));
    let (status, _, location) = b.get(&format!("{path}/play")).await;
    assert_eq!(
        (status, location.as_deref()),
        (302, Some(path.as_str())),
        "a reload of the refused form"
    );
    let start = Instant::now();
    while !job_log(&s, pid, &other).await.contains("other=from-page") {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A bridge's page links the pipeline it started.
    let (_, bridges) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/bridges"))).await;
    let bridge = bridges[0]["id"].as_u64().unwrap();
    let (status, _) = play(bridge, json!({})).await;
    assert_eq!(status, 200);
    let start = Instant::now();
    loop {
        let (_, page, _) = b.get(&format!("/root/demo/-/jobs/{bridge}")).await;
        if page.contains("id=\"downstream-pipeline\"") {
            assert!(page.contains("/root/demo/-/pipelines/"), "{page}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_line_longer_than_one_answer_is_sent_whole_and_numbered_once() {
    let config = "big:\n  script:\n    - head -c 600000 /dev/zero | tr '\\0' x; echo\n    - echo after-big\n";
    let (s, _repo, pid, token) = setup(config).await;
    let id = trigger(&s, pid, &token, &[]).await;
    assert_eq!(finished_pipeline(&s, pid, id).await["status"], "success");
    let mut b = Browser::new(&s);
    b.sign_in("root", "root-password-123").await;
    let (_, page, _) = b.get("/root/demo/-/jobs/1").await;
    let page_lines = page.matches("class=\"line\"").count();
    let mut cursor = "0.-.0".to_string();
    let (mut lines, mut longest) = (0, 0);
    for _ in 0..50 {
        let (_, body, _) = b.get(&format!("/root/demo/-/jobs/1/trace.json?cursor={cursor}")).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        for op in v["ops"].as_array().unwrap() {
            if let Some(html) = op["lines"].as_str() {
                lines += html.matches("class=\"line\"").count();
                longest = longest.max(html.split("class=\"line\"").map(str::len).max().unwrap_or(0));
            }
        }
        cursor = v["cursor"].as_str().unwrap().to_string();
        if v["more"] == false {
            break;
        }
    }
    assert_eq!(lines, page_lines, "the cursor's lines are the page's lines");
    assert!(longest > 600_000, "the long line came whole");
    assert!(cursor.ends_with(&format!(".{lines}")), "{cursor}");
}
