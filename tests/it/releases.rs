//! Releases through the API (GitLab's entity, links, errors and roles) and the `release:`
//! keyword of a job, on a hosted project that takes pushes.

use crate::support::{ROOT_TOKEN, Repo, Server, finished_pipeline, git, job_log, send};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A hosted project `rel` with `config` pushed to `main`.
async fn hosted(s: &Server, config: &str) -> (u64, Repo) {
    let (_, project) = send(s.root(Method::POST, "/projects").form(&[("name", "rel")])).await;
    let pid = project["id"].as_u64().unwrap();
    let work = Repo::with_files(&[(".gitlab-ci.yml", config), ("README.md", "# rel\n")]);
    let url = format!("{}/root/rel.git", s.base).replacen("://", &format!("://root:{ROOT_TOKEN}@"), 1);
    git(work.path(), &["push", "-q", &url, "main"]);
    (pid, work)
}

async fn pipelines(s: &Server, pid: u64) -> Vec<Value> {
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?sort=asc"))).await;
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn releases_through_the_api_follow_gitlab() {
    let s = Server::start();
    let (pid, work) = hosted(&s, "job:\n  script: [echo]\n").await;
    let path = |p: &str| format!("/projects/{pid}/releases{p}");

    let body = json!({
        "tag_name": "v1.0",
        "ref": "main",
        "name": "First",
        "description": "Notes <b>kept as text</b>",
        "assets": {"links": [
            {"name": "linux", "url": "https://example.com/linux", "direct_asset_path": "/bin/linux", "link_type": "package"},
            {"name": "docs", "url": "https://example.com/docs"}
        ]}
    });
    let (status, r) = send(s.root(Method::POST, &path("")).json(&body)).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["tag_name"], "v1.0");
    assert_eq!(r["name"], "First");
    assert_eq!(r["commit"]["id"], work.sha("main"));
    assert_eq!(r["author"]["username"], "root");
    assert_eq!(r["upcoming_release"], false);
    assert_eq!(r["assets"]["links"].as_array().unwrap().len(), 2);
    assert_eq!(r["assets"]["count"], 6);
    let linux = &r["assets"]["links"][0];
    assert_eq!(linux["link_type"], "package");
    assert!(
        linux["direct_asset_url"]
            .as_str()
            .unwrap()
            .ends_with("/root/rel/-/releases/v1.0/downloads/bin/linux"),
        "{linux}"
    );
    // The tag was cut from main and shows its release.
    let (status, tag) = send(s.root(Method::GET, &format!("/projects/{pid}/repository/tags/v1.0"))).await;
    assert_eq!(status, 200, "{tag}");
    assert_eq!(tag["release"]["tag_name"], "v1.0");

    let (status, again) = send(s.root(Method::POST, &path("")).json(&body)).await;
    assert_eq!(
        (status, again["message"].as_str()),
        (409, Some("Release already exists"))
    );
    let (status, e) = send(s.root(Method::POST, &path("")).json(&json!({"tag_name": "v9"}))).await;
    assert_eq!((status, e["message"].as_str()), (422, Some("Ref is not specified")));
    let bad =
        json!({"tag_name": "v2", "ref": "main", "assets": {"links": [{"name": "x", "url": "javascript:alert(1)"}]}});
    let (status, _) = send(s.root(Method::POST, &path("")).json(&bad)).await;
    assert_eq!(status, 400);
    let (status, _) = send(s.root(Method::GET, &format!("/projects/{pid}/repository/tags/v2"))).await;
    assert_eq!(status, 404, "a refused release cuts no tag");

    let (status, r) = send(
        s.root(Method::PUT, &path("/v1.0"))
            .form(&[("description", "New notes"), ("released_at", "2099-01-01T00:00:00Z")]),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["description"].as_str(), r["name"].as_str()),
        (Some("New notes"), Some("First"))
    );
    assert_eq!(r["upcoming_release"], true);

    let (status, l) = send(
        s.root(Method::POST, &path("/v1.0/assets/links"))
            .form(&[("name", "mac"), ("url", "https://example.com/mac")]),
    )
    .await;
    assert_eq!(status, 201, "{l}");
    let link_id = l["id"].as_u64().unwrap();
    let (status, _) = send(
        s.root(Method::POST, &path("/v1.0/assets/links"))
            .form(&[("name", "mac"), ("url", "https://example.com/other")]),
    )
    .await;
    assert_eq!(status, 400, "link names are unique in a release");
    let (status, l) = send(
        s.root(Method::PUT, &path(&format!("/v1.0/assets/links/{link_id}")))
            .form(&[("name", "macos")]),
    )
    .await;
    assert_eq!((status, l["name"].as_str()), (200, Some("macos")));
    let (_, links) = send(s.root(Method::GET, &path("/v1.0/assets/links"))).await;
    assert_eq!(links.as_array().unwrap().len(), 3);
    let (status, _) = send(s.root(Method::DELETE, &path(&format!("/v1.0/assets/links/{link_id}")))).await;
    assert_eq!(status, 200);

    // The UI lists it (notes as text) and its permanent asset link leads to the asset.
    let mut browser = crate::ui::Browser::new(&s);
    browser.sign_in("root", "root-password-123").await;
    let (status, page, _) = browser.get("/root/rel/-/releases").await;
    assert_eq!(status, 200);
    assert!(page.contains("New notes"), "{page}");
    let (status, _) = send(
        s.root(Method::PUT, &path("/v1.0"))
            .form(&[("description", "<script>alert(1)</script>")]),
    )
    .await;
    assert_eq!(status, 200);
    let (_, page, _) = browser.get("/root/rel/-/releases").await;
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "notes are text: {page}"
    );
    assert!(page.contains("id=\"release-v1.0\""), "{page}");
    let (status, _, location) = browser.get("/root/rel/-/releases/v1.0/downloads/bin/linux").await;
    assert_eq!((status, location.as_deref()), (302, Some("https://example.com/linux")));
    let (status, _, _) = browser.get("/root/rel/-/releases/v1.0/downloads/nothing").await;
    assert_eq!(status, 404);

    // Reporters read releases; only Developers and up change them.
    let (uid, reporter) = s.user("rita").await;
    s.add_member(pid, uid, 20).await;
    let (status, list) = send(s.as_token(&reporter, Method::GET, &path(""))).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    let (status, _) = send(
        s.as_token(&reporter, Method::POST, &path(""))
            .form(&[("tag_name", "v3"), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(s.anon(Method::GET, &path(""))).await;
    assert_eq!(status, 404, "a private project's releases are hidden");

    let (status, gone) = send(s.root(Method::DELETE, &path("/v1.0"))).await;
    assert_eq!((status, gone["tag_name"].as_str()), (200, Some("v1.0")));
    let (status, _) = send(s.root(Method::GET, &path("/v1.0"))).await;
    assert_eq!(status, 404);
    let (status, _) = send(s.root(Method::GET, &format!("/projects/{pid}/repository/tags/v1.0"))).await;
    assert_eq!(status, 200, "deleting a release keeps its tag");
}

#[tokio::test]
async fn a_job_with_release_makes_the_release_and_a_second_one_fails() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let config = r#"
release:
  rules: [{if: $CI_COMMIT_BRANCH}]
  script: [echo releasing]
  release:
    tag_name: v$CI_PIPELINE_IID
    name: Release $CI_PIPELINE_IID
    description: Built by $CI_JOB_NAME from $CI_COMMIT_SHORT_SHA
    assets:
      links:
        - name: build-$CI_PIPELINE_IID
          url: https://example.com/builds/$CI_COMMIT_SHORT_SHA
again:
  rules: [{if: $CI_COMMIT_BRANCH}]
  stage: deploy
  script: [echo again]
  release: {tag_name: v$CI_PIPELINE_IID, description: twice}
"#;
    let (pid, work) = hosted(&s, config).await;
    let start = Instant::now();
    let first = loop {
        if let Some(p) = pipelines(&s, pid).await.first().cloned() {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no push pipeline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = first["id"].as_u64().unwrap();
    let iid = first["iid"].as_u64().unwrap();
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed", "the second release of one tag fails its job");
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let job = |name: &str| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(job("release")["status"], "success");
    assert_eq!(job("again")["failure_reason"], "script_failure");
    let log = job_log(&s, pid, &job("again")["id"]).await;
    assert!(
        log.contains("ERROR: cannot create the release: Release already exists"),
        "{log}"
    );
    let log = job_log(&s, pid, &job("release")["id"]).await;
    assert!(log.contains(&format!("Created release v{iid}")), "{log}");
    let (status, r) = send(s.root(Method::GET, &format!("/projects/{pid}/releases/v{iid}"))).await;
    assert_eq!(status, 200, "{r}");
    let short = &work.sha("main")[..8];
    assert_eq!(r["name"], format!("Release {iid}"));
    assert_eq!(r["description"], format!("Built by release from {short}"));
    assert_eq!(r["commit"]["id"], work.sha("main"));
    assert_eq!(
        r["assets"]["links"][0]["url"],
        format!("https://example.com/builds/{short}")
    );
}
