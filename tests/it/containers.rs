//! Jobs with `image:` and `services:` on the built-in executor with podman: a local image
//! (busybox with a file baked in, imported once), the checkout at GitLab's `CI_PROJECT_DIR`,
//! services by alias and default host name, pull policies, cancel and timeout removing the
//! containers, and a hostile job that finds nothing of spur's. These machines reach no
//! registry, so every image is local and pulled with `never` or `if-not-present`.

use crate::support::{ROOT_TOKEN, Repo, Server, finished_pipeline, send, send_raw};
use reqwest::Method;
use serde_json::Value;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The test image: busybox, a shell, and `/etc/baked.txt`.
const IMAGE: &str = "localhost/spur-test-busybox:1";

/// podman's settings for these VMs (`tests/containers.conf`: runc, cgroupfs, no ulimits), as
/// an operator would set them; and the test image, imported once.
fn engine_env() -> &'static String {
    static ENV: OnceLock<String> = OnceLock::new();
    ENV.get_or_init(|| {
        let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/containers.conf").to_string();
        let dir = std::env::temp_dir().join(format!("spur-test-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rootfs = dir.join("rootfs");
        for sub in ["bin", "etc", "tmp", "www"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("busybox-static is installed by tests/run");
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "cat", "echo", "ls", "httpd", "wget", "nc", "id", "sleep", "env", "mkdir", "printf", "test", "grep",
            "find", "chmod", "ln", "touch", "true", "false", "tr", "head", "pwd", "sort",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("etc/baked.txt"), "baked-into-the-image\n").unwrap();
        std::fs::write(rootfs.join("www/index.html"), "hello-from-the-service\n").unwrap();
        let archive = dir.join("rootfs.tar");
        let tar = Command::new("tar")
            .args(["-C"])
            .arg(&rootfs)
            .args(["-cf"])
            .arg(&archive)
            .arg(".")
            .status()
            .unwrap();
        assert!(tar.success());
        let import = Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(&archive)
            .arg(IMAGE)
            .output()
            .expect("podman is installed by tests/run");
        assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
        let _ = std::fs::remove_dir_all(&dir);
        conf
    })
}

/// A server running jobs in podman, a project from `config`, its trigger token.
async fn setup(config: &str) -> (Server, Repo, u64, String) {
    let conf = engine_env();
    let s = Server::start_with_env(
        &["--concurrent", "3", "--job-engine", "podman"],
        &[("CONTAINERS_CONF", conf)],
    );
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config), ("README.md", "# demo\n")]);
    let pid = s.project("demo", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    (s, repo, pid, token)
}

async fn trigger(s: &Server, pid: u64, token: &str) -> u64 {
    let form = [("token", token), ("ref", "main")];
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&form),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_u64().unwrap()
}

async fn job(s: &Server, pid: u64, pipeline: u64, name: &str) -> Value {
    let (status, v) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{pipeline}/jobs"))).await;
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no job {name} in {v}"))
}

async fn trace(s: &Server, pid: u64, job_id: u64) -> String {
    let resp = send_raw(s.root(Method::GET, &format!("/projects/{pid}/jobs/{job_id}/trace"))).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The names of this server's containers, and of its networks, that still exist.
fn leftovers(s: &Server) -> (String, String) {
    let conf = engine_env();
    let label = spur::sandbox::engine::instance_label(&s.data_dir);
    let list = |args: &[&str], field: &str| {
        let out = Command::new("podman")
            .env("CONTAINERS_CONF", conf)
            .args(args)
            .args(["--filter", &format!("label={label}"), "--format", field])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (list(&["ps", "-a"], "{{.Names}}"), list(&["network", "ls"], "{{.Name}}"))
}

async fn no_leftovers(s: &Server) {
    let start = Instant::now();
    loop {
        let left = leftovers(s);
        if left.0.is_empty() && left.1.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "left behind: {left:?}\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_job_runs_in_its_image_with_the_checkout_at_gitlabs_project_dir() {
    let config = format!(
        r#"
variables:
  GREETING: "it's a $$HOME-less 'quote'"
build:
  stage: build
  image:
    name: {IMAGE}
    pull_policy: [always, if-not-present]
  script:
    - cat /etc/baked.txt
    - echo "dir=$CI_PROJECT_DIR pwd=$(pwd) builds=$CI_BUILDS_DIR image=$CI_JOB_IMAGE"
    - test -f README.md && test -d .git
    - echo "greeting=$GREETING"
    - id -u
    - mkdir -p out && echo made-in-a-container > out/result.txt
  after_script:
    - echo "after status=$CI_JOB_STATUS in $(pwd)"
  artifacts:
    paths: [out/]
use:
  stage: test
  script:
    - cat out/result.txt
"#
    );
    let (s, _repo, pid, token) = setup(&config).await;
    let id = trigger(&s, pid, &token).await;
    let p = finished_pipeline(&s, pid, id).await;
    let build = job(&s, pid, id, "build").await;
    let log = trace(&s, pid, build["id"].as_u64().unwrap()).await;
    assert_eq!(build["status"], "success", "{log}");
    assert!(
        log.contains("Using podman executor with image localhost/spur-test-busybox:1"),
        "{log}"
    );
    assert!(
        log.contains("Pulling docker image localhost/spur-test-busybox:1"),
        "{log}"
    );
    assert!(log.contains("Using docker image sha256:"), "{log}");
    assert!(log.contains("baked-into-the-image"), "{log}");
    assert!(
        log.contains("dir=/builds/root/demo pwd=/builds/root/demo builds=/builds image=localhost/spur-test-busybox:1"),
        "{log}"
    );
    assert!(log.contains("greeting=it's a $HOME-less 'quote'"), "{log}");
    assert!(log.contains("after status=success in /builds/root/demo"), "{log}");
    assert!(!log.contains("WARNING: spur has no container engine"), "{log}");
    let used = job(&s, pid, id, "use").await;
    let log = trace(&s, pid, used["id"].as_u64().unwrap()).await;
    assert!(log.contains("made-in-a-container"), "{log}");
    assert_eq!(p["status"], "success", "{log}");
    no_leftovers(&s).await;
}

#[tokio::test]
async fn services_answer_by_alias_and_by_their_default_host_name() {
    let config = format!(
        r#"
test:
  image: {{name: {IMAGE}, pull_policy: never}}
  services:
    - name: {IMAGE}
      alias: web
      pull_policy: if-not-present
      command: ["httpd", "-f", "-p", "80", "-h", "/www"]
  script:
    - sleep 1
    - wget -qO- http://web/index.html
    - wget -qO- http://localhost__spur-test-busybox/index.html
"#
    );
    let (s, _repo, pid, token) = setup(&config).await;
    let id = trigger(&s, pid, &token).await;
    let p = finished_pipeline(&s, pid, id).await;
    let test = job(&s, pid, id, "test").await;
    let log = trace(&s, pid, test["id"].as_u64().unwrap()).await;
    assert_eq!(p["status"], "success", "{log}");
    assert!(log.contains("Starting service localhost/spur-test-busybox:1"), "{log}");
    assert_eq!(log.matches("hello-from-the-service").count(), 2, "{log}");
    no_leftovers(&s).await;
}

#[tokio::test]
async fn a_missing_image_with_pull_policy_never_fails_as_image_pull_failure() {
    let config =
        "job:\n  image: {name: localhost/spur-no-such-image:9, pull_policy: never}\n  script: [echo never-runs]\n";
    let (s, _repo, pid, token) = setup(config).await;
    let id = trigger(&s, pid, &token).await;
    let p = finished_pipeline(&s, pid, id).await;
    assert_eq!(p["status"], "failed");
    let j = job(&s, pid, id, "job").await;
    assert_eq!(j["failure_reason"], "image_pull_failure", "{j}");
    let log = trace(&s, pid, j["id"].as_u64().unwrap()).await;
    assert!(
        log.contains(
            "ERROR: Preparation failed: failed to pull image \"localhost/spur-no-such-image:9\" with specified policies [never]"
        ),
        "{log}"
    );
    assert!(!log.contains("never-runs"), "{log}");
    no_leftovers(&s).await;
}

#[tokio::test]
async fn image_names_are_registry_references_only() {
    let config = "archive:\n  image: {name: 'docker-archive:/etc/passwd', pull_policy: always}\n  script: [echo never-runs]\nfolder:\n  image: 'dir:/root'\n  script: [echo never-runs]\noption:\n  image: '--privileged'\n  script: [echo never-runs]\n";
    let (s, _repo, pid, token) = setup(config).await;
    let id = trigger(&s, pid, &token).await;
    finished_pipeline(&s, pid, id).await;
    for name in ["archive", "folder", "option"] {
        let j = job(&s, pid, id, name).await;
        assert_eq!(j["failure_reason"], "image_pull_failure", "{j}");
        let log = trace(&s, pid, j["id"].as_u64().unwrap()).await;
        assert!(log.contains("invalid reference format"), "{log}");
        assert!(!log.contains("never-runs"), "{log}");
    }
    no_leftovers(&s).await;
}

#[tokio::test]
async fn what_a_containers_root_makes_stays_behind_a_closed_gate_and_deep_trees_fail_closed() {
    let config = format!(
        r#"
suid:
  image: {{name: {IMAGE}, pull_policy: never}}
  script:
    - cp /bin/busybox suid && chmod 4755 suid && chmod 755 .
    - echo ready
    - sleep 300
deep:
  image: {{name: {IMAGE}, pull_policy: never}}
  script:
    - d=.; i=0; while [ $i -lt 300 ]; do d=$d/x; mkdir $d; i=$((i+1)); done; echo nested
"#
    );
    let (s, _repo, pid, token) = setup(&config).await;
    let id = trigger(&s, pid, &token).await;
    let suid = job(&s, pid, id, "suid").await["id"].as_u64().unwrap();
    let start = Instant::now();
    while !trace(&s, pid, suid).await.contains("\nready") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            trace(&s, pid, suid).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another user of the host cannot reach the set-uid file the container's root made.
    let file = s.data_dir.join(format!("builds/{suid}.gate/{suid}/suid"));
    assert!(
        std::fs::symlink_metadata(&file).is_ok(),
        "{} is not where expected",
        file.display()
    );
    let other = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "stat"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!other.status.success(), "nobody reached {}", file.display());
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{suid}/cancel"))).await;
    assert_eq!(status, 201);
    finished_pipeline(&s, pid, id).await;
    let deep = job(&s, pid, id, "deep").await;
    let log = trace(&s, pid, deep["id"].as_u64().unwrap()).await;
    assert!(log.contains("nested"), "{log}");
    assert_eq!(deep["failure_reason"], "runner_system_failure", "{log}");
    assert!(log.contains("the checkout was removed"), "{log}");
    no_leftovers(&s).await;
}

#[tokio::test]
async fn cancel_and_timeout_remove_the_containers() {
    let config = format!(
        "slow:\n  image: {{name: {IMAGE}, pull_policy: never}}\n  services: [{{name: {IMAGE}, pull_policy: never, command: [sleep, '300']}}]\n  script: [echo started, sleep 300]\nhang:\n  image: {{name: {IMAGE}, pull_policy: never}}\n  timeout: 2s\n  script: [sleep 300]\n"
    );
    let (s, _repo, pid, token) = setup(&config).await;
    let id = trigger(&s, pid, &token).await;
    let slow = job(&s, pid, id, "slow").await["id"].as_u64().unwrap();
    let start = Instant::now();
    while !trace(&s, pid, slow).await.contains("started") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job never started: {}\n{}",
            trace(&s, pid, slow).await,
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!leftovers(&s).0.is_empty(), "no container while the job runs");
    let (status, j) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{slow}/cancel"))).await;
    assert_eq!(status, 201, "{j}");
    finished_pipeline(&s, pid, id).await;
    let hang = job(&s, pid, id, "hang").await;
    assert_eq!(hang["failure_reason"], "job_execution_timeout", "{hang}");
    assert!(hang["duration"].as_f64().unwrap() < 30.0, "{hang}");
    no_leftovers(&s).await;
}

#[tokio::test]
async fn a_hostile_job_in_a_container_finds_nothing_of_spurs() {
    let config = format!(
        r#"
hostile:
  image: {{name: {IMAGE}, pull_policy: never}}
  variables:
    SECRET_FILE_CHECK: "1"
  script:
    - test ! -e "$DATA_DIR" && echo no-data-dir
    - for p in /proc/[0-9]*; do cat $p/cmdline; echo; done | grep -c serve || echo no-spur-process
    - nc -w 2 127.0.0.1 "$SPUR_PORT" </dev/null && echo REACHED-SPUR || echo spur-unreachable
    - test ! -e /var/run/docker.sock && test ! -e /run/podman/podman.sock && echo no-engine-socket
    - ls /dev | tr '\n' ' '; echo
    - chmod -R u+w .git/objects; find .git/objects -type f -exec sh -c 'echo corrupt > "$1"' _ {{}} \;
    - echo wrote-objects
    - printf '[core]\n\tfsmonitor = "echo ran-on-the-host > fsmonitor-proof.txt; false"\n' >> .git/config
    - echo made > untracked.txt
  artifacts:
    untracked: true
"#
    );
    let (s, repo, pid, token) = setup(&config).await;
    let port = s.base.rsplit(':').next().unwrap().trim_end_matches('/').to_string();
    let form = [
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[DATA_DIR]", &s.data_dir.to_string_lossy()),
        ("variables[SPUR_PORT]", &port),
    ];
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&form),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    finished_pipeline(&s, pid, id).await;
    let j = job(&s, pid, id, "hostile").await;
    let log = trace(&s, pid, j["id"].as_u64().unwrap()).await;
    assert_eq!(j["status"], "success", "{log}");
    for expected in ["no-data-dir", "spur-unreachable", "no-engine-socket", "wrote-objects"] {
        assert!(log.contains(expected), "{expected}: {log}");
    }
    assert!(log.contains("\n0\n") || log.contains("no-spur-process"), "{log}");
    // The container's root wrote every object file of its checkout: the repository it came
    // from is whole, and the next pipeline checks out.
    let fsck = Command::new("git")
        .args(["fsck", "--full"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    // spur's helper listed the untracked files without running the job's fsmonitor.
    let zip = send_raw(s.root(
        Method::GET,
        &format!("/projects/{pid}/jobs/{}/artifacts", j["id"].as_u64().unwrap()),
    ))
    .await;
    assert_eq!(zip.status(), 200);
    let zip = zip::ZipArchive::new(std::io::Cursor::new(zip.bytes().await.unwrap().to_vec())).unwrap();
    let names: Vec<String> = zip.file_names().filter_map(|n| n.ok().map(|n| n.to_string())).collect();
    assert!(names.contains(&"untracked.txt".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("fsmonitor-proof")), "{names:?}");
    no_leftovers(&s).await;
}
