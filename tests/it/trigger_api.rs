//! The trigger endpoint against GitLab's spec (section 3.1): every documented curl form, the
//! exact check order, every error status and body, and that an error changes nothing.

use crate::support::{Repo, Server, git, send};
use reqwest::Method;
use serde_json::{Value, json};

struct Fixture {
    s: Server,
    repo: Repo,
    pid: u64,
    token: String,
}

async fn fixture() -> Fixture {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(crate::support::ROOT_TOKEN, pid).await;
    Fixture { s, repo, pid, token }
}

impl Fixture {
    fn url(&self) -> String {
        self.s.api(&format!("/projects/{}/trigger/pipeline", self.pid))
    }

    async fn pipeline_count(&self) -> usize {
        let (status, list) = send(
            self.s
                .root(Method::GET, &format!("/projects/{}/pipelines?per_page=100", self.pid)),
        )
        .await;
        assert_eq!(status, 200);
        list.as_array().unwrap().len()
    }

    async fn post_form(&self, pairs: &[(&str, &str)]) -> (u16, Value) {
        send(self.s.http.post(self.url()).form(pairs)).await
    }

    async fn variables(&self, pipeline_id: u64) -> Value {
        let (status, vars) = send(self.s.root(
            Method::GET,
            &format!("/projects/{}/pipelines/{pipeline_id}/variables", self.pid),
        ))
        .await;
        assert_eq!(status, 200, "{vars}");
        vars
    }
}

fn payload_of(vars: &Value) -> String {
    vars.as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "TRIGGER_PAYLOAD")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn documented_curl_forms_create_trigger_pipelines() {
    let f = fixture().await;
    let main_sha = f.repo.sha("main");
    // curl --request POST --form token=TOKEN --form ref=main URL
    let form = reqwest::multipart::Form::new()
        .text("token", f.token.clone())
        .text("ref", "main")
        .text("variables[DEPLOY]", "prod");
    let (status, p) = send(f.s.http.post(f.url()).multipart(form)).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["source"], "trigger");
    assert_eq!(p["ref"], "main");
    assert_eq!(p["sha"], main_sha);
    assert_eq!(p["tag"], false);
    assert_eq!(p["status"], "pending", "its first stage is queued at once");
    assert_eq!(p["project_id"], f.pid);
    assert_eq!(p["before_sha"], "0".repeat(40));
    assert_eq!(p["user"]["username"], "root");
    assert_eq!(p["web_url"], format!("{}/root/demo/-/pipelines/{}", f.s.base, p["id"]));
    let vars = f.variables(p["id"].as_u64().unwrap()).await;
    assert_eq!(
        vars[0],
        json!({"key": "DEPLOY", "value": "prod", "variable_type": "env_var", "raw": false})
    );
    assert_eq!(vars[1]["variable_type"], "file");
    assert_eq!(vars[1]["raw"], true);

    // token and ref in the query string
    let (status, p) = send(f.s.http.post(format!("{}?token={}&ref=main", f.url(), f.token))).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["iid"], 2);

    // urlencoded body, full ref names, an annotated tag
    let (status, p) = f.post_form(&[("token", &f.token), ("ref", "refs/tags/v2.0")]).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!((p["ref"].as_str(), p["tag"].as_bool()), (Some("v2.0"), Some(true)));
    assert_eq!(p["sha"], main_sha);
    let (status, p) = f
        .post_form(&[("token", &f.token), ("ref", "refs/heads/feature/x")])
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["ref"], "feature/x");

    // a JSON body, as python-gitlab sends it
    let (status, p) = send(
        f.s.http
            .post(f.url())
            .json(&json!({"token": f.token, "ref": "v1.0", "variables": {"A": "1"}, "inputs": {}})),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["tag"], true);

    // a PRIVATE-TOKEN header is ignored, even a bad one
    let (status, _) = send(
        f.s.http
            .post(f.url())
            .header("PRIVATE-TOKEN", "nonsense")
            .form(&[("token", f.token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn trigger_payload_holds_every_parameter_but_the_token() {
    let f = fixture().await;
    let (status, p) = f.post_form(&[("token", &f.token), ("ref", "main")]).await;
    assert_eq!(status, 201);
    let vars = f.variables(p["id"].as_u64().unwrap()).await;
    assert_eq!(vars.as_array().unwrap().len(), 1);
    // GitLab's own spec compares this value literally.
    assert_eq!(
        payload_of(&vars),
        format!(r#"{{"ref":"main","id":"{}","variables":{{}}}}"#, f.pid)
    );

    // the webhook form: the path's ref wins, the JSON body is kept, slashes are URL-encoded
    let body = json!({"object_kind": "push", "ref": "refs/heads/other", "commits": [{"id": "abc"}]});
    let url = f.s.api(&format!(
        "/projects/{}/ref/feature%2Fx/trigger/pipeline?token={}",
        f.pid, f.token
    ));
    let (status, p) = send(f.s.http.post(url).header("X-Gitlab-Event", "Push Hook").json(&body)).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["ref"], "feature/x");
    let payload: Value = serde_json::from_str(&payload_of(&f.variables(p["id"].as_u64().unwrap()).await)).unwrap();
    assert_eq!(payload["ref"], "feature/x");
    assert_eq!(payload["object_kind"], "push");
    assert_eq!(payload["commits"][0]["id"], "abc");
    assert_eq!(payload["id"], f.pid.to_string());
    assert!(payload.get("token").is_none());
    assert!(!payload_of(&f.variables(p["id"].as_u64().unwrap()).await).contains(&f.token));
}

#[tokio::test]
async fn parameter_errors_come_first_and_change_nothing() {
    let f = fixture().await;
    let cases: Vec<(Vec<(&str, &str)>, Value)> = vec![
        (vec![], json!({"error": "ref is missing, token is missing"})),
        (vec![("token", "x")], json!({"error": "ref is missing"})),
        (vec![("ref", "main")], json!({"error": "token is missing"})),
        (vec![("token", "x"), ("ref", "")], json!({"error": "ref is empty"})),
        (
            vec![("token", "x"), ("ref", "main"), ("variables", "value")],
            json!({"error": "variables is invalid"}),
        ),
        (
            vec![("token", "x"), ("ref", "main"), ("inputs", "value")],
            json!({"error": "inputs is invalid"}),
        ),
    ];
    for (pairs, expected) in cases {
        let (status, body) = f.post_form(&pairs).await;
        assert_eq!((status, &body), (400, &expected), "{pairs:?}");
    }
    let (status, body) = send(
        f.s.http
            .post(f.url())
            .json(&json!({"token": "x", "ref": "main", "variables": []})),
    )
    .await;
    assert_eq!((status, body), (400, json!({"error": "variables is invalid"})));
    // parameter validation comes before the project lookup
    let (status, body) = send(f.s.http.post(f.s.api("/projects/999/trigger/pipeline"))).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "ref is missing, token is missing"}))
    );
    assert_eq!(f.pipeline_count().await, 0);
}

#[tokio::test]
async fn pipeline_hook_header_is_refused_before_the_project_lookup() {
    let f = fixture().await;
    for url in [f.url(), f.s.api("/projects/999/trigger/pipeline")] {
        let (status, body) = send(
            f.s.http
                .post(url)
                .header("X-Gitlab-Event", "Pipeline Hook")
                .form(&[("token", f.token.as_str()), ("ref", "main")]),
        )
        .await;
        assert_eq!((status, body), (403, json!({"message": "403 Forbidden"})));
    }
    assert_eq!(f.pipeline_count().await, 0);
}

#[tokio::test]
async fn variables_must_be_strings() {
    let f = fixture().await;
    let expected = json!({"message": "variables needs to be a map of key-valued strings"});
    let (status, body) = f
        .post_form(&[("token", &f.token), ("ref", "main"), ("variables[A][]", "x")])
        .await;
    assert_eq!((status, &body), (400, &expected));
    let (status, body) = send(
        f.s.http
            .post(f.url())
            .json(&json!({"token": f.token, "ref": "main", "variables": {"A": 1}})),
    )
    .await;
    assert_eq!((status, &body), (400, &expected));
    // checked before the project lookup
    let (status, body) = send(
        f.s.http
            .post(f.s.api("/projects/999/trigger/pipeline"))
            .json(&json!({"token": "x", "ref": "main", "variables": {"A": ["x"]}})),
    )
    .await;
    assert_eq!((status, &body), (400, &expected));
    assert_eq!(f.pipeline_count().await, 0);
}

#[tokio::test]
async fn unknown_projects_and_tokens_are_indistinguishable() {
    let f = fixture().await;
    let not_found = json!({"message": "404 Not Found"});
    // unknown project, bare project name, and a path
    for project in ["999", "demo", "root%2Fnope"] {
        let url = f.s.api(&format!("/projects/{project}/trigger/pipeline"));
        let (status, body) = send(f.s.http.post(url).form(&[("token", f.token.as_str()), ("ref", "main")])).await;
        assert_eq!((status, &body), (404, &not_found), "{project}");
    }
    // the project by its URL-encoded path works
    let (status, _) = send(
        f.s.http
            .post(f.s.api("/projects/root%2Fdemo/trigger/pipeline"))
            .form(&[("token", f.token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
    // unknown token, a personal access token, another project's token
    let other_repo = Repo::new();
    let other = f.s.project("other", other_repo.path()).await;
    let (_, other_token) = f.s.trigger_token(crate::support::ROOT_TOKEN, other).await;
    for token in [
        "glptt-0000000000000000000000000000000000000000",
        crate::support::ROOT_TOKEN,
        other_token.as_str(),
        "",
    ] {
        let (status, body) = f.post_form(&[("token", token), ("ref", "main")]).await;
        assert_eq!((status, &body), (404, &not_found), "{token}");
    }
    assert_eq!(f.pipeline_count().await, 1);
}

#[tokio::test]
async fn revoked_and_expired_tokens_stop_working() {
    let f = fixture().await;
    let (tid, token) = f.s.trigger_token(crate::support::ROOT_TOKEN, f.pid).await;
    assert_eq!(f.post_form(&[("token", &token), ("ref", "main")]).await.0, 201);
    let (status, _) = send(f.s.root(Method::DELETE, &format!("/projects/{}/triggers/{tid}", f.pid))).await;
    assert_eq!(status, 204);
    assert_eq!(
        f.post_form(&[("token", &token), ("ref", "main")]).await,
        (404, json!({"message": "404 Not Found"}))
    );
    // a token whose expiry has passed
    let (status, t) = send(
        f.s.root(Method::POST, &format!("/projects/{}/triggers", f.pid))
            .form(&[("description", "old"), ("expires_at", "2020-01-01")]),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let expired = t["token"].as_str().unwrap();
    assert_eq!(
        f.post_form(&[("token", expired), ("ref", "main")]).await,
        (404, json!({"message": "404 Not Found"}))
    );
}

#[tokio::test]
async fn refs_resolve_as_gitlab_resolves_them() {
    let f = fixture().await;
    let base = |m: &str| json!({"message": {"base": [m]}});
    let sha = f.repo.sha("main");
    for (r, expected) in [
        ("nope", base("Reference not found")),
        (sha.as_str(), base("Reference not found")),
        ("refs/heads/v1.0", base("Reference not found")),
        ("both", base("Ref is ambiguous")),
    ] {
        assert_eq!(
            f.post_form(&[("token", &f.token), ("ref", r)]).await,
            (400, expected),
            "{r}"
        );
    }
    assert_eq!(
        f.post_form(&[("token", &f.token), ("ref", "refs/heads/both")]).await.0,
        201
    );
    assert_eq!(f.pipeline_count().await, 1);
    // a local repository is read in place: a new commit is seen at once
    let new_sha = f.repo.commit("later.txt");
    let (status, p) = f.post_form(&[("token", &f.token), ("ref", "main")]).await;
    assert_eq!(status, 201);
    assert_eq!(p["sha"], new_sha);
}

#[tokio::test]
async fn variable_rules() {
    let f = fixture().await;
    let (status, body) = f
        .post_form(&[
            ("token", &f.token),
            ("ref", "main"),
            ("variables[TRIGGER_PAYLOAD]", "x"),
        ])
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"message": {"base": ["Duplicate variable name: TRIGGER_PAYLOAD"]}})
        )
    );
    let (status, body) = f
        .post_form(&[("token", &f.token), ("ref", "main"), ("variables[BAD-KEY]", "x")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]["base"][0].as_str().unwrap().contains("BAD-KEY"));
    // the project's minimum role for pipeline variables
    let (status, _) = send(
        f.s.root(Method::PUT, &format!("/projects/{}", f.pid))
            .form(&[("ci_pipeline_variables_minimum_override_role", "no_one_allowed")]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = f
        .post_form(&[("token", &f.token), ("ref", "main"), ("variables[A]", "1")])
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"base": ["Insufficient permissions to set pipeline variables"]}})
        )
    );
    assert_eq!(f.pipeline_count().await, 0);
    // TRIGGER_PAYLOAD alone is allowed (GitLab MR 204230)
    assert_eq!(f.post_form(&[("token", &f.token), ("ref", "main")]).await.0, 201);
}

#[tokio::test]
async fn the_owners_rights_decide() {
    let f = fixture().await;
    let (uid, pat) = f.s.user("dev").await;
    f.s.add_member(f.pid, uid, 40).await;
    let (_, token) = f.s.trigger_token(&pat, f.pid).await;
    let (status, p) = f.post_form(&[("token", &token), ("ref", "main")]).await;
    assert_eq!(status, 201);
    assert_eq!(p["user"]["username"], "dev", "pipelines run as the token's owner");
    // demoted to Developer: still allowed to run pipelines
    let set_level = |level: &'static str| {
        f.s.root(Method::PUT, &format!("/projects/{}/members/{uid}", f.pid))
            .form(&[("access_level", level)])
    };
    assert_eq!(send(set_level("30")).await.0, 200);
    assert_eq!(f.post_form(&[("token", &token), ("ref", "main")]).await.0, 201);
    // Reporter: may see the project but not run pipelines
    assert_eq!(send(set_level("20")).await.0, 200);
    assert_eq!(
        f.post_form(&[("token", &token), ("ref", "main")]).await,
        (
            400,
            json!({"message": {"base": ["Insufficient permissions to create a new pipeline"]}})
        )
    );
    // removed from the private project: the project's existence does not leak
    assert_eq!(
        send(f.s.root(Method::DELETE, &format!("/projects/{}/members/{uid}", f.pid)))
            .await
            .0,
        204
    );
    assert_eq!(f.post_form(&[("token", &token), ("ref", "main")]).await.0, 404);
    // blocked owner
    f.s.add_member(f.pid, uid, 40).await;
    assert_eq!(f.post_form(&[("token", &token), ("ref", "main")]).await.0, 201);
    assert_eq!(
        send(f.s.root(Method::POST, &format!("/users/{uid}/block"))).await.0,
        201
    );
    assert_eq!(f.post_form(&[("token", &token), ("ref", "main")]).await.0, 404);
}

#[tokio::test]
async fn last_used_follows_the_newest_pipeline() {
    let f = fixture().await;
    let (status, t) = send(f.s.root(Method::GET, &format!("/projects/{}/triggers", f.pid))).await;
    assert_eq!(status, 200);
    assert_eq!(t[0]["last_used"], Value::Null);
    let (_, p) = f.post_form(&[("token", &f.token), ("ref", "main")]).await;
    let (_, t) = send(f.s.root(Method::GET, &format!("/projects/{}/triggers", f.pid))).await;
    assert_eq!(t[0]["last_used"], p["created_at"]);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(&dir.path().join("data"), &["--max-body-bytes", "2048"]);
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(crate::support::ROOT_TOKEN, pid).await;
    let big = "x".repeat(4096);
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let (status, _) = send(s.http.post(&url).form(&[
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[BIG]", big.as_str()),
    ]))
    .await;
    assert_eq!(status, 413);
    let (status, _) = send(s.http.post(&url).form(&[("token", token.as_str()), ("ref", "main")])).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn remote_mirrors_are_fetched_before_the_ref_is_resolved() {
    let repo = Repo::new();
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("origin.git");
    git(
        root.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &repo.path().display().to_string(),
            &bare.display().to_string(),
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // git-daemon itself (not `git daemon`, whose child would outlive the kill below).
    let exec_path = std::process::Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_string();
    let daemon = std::process::Command::new(format!("{exec_path}/git-daemon"))
        .args([
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", root.path().display()),
        ])
        .arg(root.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = crate::support::KillOnDrop(daemon);
    // wait until the daemon answers
    let url = format!("git://127.0.0.1:{port}/origin.git");
    for _ in 0..100 {
        if std::process::Command::new("git")
            .args(["ls-remote", &url])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = Server::start_with(&["--concurrent", "0", "--allow-local-requests"]);
    let (status, p) = send(
        s.root(Method::POST, "/projects")
            .form(&[("name", "mirror"), ("import_url", &url)]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].as_u64().unwrap();
    assert_eq!(p["default_branch"], "main");
    let (_, token) = s.trigger_token(crate::support::ROOT_TOKEN, pid).await;
    let trigger = || {
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")])
    };
    let (status, p) = send(trigger()).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["sha"], repo.sha("main"));
    // push a new commit to the origin; the next trigger sees it
    let new_sha = repo.commit("pushed.txt");
    git(repo.path(), &["push", "-q", &bare.display().to_string(), "main"]);
    let (status, p) = send(trigger()).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["sha"], new_sha);
}
