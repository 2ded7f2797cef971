//! Instructions per trigger (`cargo bench --bench trigger_instructions`): the one figure of the
//! trigger path this noisy machine keeps stable. Runs the release `spur` under Valgrind's
//! callgrind twice on fresh data dirs (executor off): both warm up with 20 triggers, then one
//! sends `SPUR_BENCH_TRIGGERS` (default 200) sequential valid trigger POSTs while the other idles
//! for as long; the difference of their instruction totals over the triggers is the cost of one
//! trigger, planning, the durable commit and the JSON answer included. Needs `valgrind`.
//! `SPUR_BENCH_CALLGRIND_OUT=<file>` keeps the busy run's profile; with an unstripped binary
//! (`CARGO_PROFILE_RELEASE_STRIP=false`, `SPUR_BENCH_BINARY`) `callgrind_annotate` reads it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{env_or, start_wrapped, wait_ready_for};
use std::path::Path;
use std::time::{Duration, Instant};

/// A typical small project's configuration: three stages, a `needs`, rules and variables.
const CONFIG: &str = "stages: [build, test, deploy]
variables:
  APP: spur
build:
  stage: build
  script: [make build]
  artifacts:
    paths: [out/]
test:
  stage: test
  needs: [build]
  script: [make test]
  rules:
    - if: $CI_PIPELINE_SOURCE == \"trigger\"
    - when: on_success
deploy:
  stage: deploy
  script: [make deploy]
  environment: production
  when: manual
";

fn main() {
    if !common::callgrind_bench("trigger_instructions") {
        return;
    }
    let triggers: u64 = env_or("SPUR_BENCH_TRIGGERS", 200).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (busy, elapsed) = rt.block_on(run(triggers, None));
    let (idle, _) = rt.block_on(run(0, Some(elapsed)));
    let per = busy.saturating_sub(idle) as f64 / triggers as f64;
    println!(
        "instructions: {busy} with {triggers} triggers, {idle} idle as long ({:.1} s); {:.0} instructions per trigger ({:.2} M)",
        elapsed.as_secs_f64(),
        per,
        per / 1e6
    );
}

/// Starts spur under callgrind, warms it up, sends `triggers` (or idles `idle_for`), stops it
/// with SIGTERM and answers its instruction total and how long the triggers took.
async fn run(triggers: u64, idle_for: Option<Duration>) -> (u64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repository(dir.path(), CONFIG);
    let data = dir.path().join("data");
    let out = dir.path().join("callgrind.out");
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let (mut child, base) = start_wrapped(
        &["valgrind", "--tool=callgrind", &out_arg],
        &data,
        &["--concurrent", "0", "--workers", "1"],
    );
    wait_ready_for(&base, Duration::from_secs(120)).await;
    let http = common::http_client();
    let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
    let url = format!("{base}/api/v4/projects/{pid}/trigger/pipeline");
    let send = |n: u64| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            for i in 0..n {
                common::trigger(&http, &url, &token, i).await;
            }
        }
    };
    send(20).await;
    let started = Instant::now();
    match idle_for {
        Some(d) => tokio::time::sleep(d).await,
        None => send(triggers).await,
    }
    let elapsed = started.elapsed();
    // SIGTERM: spur stops cleanly and callgrind writes its totals.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // `SPUR_BENCH_CALLGRIND_OUT`: keep the busy run's profile (for `callgrind_annotate`).
    if let (Ok(keep), None) = (std::env::var("SPUR_BENCH_CALLGRIND_OUT"), idle_for) {
        let _ = std::fs::copy(&out, keep);
    }
    (total_instructions(&out), elapsed)
}

/// The `summary:` (or `totals:`) line of a callgrind output file.
fn total_instructions(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("callgrind wrote its output");
    text.lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a summary line")
}
