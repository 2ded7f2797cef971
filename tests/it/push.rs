//! Push pipelines: a mirror that follows its repository (`mirror/pull`, polling, a forge's
//! webhook), pushes over HTTP to projects spur hosts, `[ci skip]`, protected branches on push,
//! and GitLab's own trigger example: a tag pushed to project A runs A's `$CI_COMMIT_TAG` job,
//! which triggers project B with curl and a masked token.

use crate::support::{ROOT_TOKEN, Repo, Server, finished_pipeline, git, job_log, send, wait_for};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const CONFIG: &str = r#"
show:
  script:
    - echo "ref=$CI_COMMIT_REF_NAME before=$CI_COMMIT_BEFORE_SHA source=$CI_PIPELINE_SOURCE tag=${CI_COMMIT_TAG:-none}"
on-tags:
  rules:
    - if: $CI_COMMIT_TAG
  script: [echo tagged]
"#;

async fn pipelines(s: &Server, pid: u64) -> Vec<Value> {
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?per_page=100&sort=asc"))).await;
    list.as_array().unwrap().clone()
}

/// Waits until the project has `n` pipelines and answers them, oldest first.
async fn wait_pipelines(s: &Server, pid: u64, n: usize) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let list = pipelines(s, pid).await;
        if list.len() >= n {
            assert_eq!(list.len(), n, "{list:?}");
            return list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} pipelines: {list:?}",
            list.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn first_job_log(s: &Server, pid: u64, pipeline: &Value) -> String {
    let id = pipeline["id"].as_u64().unwrap();
    finished_pipeline(s, pid, id).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let show = jobs.as_array().unwrap().iter().find(|j| j["name"] == "show").unwrap();
    job_log(s, pid, &show["id"]).await
}

#[tokio::test]
async fn a_mirror_gets_one_push_pipeline_per_moved_ref() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    let before = repo.sha("main");
    let after = repo.commit("second");
    git(repo.path(), &["branch", "topic"]);
    git(repo.path(), &["tag", "v9"]);
    let pull = || s.root(Method::POST, &format!("/projects/{pid}/mirror/pull"));
    assert_eq!(send(pull()).await.0, 200);
    let list = wait_pipelines(&s, pid, 3).await;
    let by_ref = |r: &str| {
        list.iter()
            .find(|p| p["ref"] == r)
            .unwrap_or_else(|| panic!("no pipeline for {r}"))
            .clone()
    };
    for p in &list {
        assert_eq!(p["source"], "push");
        assert_eq!(p["sha"], after.as_str());
    }
    let main = first_job_log(&s, pid, &by_ref("main")).await;
    assert!(
        main.contains(&format!("ref=main before={before} source=push tag=none")),
        "{main}"
    );
    let topic = first_job_log(&s, pid, &by_ref("topic")).await;
    assert!(topic.contains(&format!("before={}", "0".repeat(40))), "{topic}");
    let v9 = by_ref("v9");
    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}", v9["id"]))).await;
    assert_eq!(shown["tag"], true);
    let tag_log = first_job_log(&s, pid, &v9).await;
    assert!(tag_log.contains("tag=v9"), "{tag_log}");
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", v9["id"]))).await;
    assert_eq!(
        jobs.as_array().unwrap().len(),
        2,
        "the $CI_COMMIT_TAG job runs for the tag only"
    );

    // Nothing moved: no pipeline. A deleted branch: none either.
    git(repo.path(), &["branch", "-D", "topic"]);
    assert_eq!(send(pull()).await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pipelines(&s, pid).await.len(), 3);

    // [ci skip] gives a skipped pipeline without jobs.
    std::fs::write(repo.path().join("docs.md"), "docs").unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-qm", "docs only [ci skip]"]);
    send(pull()).await;
    let list = wait_pipelines(&s, pid, 4).await;
    let skipped = list.last().unwrap();
    assert_eq!(skipped["status"], "skipped");
    let (_, jobs) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/pipelines/{}/jobs", skipped["id"]),
    ))
    .await;
    assert_eq!(jobs, serde_json::json!([]));

    // A hosted project is not a mirror.
    let (_, hosted) = send(s.root(Method::POST, "/projects").form(&[("name", "hosted")])).await;
    let (status, e) = send(s.root(Method::POST, &format!("/projects/{}/mirror/pull", hosted["id"]))).await;
    assert_eq!(
        (status, e["message"].as_str()),
        (400, Some("The project is not mirrored"))
    );
}

#[tokio::test]
async fn mirrors_are_polled_and_forges_call_the_webhook_with_the_secret() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "0", "--mirror-interval", "1s"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    repo.commit("polled");
    wait_pipelines(&s, pid, 1).await;

    // The webhook: the secret is on the settings page for Maintainers.
    let s2 = Server::start_with(&["--allow-local-requests", "--concurrent", "0"]);
    let repo2 = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid2 = s2.project("demo", repo2.path()).await;
    let mut browser = crate::ui::Browser::new(&s2);
    browser.sign_in("root", "root-password-123").await;
    let (_, page, _) = browser.get("/root/demo/-/settings/ci_cd").await;
    let marker = "id=\"mirror-hook-secret\" value=\"";
    let secret = page[page.find(marker).expect("the secret on the settings page") + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let hook = format!("{}/api/v4/projects/{pid2}/mirror/hook", s2.base);
    let body = r#"{"ref":"refs/heads/main"}"#;
    assert_eq!(
        send(
            s2.http
                .post(&hook)
                .header("X-Gitlab-Event", "Push Hook")
                .header("X-Gitlab-Token", "wrong")
                .body(body)
        )
        .await
        .0,
        401
    );
    assert_eq!(
        send(
            s2.http
                .post(format!("{}/api/v4/projects/999/mirror/hook", s2.base))
                .header("X-Gitlab-Token", &secret)
                .body(body)
        )
        .await
        .0,
        401
    );
    repo2.commit("gitlab");
    assert_eq!(
        send(
            s2.http
                .post(&hook)
                .header("X-Gitlab-Event", "Push Hook")
                .header("X-Gitlab-Token", &secret)
                .body(body)
        )
        .await
        .0,
        202
    );
    wait_pipelines(&s2, pid2, 1).await;
    // GitHub and Gitea sign the body with HMAC-SHA256.
    let sign = |body: &str| {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        send(
            s2.http
                .post(&hook)
                .header("X-GitHub-Event", "ping")
                .header("X-Hub-Signature-256", format!("sha256={}", sign(body)))
                .body(body)
        )
        .await
        .0,
        200
    );
    repo2.commit("github");
    let github = s2
        .http
        .post(&hook)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", format!("sha256={}", sign(body)))
        .body(body);
    assert_eq!(send(github).await.0, 202);
    wait_pipelines(&s2, pid2, 2).await;
    let forged = s2
        .http
        .post(&hook)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", format!("sha256={}", sign("other")))
        .body(body);
    assert_eq!(send(forged).await.0, 401);
    repo2.commit("gitea");
    let gitea = s2
        .http
        .post(&hook)
        .header("X-Gitea-Event", "push")
        .header("X-Gitea-Signature", sign(body))
        .body(body);
    assert_eq!(send(gitea).await.0, 202);
    wait_pipelines(&s2, pid2, 3).await;
}

/// A push URL with a user's token as password.
fn url_as(s: &Server, user: &str, token: &str, path: &str) -> String {
    format!("{}/{path}.git", s.base).replacen("://", &format!("://{user}:{token}@"), 1)
}

fn git_may_fail(dir: &std::path::Path, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn hosted_projects_take_pushes_and_protect_their_default_branch() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "1"]);
    let (status, project) = send(s.root(Method::POST, "/projects").form(&[("name", "hosted")])).await;
    assert_eq!(status, 201, "{project}");
    let pid = project["id"].as_u64().unwrap();
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{pid}/variables")).form(&[
        ("key", "DEPLOY"),
        ("value", "prod-secret"),
        ("protected", "true"),
    ]))
    .await;
    assert_eq!(status, 201);

    let work = Repo::with_files(&[(
        ".gitlab-ci.yml",
        "show:\n  script: ['echo \"deploy=${DEPLOY:-absent} before=$CI_COMMIT_BEFORE_SHA\"']\n",
    )]);
    git(
        work.path(),
        &["push", "-q", &url_as(&s, "root", ROOT_TOKEN, "root/hosted"), "main"],
    );
    let list = wait_pipelines(&s, pid, 1).await;
    assert_eq!(
        (&list[0]["ref"], &list[0]["source"]),
        (&Value::from("main"), &Value::from("push"))
    );
    let log = first_job_log(&s, pid, &list[0]).await;
    assert!(
        log.contains("deploy=prod-secret"),
        "main became the protected default branch: {log}"
    );
    let (_, shown) = send(s.root(Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(shown["default_branch"], "main");
    let (_, rules) = send(s.root(Method::GET, &format!("/projects/{pid}/protected_branches"))).await;
    assert_eq!(rules[0]["name"], "main");

    // Clone it back over HTTP.
    let clone = tempfile::tempdir().unwrap();
    git(
        clone.path(),
        &["clone", "-q", &url_as(&s, "root", ROOT_TOKEN, "root/hosted"), "c"],
    );
    assert_eq!(git(&clone.path().join("c"), &["rev-parse", "HEAD"]), work.sha("main"));

    // A Developer may not push to the protected main, but may push a branch.
    let (dev_id, dev) = s.user("dev").await;
    s.add_member(pid, dev_id, 30).await;
    let before = work.sha("main");
    work.commit("by-dev");
    assert!(!git_may_fail(
        work.path(),
        &["push", "-q", &url_as(&s, "dev", &dev, "root/hosted"), "main"]
    ));
    git(
        work.path(),
        &["push", "-q", &url_as(&s, "dev", &dev, "root/hosted"), "main:feature"],
    );
    let list = wait_pipelines(&s, pid, 2).await;
    assert_eq!(list[1]["ref"], "feature");
    let log = first_job_log(&s, pid, &list[1]).await;
    assert!(
        log.contains("deploy=absent"),
        "no protected variable on an unprotected branch: {log}"
    );
    let (_, branch_main) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?ref=main"))).await;
    assert_eq!(branch_main[0]["sha"], before.as_str(), "main did not move");
    // A Reporter may not push at all; a stranger does not see the project.
    let (rep_id, rep) = s.user("rep").await;
    s.add_member(pid, rep_id, 20).await;
    assert!(!git_may_fail(
        work.path(),
        &["push", "-q", &url_as(&s, "rep", &rep, "root/hosted"), "main:other"]
    ));
    let (_, stranger) = s.user("stranger").await;
    assert!(!git_may_fail(
        work.path(),
        &[
            "push",
            "-q",
            &url_as(&s, "stranger", &stranger, "root/hosted"),
            "main:other"
        ]
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pipelines(&s, pid).await.len(), 2);
}

#[tokio::test]
async fn a_tag_pushed_to_a_triggers_b_as_in_gitlabs_docs() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "2"]);
    let b_repo = Repo::with_files(&[(".gitlab-ci.yml", "build:\n  script: [echo building B]\n")]);
    let b = s.project("project-b", b_repo.path()).await;
    let (_, b_token) = s.trigger_token(ROOT_TOKEN, b).await;
    let a_config = r#"
trigger_b:
  rules:
    - if: $CI_COMMIT_TAG
  script:
    - curl --fail --request POST --form token=$MY_TRIGGER_TOKEN --form ref=main "$CI_API_V4_URL/projects/$B_ID/trigger/pipeline"
"#;
    // Project A is hosted by spur: its code arrives by git push.
    let (status, project) = send(s.root(Method::POST, "/projects").form(&[("name", "project-a")])).await;
    assert_eq!(status, 201, "{project}");
    let a = project["id"].as_u64().unwrap();
    let vars = s.root(Method::POST, &format!("/projects/{a}/variables"));
    assert_eq!(
        send(vars.form(&[
            ("key", "MY_TRIGGER_TOKEN"),
            ("value", b_token.as_str()),
            ("masked", "true")
        ]))
        .await
        .0,
        201
    );
    let vars = s.root(Method::POST, &format!("/projects/{a}/variables"));
    assert_eq!(
        send(vars.form(&[("key", "B_ID"), ("value", &b.to_string())])).await.0,
        201
    );
    let a_repo = Repo::with_files(&[(".gitlab-ci.yml", a_config)]);
    let a_url = url_as(&s, "root", ROOT_TOKEN, "root/project-a");
    git(a_repo.path(), &["push", "-q", &a_url, "main"]);
    wait_for(&s, &format!("/projects/{a}"), |p| p["default_branch"] == "main").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        pipelines(&s, a).await.is_empty(),
        "rules leave no job for a branch: no pipeline"
    );
    git(a_repo.path(), &["tag", "v1.0.0"]);
    git(a_repo.path(), &["push", "-q", &a_url, "v1.0.0"]);
    let a_pipelines = wait_pipelines(&s, a, 1).await;
    assert_eq!(a_pipelines[0]["ref"], "v1.0.0");
    let done = finished_pipeline(&s, a, a_pipelines[0]["id"].as_u64().unwrap()).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{a}/pipelines/{}/jobs", done["id"]))).await;
    let log = job_log(&s, a, &jobs[0]["id"]).await;
    assert_eq!(done["status"], "success", "{log}");
    assert!(!log.contains(&b_token), "the token is masked: {log}");
    let b_pipelines = wait_for(&s, &format!("/projects/{b}/pipelines"), |l| {
        !l.as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(b_pipelines[0]["source"], "trigger");
    let b_done = finished_pipeline(&s, b, b_pipelines[0]["id"].as_u64().unwrap()).await;
    assert_eq!(b_done["status"], "success");
}

#[tokio::test]
async fn a_private_mirror_keeps_its_credentials_sealed() {
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "0"]);
    // The origin: a project spur hosts, reachable only with a token.
    let (_, origin) = send(s.root(Method::POST, "/projects").form(&[("name", "origin")])).await;
    let work = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    git(
        work.path(),
        &["push", "-q", &url_as(&s, "root", ROOT_TOKEN, "root/origin"), "main"],
    );
    let with_credentials = url_as(&s, "root", ROOT_TOKEN, "root/origin");
    let (status, mirror) = send(
        s.root(Method::POST, "/projects")
            .form(&[("name", "mirror"), ("import_url", with_credentials.as_str())]),
    )
    .await;
    assert_eq!(status, 201, "{mirror}");
    let pid = mirror["id"].as_u64().unwrap();
    assert_eq!(mirror["import_status"], "finished");
    assert!(!mirror.to_string().contains(ROOT_TOKEN));
    // The token is in no file of the data dir: not in the database, not in the mirror's config.
    let out = std::process::Command::new("grep")
        .args(["-r", "-l", ROOT_TOKEN])
        .arg(&s.data_dir)
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(files.trim().is_empty(), "{files}");
    // It still fetches: a push to the origin reaches the mirror's pipelines.
    work.commit("more");
    git(work.path(), &["push", "-q", &with_credentials, "main"]);
    assert_eq!(
        send(s.root(Method::POST, &format!("/projects/{pid}/mirror/pull")))
            .await
            .0,
        200
    );
    let list = wait_pipelines(&s, pid, 1).await;
    assert_eq!(list[0]["sha"], work.sha("main").as_str());
    let _ = origin;
}

#[tokio::test]
async fn a_newer_push_cancels_an_older_interruptible_pipeline_on_the_branch() {
    let config = "slow:\n  interruptible: true\n  script: [sleep 20]\n";
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config)]);
    let pid = s.project("demo", repo.path()).await;
    let pull = || s.root(Method::POST, &format!("/projects/{pid}/mirror/pull"));
    repo.commit("one");
    send(pull()).await;
    let first = wait_pipelines(&s, pid, 1).await[0]["id"].as_u64().unwrap();
    wait_for(&s, &format!("/projects/{pid}/pipelines/{first}"), |p| {
        p["status"] == "running"
    })
    .await;
    repo.commit("two");
    send(pull()).await;
    wait_pipelines(&s, pid, 2).await;
    let p = wait_for(&s, &format!("/projects/{pid}/pipelines/{first}"), |p| {
        p["status"] == "canceled"
    })
    .await;
    assert_eq!(p["status"], "canceled");
    // Set a per-project interval (spur's `mirror_interval`), seen in the project.
    let (status, project) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .form(&[("mirror_interval", "10m")]),
    )
    .await;
    assert_eq!((status, &project["mirror_interval"]), (200, &Value::from(600)));
    let (status, _) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .form(&[("mirror_interval", "1s")]),
    )
    .await;
    assert_eq!(status, 400);
}

/// An sshd on a free local port that accepts the keys written to its `authorized_keys`.
struct Sshd {
    child: std::process::Child,
    port: u16,
    authorized: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let host_key = dir.path().join("host_ed25519");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .status()
            .unwrap();
        assert!(made.success());
        let authorized = dir.path().join("authorized_keys");
        std::fs::write(&authorized, "").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPidFile {}\n",
                host_key.display(),
                authorized.display(),
                dir.path().join("sshd.pid").display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = std::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sshd (Debian's openssh-server, installed by tests/run)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            child,
            port,
            authorized,
            _dir: dir,
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_ssh_mirror_fetches_with_its_own_deploy_key() {
    let sshd = Sshd::start();
    let s = Server::start_with(&["--allow-local-requests", "--concurrent", "0"]);
    let origin = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, origin.path().display());
    // The forge does not know spur's key yet: the project is made, empty, with a deploy key.
    let (status, project) = send(
        s.root(Method::POST, "/projects")
            .form(&[("name", "over-ssh"), ("import_url", url.as_str())]),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    let pid = project["id"].as_u64().unwrap();
    assert_eq!(project["default_branch"], Value::Null);
    let mut browser = crate::ui::Browser::new(&s);
    browser.sign_in("root", "root-password-123").await;
    let (_, page, _) = browser.get("/root/over-ssh/-/settings/ci_cd").await;
    let start = page.find("ssh-ed25519 ").expect("the deploy key on the settings page");
    let key = page[start..].split('<').next().unwrap().trim().to_string();
    // The admin adds it at the forge; the next fetch imports the repository (no pipelines)...
    std::fs::write(&sshd.authorized, format!("{key}\n")).unwrap();
    assert_eq!(
        send(s.root(Method::POST, &format!("/projects/{pid}/mirror/pull")))
            .await
            .0,
        200
    );
    wait_for(&s, &format!("/projects/{pid}"), |p| p["default_branch"] == "main").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pipelines(&s, pid).await.len(), 0, "the import starts no pipeline");
    // ... and then follows it.
    let sha = origin.commit("over ssh");
    assert_eq!(
        send(s.root(Method::POST, &format!("/projects/{pid}/mirror/pull")))
            .await
            .0,
        200
    );
    let list = wait_pipelines(&s, pid, 1).await;
    assert_eq!(list[0]["sha"], sha.as_str());
    // The private key is nowhere on disk in the clear.
    let keys: Vec<String> = std::fs::read_dir(s.data_dir.join("repositories/.ssh"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys, ["known_hosts"], "only SSH's known hosts stay");
    let out = std::process::Command::new("grep")
        .args(["-r", "-l", "OPENSSH PRIVATE KEY"])
        .arg(&s.data_dir)
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

async fn job_names(s: &Server, pid: u64, p: &Value) -> Vec<String> {
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{}/jobs", p["id"]))).await;
    let mut names: Vec<String> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn rules_changes_follow_what_each_push_changed() {
    let config = "docs:\n  script: echo docs\n  rules:\n    - changes: [\"docs/**/*.md\"]\ncode:\n  script: echo code\n  rules:\n    - changes: [src/*]\nsince-stable:\n  script: echo since\n  rules:\n    - changes:\n        paths: [src/*]\n        compare_to: stable\n";
    let s = Server::start_with(&["--allow-local-requests"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config), ("src/a.rs", "1"), ("docs/x/y.md", "1")]);
    git(repo.path(), &["branch", "stable"]);
    let pid = s.project("changes", repo.path()).await;
    let pull = || s.root(Method::POST, &format!("/projects/{pid}/mirror/pull"));
    // A docs-only push: only the docs job; src is unchanged since stable too.
    std::fs::write(repo.path().join("docs/x/y.md"), "2").unwrap();
    git(repo.path(), &["commit", "-qam", "docs"]);
    send(pull()).await;
    let list = wait_pipelines(&s, pid, 1).await;
    assert_eq!(job_names(&s, pid, &list[0]).await, ["docs"]);
    // A code push: the code job, and src differs from stable now.
    std::fs::write(repo.path().join("src/a.rs"), "2").unwrap();
    git(repo.path(), &["commit", "-qam", "code"]);
    send(pull()).await;
    let list = wait_pipelines(&s, pid, 2).await;
    assert_eq!(job_names(&s, pid, &list[1]).await, ["code", "since-stable"]);
    // A docs push after that: src still differs from stable, but this push did not touch it.
    std::fs::write(repo.path().join("docs/x/y.md"), "3").unwrap();
    git(repo.path(), &["commit", "-qam", "docs again"]);
    send(pull()).await;
    let list = wait_pipelines(&s, pid, 3).await;
    assert_eq!(job_names(&s, pid, &list[2]).await, ["docs", "since-stable"]);
    // A new branch has no push diff: every changes clause holds.
    git(repo.path(), &["branch", "fresh"]);
    send(pull()).await;
    let list = wait_pipelines(&s, pid, 4).await;
    assert_eq!(job_names(&s, pid, &list[3]).await, ["code", "docs", "since-stable"]);
}

#[tokio::test]
async fn branches_and_tags_made_through_the_api_get_push_pipelines_and_respect_protection() {
    let s = Server::start_with(&["--allow-local-requests"]);
    let (_, project) = send(s.root(Method::POST, "/projects").form(&[("name", "refs")])).await;
    let pid = project["id"].as_u64().unwrap();
    let work = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    git(
        work.path(),
        &["push", "-q", &url_as(&s, "root", ROOT_TOKEN, "root/refs"), "main"],
    );
    wait_pipelines(&s, pid, 1).await;

    let post = |path: &str, form: &[(&str, &str)]| {
        let req = s
            .root(Method::POST, &format!("/projects/{pid}/repository/{path}"))
            .form(form);
        send(req)
    };
    let (status, b) = post("branches", &[("branch", "feature/api"), ("ref", "main")]).await;
    assert_eq!((status, b["name"].as_str()), (201, Some("feature/api")), "{b}");
    let list = wait_pipelines(&s, pid, 2).await;
    assert_eq!(
        (list[1]["ref"].as_str(), list[1]["source"].as_str()),
        (Some("feature/api"), Some("push"))
    );
    let (status, body) = post("branches", &[("branch", "feature/api"), ("ref", "main")]).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Branch already exists")));
    let (status, _) = post("branches", &[("branch", "-x"), ("ref", "main")]).await;
    assert_eq!(status, 400);
    let (status, _) = post("branches", &[("branch", "ok"), ("ref", "no-such-ref")]).await;
    assert_eq!(status, 400);
    for reserved in ["HEAD", "refs/heads/main", "refs/tags/x"] {
        let (status, _) = post("branches", &[("branch", reserved), ("ref", "main")]).await;
        assert_eq!(status, 400, "{reserved}");
    }
    let (status, body) = post("tags", &[("tag_name", "main"), ("ref", "main")]).await;
    assert_eq!(
        status, 400,
        "a tag named like a branch makes the name ambiguous: {body}"
    );

    let (status, t) = post(
        "tags",
        &[("tag_name", "v1.0"), ("ref", "main"), ("message", "Release 1.0")],
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["message"].as_str().map(str::trim), Some("Release 1.0"));
    let list = wait_pipelines(&s, pid, 3).await;
    assert_eq!(list[2]["ref"], "v1.0");

    // A Developer may not delete the protected default branch; nobody may delete it.
    let (dev_id, dev) = s.user("dave").await;
    s.add_member(pid, dev_id, 30).await;
    let (status, _) = send(s.as_token(
        &dev,
        Method::DELETE,
        &format!("/projects/{pid}/repository/branches/main"),
    ))
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{pid}/repository/branches/main"))).await;
    assert_eq!(status, 405);
    let (status, _) = send(s.root(
        Method::DELETE,
        &format!("/projects/{pid}/repository/branches/feature%2Fapi"),
    ))
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(s.root(
        Method::GET,
        &format!("/projects/{pid}/repository/branches/feature%2Fapi"),
    ))
    .await;
    assert_eq!(status, 404);
    // A protected tag: Developers may not delete it, Maintainers may (GitLab's TagCheck).
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{pid}/protected_tags"))
            .form(&[("name", "v*"), ("create_access_level", "30")]),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(s.as_token(&dev, Method::DELETE, &format!("/projects/{pid}/repository/tags/v1.0"))).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send(s.root(Method::DELETE, &format!("/projects/{pid}/repository/tags/v1.0"))).await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pipelines(&s, pid).await.len(), 3, "deleting refs runs no pipeline");

    // A mirror's refs follow its origin.
    let origin = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    let mirror = s.project("mirror", origin.path()).await;
    let (status, _) = send(
        s.root(Method::POST, &format!("/projects/{mirror}/repository/branches"))
            .form(&[("branch", "x"), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn pushes_larger_than_git_post_buffer_go_through() {
    let s = Server::start();
    let (_, project) = send(s.root(Method::POST, "/projects").form(&[("name", "big")])).await;
    assert!(project["id"].as_u64().is_some(), "{project}");
    let work = Repo::with_files(&[(".gitlab-ci.yml", "job:\n  script: [echo]\n")]);
    // 3 MiB that do not compress: git probes with an empty command list first.
    let mut noise = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    while noise.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(work.path().join("noise.bin"), &noise).unwrap();
    git(work.path(), &["add", "."]);
    git(work.path(), &["commit", "-qm", "noise"]);
    git(
        work.path(),
        &["push", "-q", &url_as(&s, "root", ROOT_TOKEN, "root/big"), "main"],
    );
    let (_, branches) = send(s.root(Method::GET, &format!("/projects/{}/repository/branches", project["id"]))).await;
    assert_eq!(branches[0]["commit"]["id"], work.sha("main"));
}
