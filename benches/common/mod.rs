//! What the benchmarks share: starting the release binary, waiting for it, a repository with a
//! given `.gitlab-ci.yml`, resident memory, and medians. `SPUR_BENCH_SERVER_LOG=<file>` appends
//! the servers' logs there (each request's route and `duration_us`), to see where time goes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The administrator token the benchmarks' servers start with.
pub const ROOT_TOKEN: &str = "glpat-bench-root-token-000000000000";
/// The administrator's password on the benchmarks' servers.
pub const ROOT_PASSWORD: &str = "bench-root-password";

/// A repository in `dir/repo` whose `main` holds `ci_yaml` as `.gitlab-ci.yml`.
pub fn repository(dir: &Path, ci_yaml: &str) -> PathBuf {
    let repo = dir.join("repo");
    git(dir, &["init", "-q", "-b", "main", repo.to_str().unwrap()]);
    std::fs::write(repo.join(".gitlab-ci.yml"), ci_yaml).unwrap();
    git(&repo, &["add", "."]);
    git(
        &repo,
        &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"],
    );
    repo
}

/// POSTs a form as root and returns the JSON answer.
pub async fn post_as_root(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> serde_json::Value {
    http.post(url)
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Starts the release binary (or `SPUR_BENCH_BINARY`, to measure another build in the same
/// hour) on `data` with `extra` flags; returns it and its base URL.
pub fn start(data: &Path, extra: &[&str]) -> (Child, String) {
    start_wrapped(&[], data, extra)
}

/// Like `start`, run under `wrapper` (a command and its arguments, e.g. valgrind's).
pub fn start_wrapped(wrapper: &[&str], data: &Path, extra: &[&str]) -> (Child, String) {
    start_env(wrapper, data, extra, true)
}

/// Like `start_wrapped`; with `bench_env` false it starts as a user would, without the
/// benchmarks' root credentials and log filter (root's token is generated, logs at `info`).
pub fn start_env(wrapper: &[&str], data: &Path, extra: &[&str], bench_env: bool) -> (Child, String) {
    let binary = std::env::var("SPUR_BENCH_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_spur").to_string());
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("NO_COLOR", "1");
    if bench_env {
        command
            .env("SPUR_ROOT_TOKEN", ROOT_TOKEN)
            .env("SPUR_ROOT_PASSWORD", ROOT_PASSWORD)
            .env("RUST_LOG", "warn,spur=info");
    } else {
        command
            .env_remove("SPUR_ROOT_TOKEN")
            .env_remove("SPUR_ROOT_PASSWORD")
            .env_remove("RUST_LOG");
    }
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("spur exited before listening").unwrap();
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
    };
    std::thread::spawn(move || {
        let mut keep = std::env::var("SPUR_BENCH_SERVER_LOG")
            .ok()
            .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        for line in lines.map_while(Result::ok) {
            if let Some(f) = keep.as_mut() {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
        }
    });
    (child, base)
}

/// Creates project `bench` from `repo` as root and a trigger token for it; answers the
/// project's id and the token.
pub async fn project_with_trigger(http: &reqwest::Client, base: &str, repo: &Path) -> (u64, String) {
    let project = post_as_root(
        http,
        &format!("{base}/api/v4/projects"),
        &[("name", "bench"), ("import_url", repo.to_str().unwrap())],
    )
    .await;
    let pid = project["id"].as_u64().expect("project created");
    let trigger = post_as_root(
        http,
        &format!("{base}/api/v4/projects/{pid}/triggers"),
        &[("description", "bench")],
    )
    .await;
    (pid, trigger["token"].as_str().expect("trigger created").to_string())
}

/// Waits until the server answers.
pub async fn wait_ready(base: &str) {
    wait_ready_for(base, Duration::from_secs(5)).await;
}

/// Waits up to `limit` until the server answers.
pub async fn wait_ready_for(base: &str, limit: Duration) {
    let http = http_client();
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let answer = http
            .get(format!("{base}/api/v4/version"))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .send()
            .await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("spur did not answer");
}

/// Kills a server at once (SIGKILL).
pub fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs git in `dir`; panics if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// An environment setting, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Values rounded to one decimal, for printing.
pub fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 10.0).round() / 10.0).collect()
}

/// An HTTP client (reqwest's TLS needs spur's crypto provider installed first).
pub fn http_client() -> reqwest::Client {
    spur::outbound::install_tls_provider();
    reqwest::Client::new()
}

/// An HTTP client builder, with spur's crypto provider installed.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    spur::outbound::install_tls_provider();
    reqwest::Client::builder()
}

/// Whether a callgrind bench should run: under `cargo bench`, with valgrind installed (it says
/// why not otherwise).
pub fn callgrind_bench(name: &str) -> bool {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name}: run with `cargo bench --bench {name}` (needs valgrind)");
        return false;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("{name}: valgrind is not installed (apt-get install valgrind); skipped");
        return false;
    }
    true
}

/// Sends one trigger POST (`ref=main`, variable `RUN`) and asserts it was acknowledged.
pub async fn trigger(http: &reqwest::Client, url: &str, token: &str, run: u64) {
    let resp = http
        .post(url)
        .form(&[("token", token), ("ref", "main"), ("variables[RUN]", &run.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap_or_default());
}

/// Signs in as root through the sign-in form; answers the session cookie (`name=value`).
pub async fn sign_in(base: &str) -> String {
    let http = http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(format!("{base}/users/sign_in")).send().await.unwrap();
    let pre = cookie_pair(&form, "_spur_csrf");
    let page = form.text().await.unwrap();
    let marker = "name=\"authenticity_token\" value=\"";
    let i = page.find(marker).unwrap() + marker.len();
    // The token is masked afresh on every page (its length is not fixed).
    let csrf = page[i..].split('"').next().unwrap_or_default();
    let resp = http
        .post(format!("{base}/users/sign_in"))
        .header("Cookie", pre)
        .form(&[
            ("authenticity_token", csrf),
            ("user[login]", "root"),
            ("user[password]", ROOT_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "sign-in failed");
    cookie_pair(&resp, "_spur_session")
}

/// The `name=value` pair of cookie `name` an answer sets.
fn cookie_pair(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}
