//! python-gitlab, unchanged, against the real server: the calls GitLab's docs and python-gitlab's
//! own functional tests make around triggers. The interpreter comes from the venv that
//! `tests/run` creates (`SPUR_TEST_PYTHON`, default `target/test-venv/bin/python`).

use crate::support::{ROOT_TOKEN, Repo, Server, python};
use std::path::PathBuf;
use std::process::Command;

#[tokio::test]
async fn python_gitlab_drives_triggers_and_pipelines() {
    let s = Server::start();
    let repo = Repo::new();
    let pid = s.project("demo", repo.path()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/trigger_flow.py");
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .env("SPUR_URL", base)
            .env("SPUR_TOKEN", ROOT_TOKEN)
            .env("SPUR_PROJECT", "root/demo")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python-gitlab flow failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python-gitlab flow OK"), "{stdout}");
    let _ = pid;
}

#[tokio::test]
async fn python_gitlab_drives_the_repository_groups_artifacts_and_tokens() {
    let s = Server::start_with(&["--concurrent", "1"]);
    let repo = Repo::with_files(&[(
        ".gitlab-ci.yml",
        "build:\n  script:\n    - mkdir -p out\n    - echo built > out/result.txt\n    - printf '%s' '<testsuite name=\"py\"><testcase name=\"t1\"/><testcase name=\"t2\"><failure>no</failure></testcase></testsuite>' > junit.xml\n  artifacts:\n    paths: [out/]\n    reports:\n      junit: junit.xml\n  environment:\n    name: py-env\n    url: https://py.example.com\n",
    )]);
    // A hosted project (mirrors refuse ref changes), filled by a push.
    let (status, hosted) =
        crate::support::send(s.root(reqwest::Method::POST, "/projects").form(&[("name", "demo")])).await;
    assert_eq!(status, 201, "{hosted}");
    let push_url = format!("{}/root/demo.git", s.base).replacen("://", &format!("://root:{ROOT_TOKEN}@"), 1);
    crate::support::git(repo.path(), &["push", "-q", &push_url, "main"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/api_flow.py");
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .env("SPUR_URL", base)
            .env("SPUR_TOKEN", ROOT_TOKEN)
            .env("SPUR_PROJECT", "root/demo")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python-gitlab api flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("python-gitlab api flow OK"), "{stdout}");
}
