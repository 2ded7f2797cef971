//! Retention benchmark (`cargo bench --bench retention`): a steady stream of triggered
//! pipelines (`SPUR_BENCH_RATE` per second, default 50, each running a small job) for
//! `SPUR_BENCH_SECONDS` (default 60) with `--keep-pipelines 10s --keep-logs 10s
//! --retention-interval 2s`; prints the data dir's size every 5 s. Bounded retention shows as
//! a size that stops growing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{env_or, kill, start, wait_ready};
use std::path::Path;
use std::time::{Duration, Instant};

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("retention: run with `cargo bench --bench retention`");
        return;
    }
    let rate: u64 = env_or("SPUR_BENCH_RATE", 50).max(1);
    let seconds: u64 = env_or("SPUR_BENCH_SECONDS", 60);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let repo = common::repository(dir.path(), "job:\n  script: [\"seq 1 200\"]\n");
        let data = dir.path().join("data");
        let flags = ["--keep-pipelines", "10s", "--keep-logs", "10s", "--retention-interval", "2s"];
        let (child, base) = start(&data, &flags);
        wait_ready(&base).await;
        let http = common::http_client();
        let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
        let url = format!("{base}/api/v4/projects/{pid}/trigger/pipeline");
        let started = Instant::now();
        let mut next_report = Duration::ZERO;
        let mut sent = 0u64;
        let mut sizes = Vec::new();
        while started.elapsed() < Duration::from_secs(seconds) {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                let r = http.post(&url).form(&[("token", token.as_str()), ("ref", "main")]).send().await.unwrap();
                assert_eq!(r.status(), 201);
                sent += 1;
            }
            if started.elapsed() >= next_report {
                let size = dir_size(&data);
                println!("{:>4.0} s: {sent} pipelines triggered, data dir {:.1} MiB", started.elapsed().as_secs_f64(), size as f64 / 1048576.0);
                sizes.push(size);
                next_report += Duration::from_secs(5);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let half = sizes.len() / 2;
        let late_max = sizes[half..].iter().max().copied().unwrap_or(0);
        println!(
            "{sent} pipelines in {seconds} s at {rate}/s with 10 s retention: data dir peaked at {:.1} MiB in the second half (final {:.1} MiB)",
            late_max as f64 / 1048576.0,
            sizes.last().copied().unwrap_or(0) as f64 / 1048576.0
        );
        kill(child);
    });
}
