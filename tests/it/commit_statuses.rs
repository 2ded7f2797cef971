//! Commit statuses from external systems: `POST /projects/:id/statuses/:sha` joins the commit's
//! newest pipeline or makes an `external` one, follows GitLab's state machine, and
//! `GET .../commits/:sha/statuses` lists them; roles and protected refs as on GitLab.

use crate::support::{Repo, Server, send};
use reqwest::Method;
use serde_json::{Value, json};

async fn post(s: &Server, pid: u64, sha: &str, body: Value) -> (u16, Value) {
    send(
        s.root(Method::POST, &format!("/projects/{pid}/statuses/{sha}"))
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn statuses_make_an_external_pipeline_and_follow_gitlabs_state_machine() {
    let s = Server::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "build:\n  script: [echo]\n")]);
    let pid = s.project("ext", repo.path()).await;
    let sha = repo.sha("main");

    let (status, first) = post(&s, pid, &sha, json!({"state": "pending", "name": "jenkins"})).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["status"].as_str(), first["ref"].as_str(), first["sha"].as_str()),
        (Some("pending"), Some("main"), Some(sha.as_str())),
        "the ref is the first branch holding the commit"
    );
    let pipeline_id = first["pipeline_id"].as_u64().unwrap();
    let (_, pipeline) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline_id}"))).await;
    assert_eq!(
        (pipeline["source"].as_str(), pipeline["status"].as_str()),
        (Some("external"), Some("pending"))
    );

    let (status, running) = post(&s, pid, &sha, json!({"state": "running", "name": "jenkins"})).await;
    assert_eq!(
        (status, running["id"].clone()),
        (201, first["id"].clone()),
        "the open status moves on"
    );
    let (status, again) = post(&s, pid, &sha, json!({"state": "running", "name": "jenkins"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        again["message"],
        "Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\")"
    );
    let body = json!({"state": "success", "context": "jenkins", "target_url": "https://ci.example/1",
        "description": "all green", "coverage": 87.5});
    let (status, done) = post(&s, pid, &sha, body).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["id"], first["id"], "`context` names the status as `name` does");
    assert_eq!(
        (
            done["target_url"].as_str(),
            done["description"].as_str(),
            done["coverage"].as_f64()
        ),
        (Some("https://ci.example/1"), Some("all green"), Some(87.5))
    );
    let (_, pipeline) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline_id}"))).await;
    assert_eq!(pipeline["status"], "success", "the pipeline follows its statuses");

    // A finished status is not reopened: a new one replaces it, the old one counts as retried.
    let (_, newer) = post(&s, pid, &sha, json!({"state": "failed", "name": "jenkins"})).await;
    assert_ne!(newer["id"], first["id"]);
    assert_eq!(newer["pipeline_id"].as_u64(), Some(pipeline_id));
    let (_, pipeline) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline_id}"))).await;
    assert_eq!(pipeline["status"], "failed");
    let (status, list) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/repository/commits/{sha}/statuses"),
    ))
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "latest only: {list}");
    assert_eq!(list[0]["status"], "failed");
    let (_, all) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/repository/commits/{sha}/statuses?all=true&name=jenkins"),
    ))
    .await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline_id}/jobs"))).await;
    assert_eq!(
        jobs.as_array().map(Vec::len),
        Some(0),
        "external statuses are not builds"
    );
    let (status, _) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", newer["id"]))).await;
    assert_eq!(status, 404, "nor are they jobs");
    let (_, all_jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs"))).await;
    assert_eq!(all_jobs, json!([]));

    // Another system's status joins the pipeline its pipeline_id names.
    let (status, created) = send(s.root(Method::POST, &format!("/projects/{pid}/pipeline?ref=main"))).await;
    assert_eq!(status, 201, "{created}");
    let api_pipeline = created["id"].as_u64().unwrap();
    let body = json!({"state": "running", "name": "sonar", "pipeline_id": api_pipeline});
    let (status, sonar) = post(&s, pid, &sha, body).await;
    assert_eq!(
        (status, sonar["pipeline_id"].as_u64()),
        (201, Some(api_pipeline)),
        "{sonar}"
    );
    let (_, without_id) = post(&s, pid, &sha, json!({"state": "pending", "name": "lint"})).await;
    assert_eq!(
        without_id["pipeline_id"].as_u64(),
        Some(api_pipeline),
        "without an id a status joins the commit's newest pipeline"
    );
    let (_, listed) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/repository/commits/{sha}/statuses?stage=external&ref=main"),
    ))
    .await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["jenkins", "sonar", "lint"]);

    // Bad input changes nothing.
    let before = list_len(&s, pid, &sha).await;
    for (body, want, text) in [
        (json!({"name": "x"}), 400, json!({"error": "state is missing"})),
        (
            json!({"state": "bogus"}),
            400,
            json!({"error": "state does not have a valid value"}),
        ),
        (
            json!({"state": "success", "coverage": "lots"}),
            400,
            json!({"error": "coverage is invalid"}),
        ),
        (
            json!({"state": "success", "target_url": "javascript:alert(1)"}),
            400,
            json!({"message": {"target_url": ["must be a valid URL"]}}),
        ),
        (
            json!({"state": "success", "name": " "}),
            400,
            json!({"message": {"name": ["can't be blank"]}}),
        ),
        (
            json!({"state": "success", "pipeline_id": 999_999}),
            404,
            json!({"message": "404 Pipeline for pipeline_id, sha and ref Not Found"}),
        ),
    ] {
        assert_eq!(post(&s, pid, &sha, body).await, (want, text));
    }
    let unknown = "0123456789012345678901234567890123456789";
    assert_eq!(
        post(&s, pid, unknown, json!({"state": "success"})).await,
        (404, json!({"message": "404 Commit Not Found"}))
    );
    let (status, _) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/repository/commits/{unknown}/statuses"),
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(list_len(&s, pid, &sha).await, before);
}

async fn list_len(s: &Server, pid: u64, sha: &str) -> usize {
    let path = format!("/projects/{pid}/repository/commits/{sha}/statuses?all=true");
    send(s.root(Method::GET, &path)).await.1.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn statuses_need_a_developer_with_rights_on_the_ref() {
    let s = Server::start();
    let repo = Repo::with_files(&[("README", "x\n")]);
    let pid = s.project("ext-roles", repo.path()).await;
    let sha = repo.sha("main");
    let (reporter_id, reporter) = s.user("rita").await;
    s.add_member(pid, reporter_id, 20).await;
    let (dev_id, dev) = s.user("dave").await;
    s.add_member(pid, dev_id, 30).await;
    let path = format!("/projects/{pid}/statuses/{sha}");
    let (status, _) = send(
        s.as_token(&reporter, Method::POST, &path)
            .json(&json!({"state": "success"})),
    )
    .await;
    assert_eq!(status, 403, "a Reporter may not post");
    let list = format!("/projects/{pid}/repository/commits/{sha}/statuses");
    let (status, _) = send(s.as_token(&reporter, Method::GET, &list)).await;
    assert_eq!(status, 200, "a Reporter may read");
    let (status, _) = send(s.anon(Method::GET, &list)).await;
    assert_eq!(status, 401);
    let (status, posted) = send(s.as_token(&dev, Method::POST, &path).json(&json!({"state": "success"}))).await;
    assert_eq!(
        (status, posted["author"]["username"].as_str()),
        (201, Some("dave")),
        "{posted}"
    );

    // On a branch only Maintainers may push or merge to, a Developer may not change pipelines.
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{pid}/protected_branches/main"))).await;
    assert!(status == 204 || status == 404, "{status}");
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{pid}/protected_branches"))
            .json(&json!({"name": "main", "push_access_level": 40, "merge_access_level": 40})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(
        s.as_token(&dev, Method::POST, &path)
            .json(&json!({"state": "pending", "name": "b"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        s.root(Method::POST, &path)
            .json(&json!({"state": "pending", "name": "b"})),
    )
    .await;
    assert_eq!(status, 201, "the administrator may");
}
