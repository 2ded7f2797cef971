//! Repository API benchmark (`cargo bench --bench repository_api`): a repository with 10,000
//! commits and 1,000 branches (made with `git fast-import`), then page 1 and page 100 of
//! `GET /repository/commits` (20 per page) and of `GET /repository/branches` (10 per page, so
//! that page 100 is the last), each requested
//! `SPUR_BENCH_REQUESTS` times (default 50) after one warm-up; prints medians per page, over
//! `SPUR_BENCH_RUNS` (default 3) runs. Issue 19's target: each under 20 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use common::{ROOT_TOKEN, env_or, kill, median, post_as_root, start, wait_ready};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// A repository of `commits` commits on `main` (each changing one file) and `branches`
/// branches spread over the history, written by `git fast-import` in one go.
fn big_repository(dir: &Path, commits: usize, branches: usize) -> std::path::PathBuf {
    let repo = dir.join("big");
    common::git(dir, &["init", "-q", "-b", "main", repo.to_str().unwrap()]);
    let mut script = String::new();
    for i in 1..=commits {
        let body = format!("change {i}\n");
        let message = format!("commit number {i}\n");
        script.push_str(&format!(
            "commit refs/heads/main\nmark :{i}\ncommitter Bench <b@b> {} +0000\ndata {}\n{message}",
            1_700_000_000 + i,
            message.len()
        ));
        if i > 1 {
            script.push_str(&format!("from :{}\n", i - 1));
        }
        if i == 1 {
            let ci = "job:\n  script: [echo]\n";
            script.push_str(&format!("M 100644 inline .gitlab-ci.yml\ndata {}\n{ci}\n", ci.len()));
        }
        script.push_str(&format!(
            "M 100644 inline files/f{}.txt\ndata {}\n{body}\n",
            i % 500,
            body.len()
        ));
    }
    for b in 0..branches {
        let at = 1 + b * commits / branches;
        script.push_str(&format!("reset refs/heads/branch-{b:04}\nfrom :{at}\n\n"));
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&repo)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    repo
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("repository_api: run with `cargo bench --bench repository_api`");
        return;
    }
    let runs: usize = env_or("SPUR_BENCH_RUNS", 3);
    let requests: usize = env_or("SPUR_BENCH_REQUESTS", 50);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let repo = big_repository(dir.path(), 10_000, 1_000);
    println!(
        "repository_api: 10,000 commits and 1,000 branches made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results: Vec<(String, Vec<f64>)> = Vec::new();
    for run in 0..runs {
        let data = dir.path().join(format!("data-{run}"));
        let (child, base) = start(&data, &["--concurrent", "0"]);
        rt.block_on(async {
            wait_ready(&base).await;
            let http = common::http_client();
            let project = post_as_root(
                &http,
                &format!("{base}/api/v4/projects"),
                &[("name", "big"), ("import_url", repo.to_str().unwrap())],
            )
            .await;
            let pid = project["id"].as_u64().expect("the project");
            for (label, path) in [
                ("commits page 1", "repository/commits?per_page=20&page=1"),
                ("commits page 100", "repository/commits?per_page=20&page=100"),
                ("branches page 1", "repository/branches?per_page=10&page=1"),
                ("branches page 100", "repository/branches?per_page=10&page=100"),
            ] {
                let url = format!("{base}/api/v4/projects/{pid}/{path}");
                let get = || http.get(&url).header("PRIVATE-TOKEN", ROOT_TOKEN).send();
                let warm = get().await.unwrap();
                assert_eq!(warm.status(), 200, "{label}");
                let items: serde_json::Value = warm.json().await.unwrap();
                assert!(items.as_array().is_some_and(|a| a.len() >= 10), "{label}");
                let mut times = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let t = Instant::now();
                    let r = get().await.unwrap();
                    let _ = r.bytes().await.unwrap();
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                let m = median(&mut times);
                match results.iter_mut().find(|(l, _)| l == label) {
                    Some((_, v)) => v.push(m),
                    None => results.push((label.to_string(), vec![m])),
                }
            }
        });
        kill(child);
    }
    for (label, mut medians) in results {
        let all = medians.clone();
        println!(
            "repository_api: {label}: median {:.1} ms (runs: {:?}; target under 20 ms)",
            median(&mut medians),
            common::rounded(&all)
        );
    }
}
