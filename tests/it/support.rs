//! Test support: starts the real `spur` binary on `127.0.0.1:0` with a temporary data dir, makes
//! real git repositories, and wraps HTTP calls.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Lines a server logged, collected by a background thread.
pub type SharedLog = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The personal access token of `root` in every test server.
pub const ROOT_TOKEN: &str = "glpat-test-root-token-0123456789";

/// A running spur process and its data dir.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data dir (kept when `dir` is dropped only if the test keeps it).
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// Lines the server logged (stderr), collected in the background.
    pub log: SharedLog,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Server {
    /// Starts spur on a fresh data dir with the built-in executor off (`--concurrent 0`), so
    /// that pipelines stay as created: for tests of the API and planning.
    pub fn start() -> Server {
        Server::start_with(&["--concurrent", "0"])
    }

    /// Starts spur on a fresh data dir with `extra` flags.
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        // As /var/lib is: job uids pass through to the workspaces under the data dir.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        let data_dir = dir.path().join("data");
        let mut s = Server::start_on(&data_dir, extra);
        s._dir = Some(dir);
        s
    }

    /// Starts spur on a fresh data dir with `extra` flags and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        let mut s = Server::start_on_with_env(&dir.path().join("data"), extra, env);
        s._dir = Some(dir);
        s
    }

    /// Starts spur on `data_dir` (which may hold an earlier server's data) with extra flags.
    pub fn start_on(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_as(None, data_dir, extra)
    }

    /// Starts spur on `data_dir` (which may hold an earlier server's data) with `extra` flags
    /// and environment variables.
    pub fn start_on_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let (child, base, log) = spawn_binary_env(Path::new(env!("CARGO_BIN_EXE_spur")), None, data_dir, extra, env)
            .unwrap_or_else(|e| panic!("spur did not start: {e}"));
        Server {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
            log,
            http: crate::support::http_client(),
        }
    }

    /// Starts another copy of the binary on a fresh data dir.
    pub fn start_binary(binary: &Path, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let (child, base, log) =
            spawn_binary(binary, None, &data_dir, extra).unwrap_or_else(|e| panic!("spur did not start: {e}"));
        Server {
            child,
            base,
            data_dir,
            _dir: Some(dir),
            log,
            http: crate::support::http_client(),
        }
    }

    /// Starts spur as `user` (the tests run as root in CI).
    pub fn start_as(user: Option<&str>, data_dir: &Path, extra: &[&str]) -> Server {
        let (child, base, log) = spawn_as(user, data_dir, extra).unwrap_or_else(|e| panic!("spur did not start: {e}"));
        Server {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
            log,
            http: crate::support::http_client(),
        }
    }

    /// Asks the process to stop (SIGTERM) and waits for it to exit; answers whether it exited
    /// cleanly within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The URL of an API path (`/projects` → `http://.../api/v4/projects`).
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v4{}", self.base, path)
    }

    /// A request as root.
    pub fn root(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.as_token(ROOT_TOKEN, method, path)
    }

    /// A request with a personal access token.
    pub fn as_token(&self, token: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.api(path)).header("PRIVATE-TOKEN", token)
    }

    /// An anonymous request.
    pub fn anon(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.api(path))
    }

    /// Creates a user and a personal access token for it; returns (user id, token).
    pub async fn user(&self, username: &str) -> (u64, String) {
        let (status, user) = send(self.root(reqwest::Method::POST, "/users").form(&[
            ("username", username),
            ("name", username),
            ("email", &format!("{username}@example.com")),
            ("password", "password123"),
        ]))
        .await;
        assert_eq!(status, 201, "{user}");
        let id = user["id"].as_u64().unwrap();
        let (status, pat) = send(
            self.root(reqwest::Method::POST, &format!("/users/{id}/personal_access_tokens"))
                .form(&[("name", "t"), ("scopes[]", "api")]),
        )
        .await;
        assert_eq!(status, 201, "{pat}");
        (id, pat["token"].as_str().unwrap().to_string())
    }

    /// Creates a project as root from a local repository; returns its id.
    pub async fn project(&self, name: &str, repo: &Path) -> u64 {
        let (status, p) = send(
            self.root(reqwest::Method::POST, "/projects")
                .form(&[("name", name), ("import_url", &repo.display().to_string())]),
        )
        .await;
        assert_eq!(status, 201, "{p}");
        p["id"].as_u64().unwrap()
    }

    /// Adds `user_id` to project `pid` with `level`.
    pub async fn add_member(&self, pid: u64, user_id: u64, level: u8) {
        let (status, body) = send(
            self.root(reqwest::Method::POST, &format!("/projects/{pid}/members"))
                .form(&[("user_id", user_id.to_string()), ("access_level", level.to_string())]),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Creates a trigger token in `pid` as the holder of `token`; returns (trigger id, secret).
    pub async fn trigger_token(&self, token: &str, pid: u64) -> (u64, String) {
        let (status, t) = send(
            self.as_token(token, reqwest::Method::POST, &format!("/projects/{pid}/triggers"))
                .form(&[("description", "ci")]),
        )
        .await;
        assert_eq!(status, 201, "{t}");
        (t["id"].as_u64().unwrap(), t["token"].as_str().unwrap().to_string())
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed server leaves its running jobs behind (a real spur kills them at its next
        // start); a test has no next start, so its jobs' scripts go with it.
        let marker = format!("{}/builds/", self.data_dir.display());
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}

/// Spawns the binary and waits for its "listening" line.
pub fn spawn(data_dir: &Path, extra: &[&str]) -> Result<(Child, String, SharedLog), String> {
    spawn_as(None, data_dir, extra)
}

/// Spawns the binary, as `user` when given (through `setpriv`, which execs: killing the child
/// kills spur), and waits for its "listening" line.
pub fn spawn_as(user: Option<&str>, data_dir: &Path, extra: &[&str]) -> Result<(Child, String, SharedLog), String> {
    spawn_binary(Path::new(env!("CARGO_BIN_EXE_spur")), user, data_dir, extra)
}

/// `spawn_as` with another copy of the binary.
pub fn spawn_binary(
    binary: &Path,
    user: Option<&str>,
    data_dir: &Path,
    extra: &[&str],
) -> Result<(Child, String, SharedLog), String> {
    spawn_binary_env(binary, user, data_dir, extra, &[])
}

/// `spawn_binary` with extra environment variables.
pub fn spawn_binary_env(
    binary: &Path,
    user: Option<&str>,
    data_dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<(Child, String, SharedLog), String> {
    let mut command = match user {
        Some(user) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--clear-groups",
                "--",
            ]);
            c.arg(binary);
            c
        }
        None => Command::new(binary),
    };
    // Every server gets uids of its own for its jobs: servers sharing a range would kill each
    // other's jobs when they recycle a uid (as two spurs on one machine would).
    static NEXT_RANGE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let window = NEXT_RANGE.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 1000;
    let first = 2_000_000_000 + (std::process::id() % 1000) * 100_000 + window * 100;
    let uids = format!("{first}-{}", first + 99);
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--job-uids", &uids])
        // Jobs with `image:` run on the host unless a test asks for containers.
        .args(if extra.contains(&"--job-engine") {
            &[][..]
        } else {
            &["--job-engine", "none"][..]
        })
        .args(extra)
        .env("SPUR_ROOT_TOKEN", ROOT_TOKEN)
        .env("SPUR_ROOT_PASSWORD", "root-password-123")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let addr = line[i + "listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let _ = tx.send(Ok(addr));
            }
            log2.lock().unwrap().push(line);
        }
        let _ = tx.send(Err("spur exited".to_string()));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(base)) => Ok((child, strip_ansi(&base), log)),
        Ok(Err(e)) => {
            let _ = child.wait();
            Err(format!("{e}: {}", log.lock().unwrap().join("\n")))
        }
        Err(_) => {
            let _ = child.kill();
            Err("spur did not report listening within 30 s".into())
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sends a request; returns the status and the JSON body (`Null` when empty or not JSON).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request failed");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends a request; returns the whole response.
pub async fn send_raw(req: reqwest::RequestBuilder) -> reqwest::Response {
    req.send().await.expect("request failed")
}

/// Runs git with `args` in `dir`, panicking on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A real repository: `main` with a `.gitlab-ci.yml`, a branch `feature/x`, a lightweight tag
/// `v1.0`, an annotated tag `v2.0`, and `both` as a branch and a tag at once.
pub struct Repo {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// Creates the repository.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q", "-b", "main"]);
        std::fs::write(p.join(".gitlab-ci.yml"), "test:\n  script: echo hi\n").unwrap();
        git(p, &["add", "."]);
        git(p, &["commit", "-qm", "first [ci skip]"]);
        git(p, &["branch", "feature/x"]);
        git(p, &["tag", "v1.0"]);
        git(p, &["tag", "-a", "v2.0", "-m", "annotated"]);
        git(p, &["branch", "both"]);
        git(p, &["tag", "both"]);
        Repo { dir }
    }

    /// A repository whose `main` holds exactly `files` (path, content).
    pub fn with_files(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        git(p, &["init", "-q", "-b", "main"]);
        for (path, content) in files {
            let full = p.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        git(p, &["add", "-A"]);
        git(p, &["commit", "-q", "--allow-empty", "-m", "files"]);
        Repo { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The commit a ref points at.
    pub fn sha(&self, rev: &str) -> String {
        git(self.path(), &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// Adds a commit on the current branch; returns its sha.
    pub fn commit(&self, file: &str) -> String {
        std::fs::write(self.path().join(file), file).unwrap();
        git(self.path(), &["add", "."]);
        git(self.path(), &["commit", "-qm", file]);
        self.sha("HEAD")
    }
}

/// The date `days` from today, `YYYY-MM-DD` (UTC).
pub fn iso_date_in_days(days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + days * 86_400;
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Kills a helper process when the test ends, even when it fails.
pub struct KillOnDrop(pub Child);

/// Makes a fresh CA (`ca.pem`) and a certificate it signs for 127.0.0.1 (`server.pem`,
/// `server.key`) in `dir`, with `openssl`.
pub fn test_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
    ];
    run(&[
        &["req", "-x509"][..],
        &key,
        &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=spur test CA"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &key,
        &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
    ]
    .concat());
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The venv's Python that `tests/run` creates (`SPUR_TEST_PYTHON`, default
/// `target/test-venv/bin/python`), with python-gitlab and selenium.
pub fn python() -> PathBuf {
    let path = std::env::var_os("SPUR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"));
    assert!(
        path.exists(),
        "no python with python-gitlab at {}: run tests/run, which creates it",
        path.display()
    );
    path
}

/// The statuses a pipeline ends in.
pub const FINAL: [&str; 4] = ["success", "failed", "canceled", "skipped"];

/// Polls `path` as root until `done` accepts the answer, or fails after 30 s.
pub async fn wait_for(s: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let (status, v) = send(s.root(reqwest::Method::GET, path)).await;
        if status == 200 && done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gave up waiting on {path}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until pipeline `id` of project `pid` is final and answers it.
pub async fn finished_pipeline(s: &Server, pid: u64, id: u64) -> Value {
    wait_for(s, &format!("/projects/{pid}/pipelines/{id}"), |p| {
        FINAL.contains(&p["status"].as_str().unwrap_or(""))
    })
    .await
}

/// Waits until a job has written `path` and answers its content.
pub async fn wait_file(path: &Path) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{path:?} never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log of job `job` (an id as a number or a JSON value) in project `pid`, as root.
pub async fn job_log(s: &Server, pid: u64, job: &dyn std::fmt::Display) -> String {
    s.root(reqwest::Method::GET, &format!("/projects/{pid}/jobs/{job}/trace"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
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

/// A loopback HTTP mailbox jobs talk to with curl (they cannot write the test's folders):
/// `POST /put/NAME` keeps the body under NAME; `GET /get/NAME` answers it, or 404 until the
/// test (or a job) has put something there.
pub struct Mailbox {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    boxes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl Mailbox {
    /// Starts the mailbox on a free port.
    pub fn start() -> Mailbox {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let boxes = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let b = boxes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut data = Vec::new();
                    let mut buf = [0u8; 8192];
                    // Read the head, then as much body as Content-Length says.
                    let (head, mut body) = loop {
                        let Ok(n) = stream.read(&mut buf) else { return };
                        if n == 0 {
                            return;
                        }
                        data.extend_from_slice(&buf[..n]);
                        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                            break (String::from_utf8_lossy(&data[..i]).to_string(), data[i + 4..].to_vec());
                        }
                    };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while body.len() < len {
                        let Ok(n) = stream.read(&mut buf) else { return };
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&buf[..n]);
                    }
                    let mut parts = head.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let answer = match (method, path.strip_prefix("/put/"), path.strip_prefix("/get/")) {
                        ("POST", Some(name), _) => {
                            b.lock()
                                .unwrap()
                                .insert(name.to_string(), String::from_utf8_lossy(&body).into_owned());
                            Some(String::new())
                        }
                        ("GET", _, Some(name)) => b.lock().unwrap().get(name).cloned(),
                        _ => None,
                    };
                    let reply = match answer {
                        Some(text) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    };
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        Mailbox { url, boxes }
    }

    /// Puts `value` under `name` (a job waiting on it goes on).
    pub fn put(&self, name: &str, value: &str) {
        self.boxes.lock().unwrap().insert(name.to_string(), value.to_string());
    }

    /// Every name something was put under.
    pub fn names(&self) -> Vec<String> {
        self.boxes.lock().unwrap().keys().cloned().collect()
    }

    /// What is under `name` now.
    pub fn get(&self, name: &str) -> Option<String> {
        self.boxes.lock().unwrap().get(name).cloned()
    }

    /// Waits until a job has put something under `name` and answers it.
    pub async fn wait(&self, name: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Some(v) = self.get(name).filter(|v| !v.is_empty()) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nothing was put under {name}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Shell for a job to put `$VALUE_EXPR` under `name` in the mailbox at `$MAILBOX`.
pub fn put_cmd(name: &str, value_expr: &str) -> String {
    format!("curl -sf -X POST --data-binary \"{value_expr}\" \"$MAILBOX/put/{name}\"")
}

/// Shell for a job to wait until the mailbox at `$MAILBOX` has something under `name`.
pub fn wait_cmd(name: &str) -> String {
    format!("until curl -sf \"$MAILBOX/get/{name}\" > /dev/null; do sleep 0.05; done")
}
