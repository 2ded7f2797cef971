//! The browser UI in a real browser: Debian's headless `chromium` driven through WebDriver
//! (`chromium-driver`, selenium in the test venv; `tests/run` installs both). The flow is the
//! seed's: sign in as a Maintainer, add a trigger token, reveal and copy it, trigger a pipeline
//! with it over HTTP, see the `triggered` label, follow the job's live log and its Trigger
//! block (it follows the end and keeps the user's folds), check what another Maintainer and a
//! Developer see, see a refused form come back as it was typed, reveal variables, revoke the token
//! and watch the next trigger get 404. Screenshots of each page go to `target/screenshots/`.

use crate::support::{ROOT_TOKEN, Repo, Server, python, send};
use reqwest::Method;
use std::path::PathBuf;
use std::process::Command;

const CONFIG: &str =
    "deploy:\n  script:\n    - echo \"step one for $DEPLOY_ENV\"\n    - sleep 3\n    - echo \"step two done\"\n";

/// A job that folds a section early, then logs a line every 0.1 s for 20 s (the live log test).
const LIVE_CONFIG: &str = r#"live:
  script:
    - |
      printf '\033[0Ksection_start:%s:prep[collapsed=true]\r\033[0KInstalling deps\n' "$(date +%s)"
      echo prep-detail
      printf '\033[0Ksection_end:%s:prep\r\033[0K\n' "$(date +%s)"
      for i in $(seq 1 200); do echo "line $i"; sleep 0.1; done
poke:
  when: manual
  script: [sleep 60]
"#;

#[tokio::test]
async fn the_trigger_workflow_in_a_real_browser() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("demo", repo.path()).await;
    let live_repo = Repo::with_files(&[(".gitlab-ci.yml", LIVE_CONFIG)]);
    let live_pid = s.project("live", live_repo.path()).await;
    for (name, level) in [("mia", 40), ("max", 40), ("dev", 30)] {
        let (status, user) = send(s.root(Method::POST, "/users").form(&[
            ("username", name),
            ("name", name),
            ("email", &format!("{name}@example.com")),
            ("password", "password123"),
        ]))
        .await;
        assert_eq!(status, 201, "{user}");
        s.add_member(pid, user["id"].as_u64().unwrap(), level).await;
        s.add_member(live_pid, user["id"].as_u64().unwrap(), level).await;
    }
    // Another Maintainer's token, which mia must see as 4 characters only.
    let (max_id, max_token) = s.user("max2").await;
    s.add_member(pid, max_id, 40).await;
    let (_, _) = s.trigger_token(&max_token, pid).await;
    // A release with long unbroken words, for the phone width.
    crate::support::git(repo.path(), &["tag", "v1.0"]);
    let long = "a-very-long-release-name-without-any-space-at-all-".repeat(3);
    let (status, release) = send(
        s.root(Method::POST, &format!("/projects/{pid}/releases"))
            .json(&serde_json::json!({
                "tag_name": "v1.0",
                "name": long,
                "description": format!("<script>alert(1)</script> {long}"),
                "assets": {"links": [{"name": "linux binary", "url": "https://example.com/linux"}]},
            })),
    )
    .await;
    assert_eq!(status, 201, "{release}");
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/browser_flow.py");
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .env("SPUR_URL", base)
            .env("SPUR_PROJECT", "root/demo")
            .env("SPUR_PROJECT_ID", pid.to_string())
            .env("SPUR_LIVE_PROJECT_ID", live_pid.to_string())
            .env("SPUR_SCREENSHOTS", shots)
            .env("SPUR_ROOT_TOKEN", ROOT_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only the ends of both streams: CI shows a failure's last lines, not the middle.
    assert!(
        out.status.success() && stdout.contains("browser flow OK"),
        "browser flow failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        tail(&stdout, 8),
        tail(&stderr, 16)
    );
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
