//! `spur ci plan`: the planner from the command line, on the spec's case folders.

use serde_json::Value;
use std::process::Command;

fn plan(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spur"))
        .args(["ci", "plan"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn case(name: &str) -> String {
    format!(
        "{}/tests/data/ci-cases/{name}/.gitlab-ci.yml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn names(report: &Value) -> Vec<&str> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect()
}

#[test]
fn plans_for_each_source_and_variables() {
    let config = case("01-rules-source-trigger");
    let (code, report, _) = plan(&[&config, "--source", "trigger"]);
    assert_eq!(code, 0);
    assert_eq!(report["created"], true);
    assert_eq!(names(&report), vec!["build-on-trigger", "test-always"]);
    assert_eq!(report["stages"], serde_json::json!(["build", "test"]));
    assert_eq!(report["jobs"][0]["needs"], Value::Null);
    assert_eq!(report["jobs"][0]["variables"]["CI_PIPELINE_SOURCE"], "trigger");
    let (_, report, _) = plan(&[&config]);
    assert_eq!(
        names(&report),
        vec!["build-on-push", "test-always"],
        "the default source is push"
    );
    // pipeline and project variables reach rules and jobs
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&config, "always:\n  script: x\ndeploy:\n  script: x\n  variables: {TARGET: $ENV_NAME}\n  rules:\n    - if: $DEPLOY == \"yes\"\n").unwrap();
    let config = config.to_str().unwrap();
    let (_, report, _) = plan(&[config, "--source", "trigger"]);
    assert_eq!(names(&report), vec!["always"]);
    let (_, report, _) = plan(&[
        config,
        "--source",
        "trigger",
        "--var",
        "DEPLOY=yes",
        "--project-var",
        "ENV_NAME=prod",
    ]);
    assert_eq!(names(&report), vec!["always", "deploy"]);
    assert_eq!(report["jobs"][1]["variables"]["TARGET"], "prod");
}

#[test]
fn filtered_and_invalid_configs_report_created_false() {
    let (code, report, _) = plan(&[&case("15-workflow-blocks-push"), "--source", "push"]);
    assert_eq!(code, 0, "a plan was printed");
    assert_eq!(report["created"], false);
    assert!(report["error"].as_str().unwrap().contains("workflow"), "{report}");
    let (code, report, _) = plan(&[&case("37-extends-unknown"), "--source", "trigger"]);
    assert_eq!(code, 0);
    assert!(
        report["error"].as_str().unwrap().contains("unknown keys in `extends`"),
        "{report}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (code, report, stderr) = plan(&["/no/such/.gitlab-ci.yml"]);
    assert_eq!((code, report), (2, Value::Null));
    assert!(stderr.contains("cannot read"), "{stderr}");
    let (code, _, stderr) = plan(&[&case("01-rules-source-trigger"), "--var", "NOEQUALS"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn inputs_come_from_the_command_line() {
    let config = case("143-pipeline-inputs");
    let (code, report, _) = plan(&[
        &config,
        "--source",
        "api",
        "--input",
        "deploy=true",
        "--input",
        "region=us",
    ]);
    assert_eq!(code, 0);
    assert_eq!(names(&report), vec!["build", "deploy"]);
    let (_, report, _) = plan(&[&config, "--source", "api"]);
    assert_eq!(names(&report), vec!["build"], "the defaults");
    let (_, report, _) = plan(&[&config, "--input", "deploy=maybe"]);
    assert_eq!(report["created"], false);
    assert_eq!(report["error"], "`deploy` input: provided value is not a boolean");
}

#[test]
fn the_project_server_and_other_projects_come_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    // A templates project: a git checkout whose v1 tag differs from its working tree.
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(templates.join("templates")).unwrap();
    let git = |args: &[&str]| crate::support::git(&templates, args);
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(templates.join("ci.yml"), "from-v1:\n  script: echo\n").unwrap();
    std::fs::write(
        templates.join("templates/lint.yml"),
        "component-lint:\n  script: lint\n",
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "v1"]);
    git(&["tag", "1.0.0"]);
    std::fs::write(templates.join("ci.yml"), "from-worktree:\n  script: echo\n").unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let config = app.join(".gitlab-ci.yml");
    std::fs::write(
        &config,
        "include:
  - project: shared/templates
    ref: 1.0.0
    file: ci.yml
  - component: $CI_SERVER_FQDN/shared/templates/lint@~latest
where:
  script: echo
  rules:
    - if: $CI_PROJECT_PATH == \"team/app\" && $CI_SERVER_HOST == \"ci.example.com\" && $CI_COMMIT_REF_PROTECTED == \"true\"
mr-only:
  script: echo
  rules:
    - if: $CI_MERGE_REQUEST_TARGET_BRANCH_NAME == \"develop\"
",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let mapping = format!("shared/templates={}", templates.display());
    let (code, report, stderr) = plan(&[
        config,
        "--project-path",
        "team/app",
        "--server-url",
        "https://ci.example.com:8443",
        "--protected",
        "--project-dir",
        &mapping,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&report), vec!["from-v1", "component-lint", "where"], "{report}");
    assert_eq!(report["jobs"][2]["variables"]["CI_SERVER_FQDN"], "ci.example.com:8443");
    // Without the mapping, the error says how to give one.
    let (_, report, _) = plan(&[config]);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("--project-dir shared/templates=DIR"),
        "{report}"
    );
    // A merge-request pipeline: implicit only: [branches, tags] drops nothing here (rules), and
    // the MR's variables are set.
    let (_, report, _) = plan(&[
        config,
        "--project-dir",
        &mapping,
        "--source",
        "merge_request_event",
        "--ref",
        "feature",
        "--mr-target-branch",
        "develop",
    ]);
    assert_eq!(names(&report), vec!["mr-only"], "{report}");
    assert!(report["jobs"][0]["variables"].get("CI_COMMIT_BRANCH").is_none());
}

#[test]
fn remote_includes_can_come_from_a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let vendored = dir.path().join("vendored");
    std::fs::create_dir_all(vendored.join("ci")).unwrap();
    std::fs::write(vendored.join("ci/lint.yml"), "remote-lint:\n  script: lint\n").unwrap();
    let config = dir.path().join(".gitlab-ci.yml");
    std::fs::write(
        &config,
        "include:\n  - remote: https://example.com/raw/ci/lint.yml\nown:\n  script: x\n",
    )
    .unwrap();
    let mapping = format!("https://example.com/raw={}", vendored.display());
    let (code, report, _) = plan(&[config.to_str().unwrap(), "--remote-dir", &mapping]);
    assert_eq!(code, 0);
    assert_eq!(names(&report), vec!["remote-lint", "own"], "{report}");
}
