//! The role matrix: every management endpoint against every kind of caller on a private
//! project, with the expected status of each cell kept as data in `MATRIX` below.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;

/// Callers, in column order.
const CALLERS: [&str; 8] = [
    "anon",
    "outsider",
    "guest",
    "reporter",
    "developer",
    "maintainer",
    "owner",
    "admin",
];

/// `METHOD path: statuses per caller`. `{p}` is the private project; `{t}` a standing trigger
/// owned by root, `{t*}` a fresh one per cell; `{pl}` a standing pipeline, `{pl*}` a fresh one.
const MATRIX: &str = "
GET    /projects/{p}                          404 404 200 200 200 200 200 200
PUT    /projects/{p}                          401 404 403 403 403 200 200 200
GET    /projects/{p}/members                  404 404 200 200 200 200 200 200
GET    /projects/{p}/triggers                 401 404 403 403 403 200 200 200
POST   /projects/{p}/triggers                 401 404 403 403 403 201 201 201
GET    /projects/{p}/triggers/{t}             401 404 403 403 403 200 200 200
PUT    /projects/{p}/triggers/{t}             401 404 403 403 403 403 403 200
DELETE /projects/{p}/triggers/{t*}            401 404 403 403 403 204 204 204
GET    /projects/{p}/pipelines                404 404 200 200 200 200 200 200
GET    /projects/{p}/pipelines/{pl}           404 404 200 200 200 200 200 200
GET    /projects/{p}/pipelines/{pl}/variables 404 404 403 403 200 200 200 200
DELETE /projects/{p}/pipelines/{pl*}          401 404 403 403 403 403 204 204
GET    /projects/{p}/variables                401 404 403 403 403 200 200 200
GET    /projects/{p}/jobs                     404 404 200 200 200 200 200 200
POST   /projects/{p}/pipeline                 401 404 403 403 400 400 400 400
GET    /user                                  401 200 200 200 200 200 200 200
GET    /users                                 401 200 200 200 200 200 200 200
GET    /groups                                200 200 200 200 200 200 200 200
";

#[tokio::test]
async fn every_endpoint_against_every_caller() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("private", repo.path()).await;
    let mut tokens = vec![None, Some(s.user("outsider").await.1)];
    for (name, level) in [
        ("guest", 10),
        ("reporter", 20),
        ("developer", 30),
        ("maintainer", 40),
        ("owner", 50),
    ] {
        let (id, token) = s.user(name).await;
        s.add_member(pid, id, level).await;
        tokens.push(Some(token));
    }
    tokens.push(Some(ROOT_TOKEN.to_string()));
    let (standing_trigger, trigger_token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let new_pipeline = || async {
        let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
        let (status, p) = send(
            s.http
                .post(url)
                .form(&[("token", trigger_token.as_str()), ("ref", "main")]),
        )
        .await;
        assert_eq!(status, 201);
        p["id"].as_u64().unwrap()
    };
    let standing_pipeline = new_pipeline().await;
    let mut failures = Vec::new();
    for row in MATRIX.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let (method, template, expected) = (cols[0], cols[1], &cols[2..]);
        assert_eq!(expected.len(), CALLERS.len(), "row {row}");
        for (i, caller) in CALLERS.iter().enumerate() {
            let mut path = template.replace("{p}", &pid.to_string());
            path = path
                .replace("{t}", &standing_trigger.to_string())
                .replace("{pl}", &standing_pipeline.to_string());
            if path.contains("{t*}") {
                path = path.replace("{t*}", &s.trigger_token(ROOT_TOKEN, pid).await.0.to_string());
            }
            if path.contains("{pl*}") {
                path = path.replace("{pl*}", &new_pipeline().await.to_string());
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let req = match &tokens[i] {
                Some(token) => s.as_token(token, method.clone(), &path),
                None => s.anon(method.clone(), &path),
            };
            let req = if method == Method::POST || method == Method::PUT {
                req.form(&[("description", "x")])
            } else {
                req
            };
            let (status, body) = send(req).await;
            if status.to_string() != expected[i] {
                failures.push(format!(
                    "{method} {template} as {caller}: expected {}, got {status} {body}",
                    expected[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "role matrix deviations:\n{}", failures.join("\n"));
}
