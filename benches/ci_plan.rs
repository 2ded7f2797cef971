//! Planner benchmark (`cargo bench --bench ci_plan`): a 1 MiB `.gitlab-ci.yml` whose header
//! declares inputs, used in every job (names, stages, scripts, variables, rules) and passed
//! to an included template through `include:inputs`, planned in-process from text to jobs.
//! Then a 5,000-line configuration spread over 40 local includes (rules, `extends`,
//! `only`/`except`, matrices, `needs`), as real projects write them. Prints the median,
//! fastest and slowest of `SPUR_BENCH_RUNS` (default 21) plans of each. Target for both: under
//! 50 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use spur::ci_config::plan::{Context, plan};
use spur::ci_config::yaml::{Mapping, Yaml};
use std::time::Instant;

/// The configuration: a header, then jobs until the text passes `size` bytes.
fn config(size: usize) -> String {
    let mut text = String::from(
        "spec:
  inputs:
    environment:
      options: [staging, production]
      default: staging
    replicas:
      type: number
      default: 2
    image:
      default: debian:bookworm
    suffix:
      regex: ^[a-z]+$
      default: main
---
stages: [build, test, deploy]
include:
  - local: templates/deploy.yml
    inputs:
      environment: $[[ inputs.environment ]]
variables:
  IMAGE: $[[ inputs.image ]]
",
    );
    let mut i = 0;
    while text.len() < size {
        text.push_str(&format!(
            "job-{i}-$[[ inputs.suffix ]]:
  stage: $[[ inputs.environment | truncate(0, 0) ]]test
  image: $[[ inputs.image ]]
  variables:
    TARGET: $[[ inputs.environment ]]-{i}
    REPLICAS: \"$[[ inputs.replicas ]]\"
  rules:
    - if: $CI_PIPELINE_SOURCE == \"api\" && \"$[[ inputs.environment ]]\" == \"production\"
      when: manual
    - when: on_success
  script:
    - echo building {i} for $[[ inputs.environment ]] with $[[ inputs.replicas ]] replicas
    - ./run --suffix $[[ inputs.suffix | posix_escape ]] --image $[[ inputs.image ]]
"
        ));
        i += 1;
    }
    text
}

const TEMPLATE: &str = "spec:
  inputs:
    environment:
---
deploy-$[[ inputs.environment ]]:
  stage: deploy
  script: ./deploy $[[ inputs.environment ]]
";

/// A real-world-shaped configuration: `.gitlab-ci.yml` with `workflow:rules`, defaults and
/// templates, including 40 files of jobs, until the whole passes `lines` lines.
fn included_config(lines: usize) -> Vec<(String, String)> {
    let mut main = String::from(
        "workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"
    - if: $CI_COMMIT_BRANCH
    - if: $CI_COMMIT_TAG
stages: [prepare, build, test, package, deploy]
default:
  image: debian:bookworm
  retry: 1
variables:
  GIT_DEPTH: \"10\"
.rules-default: &rules-default
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"
      changes: [src/**/*, Cargo.toml]
    - when: manual
      allow_failure: true
.build-template:
  stage: build
  before_script: [echo setup]
  cache:
    key: $CI_COMMIT_REF_SLUG
    paths: [target/]
include:
",
    );
    for i in 0..40 {
        main.push_str(&format!("  - local: ci/part-{i}.yml\n"));
    }
    let mut files = vec![(".gitlab-ci.yml".to_string(), main)];
    let mut total: usize = files[0].1.lines().count();
    let mut job = 0;
    let mut part = 0;
    let mut parts: Vec<String> = vec![String::new(); 40];
    while total < lines {
        let text = match job % 4 {
            0 => format!(
                "build-{job}:\n  extends: .build-template\n  script:\n    - cargo build --package p{job}\n    - echo done\n  artifacts:\n    paths: [target/p{job}]\n"
            ),
            1 => format!(
                "test-{job}:\n  stage: test\n  <<: *rules-default\n  needs: [build-{}]\n  script: [cargo test -p p{job}]\n  variables:\n    RUST_LOG: debug\n",
                job - 1
            ),
            2 => format!(
                "matrix-{job}:\n  stage: test\n  parallel:\n    matrix:\n      - OS: [linux, mac]\n        ARCH: [x86, arm]\n  script: [echo $OS $ARCH]\n  only: [branches]\n  except:\n    variables: [$SKIP_MATRIX]\n"
            ),
            _ => format!(
                "deploy-{job}:\n  stage: deploy\n  script: [deploy {job}]\n  rules:\n    - if: $CI_COMMIT_TAG =~ /^v\\d+/\n      when: manual\n    - if: $CI_COMMIT_BRANCH == \"main\"\n  environment: production\n"
            ),
        };
        total += text.lines().count();
        parts[part % 40].push_str(&text);
        part += 1;
        job += 1;
    }
    // The first file holds the anchor the others use (anchors do not cross files).
    for (i, text) in parts.into_iter().enumerate() {
        let text = format!(
            ".rules-default: &rules-default\n  rules:\n    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH\n    - when: manual\n      allow_failure: true\n{text}"
        );
        files.push((format!("ci/part-{i}.yml"), text));
    }
    files
}

fn time_plans(
    label: &str,
    runs: usize,
    source: &dyn spur::ci_config::compose::FileSource,
    files: &[String],
    ctx: &Context,
) {
    let first = plan(source, files, ctx).unwrap_or_else(|e| panic!("{label}: {e:?}"));
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let planned = plan(source, files, ctx).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(planned.jobs.len(), first.jobs.len());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{label}: {} jobs; median {:.1} ms, fastest {:.1} ms, slowest {:.1} ms over {runs} plans (target: under 50 ms)",
        first.jobs.len(),
        times[runs / 2],
        times[0],
        times[runs - 1]
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ci_plan: run with `cargo bench --bench ci_plan`");
        return;
    }
    let runs: usize = std::env::var("SPUR_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let text = config(1 << 20);
    let files = vec![".gitlab-ci.yml".to_string(), "templates/deploy.yml".to_string()];
    let source = |path: &str| match path {
        ".gitlab-ci.yml" => Some(text.clone()),
        "templates/deploy.yml" => Some(TEMPLATE.to_string()),
        _ => None,
    };
    let mut inputs = Mapping::default();
    inputs.insert("environment".into(), Yaml::Str("production".into()));
    let ctx = Context {
        source: "api".into(),
        ref_name: "main".into(),
        default_branch: "main".into(),
        project_path: "group/project".into(),
        project_id: 1,
        sha: "0".repeat(40),
        before_sha: "0".repeat(40),
        inputs,
        ..Context::default()
    };
    let first = plan(&source, &files, &ctx).expect("the configuration plans");
    let blocks = text.matches("$[[").count();
    println!(
        "ci_plan: {:.2} MiB configuration, {blocks} interpolation blocks, {} jobs planned",
        text.len() as f64 / 1048576.0,
        first.jobs.len()
    );
    time_plans("ci_plan, 1 MiB with inputs", runs, &source, &files, &ctx);

    let repo = included_config(5_000);
    let lines: usize = repo.iter().map(|(_, t)| t.lines().count()).sum();
    let paths: Vec<String> = repo.iter().map(|(p, _)| p.clone()).collect();
    let read = |path: &str| repo.iter().find(|(p, _)| p == path).map(|(_, t)| t.clone());
    println!("ci_plan: {lines} lines in {} files", repo.len());
    let push = Context {
        source: "push".into(),
        inputs: Mapping::default(),
        ..ctx.clone()
    };
    time_plans("ci_plan, 40 local includes", runs, &read, &paths, &push);
}
