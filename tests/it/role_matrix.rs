//! The role matrix: every management endpoint against every kind of caller on a private
//! project, with the expected status of each cell kept as data in `MATRIX` below.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;

/// Callers, in column order: anonymous, a user who is no member, each role, an administrator,
/// then credentials that must not work (a blocked member's token, an expired and a revoked
/// token of a Maintainer), a Maintainer's `read_api` token, a running and a finished job's
/// `CI_JOB_TOKEN` (sent as `JOB-TOKEN`), and a trigger token used as a personal token.
const CALLERS: [&str; 15] = [
    "anon",
    "outsider",
    "guest",
    "reporter",
    "developer",
    "maintainer",
    "owner",
    "admin",
    "blocked",
    "expired",
    "revoked",
    "read_api",
    "job_running",
    "job_finished",
    "trigger_as_pat",
];

/// `METHOD path: statuses per caller`. `{p}` is the private project; `{t}` a standing trigger
/// owned by root, `{t*}` a fresh one per cell; `{pl}` a standing pipeline, `{pl*}` a fresh one;
/// `{lpl}`, `{lpl*}` and `{lj*}` the same on `locked`, a branch only Maintainers may push or
/// merge to (GitLab checks pipeline changes against the ref);
/// `{j}` the standing pipeline's (pending) job, `{j*}` a fresh pipeline's job; `KEPT` a
/// standing project variable.
const MATRIX: &str = "
GET    /projects/{p}                          404 404 200 200 200 200 200 200 401 401 401 200 401 401 401
PUT    /projects/{p}                          401 404 403 403 403 200 200 200 401 401 401 403 401 401 401
GET    /projects/{p}/members                  404 404 200 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/triggers                 401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/triggers                 401 404 403 403 403 201 201 201 401 401 401 403 401 401 401
GET    /projects/{p}/triggers/{t}             401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
PUT    /projects/{p}/triggers/{t}             401 404 403 403 403 403 403 200 401 401 401 403 401 401 401
DELETE /projects/{p}/triggers/{t*}            401 404 403 403 403 204 204 204 401 401 401 403 401 401 401
GET    /projects/{p}/pipelines                404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
GET    /projects/{p}/pipelines/{pl}           404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
GET    /projects/{p}/pipelines/latest         404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
GET    /projects/{p}/repository/tree          404 404 403 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/repository/branches      404 404 403 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/repository/commits       404 404 403 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/pipelines/{pl}/variables 404 404 403 403 403 200 200 200 401 401 401 200 200 401 401
GET    /projects/{p}/pipelines/{lpl}/variables 404 404 403 403 403 200 200 200 401 401 401 200 200 401 401
POST   /projects/{p}/pipelines/{lpl*}/cancel  401 404 403 403 403 201 201 201 401 401 401 403 401 401 401
POST   /projects/{p}/pipelines/{lpl*}/retry   401 404 403 403 403 201 201 201 401 401 401 403 401 401 401
POST   /projects/{p}/jobs/{lj*}/cancel        401 404 403 403 403 201 201 201 401 401 401 403 401 401 401
PUT    /projects/{p}?visibility=private       401 404 403 403 403 403 200 200 401 401 401 403 401 401 401
GET    /projects/{p}/pipelines/{pl}/bridges   404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
POST   /projects/{p}/pipelines/{pl*}/cancel   401 404 403 403 201 201 201 201 401 401 401 403 401 401 401
DELETE /projects/{p}/pipelines/{pl*}          401 404 403 403 403 403 204 204 401 401 401 403 401 401 401
GET    /projects/{p}/variables                401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/jobs                     404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
GET    /projects/{p}/job_token_scope/allowlist 401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/pipeline                 401 404 403 403 400 400 400 400 401 401 401 403 401 401 401
GET    /projects/{p}/jobs/{j}                 404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
GET    /projects/{p}/jobs/{j}/trace           404 404 200 200 200 200 200 200 401 401 401 200 200 401 401
POST   /projects/{p}/jobs/{j*}/cancel         401 404 403 403 201 201 201 201 401 401 401 403 401 401 401
POST   /projects/{p}/jobs/{j}/play            401 404 403 403 400 400 400 400 401 401 401 403 401 401 401
POST   /projects/{p}/pipelines/{pl*}/retry    401 404 403 403 201 201 201 201 401 401 401 403 401 401 401
GET    /projects/{p}/variables/KEPT           401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/variables                401 404 403 403 403 400 400 400 401 401 401 403 401 401 401
POST   /projects/{p}/ci/lint                  401 404 403 403 200 200 200 200 401 401 401 403 401 401 401
GET    /projects/{p}/job_token_scope          401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
GET    /projects                              200 200 200 200 200 200 200 200 401 401 401 200 401 401 401
GET    /job                                   401 401 401 401 401 401 401 401 401 401 401 401 200 401 401
POST   /admin/backup                          401 403 403 403 403 403 403 200 401 401 401 403 401 401 401
GET    /user                                  401 200 200 200 200 200 200 200 401 401 401 200 401 401 401
GET    /users                                 401 200 200 200 200 200 200 200 401 401 401 200 401 401 401
GET    /groups                                200 200 200 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/jobs/{j}/artifacts       404 404 404 404 404 404 404 404 401 401 401 404 404 401 401
GET    /runners/all                           401 403 403 403 403 403 403 200 401 401 401 403 401 401 401
GET    /runners                               401 200 200 200 200 200 200 200 401 401 401 200 401 401 401
POST   /user/runners                          401 403 403 403 403 403 403 400 401 401 401 403 401 401 401
GET    /projects/{p}/hooks                    401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/hooks                    401 404 403 403 403 400 400 400 401 401 401 403 401 401 401
GET    /projects/{p}/protected_branches       401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/protected_branches       401 404 403 403 403 400 400 400 401 401 401 403 401 401 401
POST   /projects/{p}/mirror/pull              401 404 403 403 403 200 200 200 401 401 401 403 401 401 401
GET    /projects/{p}/integrations/github      401 404 403 403 403 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/repository/commits/main/statuses 401 404 403 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/repository/commits/main/refs 404 404 403 200 200 200 200 200 401 401 401 200 401 401 401
GET    /projects/{p}/repository/compare?from=main&to=main 404 404 403 200 200 200 200 200 401 401 401 200 401 401 401
PATCH  /projects/{p}/job_token_scope          401 404 403 403 403 400 400 400 401 401 401 403 401 401 401
GET    /projects/{p}/badges                   404 404 200 200 200 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/badges                   401 404 403 403 403 400 400 400 401 401 401 403 401 401 401
POST   /projects/{p}/triggers/{t}/rotate      401 404 403 403 403 403 403 200 401 401 401 403 401 401 401
GET    /projects/{p}/repository/archive.zip   404 404 403 200 200 200 200 200 401 401 401 200 401 401 401
POST   /projects/{p}/jobs/{j}/erase           401 404 403 403 403 403 403 403 401 401 401 403 401 401 401
POST   /projects/{p}/hooks/999/test/push_events 401 404 403 403 403 404 404 404 401 401 401 403 401 401 401
GET    /projects/{p}/hooks/999/events         401 404 403 403 403 404 404 404 401 401 401 404 401 401 401
";

/// How a caller presents its credential.
enum Credential {
    Anonymous,
    Private(String),
    Job(String),
}

/// The job script: hands its token to the test's mailbox, and holds until told when `HOLD`.
const CONFIG: &str = "job:\n  script:\n    - curl -sf -X POST --data-binary \"$CI_JOB_TOKEN\" \"$MAILBOX/put/$NAME\"\n    - while [ \"$HOLD\" = yes ] && ! curl -sf \"$MAILBOX/get/release\" > /dev/null; do sleep 0.05; done\n";

/// The first job of a pipeline.
async fn job_of(s: &Server, pid: u64, pipeline: u64) -> u64 {
    let path = format!("/projects/{pid}/pipelines/{pipeline}/jobs");
    send(s.root(Method::GET, &path)).await.1[0]["id"].as_u64().unwrap()
}

#[tokio::test]
async fn every_endpoint_against_every_caller() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let mailbox = crate::support::Mailbox::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let ok = std::process::Command::new("git")
        .args(["branch", "locked"])
        .current_dir(repo.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let pid = s.project("private", repo.path()).await;
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{pid}/protected_branches"))
            .form(&[
                ("name", "locked"),
                ("push_access_level", "40"),
                ("merge_access_level", "40"),
            ]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut tokens = vec![Credential::Anonymous, Credential::Private(s.user("outsider").await.1)];
    for (name, level) in [
        ("guest", 10),
        ("reporter", 20),
        ("developer", 30),
        ("maintainer", 40),
        ("owner", 50),
    ] {
        let (id, token) = s.user(name).await;
        s.add_member(pid, id, level).await;
        tokens.push(Credential::Private(token));
    }
    tokens.push(Credential::Private(ROOT_TOKEN.to_string()));
    // A blocked Developer.
    let (blocked_id, blocked) = s.user("blocked").await;
    s.add_member(pid, blocked_id, 30).await;
    assert_eq!(
        send(s.root(Method::POST, &format!("/users/{blocked_id}/block")))
            .await
            .0,
        201
    );
    tokens.push(Credential::Private(blocked));
    // Maintainers' expired, revoked and read_api tokens.
    let (m2, _) = s.user("maint2").await;
    s.add_member(pid, m2, 40).await;
    let pat = |scope: &'static str, expires: Option<String>| {
        let mut form = vec![("name", "t".to_string()), ("scopes[]", scope.to_string())];
        if let Some(e) = expires {
            form.push(("expires_at", e));
        }
        send(
            s.root(Method::POST, &format!("/users/{m2}/personal_access_tokens"))
                .form(&form),
        )
    };
    let (status, expired) = pat("api", Some(crate::support::iso_date_in_days(0))).await;
    assert_eq!(status, 201, "{expired}");
    tokens.push(Credential::Private(expired["token"].as_str().unwrap().to_string()));
    let (_, revoked) = pat("api", None).await;
    assert_eq!(
        send(s.root(Method::DELETE, &format!("/personal_access_tokens/{}", revoked["id"])))
            .await
            .0,
        204
    );
    tokens.push(Credential::Private(revoked["token"].as_str().unwrap().to_string()));
    let (_, read_api) = pat("read_api", None).await;
    tokens.push(Credential::Private(read_api["token"].as_str().unwrap().to_string()));
    // A finished and a running job's tokens (the running one holds the only executor slot, so
    // the pipelines made below stay pending).
    let (standing_trigger, trigger_token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let dir = mailbox.url.clone();
    for (name, hold) in [("done", "no"), ("running", "yes")] {
        let form = [
            ("token", trigger_token.as_str()),
            ("ref", "main"),
            ("variables[MAILBOX]", dir.as_str()),
            ("variables[NAME]", name),
            ("variables[HOLD]", hold),
        ];
        assert_eq!(send(s.http.post(&url).form(&form)).await.0, 201);
        let token = mailbox.wait(name).await;
        if name == "done" {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        tokens.push(Credential::Job(token));
    }
    let job_tokens: Vec<Credential> = tokens.drain(tokens.len() - 2..).collect();
    let mut job_tokens = job_tokens.into_iter();
    let finished = job_tokens.next().unwrap();
    let running = job_tokens.next().unwrap();
    tokens.push(running);
    tokens.push(finished);
    tokens.push(Credential::Private(trigger_token.clone()));
    assert_eq!(tokens.len(), CALLERS.len());
    let pipeline_on = |git_ref: &'static str| {
        let (s, trigger_token) = (&s, trigger_token.clone());
        async move {
            let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
            let (status, p) = send(
                s.http
                    .post(url)
                    .form(&[("token", trigger_token.as_str()), ("ref", git_ref)]),
            )
            .await;
            assert_eq!(status, 201, "{p}");
            p["id"].as_u64().unwrap()
        }
    };
    let new_pipeline = || pipeline_on("main");
    let standing_pipeline = new_pipeline().await;
    let locked_pipeline = pipeline_on("locked").await;
    let standing_job = job_of(&s, pid, standing_pipeline).await;
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{pid}/variables"))
            .form(&[("key", "KEPT"), ("value", "v")]),
    )
    .await;
    assert_eq!(status, 201);
    let mut failures = Vec::new();
    for row in MATRIX.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let (method, template, expected) = (cols[0], cols[1], &cols[2..]);
        assert_eq!(expected.len(), CALLERS.len(), "row {row}");
        for (i, caller) in CALLERS.iter().enumerate() {
            let mut path = template.replace("{p}", &pid.to_string());
            path = path
                .replace("{t}", &standing_trigger.to_string())
                .replace("{pl}", &standing_pipeline.to_string())
                .replace("{lpl}", &locked_pipeline.to_string());
            if path.contains("{lpl*}") {
                path = path.replace("{lpl*}", &pipeline_on("locked").await.to_string());
            }
            if path.contains("{lj*}") {
                let job = job_of(&s, pid, pipeline_on("locked").await).await;
                path = path.replace("{lj*}", &job.to_string());
            }
            if path.contains("{t*}") {
                path = path.replace("{t*}", &s.trigger_token(ROOT_TOKEN, pid).await.0.to_string());
            }
            if path.contains("{pl*}") {
                path = path.replace("{pl*}", &new_pipeline().await.to_string());
            }
            path = path.replace("{j}", &standing_job.to_string());
            if path.contains("{j*}") {
                let job = job_of(&s, pid, new_pipeline().await).await;
                path = path.replace("{j*}", &job.to_string());
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let req = match &tokens[i] {
                Credential::Private(token) => s.as_token(token, method.clone(), &path),
                Credential::Job(token) => s.anon(method.clone(), &path).header("JOB-TOKEN", token),
                Credential::Anonymous => s.anon(method.clone(), &path),
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
    mailbox.put("release", "1");
    eprintln!(
        "role matrix: {} cells",
        MATRIX.lines().filter(|l| !l.trim().is_empty()).count() * CALLERS.len()
    );
    assert!(failures.is_empty(), "role matrix deviations:\n{}", failures.join("\n"));
}
