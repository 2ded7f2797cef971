//! UI page benchmark (`cargo bench --bench ui_pages`): a project with 10,000 trigger pipelines
//! (`SPUR_BENCH_PIPELINES`), executor off; a signed-in Maintainer fetches each page 200 times in
//! a row and the bench prints the median and p99 round trip on localhost (an upper bound of the
//! server time). `SPUR_BENCH_RUNS` (default 3) repeats the whole measurement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{env_or, kill, median, start, wait_ready};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ui_pages: run with `cargo bench --bench ui_pages`");
        return;
    }
    let runs: usize = env_or("SPUR_BENCH_RUNS", 3).max(1);
    let pipelines: usize = env_or("SPUR_BENCH_PIPELINES", 10_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let repo = common::repository(dir.path(), "build:\n  script: [echo hi]\n");
        let (child, base) = start(&dir.path().join("data"), &["--concurrent", "0"]);
        wait_ready(&base).await;
        let http = common::http_client();
        let (pid, token) = common::project_with_trigger(&http, &base, &repo).await;
        let started = Instant::now();
        let url = format!("{base}/api/v4/projects/{pid}/trigger/pipeline");
        for chunk in (0..pipelines).collect::<Vec<_>>().chunks(64) {
            let sends = chunk.iter().map(|i| {
                http.post(&url)
                    .form(&[
                        ("token", token.as_str()),
                        ("ref", "main"),
                        ("variables[N]", &i.to_string()),
                    ])
                    .send()
            });
            for r in futures_util::future::join_all(sends).await {
                assert_eq!(r.unwrap().status(), 201);
            }
        }
        println!(
            "created {pipelines} pipelines in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let cookie = common::sign_in(&base).await;
        let middle = pipelines / 2;
        let pages = [
            "/".to_string(),
            "/root/bench/-/pipelines".into(),
            format!("/root/bench/-/pipelines?page={}", pipelines / 40),
            format!("/root/bench/-/pipelines/{middle}"),
            format!("/root/bench/-/pipelines/{middle}/test_report"),
            "/root/bench/-/pipeline_schedules".into(),
            "/root/bench/-/environments".into(),
            "/root/bench/-/jobs".into(),
            format!("/root/bench/-/jobs/{middle}"),
            "/root/bench/-/settings/ci_cd".into(),
            "/root/bench/badges/main/pipeline.svg".into(),
        ];
        let browser = common::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut medians: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut p99s: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for run in 1..=runs {
            for page in &pages {
                let mut times = Vec::with_capacity(200);
                for _ in 0..200 {
                    let t = Instant::now();
                    let resp = browser
                        .get(format!("{base}{page}"))
                        .header("Cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200, "{page}");
                    let _ = resp.bytes().await.unwrap();
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                times.sort_by(|a, b| a.total_cmp(b));
                let (p50, p99) = (times[100], times[197]);
                println!("run {run}: {page}: median {p50:.2} ms, p99 {p99:.2} ms");
                medians.entry(page.clone()).or_default().push(p50);
                p99s.entry(page.clone()).or_default().push(p99);
            }
        }
        for page in &pages {
            println!(
                "{page}: median of {runs} runs {:.2} ms, p99 {:.2} ms",
                median(medians.get_mut(page).unwrap()),
                median(p99s.get_mut(page).unwrap())
            );
        }
        kill(child);
    });
}
