//! Environments and deployments: `environment:` in `.gitlab-ci.yml` (dynamic names, URLs,
//! `on_stop`, `action: stop`, tiers) records one deployment per job whose status is its job's,
//! jobs see `CI_ENVIRONMENT_*`, stopping runs the `on_stop` job, and the API and the
//! Environments page answer as GitLab does.

use crate::support::{Repo, Server, finished_pipeline, job_log, send};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
stages: [deploy, release]
deploy:
  stage: deploy
  script: ['echo "env=$CI_ENVIRONMENT_NAME slug=$CI_ENVIRONMENT_SLUG url=$CI_ENVIRONMENT_URL action=$CI_ENVIRONMENT_ACTION tier=$CI_ENVIRONMENT_TIER"']
  environment:
    name: review/$CI_COMMIT_REF_SLUG
    url: https://$CI_COMMIT_REF_SLUG.example.com
    on_stop: stop_review
    auto_stop_in: 1 week
stop_review:
  stage: deploy
  script: [echo stopping]
  when: manual
  environment:
    name: review/$CI_COMMIT_REF_SLUG
    action: stop
production:
  stage: release
  script: [echo prod]
  environment: production
"#;

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test]
async fn deploy_jobs_record_deployments_and_stopping_runs_on_stop() {
    let s = Server::start_with(&[]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("envs", repo.path()).await;
    let (rep_id, rep) = s.user("rep").await;
    s.add_member(pid, rep_id, 20).await;
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let done = finished_pipeline(&s, pid, p["id"].as_u64().unwrap()).await;
    let envs_path = format!("/projects/{pid}/environments");

    let (status, envs) = send(s.as_token(&rep, Method::GET, &envs_path)).await;
    assert_eq!(status, 200, "{envs}");
    let review = named(&envs, "review/main");
    assert_eq!(review["state"], "available", "{done}");
    assert_eq!(review["tier"], "development");
    assert_eq!(review["external_url"], "https://main.example.com");
    let slug = review["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("review-main-") && slug.len() == 18, "{slug}");
    assert_eq!(named(&envs, "production")["tier"], "production");

    // The deploy job saw its environment.
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", p["id"]))).await;
    let deploy = named(&jobs, "deploy");
    let log = job_log(&s, pid, &deploy["id"]).await;
    assert!(
        log.contains(&format!(
            "env=review/main slug={slug} url=https://main.example.com action=start tier=development"
        )),
        "{log}"
    );

    // Deployments: one per start job, status from the job, filters.
    let (_, deployments) = send(s.root(Method::GET, &format!("/projects/{pid}/deployments"))).await;
    assert_eq!(deployments.as_array().unwrap().len(), 2, "{deployments}");
    assert!(deployments.as_array().unwrap().iter().all(|d| d["status"] == "success"));
    let (_, prod) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/deployments?environment=production"),
    ))
    .await;
    assert_eq!(prod[0]["deployable"]["name"], "production", "{prod}");
    assert_eq!(prod[0]["environment"]["name"], "production");
    assert_eq!(prod[0]["ref"], "main");
    let (status, one) = send(s.root(Method::GET, &format!("/projects/{pid}/deployments/{}", prod[0]["id"]))).await;
    assert_eq!((status, &one["iid"]), (200, &prod[0]["iid"]));
    let (status, _) = send(s.root(Method::GET, &format!("/projects/{pid}/deployments?status=nonsense"))).await;
    assert_eq!(status, 400);

    // The environment's last deployment, and when it stops by itself.
    let review_id = review["id"].as_u64().unwrap();
    let (_, shown) = send(s.root(Method::GET, &format!("{envs_path}/{review_id}"))).await;
    assert_eq!(shown["last_deployment"]["deployable"]["name"], "deploy", "{shown}");
    assert!(shown["auto_stop_at"].is_string(), "{shown}");

    // Reporters read but do not stop; Developers stop: the on_stop job runs.
    let (status, _) = send(s.as_token(&rep, Method::POST, &format!("{envs_path}/{review_id}/stop"))).await;
    assert_eq!(status, 403);
    // A Developer who may not run pipelines on the (now Maintainers-only) branch cannot play its
    // on_stop job by stopping the environment.
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    send(s.root(Method::DELETE, &format!("/projects/{pid}/protected_branches/main"))).await;
    let rule = [
        ("name", "main"),
        ("push_access_level", "40"),
        ("merge_access_level", "40"),
    ];
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{pid}/protected_branches"))
            .form(&rule),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(s.as_token(&dev, Method::POST, &format!("{envs_path}/{review_id}/stop"))).await;
    assert_eq!(status, 403);
    let (status, stopping) = send(s.root(Method::POST, &format!("{envs_path}/{review_id}/stop"))).await;
    assert_eq!((status, &stopping["state"]), (200, &json!("stopping")), "{stopping}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, e) = send(s.root(Method::GET, &format!("{envs_path}/{review_id}"))).await;
        if e["state"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "never stopped: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", p["id"]))).await;
    assert_eq!(named(&jobs, "stop_review")["status"], "success");
    let (_, stopped) = send(s.root(Method::GET, &format!("{envs_path}?states=stopped"))).await;
    assert_eq!(stopped.as_array().unwrap().len(), 1, "{stopped}");

    // Only stopped environments are deleted; one without on_stop stops at once.
    let prod_id = named(&envs, "production")["id"].as_u64().unwrap();
    let (status, _) = send(s.root(Method::DELETE, &format!("{envs_path}/{prod_id}"))).await;
    assert_eq!(status, 403);
    let (_, e) = send(s.root(Method::POST, &format!("{envs_path}/{prod_id}/stop"))).await;
    assert_eq!(e["state"], "stopped", "{e}");
    let (status, _) = send(s.root(Method::DELETE, &format!("{envs_path}/{prod_id}"))).await;
    assert_eq!(status, 204);

    // Made through the API: GitLab's checks and errors, nothing made on bad input.
    let (status, e) = send(
        s.root(Method::POST, &envs_path)
            .form(&[("name", "staging"), ("external_url", "javascript:alert(1)")]),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert!(e["message"]["external_url"].is_array(), "{e}");
    let (status, e) = send(
        s.root(Method::POST, &envs_path)
            .form(&[("name", "staging"), ("tier", "moon")]),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let (status, made) = send(
        s.root(Method::POST, &envs_path)
            .form(&[("name", "staging"), ("external_url", "https://staging.example.com")]),
    )
    .await;
    assert_eq!((status, &made["tier"]), (201, &json!("staging")), "{made}");
    let (status, e) = send(s.root(Method::POST, &envs_path).form(&[("name", "staging")])).await;
    assert_eq!(
        (status, &e["message"]["name"][0]),
        (400, &json!("has already been taken"))
    );
    let (status, _) = send(s.as_token(&rep, Method::POST, &envs_path).form(&[("name", "mine")])).await;
    assert_eq!(status, 403);
    let (status, changed) = send(
        s.root(Method::PUT, &format!("{envs_path}/{}", made["id"]))
            .form(&[("tier", "production")]),
    )
    .await;
    assert_eq!((status, &changed["tier"]), (200, &json!("production")));

    // The Environments page lists them, escaped, with their last deployment.
    let page = s
        .http
        .get(format!("{}/root/envs/-/environments", s.base))
        .send()
        .await
        .unwrap();
    assert!(
        page.url().path().starts_with("/users/sign_in"),
        "a private project's page needs a session"
    );
    let mut b = crate::ui::Browser::new(&s);
    b.sign_in("rep", "password123").await;
    let (status, page, _) = b.get("/root/envs/-/environments").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("review/main") && page.contains("stopped") && page.contains("staging"),
        "{page}"
    );
    let (status, page, _) = b.get(&format!("/root/envs/-/environments/{review_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("deploy") && page.contains("success"), "{page}");
}

#[tokio::test]
async fn a_resource_group_runs_one_job_at_a_time_across_pipelines() {
    let s = Server::start_with(&["--concurrent", "3"]);
    let config = "deploy:\n  resource_group: production\n  script: [sleep 1.5]\nunrelated:\n  script: [sleep 1.5]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("rg", repo.path()).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, p) = send(
            s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
                .form(&[("ref", "main")]),
        )
        .await;
        assert_eq!(status, 201, "{p}");
        ids.push(p["id"].as_u64().unwrap());
    }
    let mut deploys = Vec::new();
    let mut unrelated = Vec::new();
    for id in ids {
        let done = finished_pipeline(&s, pid, id).await;
        assert_eq!(done["status"], "success", "{done}");
        let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
        deploys.push(named(&jobs, "deploy").clone());
        unrelated.push(named(&jobs, "unrelated").clone());
    }
    let at = |j: &Value, k: &str| j[k].as_str().unwrap().to_string();
    deploys.sort_by_key(|j| at(j, "started_at"));
    assert!(
        at(&deploys[0], "finished_at") <= at(&deploys[1], "started_at"),
        "the second deploy waited for the first: {deploys:?}"
    );
    // Jobs outside the group are not held back: both ran beside the first deploy.
    assert!(
        unrelated
            .iter()
            .all(|j| at(j, "started_at") < at(&deploys[0], "finished_at")),
        "{unrelated:?}"
    );
}

#[tokio::test]
async fn an_environment_past_auto_stop_in_is_stopped_with_its_on_stop_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "deploy:\n  script: [echo up]\n  environment:\n    name: temp\n    on_stop: down\n    auto_stop_in: 1 second\ndown:\n  script: [echo down]\n  when: manual\n  environment:\n    name: temp\n    action: stop\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let mut s = Server::start_on(&data, &[]);
    let pid = s.project("auto", repo.path()).await;
    let (_, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    finished_pipeline(&s, pid, p["id"].as_u64().unwrap()).await;
    // The sweep runs at start and then each minute: a restart makes it run now.
    s.terminate(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s = Server::start_on(&data, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, envs) = send(s.root(Method::GET, &format!("/projects/{pid}/environments"))).await;
        if envs[0]["state"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "{envs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", p["id"]))).await;
    assert_eq!(named(&jobs, "down")["status"], "success", "{jobs}");
}
