//! Trigger token management (spec sections 2 and 3.2-3.6): roles, token visibility, expiry
//! limits, the odd `404 Not found`, and `If-Unmodified-Since`.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;
use serde_json::{Value, json};

struct Team {
    s: Server,
    _repo: Repo,
    pid: u64,
    /// (user id, token) for Guest, Reporter, Developer, Maintainer, Owner, and a non-member.
    guest: (u64, String),
    reporter: (u64, String),
    developer: (u64, String),
    maintainer: (u64, String),
    maintainer2: (u64, String),
    owner: (u64, String),
    outsider: (u64, String),
}

async fn team() -> Team {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let mut members = Vec::new();
    for (name, level) in [
        ("guest", 10),
        ("reporter", 20),
        ("developer", 30),
        ("maintainer", 40),
        ("maintainer2", 40),
        ("owner", 50),
    ] {
        let u = s.user(name).await;
        s.add_member(pid, u.0, level).await;
        members.push(u);
    }
    let outsider = s.user("outsider").await;
    let mut m = members.into_iter();
    let mut next = || m.next().unwrap();
    Team {
        guest: next(),
        reporter: next(),
        developer: next(),
        maintainer: next(),
        maintainer2: next(),
        owner: next(),
        outsider,
        s,
        _repo: repo,
        pid,
    }
}

impl Team {
    fn triggers(&self, token: &str, method: Method, suffix: &str) -> reqwest::RequestBuilder {
        self.s
            .as_token(token, method, &format!("/projects/{}/triggers{suffix}", self.pid))
    }
}

#[tokio::test]
async fn role_matrix_for_every_trigger_endpoint() {
    let t = team().await;
    let (tid, _) = t.s.trigger_token(&t.maintainer.1, t.pid).await;
    let forbidden = json!({"message": "403 Forbidden"});
    let project_not_found = json!({"message": "404 Project Not Found"});
    for (who, token) in [
        ("guest", &t.guest.1),
        ("reporter", &t.reporter.1),
        ("developer", &t.developer.1),
    ] {
        assert_eq!(
            send(t.triggers(token, Method::GET, "")).await,
            (403, forbidden.clone()),
            "{who} list"
        );
        assert_eq!(
            send(t.triggers(token, Method::GET, &format!("/{tid}"))).await,
            (403, forbidden.clone()),
            "{who} get"
        );
        assert_eq!(
            send(t.triggers(token, Method::POST, "").form(&[("description", "x")])).await,
            (403, forbidden.clone()),
            "{who} create"
        );
        assert_eq!(
            send(t.triggers(token, Method::DELETE, &format!("/{tid}"))).await,
            (403, forbidden.clone()),
            "{who} delete"
        );
    }
    // a non-member of a private project learns nothing
    let outsider = &t.outsider.1;
    assert_eq!(
        send(t.triggers(outsider, Method::GET, "")).await,
        (404, project_not_found.clone())
    );
    assert_eq!(
        send(t.triggers(outsider, Method::POST, "").form(&[("description", "x")])).await,
        (404, project_not_found.clone())
    );
    // anonymous
    let unauthorized = json!({"message": "401 Unauthorized"});
    let anon = t.s.anon(Method::GET, &format!("/projects/{}/triggers", t.pid));
    assert_eq!(send(anon).await, (401, unauthorized.clone()));
    let anon =
        t.s.anon(Method::POST, &format!("/projects/{}/triggers", t.pid))
            .form(&[("description", "x")]);
    assert_eq!(send(anon).await, (401, unauthorized.clone()));
    // an invalid personal access token is a 401 as well
    assert_eq!(
        send(t.triggers("glpat-nope", Method::GET, "")).await,
        (401, unauthorized)
    );
    // Maintainer and Owner may list, create and revoke any token
    for token in [&t.maintainer2.1, &t.owner.1, &ROOT_TOKEN.to_string()] {
        assert_eq!(send(t.triggers(token, Method::GET, "")).await.0, 200);
        assert_eq!(send(t.triggers(token, Method::GET, &format!("/{tid}"))).await.0, 200);
    }
    assert_eq!(
        send(t.triggers(&t.owner.1, Method::DELETE, &format!("/{tid}"))).await.0,
        204
    );
    assert_eq!(
        send(t.triggers(&t.owner.1, Method::GET, &format!("/{tid}"))).await,
        (404, json!({"message": "404 Not found"}))
    );
}

#[tokio::test]
async fn only_the_owner_sees_the_full_token_and_may_update_it() {
    let t = team().await;
    let (tid, secret) = t.s.trigger_token(&t.maintainer.1, t.pid).await;
    assert!(secret.starts_with("glptt-") && secret.len() == 46, "{secret}");
    let short = &secret[6..10];
    let (status, own) = send(t.triggers(&t.maintainer.1, Method::GET, &format!("/{tid}"))).await;
    assert_eq!(status, 200);
    assert_eq!(own["token"], secret.as_str());
    assert_eq!(own["owner"]["username"], "maintainer");
    assert_eq!(own["description"], "ci");
    let (_, list) = send(t.triggers(&t.maintainer2.1, Method::GET, "")).await;
    assert_eq!(list[0]["token"], short);
    let (_, other) = send(t.triggers(ROOT_TOKEN, Method::GET, &format!("/{tid}"))).await;
    assert_eq!(other["token"], short);
    // update: owner only, while Maintainer+
    let update = |token: &str| {
        t.triggers(token, Method::PUT, &format!("/{tid}"))
            .form(&[("description", "renamed")])
    };
    let denied =
        json!({"message": "403 Forbidden - The current user is not authorized to update the pipeline trigger token"});
    assert_eq!(send(update(&t.maintainer2.1)).await, (403, denied.clone()));
    assert_eq!(send(update(&t.developer.1)).await, (403, denied.clone()));
    let (status, updated) = send(update(&t.maintainer.1)).await;
    assert_eq!(status, 200);
    assert_eq!(updated["description"], "renamed");
    assert_eq!(updated["token"], secret.as_str());
    // demoted to Developer: no update, no full token, and no listing at all
    let (status, _) = send(
        t.s.root(Method::PUT, &format!("/projects/{}/members/{}", t.pid, t.maintainer.0))
            .form(&[("access_level", "30")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(send(update(&t.maintainer.1)).await, (403, denied));
    assert_eq!(send(t.triggers(&t.maintainer.1, Method::GET, "")).await.0, 403);
    // unknown ids: GitLab's lower-case "Not found"; non-integers: Grape's error
    assert_eq!(
        send(t.triggers(ROOT_TOKEN, Method::GET, "/-5")).await,
        (404, json!({"message": "404 Not found"}))
    );
    assert_eq!(
        send(
            t.triggers(ROOT_TOKEN, Method::PUT, "/999")
                .form(&[("description", "x")])
        )
        .await,
        (404, json!({"message": "404 Not found"}))
    );
    assert_eq!(
        send(t.triggers(ROOT_TOKEN, Method::DELETE, "/999")).await,
        (404, json!({"message": "404 Not found"}))
    );
    assert_eq!(
        send(t.triggers(ROOT_TOKEN, Method::GET, &format!("/{secret}"))).await,
        (400, json!({"error": "trigger_id is invalid"}))
    );
}

#[tokio::test]
async fn create_validates_description_and_expiry() {
    let t = team().await;
    let (status, body) = send(t.triggers(ROOT_TOKEN, Method::POST, "")).await;
    assert_eq!((status, body), (400, json!({"error": "description is missing"})));
    for bad in ["abc", "01/01/2050", "25/26/27", "2308"] {
        let (status, body) = send(
            t.triggers(ROOT_TOKEN, Method::POST, "")
                .form(&[("description", "x"), ("expires_at", bad)]),
        )
        .await;
        assert_eq!(
            (status, body),
            (400, json!({"error": "expires_at is invalid"})),
            "{bad}"
        );
    }
    let (status, body) = send(
        t.triggers(ROOT_TOKEN, Method::POST, "")
            .form(&[("description", "x"), ("expires_at", "2099-01-01")]),
    )
    .await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("400 Bad request - {\"expires_at\":[\"must be before "),
        "{message}"
    );
    let (status, list) = send(t.triggers(ROOT_TOKEN, Method::GET, "")).await;
    assert_eq!((status, list), (200, json!([])));
    // an empty description is allowed; a JSON body works as python-gitlab sends it
    let (status, body) = send(
        t.triggers(ROOT_TOKEN, Method::POST, "")
            .json(&json!({"description": ""})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["last_used"], Value::Null);
    assert_eq!(body["expires_at"], Value::Null);
    let soon = crate::support::iso_date_in_days(30);
    let (status, body) = send(
        t.triggers(ROOT_TOKEN, Method::POST, "")
            .form(&[("description", "x"), ("expires_at", soon.as_str())]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["expires_at"].as_str().unwrap().starts_with(&soon));
}

#[tokio::test]
async fn delete_honours_if_unmodified_since() {
    let t = team().await;
    let (tid, _) = t.s.trigger_token(ROOT_TOKEN, t.pid).await;
    let (status, body) = send(
        t.triggers(ROOT_TOKEN, Method::DELETE, &format!("/{tid}"))
            .header("If-Unmodified-Since", "Thu, 01 Jan 2015 00:00:00 GMT"),
    )
    .await;
    assert_eq!((status, body), (412, json!({"message": "412 Precondition Failed"})));
    assert_eq!(
        send(t.triggers(ROOT_TOKEN, Method::GET, &format!("/{tid}"))).await.0,
        200
    );
    let (status, _) = send(
        t.triggers(ROOT_TOKEN, Method::DELETE, &format!("/{tid}"))
            .header("If-Unmodified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
    )
    .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn lists_are_paginated_like_gitlab() {
    let t = team().await;
    for _ in 0..3 {
        t.s.trigger_token(ROOT_TOKEN, t.pid).await;
    }
    let resp = crate::support::send_raw(t.triggers(ROOT_TOKEN, Method::GET, "?per_page=2&page=1")).await;
    assert_eq!(resp.status(), 200);
    let h = |k: &str| {
        resp.headers()
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("missing {k}"))
    };
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(
        (h("x-page"), h("x-per-page"), h("x-total"), h("x-total-pages")),
        ("1".into(), "2".into(), "3".into(), "2".into())
    );
    assert_eq!((h("x-next-page"), h("x-prev-page")), ("2".into(), "".into()));
    let link = h("link");
    assert!(
        link.contains(&format!(
            "<{}/api/v4/projects/{}/triggers?page=2&per_page=2>; rel=\"next\"",
            t.s.base, t.pid
        )),
        "{link}"
    );
    assert!(
        link.contains("rel=\"first\"") && link.contains("rel=\"last\""),
        "{link}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn scoped_tokens_run_only_their_refs_and_keys_and_rotate_in_one_step() {
    let s = Server::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    crate::support::git(repo.path(), &["branch", "release/1.0"]);
    crate::support::git(repo.path(), &["branch", "feature/x"]);
    crate::support::git(repo.path(), &["tag", "v1.2"]);
    let pid = s.project("scoped", repo.path()).await;
    let base = format!("/projects/{pid}/triggers");
    let (status, t) = send(s.root(Method::POST, &base).json(&json!({
        "description": "deploys",
        "ref_patterns": ["main", "release/*", "v*"],
        "allowed_variables": ["DEPLOY_ENV"],
    })))
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["ref_patterns"], json!(["main", "release/*", "v*"]));
    assert_eq!(t["allowed_variables"], json!(["DEPLOY_ENV"]));
    let token = t["token"].as_str().unwrap().to_string();
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let fire = |token: &str, r: &str, vars: &[(&str, &str)]| {
        let mut form = vec![("token".to_string(), token.to_string()), ("ref".into(), r.to_string())];
        form.extend(vars.iter().map(|(k, v)| (format!("variables[{k}]"), v.to_string())));
        send(s.http.post(&url).form(&form))
    };
    let count = || async {
        let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?per_page=100"))).await;
        list.as_array().map_or(0, Vec::len)
    };
    for r in ["main", "release/1.0", "refs/tags/v1.2"] {
        assert_eq!(fire(&token, r, &[("DEPLOY_ENV", "prod")]).await.0, 201, "{r}");
    }
    assert_eq!(count().await, 3);
    assert_eq!(
        fire(&token, "feature/x", &[]).await,
        (
            400,
            json!({"message": {"base": ["Ref 'feature/x' is not allowed for this trigger token"]}})
        )
    );
    assert_eq!(
        fire(&token, "main", &[("DEPLOY_ENV", "prod"), ("EVIL", "1")]).await,
        (
            400,
            json!({"message": {"base": ["Variable 'EVIL' is not allowed for this trigger token"]}})
        )
    );
    let webhook = s.api(&format!("/projects/{pid}/ref/main/trigger/pipeline?token={token}"));
    let (status, _) = send(s.http.post(&webhook).json(&json!({"object_kind": "push"}))).await;
    assert_eq!(status, 201, "TRIGGER_PAYLOAD is spur's, not a caller's variable");
    assert_eq!(count().await, 4, "refusals changed nothing");

    // Bad limits are refused; the owner may lift them.
    let id = t["id"].as_u64().unwrap();
    let (status, _) = send(
        s.root(Method::PUT, &format!("{base}/{id}"))
            .json(&json!({"allowed_variables": ["no-dash"]})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        s.root(Method::POST, &base)
            .json(&json!({"description": "x", "ref_patterns": ["bad..ref"]})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, lifted) = send(
        s.root(Method::PUT, &format!("{base}/{id}"))
            .json(&json!({"ref_patterns": [], "allowed_variables": "*"})),
    )
    .await;
    assert_eq!(status, 200, "{lifted}");
    assert_eq!(
        (lifted["ref_patterns"].clone(), lifted["allowed_variables"].clone()),
        (json!([]), json!(null))
    );
    assert_eq!(lifted["description"], "deploys", "a PUT without description keeps it");
    assert_eq!(fire(&token, "feature/x", &[("ANY", "1")]).await.0, 201);

    // Rotation: a new token at once, the old one dead in the same step; only the owner may.
    let (mia, mia_token) = s.user("mia").await;
    s.add_member(pid, mia, 40).await;
    let rotate = format!("{base}/{id}/rotate");
    assert_eq!(send(s.as_token(&mia_token, Method::POST, &rotate)).await.0, 403);
    let (status, rotated) = send(s.root(Method::POST, &rotate)).await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["token"].as_str().unwrap().to_string();
    assert!(fresh.starts_with("glptt-") && fresh != token);
    assert_eq!(fire(&token, "main", &[]).await.0, 404, "the old token is gone");
    assert_eq!(fire(&fresh, "main", &[]).await.0, 201);
    // With a grace period the old token works on for a while; a second rotation ends it.
    let (status, _) = send(s.root(Method::POST, &rotate).json(&json!({"grace_period": -1}))).await;
    assert_eq!(status, 400);
    let (status, graced) = send(s.root(Method::POST, &rotate).json(&json!({"grace_period": 3600}))).await;
    assert_eq!(status, 200, "{graced}");
    let newer = graced["token"].as_str().unwrap().to_string();
    assert_eq!(fire(&fresh, "main", &[]).await.0, 201, "within its grace period");
    assert_eq!(fire(&newer, "main", &[]).await.0, 201);
    let (_, again) = send(s.root(Method::POST, &rotate)).await;
    assert_eq!(fire(&fresh, "main", &[]).await.0, 404, "two rotations old");
    assert_eq!(fire(&newer, "main", &[]).await.0, 404, "rotated without grace");
    let fresh = again["token"].as_str().unwrap().to_string();
    assert_eq!(fire(&fresh, "main", &[]).await.0, 201);

    // The settings page shows each token's limits and its last use with the client address.
    let mut b = crate::ui::Browser::new(&s);
    b.sign_in("root", "root-password-123").await;
    let (status, page, _) = b.get("/root/scoped/-/settings/ci_cd").await;
    assert_eq!(status, 200);
    assert!(page.contains("from 127.0.0.1"), "last use and address");
    assert!(page.contains("any ref;"), "{page}");
    let csrf = crate::ui::csrf_of(&page);
    let (status, _, _, _) = b
        .post(
            &format!("/root/scoped/-/triggers/{id}"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("trigger[description]", "deploys"),
                ("trigger[ref_patterns]", "main, v*"),
                ("trigger[allowed_variables]", "DEPLOY_ENV"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let (_, page, _) = b.get("/root/scoped/-/settings/ci_cd").await;
    assert!(page.contains("refs: main, v*;"), "{page}");
    assert_eq!(fire(&fresh, "feature/x", &[]).await.0, 400);
    let (status, _, _, _) = b
        .post(
            &format!("/root/scoped/-/triggers/{id}"),
            &[("authenticity_token", csrf.as_str()), ("_method", "rotate")],
        )
        .await;
    assert_eq!(status, 302);
    assert_eq!(fire(&fresh, "main", &[]).await.0, 404, "rotated from the page");
}
