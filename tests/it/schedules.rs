//! Pipeline schedules: GitLab's API (entities, errors, roles, variables, play and its rate
//! limit, take ownership), the form in the browser UI, and the scheduler in real time: a
//! one-minute cron makes one pipeline a minute across a restart, the run missed while spur was
//! down starts once at start-up, and an owner who lost the right to run on the ref gets GitLab's
//! reason instead of a pipeline.

use crate::support::{Repo, Server, send};
use crate::ui::{Browser, csrf_of};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CONFIG: &str = "job:\n  script: [echo \"source=$CI_PIPELINE_SOURCE nightly=$NIGHTLY\"]\nonly_scheduled:\n  script: [echo scheduled]\n  only: [schedules]\n";

async fn schedules_of(s: &Server, pid: u64) -> Vec<Value> {
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipeline_schedules"))).await;
    list.as_array().cloned().unwrap_or_default()
}

async fn pipelines_of(s: &Server, pid: u64, source: &str) -> Vec<Value> {
    let (_, list) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/pipelines?source={source}&sort=asc&per_page=100"),
    ))
    .await;
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn schedules_through_the_api_and_the_form_follow_gitlab() {
    let s = Server::start_with(&[]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("sched", repo.path()).await;
    let (dev_id, dev) = s.user("dev").await;
    let (rep_id, rep) = s.user("rep").await;
    s.add_member(pid, dev_id, 30).await;
    s.add_member(pid, rep_id, 20).await;
    let base = format!("/projects/{pid}/pipeline_schedules");
    let form = |cron: &str, tz: &str, r: &str| {
        vec![
            ("description".to_string(), "nightly".to_string()),
            ("ref".to_string(), r.to_string()),
            ("cron".to_string(), cron.to_string()),
            ("cron_timezone".to_string(), tz.to_string()),
        ]
    };

    // Bad input: GitLab's errors, nothing made.
    for (cron, tz, r, field, text) in [
        ("* * *", "UTC", "main", "cron", " is invalid syntax"),
        ("0 1 * * *", "Mars/Base", "main", "cron_timezone", " is invalid syntax"),
        ("0 1 * * *", "UTC", "nope", "ref", "is ambiguous"),
    ] {
        let (status, e) = send(s.as_token(&dev, Method::POST, &base).form(&form(cron, tz, r))).await;
        assert_eq!((status, &e["message"][field][0]), (400, &json!(text)), "{e}");
    }
    let (status, e) = send(s.as_token(&dev, Method::POST, &base).form(&[("ref", "main")])).await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("description is missing"), "{e}");
    let (status, _) = send(
        s.as_token(&rep, Method::POST, &base)
            .form(&form("0 1 * * *", "UTC", "main")),
    )
    .await;
    assert_eq!(status, 403, "Reporters may not create schedules");
    assert!(schedules_of(&s, pid).await.is_empty());

    // Created by a Developer: the ref is expanded, the next run is the next 01:00 in Tokyo.
    let (status, sched) = send(
        s.as_token(&dev, Method::POST, &base)
            .form(&form("0 1 * * *", "Asia/Tokyo", "main")),
    )
    .await;
    assert_eq!(status, 201, "{sched}");
    assert_eq!(sched["ref"], "refs/heads/main");
    assert_eq!(sched["cron_timezone"], "Asia/Tokyo");
    assert_eq!(sched["active"], true);
    assert_eq!(sched["owner"]["username"], "dev");
    assert_eq!(sched["last_pipeline"], Value::Null);
    let next = sched["next_run_at"].as_str().unwrap();
    assert!(next.ends_with("T16:00:00.000Z"), "01:00 in Tokyo is 16:00 UTC: {next}");
    let id = sched["id"].as_u64().unwrap();
    let one = |p: &str| format!("{base}/{id}{p}");

    // Variables: created (201), changed, listed to the owner, deleted (202).
    let (status, v) = send(
        s.as_token(&dev, Method::POST, &one("/variables"))
            .form(&[("key", "NIGHTLY"), ("value", "yes")]),
    )
    .await;
    assert_eq!((status, &v["key"]), (201, &json!("NIGHTLY")), "{v}");
    let (status, e) = send(
        s.as_token(&dev, Method::POST, &one("/variables"))
            .form(&[("key", "NIGHTLY"), ("value", "again")]),
    )
    .await;
    assert_eq!(
        (status, &e["message"]["key"][0]),
        (400, &json!("has already been taken")),
        "{e}"
    );
    let (status, _) = send(
        s.as_token(&dev, Method::POST, &one("/variables"))
            .form(&[("key", "TMP"), ("value", "x")]),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v) = send(
        s.as_token(&dev, Method::PUT, &one("/variables/NIGHTLY"))
            .form(&[("value", "very")]),
    )
    .await;
    assert_eq!((status, &v["value"]), (200, &json!("very")));
    let (status, _) = send(s.as_token(&dev, Method::DELETE, &one("/variables/TMP"))).await;
    assert_eq!(status, 202);
    let (_, shown) = send(s.as_token(&dev, Method::GET, &one(""))).await;
    assert_eq!(
        shown["variables"],
        json!([{"key": "NIGHTLY", "value": "very", "variable_type": "env_var", "raw": false}])
    );
    let (status, shown) = send(s.as_token(&rep, Method::GET, &one(""))).await;
    assert_eq!(status, 200, "Reporters read schedules");
    assert!(shown.get("variables").is_none(), "but not their variables: {shown}");

    // Only the owner edits; a Maintainer takes ownership first.
    let (status, _) = send(s.root(Method::PUT, &one("")).form(&[("description", "root's")])).await;
    assert_eq!(status, 200, "administrators edit any schedule");
    let (status, _) = send(s.as_token(&rep, Method::PUT, &one("")).form(&[("description", "x")])).await;
    assert_eq!(status, 403);
    let (status, e) = send(s.as_token(&dev, Method::PUT, &one("")).form(&[("cron", "* * *")])).await;
    assert_eq!(status, 400, "{e}");
    let (status, changed) = send(s.as_token(&dev, Method::PUT, &one("")).form(&[
        ("cron", "30 2 * * *"),
        ("cron_timezone", "UTC"),
        ("active", "false"),
    ]))
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (&changed["cron"], &changed["active"]),
        (&json!("30 2 * * *"), &json!(false))
    );
    let (_, inactive) = send(s.root(Method::GET, &format!("{base}?scope=inactive"))).await;
    assert_eq!(inactive.as_array().unwrap().len(), 1);
    let (_, active) = send(s.root(Method::GET, &format!("{base}?scope=active"))).await;
    assert_eq!(active, json!([]));
    let (status, _) = send(s.root(Method::GET, &format!("{base}?scope=sideways"))).await;
    assert_eq!(status, 400);

    // Play: now, as the caller, with the schedule's variables; once a minute per user.
    let (status, played) = send(s.as_token(&dev, Method::POST, &one("/play"))).await;
    assert_eq!((status, &played["message"]), (201, &json!("201 Created")), "{played}");
    let (status, e) = send(s.as_token(&dev, Method::POST, &one("/play"))).await;
    assert_eq!(status, 429, "{e}");
    let (status, _) = send(s.as_token(&rep, Method::POST, &one("/play"))).await;
    assert_eq!(status, 403, "Reporters may not play");
    let runs = pipelines_of(&s, pid, "schedule").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let pipeline_id = runs[0]["id"].as_u64().unwrap();
    let done = crate::support::finished_pipeline(&s, pid, pipeline_id).await;
    assert_eq!(done["status"], "success", "{done}");
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline_id}/jobs"))).await;
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"only_scheduled"), "only: schedules runs: {names:?}");
    let job = jobs.as_array().unwrap().iter().find(|j| j["name"] == "job").unwrap();
    let log = crate::support::job_log(&s, pid, &job["id"]).await;
    assert!(log.contains("source=schedule nightly=very"), "{log}");
    let (_, listed) = send(s.root(Method::GET, &one("/pipelines"))).await;
    assert_eq!(listed[0]["id"], pipeline_id);
    let (_, shown) = send(s.root(Method::GET, &one(""))).await;
    assert_eq!(shown["last_pipeline"]["id"], pipeline_id);
    assert!(
        shown["next_run_at"].as_str().unwrap().ends_with("T02:30:00.000Z"),
        "GitLab keeps an inactive schedule's next run: {shown}"
    );

    // A Maintainer takes ownership; deleting is theirs (204), then it is gone.
    let (mid, maint) = s.user("maint").await;
    s.add_member(pid, mid, 40).await;
    let (status, _) = send(
        s.as_token(&maint, Method::POST, &one("/variables"))
            .form(&[("key", "INJECTED"), ("value", "x")]),
    )
    .await;
    assert_eq!(status, 403, "what runs as the owner is the owner's to change");
    let (status, owned) = send(s.as_token(&maint, Method::POST, &one("/take_ownership"))).await;
    assert_eq!((status, &owned["owner"]["username"]), (201, &json!("maint")), "{owned}");
    let (status, _) = send(s.as_token(&dev, Method::PUT, &one("")).form(&[("description", "mine")])).await;
    assert_eq!(status, 403, "no longer the owner");
    let (status, _) = send(s.as_token(&dev, Method::DELETE, &one(""))).await;
    assert_eq!(status, 403);
    let (status, _) = send(s.as_token(&maint, Method::DELETE, &one(""))).await;
    assert_eq!(status, 204);
    let (status, _) = send(s.root(Method::GET, &one(""))).await;
    assert_eq!(status, 404);

    // The form: a bad pattern is shown beside the field with what was typed; Preview reads the
    // cron back with its next runs; a good one is saved and listed.
    let mut b = Browser::new(&s);
    b.sign_in("dev", "password123").await;
    let (status, page, _) = b.get("/root/sched/-/pipeline_schedules/new").await;
    assert_eq!(status, 200, "{page}");
    let csrf = csrf_of(&page);
    let fields = |cron: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut f = vec![
            ("authenticity_token", csrf.clone()),
            ("description", "weekly <b>build</b>".to_string()),
            ("cron", cron.to_string()),
            ("cron_timezone", "Europe/Berlin".to_string()),
            ("ref", "main".to_string()),
            ("active", "1".to_string()),
            ("variables[][key]", "FROM_FORM".to_string()),
            ("variables[][value]", "1".to_string()),
        ];
        if let Some((k, v)) = extra {
            f.push((k, v.to_string()));
        }
        f
    };
    let post = |f: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        b.http
            .post(format!("{}/root/sched/-/pipeline_schedules", s.base))
            .header("Cookie", b.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let resp = post(fields("* * *", None)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Interval pattern is invalid syntax"), "{page}");
    assert!(page.contains("value=\"* * *\""), "the pattern typed stays");
    assert!(page.contains("weekly &#60;b&#62;build&#60;/b&#62;"), "escaped, kept");
    let resp = post(fields("0 3 * * 1", Some(("preview", "1")))).send().await.unwrap();
    let page = resp.text().await.unwrap();
    assert_eq!(page.matches("<li><time>").count(), 5, "five next runs: {page}");
    assert!(page.contains("03:00 CET"), "{page}");
    assert!(schedules_of(&s, pid).await.is_empty(), "a preview saves nothing");
    let resp = post(fields("0 3 * * 1", None)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let (_, list, _) = b.get("/root/sched/-/pipeline_schedules").await;
    assert!(
        list.contains("weekly &#60;b&#62;build&#60;/b&#62;") && list.contains("CET"),
        "{list}"
    );
    let made = schedules_of(&s, pid).await;
    assert_eq!(made.len(), 1);
    let (_, shown) = send(s.as_token(&dev, Method::GET, &format!("{base}/{}", made[0]["id"]))).await;
    assert_eq!(shown["variables"][0]["key"], "FROM_FORM");
}

/// Waits until `pid` has `n` schedule pipelines; answers them.
async fn wait_for_runs(s: &Server, pid: u64, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let runs = pipelines_of(s, pid, "schedule").await;
        if runs.len() >= n || Instant::now() > deadline {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn minute_of(pipeline: &Value) -> String {
    pipeline["created_at"].as_str().unwrap()[..16].to_string()
}

#[tokio::test]
async fn a_one_minute_schedule_runs_once_a_minute_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_on(&data, &[]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("minute", repo.path()).await;
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    let base = format!("/projects/{pid}/pipeline_schedules");
    let every_minute = [("description", "each minute"), ("ref", "main"), ("cron", "* * * * *")];
    let (status, sched) = send(s.root(Method::POST, &base).form(&every_minute)).await;
    assert_eq!(status, 201, "{sched}");
    // A Developer's schedule on main, which then becomes Maintainers-only: its runs are refused
    // with GitLab's reason, and never run as someone else.
    let (status, dev_sched) = send(s.as_token(&dev, Method::POST, &base).form(&every_minute)).await;
    assert_eq!(status, 201, "{dev_sched}");
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{pid}/protected_branches/main"))).await;
    assert!(status == 204 || status == 404, "{status}");
    let rule = [
        ("name", "main"),
        ("push_access_level", "40"),
        ("merge_access_level", "40"),
    ];
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{pid}/protected_branches"))
            .form(&rule),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The first minute's run.
    let runs = wait_for_runs(&s, pid, 1, Duration::from_secs(75)).await;
    assert_eq!(runs.len(), 1, "one run in the first minute: {runs:?}");
    let (_, first) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}", runs[0]["id"]))).await;
    assert_eq!(
        first["user"]["username"], "root",
        "run as the schedule's owner: {first}"
    );
    let (_, shown) = send(s.root(Method::GET, &format!("{base}/{}", dev_sched["id"]))).await;
    assert!(shown["last_pipeline"].is_null(), "{shown}");

    // Down across the next minute's run.
    let first_minute = minute_of(&runs[0]);
    s.terminate(Duration::from_secs(10));
    loop {
        let now = time_now_minute();
        if now != first_minute {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = Server::start_on(&data, &[]);
    // The missed run starts once at start-up, then the next minute's.
    let runs = wait_for_runs(&s, pid, 2, Duration::from_secs(20)).await;
    assert_eq!(runs.len(), 2, "the missed run at start-up: {runs:?}");
    let runs = wait_for_runs(&s, pid, 3, Duration::from_secs(75)).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = pipelines_of(&s, pid, "schedule").await;
    assert_eq!(runs.len(), 3, "no run doubled: {runs:?}");
    let minutes: Vec<String> = runs.iter().map(minute_of).collect();
    let mut distinct = minutes.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "one run a minute: {minutes:?}");
    let (_, shown) = send(s.root(Method::GET, &format!("{base}/{}", dev_sched["id"]))).await;
    assert!(shown["last_pipeline"].is_null(), "never run as someone else: {shown}");
    let (_, owned) = send(s.root(Method::GET, &format!("{base}/{}", sched["id"]))).await;
    assert_eq!(owned["last_pipeline"]["id"], runs[2]["id"]);
    let reason = schedule_error(&s, dev_sched["id"].as_u64().unwrap()).await;
    assert!(
        reason.contains("You do not have sufficient permission to run a pipeline on &#39;main&#39;"),
        "{reason}"
    );
}

fn time_now_minute() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The reason the schedules page shows for a schedule's refused run.
async fn schedule_error(s: &Server, id: u64) -> String {
    let mut b = Browser::new(s);
    b.sign_in("root", "root-password-123").await;
    let (_, page, _) = b.get("/root/minute/-/pipeline_schedules").await;
    let row = page.split(&format!("id=\"schedule-{id}\"")).nth(1).unwrap_or_default();
    row.split("</tr>").next().unwrap_or_default().to_string()
}
