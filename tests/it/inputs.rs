//! `spec:inputs` end to end: the trigger API (form and JSON), `POST /projects/:id/pipeline`
//! and `trigger:` jobs give `.gitlab-ci.yml` and included files their inputs; jobs run the
//! interpolated configuration; a wrong input is GitLab's 400 and creates nothing.

use crate::support::{ROOT_TOKEN, Repo, Server, finished_pipeline, send};
use reqwest::Method;
use serde_json::{Value, json};

const CONFIG: &str = "spec:
  inputs:
    environment:
      options: [staging, production]
      default: staging
    replicas:
      type: number
      default: 1
    notify:
      type: boolean
      default: false
---
deploy-$[[ inputs.environment ]]:
  parallel: $[[ inputs.replicas ]]
  script: echo \"deploying to $[[ inputs.environment ]] notify=$[[ inputs.notify ]]\"
";

async fn jobs_of(s: &Server, pid: u64, pipeline: &Value) -> Vec<Value> {
    let id = pipeline["id"].as_u64().unwrap();
    finished_pipeline(s, pid, id).await;
    let (status, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    assert_eq!(status, 200, "{jobs}");
    jobs.as_array().unwrap().clone()
}

async fn count(s: &Server, pid: u64) -> usize {
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?per_page=100"))).await;
    list.as_array().unwrap().len()
}

#[tokio::test]
async fn trigger_inputs_reach_the_jobs_and_bad_ones_create_nothing() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("inputs", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));

    // The form GitLab documents: inputs[name]=value, read as each input's type.
    let form = [
        ("token", token.as_str()),
        ("ref", "main"),
        ("inputs[environment]", "production"),
        ("inputs[replicas]", "2"),
        ("inputs[notify]", "true"),
    ];
    let (status, p) = send(s.http.post(&url).form(&form)).await;
    assert_eq!(status, 201, "{p}");
    let jobs = jobs_of(&s, pid, &p).await;
    let mut names: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["deploy-production 1/2", "deploy-production 2/2"]);
    let log = crate::support::job_log(&s, pid, &jobs[0]["id"]).await;
    assert!(log.contains("deploying to production notify=true"), "{log}");

    // A JSON object, as python-gitlab and @gitbeaker send it; defaults fill the rest.
    let (status, p) = send(
        s.http
            .post(&url)
            .json(&json!({"token": token, "ref": "main", "inputs": {"replicas": 1}})),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let jobs = jobs_of(&s, pid, &p).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["name"], "deploy-staging 1/1");

    // Wrong inputs: GitLab's 400 and message; no pipeline appears.
    let before = count(&s, pid).await;
    for (inputs, message) in [
        (
            json!({"environment": "qa"}),
            "`environment` input: `qa` cannot be used because it is not in the list of allowed options",
        ),
        (
            json!({"replicas": "many"}),
            "`replicas` input: provided value is not a number",
        ),
        (json!({"colour": "blue"}), "unknown input arguments: colour"),
    ] {
        let (status, body) = send(
            s.http
                .post(&url)
                .json(&json!({"token": token, "ref": "main", "inputs": inputs})),
        )
        .await;
        assert_eq!((status, body.clone()), (400, json!({"message": {"base": [message]}})));
    }
    let (status, body) = send(
        s.http
            .post(&url)
            .json(&json!({"token": token, "ref": "main", "inputs": "x"})),
    )
    .await;
    assert_eq!((status, body), (400, json!({"error": "inputs is invalid"})));
    assert_eq!(count(&s, pid).await, before);
}

#[tokio::test]
async fn api_pipelines_take_inputs_and_trigger_jobs_pass_them_downstream() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let parent = "stages: [test, deploy]
prod:
  stage: deploy
  trigger:
    project: root/target
    strategy: depend
    inputs:
      environment: production
child:
  trigger:
    include:
      - local: child.yml
        inputs:
          who: kid
    strategy: depend
";
    let child = "spec:\n  inputs:\n    who:\n---\nhello:\n  script: echo \"hello $[[ inputs.who ]]\"\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", parent), ("child.yml", child)]);
    let target_repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("parent", repo.path()).await;
    let target = s.project("target", target_repo.path()).await;

    // POST /projects/:id/pipeline with inputs.
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{target}/pipeline"))
            .json(&json!({"ref": "main", "inputs": {"environment": "production", "replicas": 1}})),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(jobs_of(&s, target, &p).await[0]["name"], "deploy-production 1/1");
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{target}/pipeline"))
            .json(&json!({"ref": "main", "inputs": {"notify": "maybe"}})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"base": ["`notify` input: provided value is not a boolean"]}})
        )
    );

    // trigger:inputs (multi-project) and trigger:include:inputs (child).
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .json(&json!({"ref": "main"})),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let done = finished_pipeline(&s, pid, p["id"].as_u64().unwrap()).await;
    assert_eq!(done["status"], "success", "{done}");
    let (_, downstream) = send(s.root(Method::GET, &format!("/projects/{target}/pipelines?source=pipeline"))).await;
    let multi = downstream
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "pipeline")
        .expect("the multi-project pipeline")
        .clone();
    assert_eq!(jobs_of(&s, target, &multi).await[0]["name"], "deploy-production 1/1");
    let (_, own) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    let kid = own
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "parent_pipeline")
        .expect("the child pipeline")
        .clone();
    let jobs = jobs_of(&s, pid, &kid).await;
    let log = crate::support::job_log(&s, pid, &jobs[0]["id"]).await;
    assert!(log.contains("hello kid"), "{log}");
}

#[tokio::test]
async fn the_run_pipeline_form_offers_typed_fields_with_defaults() {
    use crate::ui::{Browser, csrf_of};
    let s = Server::start();
    let config = format!(
        "spec:\n  inputs:\n    region:\n      description: Where it <goes>\n{}",
        CONFIG.trim_start_matches("spec:\n  inputs:\n")
    );
    let repo = Repo::with_files(&[(".gitlab-ci.yml", &config)]);
    crate::support::git(repo.path(), &["checkout", "-qb", "plain"]);
    std::fs::write(repo.path().join(".gitlab-ci.yml"), "job:\n  script: echo\n").unwrap();
    crate::support::git(repo.path(), &["commit", "-qam", "no inputs"]);
    crate::support::git(repo.path(), &["checkout", "-q", "main"]);
    let pid = s.project("form", repo.path()).await;
    let mut b = Browser::new(&s);
    b.sign_in("root", "root-password-123").await;
    let (status, page, _) = b.get("/root/form/-/pipelines").await;
    assert_eq!(status, 200);
    // A select for options, a number field, true/false, a required text field; the
    // description is escaped.
    assert!(page.contains("name=\"inputs[environment]\""), "{page}");
    assert!(
        page.contains("<option value=\"staging\" selected>staging</option>"),
        "{page}"
    );
    assert!(
        page.contains("type=\"number\" step=\"any\" id=\"input_3\" name=\"inputs[replicas]\" value=\"1\""),
        "{page}"
    );
    assert!(
        page.contains("<option value=\"false\" selected>false</option>"),
        "{page}"
    );
    assert!(page.contains("name=\"inputs[region]\" value=\"\""), "{page}");
    assert!(
        page.contains("Where it &#60;goes&#62;") || page.contains("Where it &lt;goes&gt;"),
        "{page}"
    );
    let (_, other, _) = b.get("/root/form/-/pipelines?ref=plain").await;
    assert!(!other.contains("inputs["), "the plain branch declares none");

    let csrf = csrf_of(&page);
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("ref", "main"),
        ("inputs[region]", "eu"),
        ("inputs[environment]", "production"),
        ("inputs[replicas]", "2"),
        ("inputs[notify]", "false"),
    ];
    let (status, _, location, _) = b.post("/root/form/-/pipelines", &form).await;
    assert_eq!(status, 302);
    assert!(
        location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/root/form/-/pipelines/"),
        "{location:?}"
    );
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    let id = list[0]["id"].as_u64().unwrap();
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    assert_eq!(jobs.as_array().unwrap().len(), 2, "{jobs}");
    assert_eq!(list[0]["source"], "web");

    // A wrong value comes back in the form with the reason beside it; nothing is created.
    let (status, page, _, _) = b
        .post(
            "/root/form/-/pipelines",
            &[
                ("authenticity_token", csrf.as_str()),
                ("ref", "main"),
                ("inputs[replicas]", "x"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("`region` input: required value has not been provided"),
        "{page}"
    );
    assert!(page.contains(r#"value="x""#), "the value entered is kept: {page}");
    let (_, again) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    assert_eq!(again.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn expand_vars_never_reveals_a_masked_variable() {
    let s = Server::start();
    let config = "spec:\n  inputs:\n    greeting:\n      default: hello\n---\ngreet:\n  script: echo $[[ inputs.greeting | expand_vars | posix_escape ]]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("masked", repo.path()).await;
    let (status, v) = send(s.root(Method::POST, &format!("/projects/{pid}/variables")).form(&[
        ("key", "SECRET"),
        ("value", "s3cr3t-Value-42xyz"),
        ("masked", "true"),
    ]))
    .await;
    assert_eq!(status, 201, "{v}");
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let (status, body) = send(s.http.post(&url).form(&[
        ("token", token.as_str()),
        ("ref", "main"),
        ("inputs[greeting]", "hi $SECRET"),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"base": ["error in `expand_vars` function: variable expansion error: masked variables cannot be expanded"]}})
        )
    );
    assert_eq!(count(&s, pid).await, 0);
}
