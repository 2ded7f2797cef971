//! GitLab runner protocol benchmark (`cargo bench --bench runner_protocol`), against the
//! release binary on a fresh data dir each run, built-in executor off:
//! 1. trigger to job payload: a protocol-level runner holds a long poll (`last_update`); the
//!    client notes the time, creates a pipeline, and the latency ends when the runner has the
//!    201 job payload (its start stored durably); the runner then reports success. One pipeline
//!    at a time (`SPUR_BENCH_TRIGGERS`, default 200 per run);
//! 2. drain: 20 pipelines of 50 jobs queued first, then 4 runners each loop request → one log
//!    patch → `success`; jobs per second until all 1,000 are done.
//!
//! `SPUR_BENCH_RUNS` (default 3) repeats each part; medians are printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{ROOT_TOKEN, env_or, kill, median, post_as_root, rounded, start, wait_ready};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("runner_protocol: run with `cargo bench --bench runner_protocol`");
        return;
    }
    let runs: usize = env_or("SPUR_BENCH_RUNS", 3).max(1);
    let triggers: usize = env_or("SPUR_BENCH_TRIGGERS", 200).max(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut p50s, mut p99s, mut rates) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let mut lat = rt.block_on(latency_run(triggers));
        lat.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "latency run {run}: {} pipelines, trigger to job payload p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        p50s.push(pct(0.5));
        p99s.push(pct(0.99));
        let rate = rt.block_on(drain_run());
        println!("drain run {run}: 1000 jobs through 4 runners at {rate:.0} jobs/s");
        rates.push(rate);
    }
    println!(
        "trigger to job payload, median of {runs} runs: p50 {:.2} ms {:?}, p99 {:.2} ms {:?}",
        median(&mut p50s),
        rounded(&p50s),
        median(&mut p99s),
        rounded(&p99s)
    );
    println!(
        "drain, median of {runs} runs: {:.0} jobs/s {:?}",
        median(&mut rates),
        rounded(&rates)
    );
}

struct Fixture {
    child: std::process::Child,
    base: String,
    project: u64,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn fixture(config: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repository(dir.path(), config);
    let (child, base) = start(&dir.path().join("data"), &["--concurrent", "0"]);
    wait_ready(&base).await;
    let http = common::http_client();
    let p = post_as_root(
        &http,
        &format!("{base}/api/v4/projects"),
        &[("name", "bench"), ("import_url", repo.to_str().unwrap())],
    )
    .await;
    Fixture {
        child,
        base,
        project: p["id"].as_u64().unwrap(),
        http,
        _dir: dir,
    }
}

impl Fixture {
    async fn runner(&self) -> String {
        let body: Value = self
            .http
            .post(format!("{}/api/v4/user/runners", self.base))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .json(&json!({"runner_type": "instance_type", "run_untagged": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    async fn pipeline(&self) -> u64 {
        let url = format!("{}/api/v4/projects/{}/pipeline", self.base, self.project);
        post_as_root(&self.http, &url, &[("ref", "main")]).await["id"]
            .as_u64()
            .unwrap()
    }
}

/// One `POST /jobs/request`; the job on 201.
async fn request(http: &reqwest::Client, base: &str, token: &str) -> Option<Value> {
    let resp = http
        .post(format!("{base}/api/v4/jobs/request"))
        .json(&json!({"token": token, "last_update": "0", "info": {"name": "bench"}}))
        .send()
        .await
        .unwrap();
    if resp.status() == 201 {
        Some(resp.json().await.unwrap())
    } else {
        None
    }
}

async fn finish(http: &reqwest::Client, base: &str, job: &Value) {
    let token = job["token"].as_str().unwrap();
    let patch = http
        .patch(format!("{base}/api/v4/jobs/{}/trace", job["id"]))
        .header("JOB-TOKEN", token)
        .header("Content-Range", "0-5")
        .body("bench\n")
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 202);
    let put = http
        .put(format!("{base}/api/v4/jobs/{}", job["id"]))
        .json(&json!({"token": token, "state": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
}

async fn latency_run(triggers: usize) -> Vec<f64> {
    let f = fixture("job:\n  script: [echo hi]\n").await;
    let token = f.runner().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (http, base) = (f.http.clone(), f.base.clone());
    let runner = tokio::spawn(async move {
        loop {
            if let Some(job) = request(&http, &base, &token).await {
                if tx.send((Instant::now(), job.clone())).is_err() {
                    return;
                }
                finish(&http, &base, &job).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(triggers);
    for i in 0..triggers + 5 {
        let sent = Instant::now();
        f.pipeline().await;
        let (got, _) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if i >= 5 {
            latencies.push(got.duration_since(sent).as_secs_f64() * 1000.0);
        }
    }
    runner.abort();
    kill(f.child);
    latencies
}

async fn drain_run() -> f64 {
    let f = fixture("job:\n  parallel: 50\n  script: [echo hi]\n").await;
    for _ in 0..20 {
        f.pipeline().await;
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (all_done, finished) = tokio::sync::oneshot::channel();
    let all_done = std::sync::Arc::new(std::sync::Mutex::new(Some(all_done)));
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(f.runner().await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for token in tokens {
        let (http, base, done, all_done) = (f.http.clone(), f.base.clone(), done.clone(), all_done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Some(job) = request(&http, &base, &token).await {
                    finish(&http, &base, &job).await;
                    if done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 1000
                        && let Some(tx) = all_done.lock().unwrap().take()
                    {
                        let _ = tx.send(Instant::now());
                    }
                }
            }
        }));
    }
    // The last runners stay in their long poll once the queue is empty: time the 1000th job.
    let ended = tokio::time::timeout(Duration::from_secs(300), finished)
        .await
        .unwrap()
        .unwrap();
    for t in tasks {
        t.abort();
    }
    let rate = 1000.0 / ended.duration_since(started).as_secs_f64();
    kill(f.child);
    rate
}
