//! Memory under a mixed load (`cargo bench --bench mixed_load`): whether spur's resident memory
//! stays flat while it serves a steady mix of what a team sends it. A project whose finished
//! jobs left logs; four signed-in browser sessions (signed in before anything is measured:
//! each argon2 sign-in takes ~19 MiB by design); then 8 clients for 60 s
//! (`SPUR_BENCH_SECONDS`), each cycling through a trigger (its job waits as `manual`, so the
//! executor stays idle), API reads of pipelines and jobs, API and raw log reads, and page views
//! of the pipelines list, a pipeline and a job. A first 10 s of the same load warms the
//! server up; resident memory is then sampled every second. Prints, for each of
//! `SPUR_BENCH_RUNS` (default 3) runs on a fresh server, the resident memory after the
//! warm-up, the lowest and highest sample, the last, and the rise (highest minus after the
//! warm-up), and the medians over runs. Every answer must be a success.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ROOT_TOKEN, env_or, kill, median, rounded, rss_kib, start, wait_ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Jobs run on plain pipelines (to leave logs) and wait as `manual` on the load's triggers.
const CONFIG: &str = "build:
  script: [\"seq 1 3000\"]
  rules:
    - if: $LOAD
      when: manual
    - when: on_success
";

const CLIENTS: usize = 8;
const LOGGED_JOBS: u64 = 3;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("mixed_load: run with `cargo bench --bench mixed_load`");
        return;
    }
    let runs: usize = env_or("SPUR_BENCH_RUNS", 3).max(1);
    let seconds: u64 = env_or("SPUR_BENCH_SECONDS", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rises = Vec::new();
    let mut warmed = Vec::new();
    let mut rates = Vec::new();
    for run in 1..=runs {
        let r = rt.block_on(one_run(seconds));
        println!(
            "run {run}: {} requests in {seconds} s ({:.0}/s, {} triggers); RSS idle {:.1} MiB, after warm-up {:.1}, during load {:.1}-{:.1}, last {:.1}, rise {:.1} MiB (heap and stacks {:+.1}, mapped files {:+.1} from the warm-up to the end)",
            r.requests,
            r.requests as f64 / seconds as f64,
            r.triggers,
            r.idle,
            r.warmed,
            r.low,
            r.high,
            r.last,
            r.high - r.warmed,
            r.anon_change,
            r.file_change
        );
        rises.push(r.high - r.warmed);
        warmed.push(r.warmed);
        rates.push(r.requests as f64 / seconds as f64);
    }
    println!(
        "median of {runs} runs ({CLIENTS} clients, {seconds} s): {:.0} requests/s; RSS after warm-up {:.1} MiB; rise during the load {:.1} MiB {:?}",
        median(&mut rates),
        median(&mut warmed),
        median(&mut rises),
        rounded(&rises)
    );
}

struct RunResult {
    requests: u64,
    triggers: u64,
    idle: f64,
    warmed: f64,
    low: f64,
    high: f64,
    last: f64,
    anon_change: f64,
    file_change: f64,
}

async fn one_run(seconds: u64) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repository(dir.path(), CONFIG);
    let (child, base) = start(&dir.path().join("data"), &["--concurrent", "2"]);
    wait_ready(&base).await;
    let http = common::http_client();
    let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
    let url = format!("{base}/api/v4/projects/{pid}/trigger/pipeline");
    for i in 0..LOGGED_JOBS {
        common::trigger(&http, &url, &token, i).await;
    }
    wait_finished(&http, &base, pid).await;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(common::sign_in(&base).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = mib(child.id());
    let load = Arc::new(Load {
        base,
        pid,
        token,
        sessions,
        requests: AtomicU64::new(0),
        triggers: AtomicU64::new(0),
    });
    drive(&load, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warmed = mib(child.id());
    let parts_warmed = parts(child.id());
    let (requests_before, triggers_before) = (
        load.requests.load(Ordering::Relaxed),
        load.triggers.load(Ordering::Relaxed),
    );
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let pid = child.id();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                samples.push(mib(pid));
            }
            samples
        })
    };
    drive(&load, Duration::from_secs(seconds)).await;
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let parts_end = parts(child.id());
    kill(child);
    RunResult {
        requests: load.requests.load(Ordering::Relaxed) - requests_before,
        triggers: load.triggers.load(Ordering::Relaxed) - triggers_before,
        idle,
        warmed,
        low: samples.iter().copied().fold(f64::MAX, f64::min),
        high: samples.iter().copied().fold(0.0, f64::max),
        last: samples.last().copied().unwrap_or(0.0),
        anon_change: parts_end.0 - parts_warmed.0,
        file_change: parts_end.1 - parts_warmed.1,
    }
}

fn mib(pid: u32) -> f64 {
    rss_kib(pid) as f64 / 1024.0
}

/// Resident anonymous memory (heap, stacks) and mapped files (code, libraries), in MiB.
fn parts(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// Waits until the first pipelines' jobs have finished and left their logs.
async fn wait_finished(http: &reqwest::Client, base: &str, pid: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let jobs: serde_json::Value = http
            .get(format!("{base}/api/v4/projects/{pid}/jobs"))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let done = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["status"] == "success")
            .count();
        if done as u64 >= LOGGED_JOBS {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the first jobs did not finish");
}

/// What the clients share.
struct Load {
    base: String,
    pid: u64,
    token: String,
    sessions: Vec<String>,
    requests: AtomicU64,
    triggers: AtomicU64,
}

/// Runs the clients for `length`.
async fn drive(load: &Arc<Load>, length: Duration) {
    let until = Instant::now() + length;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let load = load.clone();
        clients.push(tokio::spawn(async move {
            let http = common::http_client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let session = &load.sessions[client % load.sessions.len()];
            let mut step = client;
            while Instant::now() < until {
                request(&http, &load, session, step).await;
                step += 1;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
}

/// Sends the `step`th request of the cycle and checks it succeeded.
async fn request(http: &reqwest::Client, load: &Load, session: &str, step: usize) {
    let (base, pid) = (&load.base, load.pid);
    let job = 1 + step as u64 % LOGGED_JOBS;
    let api = |path: String| {
        http.get(format!("{base}/api/v4/projects/{pid}/{path}"))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
    };
    let page = |path: String| {
        http.get(format!("{base}/root/bench/-/{path}"))
            .header("Cookie", session)
    };
    let sent = match step % 8 {
        0 => {
            load.triggers.fetch_add(1, Ordering::Relaxed);
            http.post(format!("{base}/api/v4/projects/{pid}/trigger/pipeline"))
                .form(&[
                    ("token", load.token.as_str()),
                    ("ref", "main"),
                    ("variables[LOAD]", "1"),
                ])
        }
        1 => api("pipelines?per_page=20".into()),
        2 => api("jobs?per_page=20".into()),
        3 => api(format!("jobs/{job}/trace")),
        4 => page("pipelines".into()),
        5 => page(format!("pipelines/{job}")),
        6 => page(format!("jobs/{job}")),
        _ => page(format!("jobs/{job}/raw")),
    };
    let resp = sent.send().await.unwrap();
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert!(
        status.is_success(),
        "step {}: {status} {}",
        step % 8,
        String::from_utf8_lossy(&body)
    );
    load.requests.fetch_add(1, Ordering::Relaxed);
}
