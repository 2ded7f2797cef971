//! Pipeline engine benchmark (`cargo bench --bench pipeline_engine`), against the release binary
//! on a fresh data dir each run:
//! 1. trigger to first script line: the client notes the time, POSTs a trigger, and the job's
//!    first script line prints bash's `$EPOCHREALTIME` into its log; one trigger at a time with
//!    idle executors (`SPUR_BENCH_TRIGGERS`, default 200 per run), measured with the default
//!    isolation (Landlock, and a uid per job as root) and with `--job-sandbox none` in
//!    alternating runs, so the sandbox's cost is a difference taken in the same hour;
//! 2. log ingestion: one job prints 1 GiB (`yes ... | head -c 1073741824`) with the log cap at
//!    2 GiB; its duration and the server's peak resident memory against its idle memory;
//! 3. fan-out: 50 pipelines of 20 jobs triggered at once; the time until all are final and the
//!    most jobs seen running at once (from the jobs' start and end times) against `--concurrent`.
//!
//! 4. container start (`SPUR_BENCH_ONLY=container` only; it needs podman): part 1 for a job
//!    with `image:` (a local image of the host's bash and busybox, `pull_policy: never`) with
//!    `--job-engine podman` and `--job-engine none` (the same job on the host) in alternating
//!    runs; the difference of the p50s is what a container adds. Set `CONTAINERS_CONF` as the
//!    host needs (on these VMs: `tests/containers.conf`).
//!
//! `SPUR_BENCH_RUNS` (default 3) repeats each part; medians are printed. `SPUR_BENCH_ONLY=latency`
//! or `fanout` runs one part alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{ROOT_TOKEN, env_or, kill, median, rounded, rss_kib, start, wait_ready};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONCURRENT: usize = 2;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline_engine: run with `cargo bench --bench pipeline_engine`");
        return;
    }
    let runs: usize = env_or("SPUR_BENCH_RUNS", 3).max(1);
    let triggers: usize = env_or("SPUR_BENCH_TRIGGERS", 200).max(10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let only = std::env::var("SPUR_BENCH_ONLY").unwrap_or_default();
    if only == "container" {
        container_start(&rt, runs, triggers);
        return;
    }
    // The two isolation settings alternate run by run, so the machine's drift hits both alike.
    let modes = ["landlock", "none"];
    let latency_runs = if only.is_empty() || only == "latency" { runs } else { 0 };
    let (mut p50s, mut p99s) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for run in 1..=latency_runs {
        for (m, sandbox) in modes.iter().enumerate() {
            let mut lat = rt.block_on(latency_run(triggers, sandbox));
            lat.sort_by(|a, b| a.total_cmp(b));
            let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
            println!(
                "latency run {run} (--job-sandbox {sandbox}): {} triggers, trigger to first script line p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                lat.len(),
                pct(0.50),
                pct(0.99),
                pct(1.0)
            );
            p50s[m].push(pct(0.50));
            p99s[m].push(pct(0.99));
        }
    }
    if latency_runs > 0 {
        let mut diffs: Vec<f64> = p50s[0].iter().zip(&p50s[1]).map(|(a, b)| a - b).collect();
        for (m, sandbox) in modes.iter().enumerate() {
            println!(
                "trigger to first script line (--job-sandbox {sandbox}), median of {runs} runs: p50 {:.2} ms {:?}, p99 {:.2} ms {:?}",
                median(&mut p50s[m]),
                rounded(&p50s[m]),
                median(&mut p99s[m]),
                rounded(&p99s[m])
            );
        }
        println!(
            "the Landlock fence's cost (p50 landlock - p50 none, per pair of runs): median {:.2} ms {:?}",
            median(&mut diffs),
            rounded(&diffs)
        );
    }
    if only == "latency" {
        return;
    }

    let (mut secs, mut rates, mut growth) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=if only == "fanout" { 0 } else { runs } {
        let r = rt.block_on(ingestion_run());
        println!(
            "ingestion run {run}: 1 GiB log in {:.2} s = {:.0} MB/s, job {}, log file {} bytes, idle RSS {:.1} MiB, peak RSS {:.1} MiB",
            r.seconds,
            1073.741824 / r.seconds,
            r.status,
            r.log_bytes,
            r.idle_mib,
            r.peak_mib
        );
        secs.push(r.seconds);
        rates.push(1073.741824 / r.seconds);
        growth.push(r.peak_mib - r.idle_mib);
    }
    if !secs.is_empty() {
        println!(
            "log ingestion, median of {runs} runs: {:.2} s per GiB = {:.0} MB/s, server memory growth {:.1} MiB {:?}",
            median(&mut secs),
            median(&mut rates),
            median(&mut growth),
            rounded(&growth)
        );
    }

    let (mut totals, mut peaks) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let r = rt.block_on(fan_out_run());
        println!(
            "fan-out run {run}: 50 pipelines x 20 jobs, all {} final in {:.2} s ({:.0} jobs/s), {} successful, at most {} running at once (--concurrent {CONCURRENT})",
            r.pipelines,
            r.seconds,
            1000.0 / r.seconds,
            r.successful,
            r.peak_running
        );
        assert!(r.peak_running <= CONCURRENT, "--concurrent was not respected");
        totals.push(r.seconds);
        peaks.push(r.peak_running as f64);
    }
    println!(
        "fan-out, median of {runs} runs: {:.2} s for 1000 jobs, at most {} running at once",
        median(&mut totals),
        median(&mut peaks)
    );
}

/// A server with a project whose `.gitlab-ci.yml` is `config`, and a trigger token.
struct Fixture {
    _dir: tempfile::TempDir,
    child: std::process::Child,
    base: String,
    pid: u64,
    token: String,
    http: reqwest::Client,
}

async fn fixture(config: &str, extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repository(dir.path(), config);
    let (child, base) = start(&dir.path().join("data"), extra);
    wait_ready(&base).await;
    let http = common::http_client();
    let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
    Fixture {
        _dir: dir,
        child,
        base,
        pid,
        token,
        http,
    }
}

impl Fixture {
    async fn trigger(&self, vars: &[(&str, &str)]) -> u64 {
        let mut form = vec![("token".to_string(), self.token.clone()), ("ref".into(), "main".into())];
        for (k, v) in vars {
            form.push((format!("variables[{k}]"), v.to_string()));
        }
        let url = format!("{}/api/v4/projects/{}/trigger/pipeline", self.base, self.pid);
        let p: Value = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        p["id"].as_u64().unwrap_or_else(|| panic!("trigger failed: {p}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/api/v4/projects/{}{path}", self.base, self.pid))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The `$EPOCHREALTIME` (seconds with microseconds) the pipeline's job printed, in µs.
    async fn stamp(&self, pipeline: u64) -> f64 {
        let jobs = self.get(&format!("/pipelines/{pipeline}/jobs")).await;
        let job = jobs[0]["id"].as_u64().unwrap();
        let log = self
            .http
            .get(format!("{}/api/v4/projects/{}/jobs/{job}/trace", self.base, self.pid))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let secs = log
            .lines()
            .find_map(|l| l.strip_prefix("STAMP "))
            .and_then(|t| t.trim().replace(',', ".").parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no stamp in the log:\n{log}"));
        secs * 1e6
    }

    async fn wait_final(&self, pipeline: u64) -> Value {
        loop {
            let p = self.get(&format!("/pipelines/{pipeline}")).await;
            if ["success", "failed", "canceled", "skipped"].contains(&p["status"].as_str().unwrap_or("")) {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn now_us() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1e6
}

async fn latency_run(triggers: usize, sandbox: &str) -> Vec<f64> {
    let config = "stamp:\n  script:\n    - echo \"STAMP $EPOCHREALTIME\"\n";
    let concurrent = CONCURRENT.to_string();
    let extra = [
        "--concurrent",
        &concurrent,
        "--job-sandbox",
        sandbox,
        "--job-engine",
        "none",
    ];
    stamps(config, &extra, triggers).await
}

/// Triggers `config`'s one job `triggers` times (after 5 to warm up), one at a time, and
/// answers each trigger-to-stamp latency in ms.
async fn stamps(config: &str, extra: &[&str], triggers: usize) -> Vec<f64> {
    let f = fixture(config, extra).await;
    let mut latencies = Vec::with_capacity(triggers);
    for i in 0..triggers + 5 {
        let sent = now_us();
        let id = f.trigger(&[]).await;
        f.wait_final(id).await;
        let stamp = f.stamp(id).await;
        if i >= 5 {
            latencies.push((stamp - sent) / 1000.0);
        }
    }
    kill(f.child);
    latencies
}

/// Part 4: what starting a container adds to trigger-to-first-line.
fn container_start(rt: &tokio::runtime::Runtime, runs: usize, triggers: usize) {
    let image = "localhost/spur-bench-bash:1";
    build_bash_image(image);
    let config = format!(
        "stamp:\n  image: {{name: {image}, pull_policy: never}}\n  script:\n    - echo \"STAMP $EPOCHREALTIME\"\n"
    );
    let concurrent = CONCURRENT.to_string();
    let engines = ["podman", "none"];
    let mut p50s = [Vec::new(), Vec::new()];
    for run in 1..=runs {
        for (e, engine) in engines.iter().enumerate() {
            let extra = ["--concurrent", &concurrent, "--job-engine", engine];
            let mut lat = rt.block_on(stamps(&config, &extra, triggers));
            lat.sort_by(|a, b| a.total_cmp(b));
            let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
            println!(
                "container run {run} (--job-engine {engine}): {} triggers, trigger to first script line p50 {:.2} ms, p99 {:.2} ms",
                lat.len(),
                pct(0.50),
                pct(0.99)
            );
            p50s[e].push(pct(0.50));
        }
    }
    let mut diffs: Vec<f64> = p50s[0].iter().zip(&p50s[1]).map(|(a, b)| a - b).collect();
    println!(
        "trigger to first script line, median of {runs} runs: in a container p50 {:.2} ms {:?}, on the host p50 {:.2} ms {:?}; the container adds {:.2} ms {:?}",
        median(&mut p50s[0].clone()),
        rounded(&p50s[0]),
        median(&mut p50s[1].clone()),
        rounded(&p50s[1]),
        median(&mut diffs),
        rounded(&diffs)
    );
}

/// Imports `name`: the host's bash with the libraries `ldd` names, and busybox as `sh`.
fn build_bash_image(name: &str) {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    let copy = |from: &str| {
        let to = root.join(from.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
    };
    copy("/bin/bash");
    copy("/bin/busybox");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let ldd = Command::new("ldd").arg("/bin/bash").output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        copy(lib);
    }
    let archive = dir.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let import = Command::new("podman")
        .arg("import")
        .arg(&archive)
        .arg(name)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
}

struct Ingestion {
    seconds: f64,
    status: String,
    log_bytes: u64,
    idle_mib: f64,
    peak_mib: f64,
}

async fn ingestion_run() -> Ingestion {
    // `yes` ends by SIGPIPE when `head` is done, which `pipefail` would call a failure.
    let config = "flood:\n  script:\n    - (yes 0123456789abcdefghijklmnopqrstuvwxyz || true) | head -c 1073741824\n";
    let f = fixture(config, &["--max-trace-bytes", "2147483648"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = f.child.id();
    let idle = rss_kib(server);
    let id = f.trigger(&[]).await;
    let mut peak = idle;
    let p = loop {
        peak = peak.max(rss_kib(server));
        let p = f.get(&format!("/pipelines/{id}")).await;
        if ["success", "failed", "canceled"].contains(&p["status"].as_str().unwrap_or("")) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let jobs = f.get(&format!("/pipelines/{id}/jobs")).await;
    let job = &jobs[0];
    let job_id = job["id"].as_u64().unwrap();
    let log_bytes = f
        .http
        .get(format!("{}/api/v4/projects/{}/jobs/{job_id}/trace", f.base, f.pid))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .send()
        .await
        .unwrap()
        .content_length()
        .unwrap_or(0);
    let seconds = job["duration"].as_f64().unwrap_or(0.0);
    let status = format!(
        "{} ({})",
        p["status"].as_str().unwrap_or("?"),
        job["failure_reason"].as_str().unwrap_or("-")
    );
    kill(f.child);
    Ingestion {
        seconds,
        status,
        log_bytes,
        idle_mib: idle as f64 / 1024.0,
        peak_mib: peak as f64 / 1024.0,
    }
}

struct FanOut {
    pipelines: usize,
    successful: usize,
    seconds: f64,
    peak_running: usize,
}

async fn fan_out_run() -> FanOut {
    let mut config = String::from("stages: [one, two, three, four]\n");
    for i in 0..20 {
        let stage = ["one", "two", "three", "four"][i % 4];
        config.push_str(&format!("job-{i}:\n  stage: {stage}\n  script: [echo {i}]\n"));
    }
    let concurrent = CONCURRENT.to_string();
    let f = fixture(&config, &["--concurrent", &concurrent]).await;
    let started = Instant::now();
    let ids = futures_util::future::join_all((0..50).map(|_| f.trigger(&[]))).await;
    let mut successful = 0;
    for id in &ids {
        if f.wait_final(*id).await["status"] == "success" {
            successful += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut events = Vec::new();
    for id in &ids {
        let jobs = f.get(&format!("/pipelines/{id}/jobs?per_page=100")).await;
        for j in jobs.as_array().unwrap() {
            if let (Some(s), Some(e)) = (j["started_at"].as_str(), j["finished_at"].as_str()) {
                events.push((ms_of_day(s), 1i32));
                events.push((ms_of_day(e), -1i32));
            }
        }
    }
    // Ends sort before starts at the same millisecond: a worker takes its next job at once.
    events.sort();
    let (mut running, mut peak) = (0i32, 0i32);
    for (_, delta) in events {
        running += delta;
        peak = peak.max(running);
    }
    kill(f.child);
    FanOut {
        pipelines: ids.len(),
        successful,
        seconds,
        peak_running: peak as usize,
    }
}

/// Milliseconds within the day of a `2026-01-02T03:04:05.678Z` timestamp.
fn ms_of_day(iso: &str) -> i64 {
    let t = &iso[11..23];
    let field = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    ((field(0..2) * 60 + field(3..5)) * 60 + field(6..8)) * 1000 + field(9..12)
}
