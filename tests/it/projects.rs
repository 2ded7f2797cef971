//! Users, tokens, groups, projects, members and the pipelines API: shapes, roles and errors.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn version_and_current_user() {
    let s = Server::start();
    let (status, v) = send(s.root(Method::GET, "/version")).await;
    assert_eq!(status, 200);
    assert_eq!(v["version"], "17.11.0");
    assert!(v["revision"].is_string());
    assert_eq!(send(s.anon(Method::GET, "/version")).await.0, 401);
    let (status, me) = send(s.root(Method::GET, "/user")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["username"].as_str(), me["is_admin"].as_bool()),
        (Some("root"), Some(true))
    );
    // every way of presenting a token
    let bearer = s.http.get(s.api("/user")).bearer_auth(ROOT_TOKEN);
    assert_eq!(send(bearer).await.0, 200);
    assert_eq!(
        send(s.http.get(s.api(&format!("/user?private_token={ROOT_TOKEN}"))))
            .await
            .0,
        200
    );
    assert_eq!(
        send(s.anon(Method::GET, "/user")).await,
        (401, json!({"message": "401 Unauthorized"}))
    );
    assert_eq!(
        send(s.anon(Method::GET, "/nope")).await,
        (404, json!({"error": "404 Not Found"}))
    );
    // credentials given through the environment are never written down
    use std::os::unix::fs::PermissionsExt;
    assert!(!s.data_dir.join("initial_root_credentials").exists());
    assert_eq!(
        std::fs::metadata(s.data_dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        !s.log_text().contains(ROOT_TOKEN),
        "the root token must never be logged"
    );
}

#[tokio::test]
async fn users_and_personal_access_tokens() {
    let s = Server::start();
    let (uid, pat) = s.user("alice").await;
    assert!(pat.starts_with("glpat-"));
    // only admins create users and tokens
    let (status, _) =
        send(
            s.as_token(&pat, Method::POST, "/users")
                .form(&[("username", "x"), ("name", "x"), ("email", "x@x.io")]),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = send(s.root(Method::POST, "/users").form(&[("name", "x")])).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "email is missing, username is missing"}))
    );
    let (status, body) = send(s.root(Method::POST, "/users").form(&[
        ("username", "alice"),
        ("name", "x"),
        ("email", "other@x.io"),
        ("password", "password123"),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"message": "Username has already been taken"}))
    );
    let (status, body) = send(s.root(Method::POST, "/users").form(&[
        ("username", "bob"),
        ("name", "x"),
        ("email", "alice@example.com"),
        ("password", "password123"),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"message": "Email has already been taken"}))
    );
    let (status, body) = send(s.root(Method::POST, "/users").form(&[
        ("username", "bob"),
        ("name", "x"),
        ("email", "b@x.io"),
        ("password", "short"),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"password": ["is too short (minimum is 8 characters)"]}})
        )
    );
    // a read_api token may read but not write
    let (status, ro) = send(
        s.root(Method::POST, &format!("/users/{uid}/personal_access_tokens"))
            .json(&json!({"name": "ro", "scopes": ["read_api"]})),
    )
    .await;
    assert_eq!(status, 201, "{ro}");
    let ro_token = ro["token"].as_str().unwrap();
    assert_eq!(send(s.as_token(ro_token, Method::GET, "/user")).await.0, 200);
    let (status, body) = send(
        s.as_token(ro_token, Method::POST, "/groups")
            .form(&[("name", "g"), ("path", "g")]),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");
    let (status, body) = send(
        s.root(Method::POST, &format!("/users/{uid}/personal_access_tokens"))
            .form(&[("name", "x"), ("scopes[]", "sudo")]),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "scopes does not have a valid value"}))
    );
    // revoked and expired tokens
    let (status, _) = send(s.as_token(
        ro_token,
        Method::DELETE,
        &format!("/personal_access_tokens/{}", ro["id"]),
    ))
    .await;
    assert_eq!(status, 403, "a read_api token cannot revoke");
    assert_eq!(
        send(s.as_token(&pat, Method::DELETE, &format!("/personal_access_tokens/{}", ro["id"])))
            .await
            .0,
        204
    );
    let (status, body) = send(s.as_token(ro_token, Method::GET, "/user")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    let (status, old) = send(
        s.root(Method::POST, &format!("/users/{uid}/personal_access_tokens"))
            .form(&[
                ("name", "old"),
                ("scopes[]", "api"),
                ("expires_at", &crate::support::iso_date_in_days(0)),
            ]),
    )
    .await;
    assert_eq!(status, 201, "{old}");
    let (status, body) = send(s.as_token(old["token"].as_str().unwrap(), Method::GET, "/user")).await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"error": "invalid_token", "error_description": "Token has expired."})
        )
    );
    // blocked users cannot authenticate
    assert_eq!(send(s.root(Method::POST, &format!("/users/{uid}/block"))).await.0, 201);
    assert_eq!(send(s.as_token(&pat, Method::GET, "/user")).await.0, 401);
    assert_eq!(
        send(s.root(Method::POST, &format!("/users/{uid}/unblock"))).await.0,
        201
    );
    assert_eq!(send(s.as_token(&pat, Method::GET, "/user")).await.0, 200);
    let (status, list) = send(s.root(Method::GET, "/users?username=alice")).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn projects_groups_and_visibility() {
    let s = Server::start();
    let repo = Repo::new();
    let (alice, alice_pat) = s.user("alice").await;
    let (_, bob_pat) = s.user("bob").await;
    let (status, g) = send(s.as_token(&alice_pat, Method::POST, "/groups").form(&[
        ("name", "Group"),
        ("path", "grp"),
        ("visibility", "public"),
    ]))
    .await;
    assert_eq!(status, 201, "{g}");
    let (status, body) = send(
        s.root(Method::POST, "/groups")
            .form(&[("name", "Again"), ("path", "grp")]),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"message": {"path": ["has already been taken"]}}))
    );
    // Top-level routes are no namespace's path (a group `admin` would hide the Admin area).
    for reserved in ["admin", "API", "users", "-", "help"] {
        let (status, body) = send(
            s.root(Method::POST, "/groups")
                .form(&[("name", "R"), ("path", reserved)]),
        )
        .await;
        assert_eq!(status, 400, "{reserved}: {body}");
    }
    let (status, body) = send(s.root(Method::POST, "/users").form(&[
        ("username", "projects"),
        ("email", "p@example.com"),
        ("name", "P"),
        ("password", "a-long-password"),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"message": {"username": ["projects is a reserved name"]}}))
    );
    // A project may not be more visible than its group.
    let (_, quiet) = send(
        s.as_token(&alice_pat, Method::POST, "/groups")
            .form(&[("name", "Quiet"), ("path", "quiet")]),
    )
    .await;
    let (status, body) = send(s.as_token(&alice_pat, Method::POST, "/projects").form(&[
        ("name", "loud"),
        ("namespace_id", &quiet["id"].to_string()),
        ("visibility", "public"),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"visibility_level": ["public is not allowed in a private group."]}})
        )
    );
    // only admins import a path on the server
    let local = repo.path().display().to_string();
    let (status, body) = send(
        s.as_token(&alice_pat, Method::POST, "/projects")
            .form(&[("name", "p"), ("import_url", local.as_str())]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, p) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "Proj One"),
        ("namespace_id", &g["id"].to_string()),
        ("import_url", &format!("file://{local}")),
    ]))
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["path_with_namespace"], "grp/proj-one");
    assert_eq!(p["visibility"], "private");
    assert_eq!(p["default_branch"], "main");
    assert_eq!(p["web_url"], format!("{}/grp/proj-one", s.base));
    let (status, body) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "Proj One"),
        ("namespace_id", "grp"),
        ("import_url", local.as_str()),
    ]))
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"name": ["has already been taken"], "path": ["has already been taken"]}})
        )
    );
    let (status, body) = send(s.root(Method::POST, "/projects").form(&[("description", "x")])).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "name, path are missing, at least one parameter must be provided"})
        )
    );
    let (status, body) = send(
        s.root(Method::POST, "/projects")
            .form(&[("name", "x"), ("import_url", "/does/not/exist")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // group owner sees it by path; outsiders and anonymous get 404
    let (status, got) = send(s.as_token(&alice_pat, Method::GET, "/projects/grp%2Fproj-one")).await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], p["id"]);
    assert_eq!(got["permissions"]["project_access"], Value::Null);
    assert_eq!(got["permissions"]["group_access"]["access_level"], 50);
    let not_found = json!({"message": "404 Project Not Found"});
    assert_eq!(
        send(s.as_token(&bob_pat, Method::GET, "/projects/grp%2Fproj-one")).await,
        (404, not_found.clone())
    );
    assert_eq!(
        send(s.anon(Method::GET, &format!("/projects/{}", p["id"]))).await,
        (404, not_found.clone())
    );
    assert_eq!(
        send(s.root(Method::GET, "/projects/proj-one")).await,
        (404, not_found.clone())
    );
    // public projects are visible to anyone, internal ones to signed-in users
    let pid = p["id"].as_u64().unwrap();
    for (vis, anon_status, bob_status) in [("internal", 404, 200), ("public", 200, 200)] {
        let (status, _) = send(
            s.as_token(&alice_pat, Method::PUT, &format!("/projects/{pid}"))
                .form(&[("visibility", vis)]),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            send(s.anon(Method::GET, &format!("/projects/{pid}"))).await.0,
            anon_status,
            "{vis}"
        );
        assert_eq!(
            send(s.as_token(&bob_pat, Method::GET, &format!("/projects/{pid}")))
                .await
                .0,
            bob_status,
            "{vis}"
        );
    }
    let (status, list) = send(s.anon(Method::GET, "/projects")).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, body) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .form(&[("ci_pipeline_variables_minimum_override_role", "everyone")]),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "ci_pipeline_variables_minimum_override_role does not have a valid value"})
        )
    );
    // members: Maintainers manage, only Owners touch Owners; deletion needs Owner
    let (bob, _) = (s.user("carol").await.0, ());
    let add = |token: &str, level: &str| {
        s.as_token(token, Method::POST, &format!("/projects/{pid}/members"))
            .form(&[("user_id", bob.to_string()), ("access_level", level.to_string())])
    };
    assert_eq!(send(add(&bob_pat, "30")).await.0, 403);
    assert_eq!(
        send(add(&alice_pat, "31")).await,
        (400, json!({"error": "access_level does not have a valid value"}))
    );
    assert_eq!(send(add(&alice_pat, "40")).await.0, 201);
    assert_eq!(
        send(add(&alice_pat, "40")).await,
        (409, json!({"message": "Member already exists"}))
    );
    let (status, members) = send(s.root(Method::GET, &format!("/projects/{pid}/members"))).await;
    assert_eq!(status, 200);
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == bob && m["access_level"] == 40)
    );
    assert_eq!(
        send(s.as_token(&bob_pat, Method::DELETE, &format!("/projects/{pid}")))
            .await
            .0,
        403
    );
    let _ = alice;
    let (status, body) = send(s.as_token(&alice_pat, Method::DELETE, &format!("/projects/{pid}"))).await;
    assert_eq!((status, body), (202, json!({"message": "202 Accepted"})));
    assert_eq!(
        send(s.root(Method::GET, &format!("/projects/{pid}"))).await,
        (404, not_found)
    );
}

#[tokio::test]
async fn pipelines_api_filters_and_roles() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    for r in ["main", "v1.0", "main"] {
        let (status, _) =
            send(
                s.http
                    .post(&url)
                    .form(&[("token", token.as_str()), ("ref", r), ("variables[SECRET]", "value-1")]),
            )
            .await;
        assert_eq!(status, 201);
    }
    let list = |q: &str| s.root(Method::GET, &format!("/projects/{pid}/pipelines{q}"));
    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&send(list("")).await.1), vec![3, 2, 1]);
    assert_eq!(ids(&send(list("?sort=asc")).await.1), vec![1, 2, 3]);
    assert_eq!(ids(&send(list("?ref=main")).await.1), vec![3, 1]);
    assert_eq!(
        ids(&send(list("?source=trigger&status=pending&order_by=ref&sort=asc"))
            .await
            .1),
        vec![1, 3, 2]
    );
    assert_eq!(ids(&send(list("?source=push")).await.1), Vec::<u64>::new());
    // paging walks the index: page 2 of 1-per-page, newest first, and ascending
    let resp = crate::support::send_raw(list("?per_page=1&page=2")).await;
    assert_eq!(resp.headers()["x-total"], "3");
    assert_eq!(resp.headers()["x-next-page"], "3");
    assert_eq!(ids(&resp.json().await.unwrap()), vec![2]);
    assert_eq!(ids(&send(list("?per_page=2&page=2&sort=asc")).await.1), vec![3]);
    assert_eq!(ids(&send(list("?per_page=2&page=9")).await.1), Vec::<u64>::new());
    assert_eq!(
        send(list("?status=bogus")).await,
        (400, json!({"error": "status does not have a valid value"}))
    );
    assert_eq!(
        send(list("?order_by=name")).await,
        (400, json!({"error": "order_by does not have a valid value"}))
    );
    let (status, p) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/2"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        (p["ref"].as_str(), p["tag"].as_bool(), p["iid"].as_u64()),
        (Some("v1.0"), Some(true), Some(2))
    );
    assert_eq!(
        send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/99"))).await,
        (404, json!({"message": "404 Not found"}))
    );
    assert_eq!(
        send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/abc"))).await,
        (400, json!({"error": "pipeline_id is invalid"}))
    );
    // variables: Developer+; delete: Owner only
    let (reporter, reporter_pat) = s.user("rep").await;
    s.add_member(pid, reporter, 20).await;
    let (maint, maint_pat) = s.user("maint").await;
    s.add_member(pid, maint, 40).await;
    assert_eq!(
        send(s.as_token(&reporter_pat, Method::GET, &format!("/projects/{pid}/pipelines")))
            .await
            .0,
        200
    );
    assert_eq!(
        send(s.as_token(
            &reporter_pat,
            Method::GET,
            &format!("/projects/{pid}/pipelines/1/variables")
        ))
        .await
        .0,
        403
    );
    let (status, vars) = send(s.as_token(
        &maint_pat,
        Method::GET,
        &format!("/projects/{pid}/pipelines/1/variables"),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(vars[0]["value"], "value-1");
    assert_eq!(
        send(s.as_token(&maint_pat, Method::DELETE, &format!("/projects/{pid}/pipelines/1")))
            .await
            .0,
        403
    );
    assert_eq!(
        send(s.root(Method::DELETE, &format!("/projects/{pid}/pipelines/1")))
            .await
            .0,
        204
    );
    assert_eq!(
        send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/1")))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn external_url_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spur.toml");
    std::fs::write(
        &config,
        "external_url = \"https://ci.example.com/\"\nmax_body_bytes = 4096\n",
    )
    .unwrap();
    let s = Server::start_on(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(p["web_url"], "https://ci.example.com/root/demo");
    let big = "x".repeat(8192);
    let (status, _) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .form(&[("description", big.as_str())]),
    )
    .await;
    assert_eq!(status, 413, "max_body_bytes from the file applies");
    // a flag beats the file
    drop(s);
    let s = Server::start_on(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--external-url",
            "http://other.example",
        ],
    );
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(p["web_url"], "http://other.example/root/demo");
    // an unknown key is refused with a clear message
    std::fs::write(&config, "listen_on = 1\n").unwrap();
    let err = crate::support::spawn(&dir.path().join("data2"), &["--config", config.to_str().unwrap()])
        .expect_err("bad config");
    assert!(err.contains("invalid config file"), "{err}");
}

#[tokio::test]
async fn members_by_username_user_search_and_full_commit_objects() {
    let s = Server::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    let pid = s.project("demo", repo.path()).await;
    let (uid, _) = s.user("nina").await;
    s.user("otto").await;

    // POST /members takes a username, as python-gitlab and @gitbeaker may send it.
    let (status, m) = send(
        s.root(Method::POST, &format!("/projects/{pid}/members"))
            .form(&[("username", "nina"), ("access_level", "30")]),
    )
    .await;
    assert_eq!((status, m["id"].as_u64()), (201, Some(uid)), "{m}");
    let (status, body) = send(s.root(Method::POST, &format!("/projects/{pid}/members")).form(&[
        ("username", "nina"),
        ("user_id", "5"),
        ("access_level", "30"),
    ]))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("user_id, username are mutually exclusive"))
    );
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{pid}/members"))
            .form(&[("username", "nobody"), ("access_level", "30")]),
    )
    .await;
    assert_eq!(status, 404);

    // GET /users?search= matches usernames and names.
    let (_, found) = send(s.root(Method::GET, "/users?search=NIN")).await;
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["nina"]);

    // A job's commit and a pipeline's committed_at come from the repository.
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert!(p["committed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{p}");
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", p["id"]))).await;
    let commit = &jobs[0]["commit"];
    assert_eq!(commit["title"], "files");
    assert!(
        commit["author_email"].as_str().is_some_and(|e| e.contains('@')),
        "{commit}"
    );
    assert!(commit["committed_date"].as_str().is_some(), "{commit}");
}

#[tokio::test]
async fn personal_access_tokens_list_self_and_rotate() {
    let s = Server::start();
    let (uid, token) = s.user("tess").await;
    let (status, me) = send(s.as_token(&token, Method::GET, "/personal_access_tokens/self")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["user_id"].as_u64(), me["active"].as_bool()),
        (Some(uid), Some(true))
    );
    assert!(me.get("token").is_none(), "a token is never shown again");
    let (_, mine) = send(s.as_token(&token, Method::GET, "/personal_access_tokens")).await;
    assert!(mine.as_array().unwrap().iter().all(|t| t["user_id"] == uid));
    let (status, _) = send(s.as_token(&token, Method::GET, "/personal_access_tokens?user_id=1")).await;
    assert_eq!(status, 403, "only admins list other users' tokens");
    let (_, all) = send(s.root(
        Method::GET,
        &format!("/personal_access_tokens?user_id={uid}&state=active"),
    ))
    .await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Rotation: the old token stops working, the new one works and expires in a week.
    let (status, rotated) = send(s.as_token(&token, Method::POST, "/personal_access_tokens/self/rotate")).await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
    assert!(rotated["expires_at"].as_str().is_some());
    let (status, _) = send(s.as_token(&token, Method::GET, "/user")).await;
    assert_eq!(status, 401);
    let (status, _) = send(s.as_token(&fresh, Method::GET, "/user")).await;
    assert_eq!(status, 200);
    let (status, _) = send(s.as_token(&fresh, Method::DELETE, "/personal_access_tokens/self")).await;
    assert_eq!(status, 204);
    let (status, _) = send(s.as_token(&fresh, Method::GET, "/user")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn namespaces_group_projects_inherited_members_metadata_and_lint_by_get() {
    let s = Server::start();
    let (status, g) = send(
        s.root(Method::POST, "/groups")
            .form(&[("name", "Team"), ("path", "team")]),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let gid = g["id"].as_u64().unwrap();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    let (status, p) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "app"),
        ("namespace_id", &gid.to_string()),
        ("import_url", repo.path().to_str().unwrap()),
    ]))
    .await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].as_u64().unwrap();

    let (_, ns) = send(s.root(Method::GET, "/namespaces?search=tea")).await;
    assert_eq!(ns[0]["kind"], "group", "{ns}");
    let (_, projects) = send(s.root(Method::GET, "/groups/team/projects")).await;
    assert_eq!(projects[0]["id"].as_u64(), Some(pid));
    let (status, _) = send(s.root(Method::GET, "/groups/nope/projects")).await;
    assert_eq!(status, 404);

    let (_, all) = send(s.root(Method::GET, &format!("/projects/{pid}/members/all"))).await;
    let (_, direct) = send(s.root(Method::GET, &format!("/projects/{pid}/members"))).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|m| m["username"] == "root" && m["access_level"] == 50),
        "the group's Owner is inherited: {all} (direct: {direct})"
    );
    let (_, users) = send(s.root(Method::GET, &format!("/projects/{pid}/users"))).await;
    assert!(users.as_array().unwrap().iter().any(|u| u["username"] == "root"));

    let (status, meta) = send(s.root(Method::GET, "/metadata")).await;
    assert_eq!((status, meta["enterprise"].as_bool()), (200, Some(false)));
    let (status, lint) = send(s.root(Method::GET, &format!("/projects/{pid}/ci/lint?ref=main"))).await;
    assert_eq!((status, lint["valid"].as_bool()), (200, Some(true)), "{lint}");
}

#[tokio::test]
async fn group_members_are_managed_by_owners_and_inherited_by_projects() {
    let s = Server::start();
    let (status, g) = send(
        s.root(Method::POST, "/groups")
            .form(&[("name", "Crew"), ("path", "crew")]),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let gid = g["id"].as_u64().unwrap();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    let (_, p) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "svc"),
        ("namespace_id", &gid.to_string()),
        ("import_url", repo.path().to_str().unwrap()),
    ]))
    .await;
    let pid = p["id"].as_u64().unwrap();
    let (uid, token) = s.user("mona").await;

    // Not a member: the private project is invisible.
    let (status, _) = send(s.as_token(&token, Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(status, 404);
    let (status, m) = send(
        s.root(Method::POST, &format!("/groups/{gid}/members"))
            .form(&[("username", "mona"), ("access_level", "30")]),
    )
    .await;
    assert_eq!((status, m["access_level"].as_u64()), (201, Some(30)), "{m}");
    // A Developer of the group is a Developer of its projects.
    let (status, _) = send(s.as_token(&token, Method::GET, &format!("/projects/{pid}/pipelines"))).await;
    assert_eq!(status, 200);
    let (_, list) = send(s.as_token(&token, Method::GET, &format!("/groups/{gid}/members"))).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "root (Owner) and mona");
    // Only Owners manage members; the last Owner stays.
    let (status, _) = send(
        s.as_token(&token, Method::PUT, &format!("/groups/{gid}/members/{uid}"))
            .form(&[("access_level", "50")]),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = send(s.root(Method::DELETE, &format!("/groups/{gid}/members/1"))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = send(s.root(Method::DELETE, &format!("/groups/{gid}/members/{uid}"))).await;
    assert_eq!(status, 204);
    let (status, _) = send(s.as_token(&token, Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(status, 404);

    // Expiry: none in the past; an expired membership gives no rights at all.
    let (status, body) = send(s.root(Method::POST, &format!("/groups/{gid}/members")).form(&[
        ("user_id", uid.to_string().as_str()),
        ("access_level", "50"),
        ("expires_at", "2020-01-01"),
    ]))
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = send(
        s.root(Method::POST, &format!("/groups/{gid}/members"))
            .form(&[("user_id", uid.to_string().as_str()), ("access_level", "50")]),
    )
    .await;
    assert_eq!(status, 201);
    // Two Owners now: root may leave the Owner role to mona, and mona may not then leave it.
    let (status, _) = send(
        s.root(Method::PUT, &format!("/groups/{gid}/members/1"))
            .form(&[("access_level", "40")]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(
        s.as_token(&token, Method::PUT, &format!("/groups/{gid}/members/{uid}"))
            .form(&[("access_level", "30")]),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("400 Bad request - A group must have at least one owner"))
    );
    let (status, _) = send(s.as_token(&token, Method::DELETE, &format!("/groups/{gid}/members/{uid}"))).await;
    assert_eq!(status, 400, "the last Owner stays");
}

#[tokio::test]
async fn group_variables_reach_the_groups_projects_below_their_own() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let (_, g) = send(
        s.root(Method::POST, "/groups")
            .form(&[("name", "Vars"), ("path", "vars")]),
    )
    .await;
    let gid = g["id"].as_u64().unwrap();
    let repo = Repo::with_files(&[(
        ".gitlab-ci.yml",
        "show:\n  script: [echo \"a=$SHARED b=$OVERRIDDEN\"]\n",
    )]);
    let (_, p) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "app"),
        ("namespace_id", &gid.to_string()),
        ("import_url", repo.path().to_str().unwrap()),
    ]))
    .await;
    let pid = p["id"].as_u64().unwrap();
    for (key, value) in [("SHARED", "from-group"), ("OVERRIDDEN", "group-value")] {
        let (status, v) = send(
            s.root(Method::POST, &format!("/groups/{gid}/variables"))
                .form(&[("key", key), ("value", value)]),
        )
        .await;
        assert_eq!(status, 201, "{v}");
    }
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{pid}/variables"))
            .form(&[("key", "OVERRIDDEN"), ("value", "project-value")]),
    )
    .await;
    assert_eq!(status, 201);
    let (_, listed) = send(s.root(Method::GET, &format!("/groups/{gid}/variables"))).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let (uid, token) = s.user("dev").await;
    let (status, _) = send(
        s.root(Method::POST, &format!("/groups/{gid}/members"))
            .form(&[("user_id", uid.to_string().as_str()), ("access_level", "30")]),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(s.as_token(&token, Method::GET, &format!("/groups/{gid}/variables"))).await;
    assert_eq!(status, 403, "a Developer of the group may not read its variables");

    let (status, pipeline) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .json(&json!({"ref": "main"})),
    )
    .await;
    assert_eq!(status, 201, "{pipeline}");
    let done = crate::support::finished_pipeline(&s, pid, pipeline["id"].as_u64().unwrap()).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", done["id"]))).await;
    let log = crate::support::job_log(&s, pid, &jobs[0]["id"]).await;
    assert!(log.contains("a=from-group b=project-value"), "{log}");
    let (status, _) = send(s.root(Method::DELETE, &format!("/groups/{gid}/variables/SHARED"))).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn administrators_update_users() {
    let s = Server::start();
    let (uid, token) = s.user("ulla").await;
    s.user("other").await;
    let (status, u) = send(s.root(Method::PUT, &format!("/users/{uid}")).form(&[
        ("name", "Ulla U."),
        ("email", "ulla@new.example"),
        ("admin", "true"),
    ]))
    .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(
        (u["name"].as_str(), u["email"].as_str(), u["is_admin"].as_bool()),
        (Some("Ulla U."), Some("ulla@new.example"), Some(true))
    );
    let (status, body) = send(
        s.root(Method::PUT, &format!("/users/{uid}"))
            .form(&[("email", "other@example.com")]),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = send(
        s.root(Method::PUT, &format!("/users/{uid}"))
            .form(&[("password", "short")]),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        s.root(Method::PUT, &format!("/users/{uid}"))
            .form(&[("username", "renamed")]),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(s.as_token(&token, Method::PUT, "/users/1").form(&[("name", "x")])).await;
    assert_eq!(status, 200, "ulla is an administrator now");
    let (status, _) = send(s.root(Method::PUT, "/users/999").form(&[("name", "x")])).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn badges_render_gitlabs_placeholders_and_only_maintainers_change_them() {
    let s = Server::start();
    let repo = Repo::with_files(&[("README", "x\n")]);
    crate::support::git(repo.path(), &["tag", "v1.2"]);
    let pid = s.project("badged", repo.path()).await;
    let sha = repo.sha("main");
    let base = format!("/projects/{pid}/badges");
    let (status, badge) = send(s.root(Method::POST, &base).json(&serde_json::json!({
        "name": "pipeline",
        "link_url": "https://ci.example/%{project_path}/-/commits/%{default_branch}",
        "image_url": "https://ci.example/%{project_id}/%{commit_sha}/%{latest_tag}.svg",
    })))
    .await;
    assert_eq!(status, 201, "{badge}");
    assert_eq!(
        badge["rendered_link_url"],
        "https://ci.example/root/badged/-/commits/main"
    );
    assert_eq!(
        badge["rendered_image_url"],
        format!("https://ci.example/{pid}/{sha}/v1.2.svg")
    );
    assert_eq!(badge["kind"], "project");
    let id = badge["id"].as_u64().unwrap();
    let (status, list) = send(s.root(Method::GET, &format!("{base}?name=pipeline"))).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    let (status, changed) = send(
        s.root(Method::PUT, &format!("{base}/{id}"))
            .form(&[("image_url", "https://img.example/%{project_name}.png")]),
    )
    .await;
    assert_eq!(
        (status, changed["rendered_image_url"].as_str()),
        (200, Some("https://img.example/badged.png"))
    );
    let (status, preview) = send(s.root(
        Method::GET,
        &format!("{base}/render?link_url=https://x/%25{{project_title}}&image_url=https://y/%25{{gitlab_server}}"),
    ))
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["rendered_link_url"], "https://x/badged");
    assert_eq!(preview["rendered_image_url"], "https://y/127.0.0.1");

    // Bad input changes nothing; Developers read but may not change.
    for body in [
        serde_json::json!({"link_url": "javascript:alert(1)", "image_url": "https://x/y.svg"}),
        serde_json::json!({"link_url": "https://x", "image_url": "ftp://x/y"}),
    ] {
        assert_eq!(send(s.root(Method::POST, &base).json(&body)).await.0, 400);
    }
    let (status, e) = send(s.root(Method::POST, &base).json(&serde_json::json!({"name": "x"}))).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("link_url is missing, image_url is missing"))
    );
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    assert_eq!(send(s.as_token(&dev, Method::GET, &base)).await.0, 200);
    let (status, _) = send(s.as_token(&dev, Method::DELETE, &format!("{base}/{id}"))).await;
    assert_eq!(status, 403);
    assert_eq!(
        send(s.root(Method::GET, &base)).await.1.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(send(s.root(Method::DELETE, &format!("{base}/{id}"))).await.0, 204);
    assert_eq!(send(s.root(Method::GET, &format!("{base}/{id}"))).await.0, 404);
}

#[tokio::test]
async fn keyset_pagination_links_to_the_next_page_by_id() {
    let s = Server::start();
    let repo = Repo::new();
    let mut ids = Vec::new();
    for name in ["k1", "k2", "k3"] {
        ids.push(s.project(name, repo.path()).await);
    }
    let mut url = s.api("/projects?pagination=keyset&order_by=id&sort=asc&per_page=2");
    let mut seen = Vec::new();
    for _ in 0..5 {
        let resp = crate::support::send_raw(s.http.get(&url).header("PRIVATE-TOKEN", ROOT_TOKEN)).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("x-total").is_none(), "keyset pages carry no totals");
        let link = resp.headers().get("link").map(|l| l.to_str().unwrap().to_string());
        let page: Value = resp.json().await.unwrap();
        seen.extend(page.as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()));
        match link {
            Some(l) => {
                assert!(l.contains("id_after=") && l.ends_with("rel=\"next\""), "{l}");
                url = l.trim_start_matches('<').split('>').next().unwrap().to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // Links are spur's own URLs, whatever Host or forwarded headers the client sends.
    let resp = crate::support::send_raw(
        s.root(Method::GET, "/projects?per_page=1")
            .header("Host", "evil.example")
            .header("X-Forwarded-Proto", "javascript"),
    )
    .await;
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert!(link.starts_with(&format!("<{}/api/v4/projects?", s.base)), "{link}");
    let (status, e) = send(s.root(Method::GET, "/projects?pagination=keyset&order_by=name")).await;
    assert_eq!(
        (status, e),
        (
            405,
            json!({"error": "Keyset pagination is not yet available for this type of request"})
        )
    );
    let (_, desc) = send(s.root(
        Method::GET,
        &format!("/projects?pagination=keyset&order_by=id&id_before={}", ids[2]),
    ))
    .await;
    let got: Vec<u64> = desc
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![ids[1], ids[0]]);
}
