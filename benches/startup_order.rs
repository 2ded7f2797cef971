//! The link order of start-up code (`cargo bench --bench startup_order`). The kernel maps a
//! binary's code in 64 KiB windows around each page a process touches, so the few thousand
//! functions that run when spur starts, scattered over 17 MB of code, kept about 9 MiB of it
//! resident in an idle server. `src/startup.order` lists them (mangled names, as the linker
//! sees them) and `build.rs` has the linker put them side by side in release builds, then
//! the functions a first trigger, API reads and job logs run.
//!
//! This bench runs the release binary under Valgrind's callgrind: twice on fresh data dirs from
//! start to the first answers and two seconds' idling (started as the benchmarks start it, and
//! as a user does), once the same on a data dir with history (finished pipelines, and pending
//! jobs the start recovers), once through a small workload. It
//! prints how many of the functions that ran are in `src/startup.order`: renamed functions and
//! new dependencies let the list go stale, and the idle memory `trigger_load` prints grows
//! back. `SPUR_BENCH_WRITE_ORDER=1` writes the list anew (start-up functions first, then those
//! only a start on history runs, then the workload's). Needs
//! `valgrind`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{start_env, wait_ready_for};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

const CONFIG: &str = "stages: [build, test]
build:
  stage: build
  script: [echo built]
test:
  stage: test
  needs: [build]
  script: [echo tested]
  rules:
    - if: $CI_PIPELINE_SOURCE == \"trigger\"
";

fn main() {
    if !common::callgrind_bench("startup_order") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Start-up as the benchmarks start spur and as a user does (root's token generated, the
    // default log filter): each runs a few functions of its own.
    let mut startup = rt.block_on(run(Phase::Start { bench_env: true }));
    startup.extend(rt.block_on(run(Phase::Start { bench_env: false })));
    // What only a start on history runs comes right after, so that a fresh start's code stays
    // as dense as it was.
    let restart = rt.block_on(run(Phase::Restart));
    let history: BTreeSet<String> = restart.difference(&startup).cloned().collect();
    startup.extend(history.iter().cloned());
    let all = rt.block_on(run(Phase::Workload));
    let workload: BTreeSet<&String> = all.iter().filter(|f| !startup.contains(*f)).collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/startup.order");
    let listed: BTreeSet<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let covered = |set: &mut dyn Iterator<Item = &String>| {
        let names: Vec<&String> = set.collect();
        let hit = names.iter().filter(|n| listed.contains(**n)).count();
        (hit, names.len())
    };
    let (s_hit, s_all) = covered(&mut startup.iter());
    let (w_hit, w_all) = covered(&mut workload.iter().copied());
    println!(
        "start-up functions in src/startup.order: {s_hit} of {s_all} ({:.1} %); workload functions: {w_hit} of {w_all} ({:.1} %)",
        100.0 * s_hit as f64 / s_all.max(1) as f64,
        100.0 * w_hit as f64 / w_all.max(1) as f64
    );
    if std::env::var("SPUR_BENCH_WRITE_ORDER").is_ok_and(|v| v == "1") {
        let mut text = String::new();
        let fresh = startup.iter().filter(|f| !history.contains(*f));
        for name in fresh.chain(history.iter()).chain(workload.iter().copied()) {
            text.push_str(name);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        println!("wrote {} functions to {}", s_all + w_all, path.display());
    }
}

/// What a profiled run does.
#[derive(Clone, Copy)]
enum Phase {
    /// Starts, answers its first requests and idles.
    Start { bench_env: bool },
    /// Starts on a data dir with history (one finished pipeline, the jobs of others pending,
    /// no executor) and idles: reading what is there and recovering unfinished jobs.
    Restart,
    /// Starts, then makes a project, triggers pipelines, runs their jobs and reads them.
    Workload,
}

/// Runs spur under callgrind through `phase` and answers the mangled names of the functions of
/// its binary that ran.
async fn run(phase: Phase) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repository(dir.path(), CONFIG);
    let data = dir.path().join("data");
    let out = dir.path().join("callgrind.out");
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let wrapper = ["valgrind", "--tool=callgrind", "--demangle=no", &out_arg];
    let bench_env = !matches!(phase, Phase::Start { bench_env: false });
    let mut extra: &[&str] = &[];
    if matches!(phase, Phase::Restart) {
        history(&data, &repo).await;
        extra = &["--concurrent", "0"];
    }
    let (mut child, base) = start_env(&wrapper, &data, extra, bench_env);
    // Health probes are what an idle server answers most; the benchmarks wait on the version.
    for probe in ["liveness", "readiness"] {
        let url = format!("{base}/-/{probe}");
        while common::http_client().get(&url).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if bench_env {
        wait_ready_for(&base, Duration::from_secs(120)).await;
    }
    if matches!(phase, Phase::Workload) {
        let http = common::http_client();
        let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{base}/api/v4/{path}");
            async move {
                let answer = http
                    .get(url)
                    .header("PRIVATE-TOKEN", common::ROOT_TOKEN)
                    .send()
                    .await
                    .unwrap();
                answer.text().await.unwrap_or_default()
            }
        };
        let url = format!("{base}/api/v4/projects/{pid}/trigger/pipeline");
        for i in 0..5 {
            common::trigger(&http, &url, &token, i).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        for path in [
            format!("projects/{pid}/pipelines"),
            format!("projects/{pid}/pipelines/1"),
            format!("projects/{pid}/pipelines/1/jobs"),
            format!("projects/{pid}/jobs/1/trace"),
            "version".to_string(),
        ] {
            get(path).await;
        }
    } else {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop(&mut child);
    executed_functions(&out)
}

/// Fills `data` with the history `Phase::Restart` starts on, then stops the server.
async fn history(data: &Path, repo: &Path) {
    let (mut child, base) = start_env(&[], data, &["--concurrent", "0"], true);
    wait_ready_for(&base, Duration::from_secs(10)).await;
    let http = common::http_client();
    let (pid, token) = common::project_with_trigger(&http, &base, repo).await;
    let url = format!("{base}/api/v4/projects/{pid}/trigger/pipeline");
    for i in 0..5 {
        common::trigger(&http, &url, &token, i).await;
    }
    http.post(format!("{base}/api/v4/projects/{pid}/pipelines/1/cancel"))
        .header("PRIVATE-TOKEN", common::ROOT_TOKEN)
        .send()
        .await
        .unwrap();
    stop(&mut child);
}

/// Stops a server as an operator does (SIGTERM) and waits for it.
fn stop(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The functions of the `spur` object named in a callgrind profile (each `fn=` block is one
/// that ran). Names and objects are compressed: `(id) name` defines, `(id)` refers.
fn executed_functions(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("callgrind wrote its output");
    let (mut objects, mut functions) = (HashMap::new(), HashMap::new());
    let mut in_spur = false;
    let mut out = BTreeSet::new();
    let define = |table: &mut HashMap<String, String>, rest: &str| -> Option<String> {
        let rest = rest.strip_prefix('(')?;
        let (id, name) = rest.split_once(')')?;
        let name = name.trim();
        if !name.is_empty() {
            table.insert(id.to_string(), name.to_string());
        }
        table.get(id).cloned()
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("ob=") {
            in_spur = define(&mut objects, rest).is_some_and(|o| o.ends_with("/spur"));
        } else if let Some(rest) = line.strip_prefix("cob=") {
            define(&mut objects, rest);
        } else if let Some(rest) = line.strip_prefix("fn=") {
            // `name'2` is callgrind's name for a recursion level; `0x...` and `(below main)`
            // are code without a symbol.
            if let Some(name) = define(&mut functions, rest).filter(|_| in_spur) {
                let name = name.split_once('\'').map_or(name.as_str(), |(n, _)| n);
                if !name.starts_with("0x") && !name.starts_with('(') {
                    out.insert(name.to_string());
                }
            }
        } else if let Some(rest) = line.strip_prefix("cfn=") {
            define(&mut functions, rest);
        }
    }
    out
}
