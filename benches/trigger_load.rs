//! Trigger benchmark (`cargo bench --bench trigger_load`): start-up time, idle memory, and
//! durable triggers per second. Starts the release `spur` binary on a fresh data dir, has
//! Debian's `wrk` drive 64 connections of valid trigger POSTs for 10 s (`SPUR_BENCH_SECONDS`),
//! then kills the server with SIGKILL, opens the database it left and checks that every pipeline
//! acknowledged with 201 is there, and restarts the server on it. Each run does this twice: plain
//! triggers and triggers that each carry a fresh `Idempotency-Key` (the keyed phase first in
//! every other run), and prints what the keys cost as a ratio of the two rates. Before the
//! plain triggers, the same server answers authenticated `GET /api/v4/version` under the same
//! load: the trigger rate over that rate is the figure that stays comparable on a noisy
//! machine. After the restart on the data dir the triggers filled, it prints the idle memory
//! with that history. Repeats `SPUR_BENCH_RUNS` times (default 3) and prints medians.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{ROOT_TOKEN, env_or, kill, median, rounded, rss_kib, start, wait_ready};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("trigger_load: run with `cargo bench --bench trigger_load` (needs wrk)");
        return;
    }
    let runs: usize = env_or("SPUR_BENCH_RUNS", 3).max(1);
    let seconds: u64 = env_or("SPUR_BENCH_SECONDS", 10);
    let connections: usize = env_or("SPUR_BENCH_CONNECTIONS", 64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut startup = Vec::new();
    let mut restart = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let started = Instant::now();
        let (child, base) = start(&data, &[]);
        rt.block_on(wait_ready(&base));
        startup.push(started.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_secs(1));
        rss.push(rss_kib(child.id()) as f64 / 1024.0);
        kill(child);
        let started = Instant::now();
        let (child, base) = start(&data, &[]);
        rt.block_on(wait_ready(&base));
        restart.push(started.elapsed().as_secs_f64() * 1000.0);
        kill(child);
    }
    println!(
        "startup to first answer, empty data dir: median {:.1} ms {:?}",
        median(&mut startup),
        rounded(&startup)
    );
    println!(
        "startup to first answer, existing data dir: median {:.1} ms {:?}",
        median(&mut restart),
        rounded(&restart)
    );
    println!(
        "idle resident memory: median {:.1} MiB {:?}",
        median(&mut rss),
        rounded(&rss)
    );

    let mut rates = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut keyed_rates = Vec::new();
    let mut keyed_p99s = Vec::new();
    let mut ratios = Vec::new();
    let mut version_rates = Vec::new();
    let mut version_ratios = Vec::new();
    let mut history_rss = Vec::new();
    for run in 1..=runs {
        // Even runs measure the keyed phase first, so that the machine drifting within a run
        // does not always count against the same phase.
        let keyed_first = run % 2 == 0;
        let early = keyed_first.then(|| rt.block_on(load_run(seconds, connections, true)));
        let r = rt.block_on(load_run(seconds, connections, false));
        println!(
            "run {run}: {} acknowledged in {:.2} s = {:.0} triggers/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, non-201 {}, socket errors {}, all {} found after kill -9",
            r.created, r.seconds, r.rate, r.p50_ms, r.p99_ms, r.max_ms, r.other, r.socket_errors, r.verified
        );
        println!(
            "run {run}: GET /api/v4/version {:.0}/s on the same server; triggers/version {:.3}; idle {:.1} MiB after a restart with {} pipelines",
            r.version_rate,
            r.rate / r.version_rate,
            r.history_rss_mib,
            r.verified
        );
        version_rates.push(r.version_rate);
        version_ratios.push(r.rate / r.version_rate);
        history_rss.push(r.history_rss_mib);
        let k = match early {
            Some(k) => k,
            None => rt.block_on(load_run(seconds, connections, true)),
        };
        println!(
            "run {run}, each with an Idempotency-Key: {:.0} triggers/s, p50 {:.2} ms, p99 {:.2} ms, non-201 {}, all {} found after kill -9; keyed/plain {:.3}",
            k.rate,
            k.p50_ms,
            k.p99_ms,
            k.other,
            k.verified,
            k.rate / r.rate
        );
        rates.push(r.rate);
        p50s.push(r.p50_ms);
        p99s.push(r.p99_ms);
        keyed_rates.push(k.rate);
        keyed_p99s.push(k.p99_ms);
        ratios.push(k.rate / r.rate);
    }
    println!(
        "median of {runs} runs ({connections} connections, {seconds} s): {:.0} durable triggers/s, p50 {:.2} ms, p99 {:.2} ms",
        median(&mut rates),
        median(&mut p50s),
        median(&mut p99s)
    );
    println!(
        "with an Idempotency-Key each: median {:.0} durable triggers/s, p99 {:.2} ms; keyed/plain rate ratio median {:.3}",
        median(&mut keyed_rates),
        median(&mut keyed_p99s),
        median(&mut ratios)
    );
    println!(
        "GET /api/v4/version: median {:.0}/s; triggers/version ratio median {:.3}; idle after a restart with the history: median {:.1} MiB {:?}",
        median(&mut version_rates),
        median(&mut version_ratios),
        median(&mut history_rss),
        rounded(&history_rss)
    );
}

/// Requests per second `wrk` gets from authenticated `GET /api/v4/version`.
fn version_rate(base: &str, seconds: u64, connections: usize) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "-H"])
        .arg(format!("PRIVATE-TOKEN: {ROOT_TOKEN}"))
        .arg(format!("{base}/api/v4/version"))
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk said: {stdout}"))
}

struct RunResult {
    created: usize,
    other: usize,
    socket_errors: usize,
    seconds: f64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    verified: usize,
    version_rate: f64,
    history_rss_mib: f64,
}

async fn load_run(seconds: u64, connections: usize, keyed: bool) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repository(dir.path(), "test:\n  script: echo hi\n");
    let data = dir.path().join("data");
    // Jobs stay pending: this measures the trigger path, not the executor.
    let (child, base) = start(&data, &["--concurrent", "0"]);
    wait_ready(&base).await;
    let http = common::http_client();
    let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
    let version = if keyed {
        0.0
    } else {
        version_rate(&base, seconds, connections)
    };
    let ids_file = dir.path().join("ids");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/trigger.lua");
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("{base}/api/v4/projects/{pid}/trigger/pipeline"))
        .env("SPUR_TOKEN", &token)
        .env("SPUR_IDS", &ids_file)
        .env("SPUR_KEYED", if keyed { "1" } else { "0" })
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("wrk said: {stdout}"));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let acknowledged: Vec<u64> = std::fs::read_to_string(&ids_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    // crash the server, open the database it left (redb recovers it), look for every
    // acknowledged pipeline, then check that the server itself starts again on it
    kill(child);
    let store = spur::storage::Store::open(&data.join("spur.redb")).expect("the crashed database opens");
    let missing = acknowledged
        .iter()
        .filter(|id| !matches!(store.pipeline(**id), Ok(Some(_))))
        .count();
    assert_eq!(missing, 0, "{missing} acknowledged pipelines were lost");
    drop(store);
    std::thread::sleep(Duration::from_millis(200));
    let (child, base) = start(&data, &["--concurrent", "0"]);
    wait_ready(&base).await;
    let resp = http
        .get(format!("{base}/api/v4/projects/{pid}/pipelines?per_page=1"))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .send()
        .await
        .unwrap();
    let stored: usize = resp.headers()["x-total"].to_str().unwrap().parse().unwrap();
    assert!(
        stored >= acknowledged.len(),
        "{stored} stored < {} acknowledged",
        acknowledged.len()
    );
    std::thread::sleep(Duration::from_secs(1));
    let history_rss_mib = rss_kib(child.id()) as f64 / 1024.0;
    kill(child);
    let seconds = field("duration_us") / 1e6;
    RunResult {
        created: field("created") as usize,
        other: field("other") as usize,
        socket_errors: (field("errors_connect") + field("errors_read") + field("errors_timeout")) as usize,
        seconds,
        rate: field("created") / seconds,
        p50_ms: field("p50_us") / 1000.0,
        p99_ms: field("p99_us") / 1000.0,
        max_ms: field("max_us") / 1000.0,
        verified: acknowledged.len(),
        version_rate: version,
        history_rss_mib,
    }
}
