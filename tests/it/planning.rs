//! Triggered pipelines are planned from `.gitlab-ci.yml` at the commit: jobs are recorded with
//! the pipeline; filter outcomes are refused with 400 and store nothing; configuration errors
//! store a failed pipeline and answer 422, as current GitLab does.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;
use serde_json::{Value, json};

const CONFIG: &str = r#"
include: ci/extra.yml
variables:
  GREETING: hello
build:
  stage: build
  script: [echo "$GREETING"]
  rules:
    - if: $CI_PIPELINE_SOURCE == "trigger"
deploy:
  stage: deploy
  script: ./deploy.sh
  rules:
    - if: $DEPLOY_ENV == "production"
      when: manual
push-only:
  script: echo push
  only: [pushes]
"#;

const EXTRA: &str = "lint:\n  stage: test\n  script: cargo clippy\n  tags: [rust]\n";

async fn setup(files: &[(&str, &str)]) -> (Server, Repo, u64, String) {
    let s = Server::start();
    let repo = Repo::with_files(files);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    (s, repo, pid, token)
}

async fn trigger(s: &Server, pid: u64, token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("token", token), ("ref", "main")];
    form.extend_from_slice(extra);
    send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&form),
    )
    .await
}

async fn job_names(s: &Server, pid: u64, pipeline: &Value) -> Vec<String> {
    let (status, jobs) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/pipelines/{}/jobs", pipeline["id"]),
    ))
    .await;
    assert_eq!(status, 200, "{jobs}");
    jobs.as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn trigger_pipelines_get_the_jobs_their_rules_select() {
    let (s, _repo, pid, token) = setup(&[(".gitlab-ci.yml", CONFIG), ("ci/extra.yml", EXTRA)]).await;
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(job_names(&s, pid, &p).await, vec!["build", "lint"]);
    // a trigger variable selects the manual deploy job
    let (status, p) = trigger(&s, pid, &token, &[("variables[DEPLOY_ENV]", "production")]).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(job_names(&s, pid, &p).await, vec!["build", "lint", "deploy"]);
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", p["id"]))).await;
    let deploy = jobs.as_array().unwrap().iter().find(|j| j["name"] == "deploy").unwrap();
    assert_eq!(
        (
            deploy["stage"].as_str(),
            deploy["when"].as_str(),
            deploy["allow_failure"].as_bool()
        ),
        (Some("deploy"), Some("manual"), Some(false))
    );
    assert_eq!(deploy["status"], "created");
    assert_eq!(deploy["pipeline"]["id"], p["id"]);
    assert_eq!(deploy["user"]["username"], "root");
    assert_eq!(
        deploy["web_url"],
        format!("{}/root/demo/-/jobs/{}", s.base, deploy["id"])
    );
    let lint = jobs.as_array().unwrap().iter().find(|j| j["name"] == "lint").unwrap();
    assert_eq!(lint["tag_list"], json!(["rust"]));
    // the job by id, and the project's job list, newest first
    let (status, one) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{}", deploy["id"]))).await;
    assert_eq!((status, &one["name"]), (200, &json!("deploy")));
    let (status, all) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs?per_page=2"))).await;
    assert_eq!(status, 200);
    assert_eq!(all[0]["name"], "deploy");
    assert_eq!(
        send(s.root(Method::GET, &format!("/projects/{pid}/jobs/9999"))).await.0,
        404
    );
}

#[tokio::test]
async fn filtered_pipelines_are_refused_and_store_nothing() {
    let workflow = "workflow:\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"push\"\njob:\n  script: x\n";
    let (s, _repo, pid, token) = setup(&[(".gitlab-ci.yml", workflow)]).await;
    let (status, body) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"base": ["Pipeline filtered out by workflow rules."]}})
        )
    );
    let no_jobs = "job:\n  script: x\n  rules:\n    - if: $NEVER_SET\n";
    let (s2, _repo2, pid2, token2) = setup(&[(".gitlab-ci.yml", no_jobs)]).await;
    let (status, body) = trigger(&s2, pid2, &token2, &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]["base"][0]
            .as_str()
            .unwrap()
            .starts_with("Pipeline will not run for the selected trigger."),
        "{body}"
    );
    for (server, project) in [(&s, pid), (&s2, pid2)] {
        let (_, list) = send(server.root(Method::GET, &format!("/projects/{project}/pipelines"))).await;
        assert_eq!(list, json!([]));
    }
}

#[tokio::test]
async fn configuration_errors_store_a_failed_pipeline_and_answer_422() {
    let (s, _repo, pid, token) = setup(&[(".gitlab-ci.yml", "job:\n  script: x\n bad: indentation\n")]).await;
    let (status, body) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"]["base"][0].as_str().unwrap().to_string();
    assert!(
        message.starts_with("(<unknown>): did not find expected key"),
        "{message}"
    );
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    assert_eq!(list[0]["status"], "failed");
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}", list[0]["id"]))).await;
    assert_eq!(p["yaml_errors"], message.as_str());
    assert_eq!(job_names(&s, pid, &p).await, Vec::<String>::new());
    // a repository without a configuration file
    let (s, _repo, pid, token) = setup(&[("README.md", "no ci here")]).await;
    let (status, body) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(
        (status, body),
        (422, json!({"message": {"base": ["Missing CI config file"]}}))
    );
    // validation errors use GitLab's lower-cased texts
    let (s, _repo, pid, token) = setup(&[(".gitlab-ci.yml", "Job:\n  script: x\n  when: never\n")]).await;
    let (status, body) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["message"]["base"][0],
        "jobs:job when should be one of: on_success, on_failure, always, manual, delayed"
    );
}

#[tokio::test]
async fn api_pipelines_need_developer_and_store_nothing_on_errors() {
    let (s, _repo, pid, _) = setup(&[(".gitlab-ci.yml", CONFIG), ("ci/extra.yml", EXTRA)]).await;
    let (dev, dev_pat) = s.user("dev").await;
    s.add_member(pid, dev, 30).await;
    let (rep, rep_pat) = s.user("rep").await;
    s.add_member(pid, rep, 20).await;
    let url = format!("/projects/{pid}/pipeline");
    // python-gitlab's project.pipelines.create({"ref": ..., "variables": [...]}) sends JSON
    let body = json!({"ref": "main", "variables": [{"key": "DEPLOY_ENV", "value": "production"}]});
    let (status, p) = send(s.as_token(&dev_pat, Method::POST, &url).json(&body)).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(
        (p["source"].as_str(), p["user"]["username"].as_str()),
        (Some("api"), Some("dev"))
    );
    // rules see source api: build (trigger-only) is out, deploy (variable) is in
    assert_eq!(job_names(&s, pid, &p).await, vec!["lint", "deploy"]);
    // curl's form encoding of the same array
    let form = [
        ("ref", "main"),
        ("variables[][key]", "DEPLOY_ENV"),
        ("variables[][value]", "production"),
    ];
    let (status, p) = send(s.as_token(&dev_pat, Method::POST, &url).form(&form)).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(job_names(&s, pid, &p).await, vec!["lint", "deploy"]);
    assert_eq!(
        send(s.as_token(&rep_pat, Method::POST, &url).form(&[("ref", "main")]))
            .await
            .0,
        403
    );
    assert_eq!(send(s.anon(Method::POST, &url).form(&[("ref", "main")])).await.0, 401);
    assert_eq!(
        send(s.as_token(&dev_pat, Method::POST, &url)).await,
        (400, json!({"error": "ref is missing"}))
    );
    let (status, body) = send(s.as_token(&dev_pat, Method::POST, &url).form(&[("ref", "nope")])).await;
    assert_eq!(
        (status, body),
        (400, json!({"message": {"base": ["Reference not found"]}}))
    );
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // a configuration error is a 400 here, and nothing is stored
    let (s, _repo, pid, _) = setup(&[(".gitlab-ci.yml", "job: [not, a, job]\n")]).await;
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]["base"][0]
            .as_str()
            .unwrap()
            .contains("config should implement"),
        "{body}"
    );
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn project_variables_are_managed_by_maintainers_and_reach_planning() {
    let config = "flagged:\n  script: x\n  rules:\n    - if: $FLAG == \"on\"\nsecret:\n  script: x\n  rules:\n    - if: $DEPLOY_KEY\n";
    let (mut s, repo, pid, token) = setup(&[(".gitlab-ci.yml", config)]).await;
    crate::support::git(repo.path(), &["branch", "feature"]);
    let (dev, dev_pat) = s.user("dev").await;
    s.add_member(pid, dev, 30).await;
    let vars = format!("/projects/{pid}/variables");
    let (status, body) = send(s.as_token(&dev_pat, Method::GET, &vars)).await;
    assert_eq!(status, 403, "{body}");
    let (status, v) = send(s.root(Method::POST, &vars).form(&[("key", "FLAG"), ("value", "on")])).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (
            v["variable_type"].as_str(),
            v["protected"].as_bool(),
            v["masked"].as_bool()
        ),
        (Some("env_var"), Some(false), Some(false))
    );
    let secret = "s3cr3t-deploy-key-0042";
    let form = [
        ("key", "DEPLOY_KEY"),
        ("value", secret),
        ("protected", "true"),
        ("masked", "true"),
    ];
    assert_eq!(send(s.root(Method::POST, &vars).form(&form)).await.0, 201);
    // GitLab's validation
    let (status, body) = send(s.root(Method::POST, &vars).form(&[("key", "FLAG"), ("value", "x")])).await;
    assert_eq!(
        (status, body),
        (400, json!({"message": {"key": ["(FLAG) has already been taken"]}}))
    );
    let (status, body) = send(s.root(Method::POST, &vars).form(&[("key", "BAD-KEY"), ("value", "x")])).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"key": ["can contain only letters, digits and '_'."]}})
        )
    );
    let (status, body) =
        send(
            s.root(Method::POST, &vars)
                .form(&[("key", "SHORT"), ("value", "abc"), ("masked", "true")]),
        )
        .await;
    assert_eq!((status, body), (400, json!({"message": {"value": ["is invalid"]}})));
    assert_eq!(
        send(s.root(Method::POST, &vars).form(&[("key", "X")])).await,
        (400, json!({"error": "value is missing"}))
    );
    let (status, list) = send(s.root(Method::GET, &vars)).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    // the default branch gets protected variables; another branch does not
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(job_names(&s, pid, &p).await, vec!["flagged", "secret"]);
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "feature")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(job_names(&s, pid, &p).await, vec!["flagged"]);
    // update and delete
    let (status, v) = send(s.root(Method::PUT, &format!("{vars}/FLAG")).form(&[("value", "off")])).await;
    assert_eq!((status, v["value"].as_str()), (200, Some("off")));
    assert_eq!(send(s.root(Method::DELETE, &format!("{vars}/FLAG"))).await.0, 204);
    assert_eq!(
        send(s.root(Method::GET, &format!("{vars}/FLAG"))).await,
        (404, json!({"message": "404 Variable Not Found"}))
    );
    // values are sealed at rest
    s.kill9();
    let db = std::fs::read(s.data_dir.join("spur.redb")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "a variable value is in the database file"
    );
}

#[tokio::test]
async fn ci_lint_explains_which_jobs_would_run() {
    let (s, _repo, pid, _) = setup(&[(".gitlab-ci.yml", CONFIG), ("ci/extra.yml", EXTRA)]).await;
    let lint = |body: Value| s.root(Method::POST, &format!("/projects/{pid}/ci/lint")).json(&body);
    // the project's own file at its default branch, for a trigger with a variable
    let (status, r) = send(lint(
        json!({"source": "trigger", "variables": {"DEPLOY_ENV": "production"}}),
    ))
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["valid"].as_bool(), r["errors"].clone()), (Some(true), json!([])));
    let names: Vec<&str> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["build", "lint", "deploy"]);
    assert_eq!(r["stages"], json!(["build", "test", "deploy"]));
    // merged_yaml holds the included file's job in the merged configuration
    let merged = r["merged_yaml"].as_str().expect("merged_yaml");
    assert!(
        merged.contains("lint:") && merged.contains("cargo clippy") && !merged.contains("include:"),
        "{merged}"
    );
    // given content; an invalid one; a filtered one
    let (_, r) = send(lint(json!({"content": "job:\n  script: x\n  when: sometimes\n"}))).await;
    assert_eq!(r["valid"], false);
    assert_eq!(
        r["errors"][0],
        "jobs:job when should be one of: on_success, on_failure, always, manual, delayed"
    );
    let (_, r) = send(lint(
        json!({"content": "workflow:\n  rules:\n    - when: never\njob:\n  script: x\n"}),
    ))
    .await;
    assert_eq!(
        (r["valid"].as_bool(), r["warnings"][0].as_str()),
        (Some(true), Some("Pipeline filtered out by workflow rules."))
    );
    let (status, _) = send(lint(json!({"ref": "nope"}))).await;
    assert_eq!(status, 400);
    let (_, pat) = s.user("outsider").await;
    assert_eq!(
        send(s.as_token(&pat, Method::POST, &format!("/projects/{pid}/ci/lint")))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn include_project_reads_another_project_the_user_may_read() {
    let s = Server::start();
    let templates = Repo::with_files(&[
        (
            "ci/build.yml",
            "include: ci/more.yml\nshared-build:\n  script: [make]\n",
        ),
        ("ci/more.yml", "shared-more:\n  script: [make more]\n"),
    ]);
    s.project("templates", templates.path()).await;
    templates.commit("later.txt");
    let config = "include:\n  - project: root/templates\n    file: /ci/build.yml\nown:\n  script: [echo own]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("app", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    let mut names = job_names(&s, pid, &p).await;
    names.sort();
    assert_eq!(names, vec!["own", "shared-build", "shared-more"]);

    // A maintainer of the app who cannot read the templates gets GitLab's error, as a 422.
    let (uid, maintainer) = s.user("mia").await;
    s.add_member(pid, uid, 40).await;
    let (_, their_token) = s.trigger_token(&maintainer, pid).await;
    let (status, body) = trigger(&s, pid, &their_token, &[]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["message"]["base"][0],
        "Project `root/templates` not found or access denied! Make sure any includes in the pipeline configuration are correctly defined."
    );

    // Missing files and refs are named.
    for (include, want) in [
        (
            "include:\n  project: root/templates\n    \n  file: nope.yml\n",
            "Project `root/templates` file `nope.yml` does not exist!",
        ),
        (
            "include:\n  project: root/templates\n  ref: no-such-ref\n  file: ci/build.yml\n",
            "Project `root/templates` reference `no-such-ref` does not exist!",
        ),
    ] {
        let (status, lint) = send(
            s.root(Method::POST, &format!("/projects/{pid}/ci/lint"))
                .json(&json!({"content": format!("{include}x:\n  script: [a]\n")})),
        )
        .await;
        assert_eq!(status, 200, "{lint}");
        assert_eq!(lint["errors"][0], want, "{lint}");
    }
}

#[tokio::test]
async fn components_come_from_projects_on_this_instance_at_their_released_versions() {
    let s = Server::start();
    let catalog = Repo::with_files(&[(
        "templates/build/template.yml",
        "spec:\n  inputs:\n    target:\n---\nbuild-$[[ inputs.target ]]-v1:\n  script: [make]\n",
    )]);
    crate::support::git(catalog.path(), &["tag", "1.0.0"]);
    std::fs::write(
        catalog.path().join("templates/build/template.yml"),
        "spec:\n  inputs:\n    target:\n---\nbuild-$[[ inputs.target ]]-v1-2:\n  script: [make]\n",
    )
    .unwrap();
    crate::support::git(catalog.path(), &["commit", "-qam", "1.2"]);
    crate::support::git(catalog.path(), &["tag", "1.2.0"]);
    s.project("catalog", catalog.path()).await;
    let fqdn = s.base.trim_start_matches("http://").to_string();
    let config = "include:\n  - component: $CI_SERVER_FQDN/root/catalog/build@~latest\n    inputs:\n      target: arm\n  - component: $CI_SERVER_FQDN/root/catalog/build@1.0.0\n    inputs:\n      target: x86\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("app", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    let mut names = job_names(&s, pid, &p).await;
    names.sort();
    assert_eq!(names, vec!["build-arm-v1-2", "build-x86-v1"]);

    for (address, want) in [
        (
            "gitlab.com/components/sast/sast@2.0.0".to_string(),
            format!("spur includes components from this instance ({fqdn}) only, not from gitlab.com"),
        ),
        (
            format!("{fqdn}/root/catalog/build@9"),
            "no released version matches 9".to_string(),
        ),
        (
            format!("{fqdn}/root/nothing/build@1.0.0"),
            "project does not exist or you don't have sufficient permissions".to_string(),
        ),
    ] {
        let (status, lint) = send(
            s.root(Method::POST, &format!("/projects/{pid}/ci/lint"))
                .json(&json!({"content": format!("include:\n  - component: {address}\nx:\n  script: [a]\n")})),
        )
        .await;
        assert_eq!(status, 200, "{lint}");
        assert!(lint["errors"][0].as_str().unwrap_or_default().contains(&want), "{lint}");
    }
}

#[tokio::test]
async fn remote_includes_are_fetched_under_the_local_network_rules() {
    let web = crate::support::Mailbox::start();
    web.put(
        "shared.yml",
        "spec:\n  inputs:\n    who:\n---\nremote-$[[ inputs.who ]]:\n  script: [echo remote]\n",
    );
    let config = format!(
        "include:\n  - remote: {0}/get/shared.yml\n    inputs:\n      who: team\nown:\n  script: [echo own]\n",
        web.url
    );
    let repo = Repo::with_files(&[(".gitlab-ci.yml", &config)]);

    // By default spur does not reach the local network on a pipeline's behalf.
    let s = Server::start();
    let pid = s.project("app", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, body) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"]["base"][0].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "Remote file `{}/get/shared.yml` could not be fetched:",
            web.url
        )) && message.contains("loopback addresses are not allowed"),
        "{message}"
    );

    // With local requests allowed (as for this test), the file is fetched and interpolated.
    let s = Server::start_with(&["--concurrent", "0", "--allow-local-requests"]);
    let pid = s.project("app", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    let mut names = job_names(&s, pid, &p).await;
    names.sort();
    assert_eq!(names, vec!["own", "remote-team"]);
    let (status, lint) = send(s.root(Method::POST, &format!("/projects/{pid}/ci/lint")).json(&json!({
        "content": format!("include: {}/get/missing.yml\nx:\n  script: [a]\n", web.url)
    })))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        lint["errors"][0],
        format!(
            "Remote file `{}/get/missing.yml` could not be fetched because of HTTP code `404` error!",
            web.url
        )
    );
}

/// A one-file https server on 127.0.0.1 with a certificate from a fresh CA; answers the
/// server's base URL, the CA file and the process (killed on drop).
fn https_server(
    dir: &std::path::Path,
    file: &str,
    body: &str,
) -> (String, std::path::PathBuf, crate::support::KillOnDrop) {
    crate::support::test_certificates(dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www").join(file), body).unwrap();
    let script = "import http.server, ssl, sys, functools\n\
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory='www')\n\
server = http.server.HTTPServer(('127.0.0.1', 0), handler)\n\
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
ctx.load_cert_chain('server.pem', 'server.key')\n\
server.socket = ctx.wrap_socket(server.socket, server_side=True)\n\
print(server.server_address[1], flush=True)\n\
server.serve_forever()\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let port: u16 = line.trim().parse().expect("the https server's port");
    (
        format!("https://127.0.0.1:{port}"),
        dir.join("ca.pem"),
        crate::support::KillOnDrop(child),
    )
}

#[tokio::test]
async fn remote_includes_come_over_https_with_verified_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (base, ca, _server) = https_server(dir.path(), "shared.yml", "tls-job:\n  script: [echo tls]\n");
    let config = format!("include:\n  - remote: {base}/shared.yml\nown:\n  script: [echo own]\n");
    let repo = Repo::with_files(&[(".gitlab-ci.yml", &config)]);
    // The test's CA is trusted through SSL_CERT_FILE; loopback is allowed for the test.
    let s = Server::start_with_env(
        &["--concurrent", "0", "--allow-local-requests"],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    let pid = s.project("app", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 201, "{p}");
    let mut names = job_names(&s, pid, &p).await;
    names.sort();
    assert_eq!(names, vec!["own", "tls-job"]);

    // Without the CA the certificate is not trusted: the include fails, nothing runs.
    let s = Server::start_with(&["--concurrent", "0", "--allow-local-requests"]);
    let pid = s.project("app", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, body) = trigger(&s, pid, &token, &[]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["message"]["base"][0],
        format!("Remote file `{base}/shared.yml` could not be fetched because of a socket error!")
    );
}

#[tokio::test]
async fn pipeline_lists_filter_as_gitlab_does_and_latest_answers_a_refs_newest() {
    let s = Server::start();
    let config = "variables:\n  KIND: nightly\nworkflow:\n  name: '$KIND build of $CI_COMMIT_REF_NAME'\njob:\n  script: [echo]\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    crate::support::git(repo.path(), &["branch", "feature/x"]);
    crate::support::git(repo.path(), &["tag", "v1.0"]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let mut ids = Vec::new();
    for r in ["main", "feature/x", "main", "v1.0"] {
        let (status, p) = send(
            s.http
                .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
                .form(&[("token", token.as_str()), ("ref", r)]),
        )
        .await;
        assert_eq!(status, 201, "{p}");
        ids.push(p["id"].as_u64().unwrap());
    }
    let list = |q: &str| {
        let s = &s;
        let q = q.to_string();
        async move {
            let (status, v) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?{q}"))).await;
            assert_eq!(status, 200, "{q}: {v}");
            v.as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("scope=branches").await,
        vec![ids[2], ids[1]],
        "each branch's newest"
    );
    assert_eq!(list("scope=tags").await, vec![ids[3]]);
    assert_eq!(list("scope=pending").await.len(), 4);
    assert_eq!(list("scope=finished").await, Vec::<u64>::new());
    assert_eq!(list("username=root").await.len(), 4);
    assert_eq!(list("username=nobody").await, Vec::<u64>::new());
    assert_eq!(
        list("name=nightly%20build%20of%20feature%2Fx").await,
        vec![ids[1]],
        "workflow:name, its variables expanded"
    );
    assert_eq!(
        list("yaml_errors=True").await,
        Vec::<u64>::new(),
        "Grape booleans in any case"
    );
    assert_eq!(
        list("created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z")
            .await
            .len(),
        4
    );
    assert_eq!(list("updated_before=2000-01-01T00:00:00Z").await, Vec::<u64>::new());
    let (_, first) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}", ids[0]))).await;
    assert_eq!(list(&format!("sha={}", first["sha"].as_str().unwrap())).await.len(), 4);
    let (status, body) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?scope=everything"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("scope does not have a valid value"))
    );

    let (status, latest) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/latest"))).await;
    assert_eq!((status, latest["id"].as_u64()), (200, Some(ids[2])));
    let (_, latest) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/latest?ref=feature/x"))).await;
    assert_eq!(latest["id"].as_u64(), Some(ids[1]));
    let (status, _) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/latest?ref=none"))).await;
    assert_eq!(status, 404);
}
