//! Planner benchmark (`cargo bench --bench ci_plan`): a 1 MiB `.gitlab-ci.yml` whose header
//! declares inputs, used in every job (names, stages, scripts, variables, rules) and passed
//! to an included template through `include:inputs`, planned in-process from text to jobs.
//! Prints the median, fastest and slowest of `SPUR_BENCH_RUNS` (default 21) plans. Issue 17's
//! target: under 50 ms.

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
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let planned = plan(&source, &files, &ctx).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(planned.jobs.len(), first.jobs.len());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "ci_plan: median {:.1} ms, fastest {:.1} ms, slowest {:.1} ms over {runs} plans (target: under 50 ms)",
        times[runs / 2],
        times[0],
        times[runs - 1]
    );
}
