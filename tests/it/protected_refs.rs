//! Protected branches and tags: the API, the default branch's protection, protected variables
//! only on protected refs, and GitLab's refusal to run a pipeline on a protected ref for a user
//! who may neither push nor merge there.

use crate::support::{Repo, Server, finished_pipeline, job_log, send};
use reqwest::Method;
use serde_json::json;

const CONFIG: &str = "show:\n  script: ['echo \"secret=${DEPLOY_KEY:-absent}\"']\n";

#[tokio::test]
async fn protected_branches_and_tags_api() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    let base = format!("/projects/{pid}/protected_branches");

    // A new project's default branch is protected: Maintainers push, Developers merge.
    let (status, list) = send(s.root(Method::GET, &base)).await;
    assert_eq!(status, 200);
    // PATCH changes force push and who may push, in GitLab's list form.
    let (status, patched) = send(s.root(Method::PATCH, &format!("{base}/main")).json(&serde_json::json!({
        "allow_force_push": true,
        "allowed_to_push": [{"access_level": 30}],
    })))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["allow_force_push"], true);
    assert_eq!(patched["push_access_levels"][0]["access_level"], 30);
    let (status, _) = send(
        s.as_token(&dev, Method::PATCH, &format!("{base}/main"))
            .json(&serde_json::json!({"allow_force_push": false})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        s.root(Method::PATCH, &format!("{base}/nope"))
            .json(&serde_json::json!({"allow_force_push": false})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        s.root(Method::PATCH, &format!("{base}/main"))
            .json(&serde_json::json!({"allowed_to_push": [{"access_level": 40}], "allow_force_push": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "main");
    assert_eq!(list[0]["push_access_levels"][0]["access_level"], 40);
    assert_eq!(list[0]["merge_access_levels"][0]["access_level"], 30);
    assert_eq!(
        list[0]["merge_access_levels"][0]["access_level_description"],
        "Developers + Maintainers"
    );

    let (status, created) = send(s.root(Method::POST, &base).form(&[
        ("name", "release/*"),
        ("push_access_level", "0"),
        ("merge_access_level", "40"),
    ]))
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["push_access_levels"][0]["access_level_description"], "No one");
    let (status, e) = send(s.root(Method::POST, &base).form(&[("name", "release/*")])).await;
    assert_eq!(
        (status, e["message"].as_str()),
        (409, Some("Protected branch 'release/*' already exists"))
    );
    let (status, e) = send(
        s.root(Method::POST, &base)
            .form(&[("name", "x"), ("push_access_level", "35")]),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("push_access_level does not have a valid value"))
    );
    let (status, _) = send(s.as_token(&dev, Method::POST, &base).form(&[("name", "dev-made")])).await;
    assert_eq!(status, 403);
    let (status, one) = send(s.root(Method::GET, &format!("{base}/release%2F*"))).await;
    assert_eq!((status, &one["name"]), (200, &json!("release/*")));
    assert_eq!(
        send(s.root(Method::DELETE, &format!("{base}/release%2F*"))).await.0,
        204
    );
    assert_eq!(
        send(s.root(Method::DELETE, &format!("{base}/release%2F*"))).await.0,
        404
    );

    let tags = format!("/projects/{pid}/protected_tags");
    let (status, tag) = send(
        s.root(Method::POST, &tags)
            .form(&[("name", "v*"), ("create_access_level", "30")]),
    )
    .await;
    assert_eq!(status, 201, "{tag}");
    assert_eq!(tag["create_access_levels"][0]["access_level"], 30);
    let (_, list) = send(s.root(Method::GET, &tags)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn protected_variables_reach_only_protected_refs_and_protected_refs_need_rights() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    crate::support::git(repo.path(), &["branch", "feature/x"]);
    let pid = s.project("demo", repo.path()).await;
    let (status, v) = send(s.root(Method::POST, &format!("/projects/{pid}/variables")).form(&[
        ("key", "DEPLOY_KEY"),
        ("value", "s3cr3t-value"),
        ("protected", "true"),
    ]))
    .await;
    assert_eq!(status, 201, "{v}");
    let run = |r: &'static str| {
        let s = &s;
        async move {
            let (status, p) = send(
                s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
                    .form(&[("ref", r)]),
            )
            .await;
            assert_eq!(status, 201, "{p}");
            let id = p["id"].as_u64().unwrap();
            finished_pipeline(s, pid, id).await;
            let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
            job_log(s, pid, &jobs[0]["id"]).await
        }
    };
    assert!(run("main").await.contains("secret=s3cr3t-value"), "main is protected");
    assert!(run("feature/x").await.contains("secret=absent"));
    // Protect feature/* : now it gets the variable.
    let rule = [
        ("name", "feature/*"),
        ("push_access_level", "40"),
        ("merge_access_level", "40"),
    ];
    assert_eq!(
        send(
            s.root(Method::POST, &format!("/projects/{pid}/protected_branches"))
                .form(&rule)
        )
        .await
        .0,
        201
    );
    assert!(!run("feature/x").await.contains("secret=absent"));

    // A Developer's trigger token may not run a pipeline on a branch only Maintainers push to
    // and merge into; on the default branch (Developers merge) it may.
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 40).await;
    let (_, token) = s.trigger_token(&dev, pid).await;
    let demote = s
        .root(Method::PUT, &format!("/projects/{pid}/members/{dev_id}"))
        .form(&[("access_level", "30")]);
    assert_eq!(send(demote).await.0, 200);
    let trigger = |r: &str| {
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", r)])
    };
    let (status, e) = send(trigger("feature/x")).await;
    assert_eq!(status, 400);
    assert_eq!(
        e["message"]["base"][0],
        "You do not have sufficient permission to run a pipeline on 'feature/x'. Please select a different branch or contact your administrator for assistance."
    );
    assert_eq!(send(trigger("main")).await.0, 201);
}

#[tokio::test]
async fn the_settings_page_protects_and_unprotects() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let mut browser = crate::ui::Browser::new(&s);
    browser.sign_in("root", "root-password-123").await;
    let (_, page, _) = browser.get("/root/demo/-/settings/ci_cd").await;
    let csrf = crate::ui::csrf_of(&page);
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("protected[kind]", "tag"),
        ("protected[name]", "v*"),
        ("protected[push_access_level]", "30"),
    ];
    let (status, _, _, _) = browser.post("/root/demo/-/settings/ci_cd/protected_refs", &form).await;
    assert_eq!(status, 302);
    let (_, tags) = send(s.root(Method::GET, &format!("/projects/{pid}/protected_tags"))).await;
    assert_eq!(tags[0]["create_access_levels"][0]["access_level"], 30, "{tags}");
    let (_, page, _) = browser.get("/root/demo/-/settings/ci_cd").await;
    assert!(page.contains("create: Developers + Maintainers"));
    let (status, _, _, _) = browser
        .post(
            "/root/demo/-/settings/ci_cd/protected_refs/tag/v%2A",
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(status, 302);
    let (_, tags) = send(s.root(Method::GET, &format!("/projects/{pid}/protected_tags"))).await;
    assert_eq!(tags, json!([]));
    let (status, _, _, _) = browser
        .post(
            "/root/demo/-/settings/ci_cd/protected_refs/nonsense/x",
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(status, 404);
}
