//! The `spur` command: parses flags, sets up logging, and starts the server.

use clap::{Args, Parser, Subcommand};
use spur::config::{Config, FileConfig, normalize_external_url};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

/// spur: a self-hosted CI server in one binary, speaking GitLab's pipeline trigger API.
#[derive(Parser)]
#[command(name = "spur", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SPUR_REVISION"), ")"))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve(Box<ServeArgs>),
    /// Works with `.gitlab-ci.yml` files without a server.
    Ci {
        #[command(subcommand)]
        command: CiCommand,
    },
    /// Writes a backup of the whole instance (database and key, hosted repositories, job logs,
    /// artifacts) to FILE, a .tar.gz: from a running server with --url and an administrator's
    /// --token, or from a stopped one's --data-dir.
    Backup(BackupArgs),
    /// Restores a backup into a data dir (empty, or with --force).
    Restore(RestoreArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// The running server's base URL (http or https), e.g. http://127.0.0.1:8080.
    #[arg(long, conflicts_with = "data_dir", requires = "token")]
    url: Option<String>,
    /// A PEM certificate to trust besides the system's (with an https --url behind a proxy
    /// whose certificate a private CA signed).
    #[arg(long, requires = "url")]
    cacert: Option<PathBuf>,
    /// An administrator's personal access token (with --url).
    #[arg(long, env = "SPUR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The data dir of a stopped server.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to write the backup (must not exist).
    file: PathBuf,
}

#[derive(Args)]
struct RestoreArgs {
    /// The data dir to restore into.
    #[arg(long)]
    data_dir: PathBuf,
    /// Replace a database that is there already.
    #[arg(long)]
    force: bool,
    /// The backup file.
    file: PathBuf,
}

#[derive(Subcommand)]
enum CiCommand {
    /// Plans a pipeline from a `.gitlab-ci.yml` (its folder is the repository root) and prints
    /// which jobs would run, as JSON.
    Plan(Box<PlanArgs>),
}

/// Arguments of `spur ci plan`.
#[derive(Args)]
struct PlanArgs {
    /// The `.gitlab-ci.yml` to plan.
    config: PathBuf,
    /// The pipeline source (`push`, `trigger`, `pipeline`, `api`, `web`, `schedule`, ...).
    #[arg(long, default_value = "push")]
    source: String,
    /// The ref (a branch, or a tag with `--tag`).
    #[arg(long = "ref", default_value = "main")]
    ref_name: String,
    /// The ref is a tag.
    #[arg(long)]
    tag: bool,
    /// A pipeline variable, `KEY=VALUE` (repeatable).
    #[arg(long = "var", value_parser = parse_pair)]
    vars: Vec<(String, String)>,
    /// A project CI/CD variable, `KEY=VALUE` (repeatable).
    #[arg(long = "project-var", value_parser = parse_pair)]
    project_vars: Vec<(String, String)>,
    /// A value for one of `.gitlab-ci.yml`'s `spec:inputs`, `NAME=VALUE` (repeatable; read as
    /// the input's type: `--input replicas=3`, `--input tags='["a","b"]'`).
    #[arg(long = "input", value_parser = parse_pair)]
    inputs: Vec<(String, String)>,
    /// The project's path, `group/project` [default: local/<the file's folder>].
    #[arg(long)]
    project_path: Option<String>,
    /// The project's default branch (`CI_DEFAULT_BRANCH`).
    #[arg(long, default_value = "main")]
    default_branch: String,
    /// The ref is protected (`CI_COMMIT_REF_PROTECTED=true`).
    #[arg(long)]
    protected: bool,
    /// The server's URL (`CI_SERVER_URL`, `CI_SERVER_HOST`, `CI_SERVER_FQDN`, ...).
    #[arg(long, default_value = "http://localhost:8080")]
    server_url: String,
    /// Another project's local checkout for `include:project`, `PATH=DIR` (repeatable); read
    /// at the include's `ref` when DIR is a git repository.
    #[arg(long = "project-dir", value_parser = parse_pair)]
    project_dirs: Vec<(String, String)>,
    /// A local folder standing in for a URL prefix for `include:remote`, `PREFIX=DIR`
    /// (repeatable); other remote files are fetched (public addresses only).
    #[arg(long = "remote-dir", value_parser = parse_pair)]
    remote_dirs: Vec<(String, String)>,
    /// For `--source merge_request_event`: the merge request's IID.
    #[arg(long, default_value_t = 1)]
    mr_iid: u64,
    /// For `--source merge_request_event`: the branch it merges into [default: the default branch].
    #[arg(long)]
    mr_target_branch: Option<String>,
    /// For `--source merge_request_event`: its title.
    #[arg(long, default_value = "")]
    mr_title: String,
    /// For `--source merge_request_event`: a label (repeatable).
    #[arg(long = "mr-label")]
    mr_labels: Vec<String>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Settings of `spur serve`. Each flag can also come from its environment variable or from the
/// TOML file given with `--config` (flag beats variable beats file beats default).
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; port 0 picks a free port].
    #[arg(long, env = "SPUR_LISTEN")]
    listen: Option<SocketAddr>,
    /// Folder for the database (spur.redb), the secret key and repositories [default: ./spur-data].
    #[arg(long, env = "SPUR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Base URL used in web_url fields and links [default: http://<listen>].
    #[arg(long, env = "SPUR_EXTERNAL_URL")]
    external_url: Option<String>,
    /// A TOML file with any of: listen, data_dir, external_url, max_body_bytes, workers, concurrent, job_timeout_secs, max_trace_bytes, min_free_bytes,
    /// max_downstream_depth.
    #[arg(long, env = "SPUR_CONFIG")]
    config: Option<PathBuf>,
    /// Largest request body in bytes; larger ones get 413 [default: 1048576].
    #[arg(long, env = "SPUR_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "SPUR_WORKERS")]
    workers: Option<usize>,
    /// Jobs the built-in shell executor runs at once; 0 leaves jobs for remote runners [default: one per core].
    #[arg(long, env = "SPUR_CONCURRENT")]
    concurrent: Option<usize>,
    /// Timeout of jobs whose configuration sets none, in seconds [default: 3600].
    #[arg(long, env = "SPUR_JOB_TIMEOUT")]
    job_timeout: Option<u64>,
    /// Largest job log kept, in bytes [default: 16777216].
    #[arg(long, env = "SPUR_MAX_TRACE_BYTES")]
    max_trace_bytes: Option<u64>,
    /// Refuse writes (503) while the data dir's disk has less than this many bytes free, so that
    /// a full disk never fails a commit midway; 0 turns the check off [default: 33554432].
    #[arg(long, env = "SPUR_MIN_FREE_BYTES")]
    min_free_bytes: Option<u64>,
    /// Multi-project hops a chain of downstream pipelines may make [default: 10].
    #[arg(long, env = "SPUR_MAX_DOWNSTREAM_DEPTH")]
    max_downstream_depth: Option<u32>,
    /// Delete finished pipelines (with their jobs and logs) older than this: `90d`, `12h`, seconds [default: never].
    #[arg(long, env = "SPUR_KEEP_PIPELINES")]
    keep_pipelines: Option<String>,
    /// Delete job logs older than this [default: never].
    #[arg(long, env = "SPUR_KEEP_LOGS")]
    keep_logs: Option<String>,
    /// How often retention runs [default: 1h].
    #[arg(long, env = "SPUR_RETENTION_INTERVAL")]
    retention_interval: Option<String>,
    /// On SIGTERM, how long running jobs may finish before they are failed [default: 30s].
    #[arg(long, env = "SPUR_SHUTDOWN_GRACE")]
    shutdown_grace: Option<String>,
    /// Failed sign-ins per client address per minute before 429 (0: no limit) [default: 10].
    #[arg(long, env = "SPUR_SIGN_IN_RATE_LIMIT")]
    sign_in_rate_limit: Option<u32>,
    /// Failed trigger requests per client address per minute before 429 (0: no limit) [default: 0].
    #[arg(long, env = "SPUR_TRIGGER_RATE_LIMIT")]
    trigger_rate_limit: Option<u32>,
    /// Run every job of the built-in executor as this one unprivileged user (spur must run as
    /// root) [default: as root, a uid of its own per job from --job-uids; else spur's user].
    #[arg(long, env = "SPUR_JOB_USER")]
    job_user: Option<String>,
    /// The uids jobs run as when spur runs as root, one per running job [default: 2000000000-2000000999].
    #[arg(long, env = "SPUR_JOB_UIDS")]
    job_uids: Option<String>,
    /// The fence around each job: `landlock` (system folders read-only, only its own workspace
    /// writable, no access to the data dir or to other processes), `bwrap` (bubblewrap with the
    /// same Landlock domain inside: also a private /tmp and pid namespace), `none` [default: landlock].
    #[arg(long, env = "SPUR_JOB_SANDBOX", value_parser = ["none", "landlock", "bwrap"])]
    job_sandbox: Option<String>,
    /// A folder jobs may read besides the system ones (/usr, /etc, /opt, ...); repeatable.
    #[arg(long = "job-read-path", env = "SPUR_JOB_READ_PATHS", value_delimiter = ',')]
    job_read_paths: Vec<PathBuf>,
    /// Where jobs with `image:` run: in containers of `podman` or `docker` (a reachable
    /// daemon), or `none` (on the host with a warning, as a shell executor); `auto` takes
    /// podman, then docker, then none [default: auto].
    #[arg(long, env = "SPUR_JOB_ENGINE", value_parser = ["auto", "podman", "docker", "none"])]
    job_engine: Option<String>,
    /// Let webhooks, integrations and mirrors reach loopback and private addresses (GitLab's
    /// allow_local_requests_from_web_hooks_and_services; also an application setting).
    #[arg(long, env = "SPUR_ALLOW_LOCAL_REQUESTS")]
    allow_local_requests: bool,
    /// A folder administrators may import local repositories from; repeatable [default: anywhere].
    #[arg(long = "import-path-dir", env = "SPUR_IMPORT_PATH_DIRS", value_delimiter = ',')]
    import_path_dirs: Vec<PathBuf>,
    /// How long a GitLab runner's job request waits for work before 204 (long polling) [default: 50s].
    #[arg(long, env = "SPUR_RUNNER_POLL_TIMEOUT")]
    runner_poll_timeout: Option<String>,
    /// Fail a job whose GitLab runner has not reported on it for this long [default: 1h].
    #[arg(long, env = "SPUR_RUNNER_JOB_TIMEOUT")]
    runner_job_timeout: Option<String>,
    /// How often projects mirrored from an import_url are fetched for push pipelines [default: 5m].
    #[arg(long, env = "SPUR_MIRROR_INTERVAL")]
    mirror_interval: Option<String>,
    /// Shortest time between two runs of one pipeline schedule, whatever its cron says [default: 1m].
    #[arg(long, env = "SPUR_MIN_SCHEDULE_INTERVAL")]
    min_schedule_interval: Option<String>,
    /// Largest artifacts archive a job may upload, in bytes [default: 104857600].
    #[arg(long, env = "SPUR_MAX_ARTIFACTS_BYTES")]
    max_artifacts_bytes: Option<u64>,
    /// Most bytes of one job's JUnit test reports (`artifacts:reports:junit`), unpacked [default: 10485760].
    #[arg(long, env = "SPUR_MAX_TEST_REPORT_BYTES")]
    max_test_report_bytes: Option<u64>,
    /// Log format: `text` or `json` (one JSON object per line) [default: text].
    #[arg(long, env = "SPUR_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// A file holding the password of the administrator `root`, used only when the data dir is
    /// new (or set SPUR_ROOT_PASSWORD; never on the command line, which anyone may read)
    /// [default: random, written to <data-dir>/initial_root_credentials].
    #[arg(long, env = "SPUR_ROOT_PASSWORD_FILE")]
    root_password_file: Option<PathBuf>,
    /// A file holding the personal access token of `root`, used only when the data dir is new
    /// (or set SPUR_ROOT_TOKEN) [default: random].
    #[arg(long, env = "SPUR_ROOT_TOKEN_FILE")]
    root_token_file: Option<PathBuf>,
}

/// Reads `FIRST-LAST` uids.
fn parse_uid_range(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--job-uids: {text:?} is not a range of uids like 2000000000-2000000999");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Takes `SPUR_ROOT_PASSWORD` and `SPUR_ROOT_TOKEN` out of the environment (so that no git or
/// job process spur starts inherits them); called first thing, while only one thread runs.
fn take_root_secrets() -> (Option<String>, Option<String>) {
    let take = |name: &str| {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty());
        // SAFETY: called at the top of `main`, before any other thread exists.
        unsafe { std::env::remove_var(name) };
        value
    };
    (take("SPUR_ROOT_PASSWORD"), take("SPUR_ROOT_TOKEN"))
}

impl ServeArgs {
    fn into_config(self, root_secrets: (Option<String>, Option<String>)) -> Result<Config, String> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("spur-data"));
        let mut config = Config::new(data_dir);
        if let Some(listen) = self.listen.or(file.listen) {
            config.listen = listen;
        }
        config.external_url = match self.external_url.or(file.external_url) {
            Some(url) => normalize_external_url(&url)?,
            None => format!("http://{}", config.listen),
        };
        if let Some(n) = self.max_body_bytes.or(file.max_body_bytes) {
            config.max_body_bytes = n;
        }
        if let Some(n) = self.workers.or(file.workers) {
            config.workers = n;
        }
        config.concurrent = self.concurrent.or(file.concurrent);
        if let Some(n) = self.job_timeout.or(file.job_timeout_secs) {
            config.job_timeout_secs = n;
        }
        if let Some(n) = self.max_trace_bytes.or(file.max_trace_bytes) {
            config.max_trace_bytes = n;
        }
        if let Some(n) = self.min_free_bytes.or(file.min_free_bytes) {
            config.min_free_bytes = n;
        }
        if let Some(n) = self.max_downstream_depth.or(file.max_downstream_depth) {
            config.max_downstream_depth = n;
        }
        let duration = |name: &str, v: Option<String>| -> Result<Option<u64>, String> {
            v.map(|text| {
                spur::ci_config::job_settings::parse_duration(&text)
                    .ok_or_else(|| format!("--{name}: {text:?} is not a duration (like 90d, 12h, 3600)"))
            })
            .transpose()
        };
        if let Some(n) = duration("keep-pipelines", self.keep_pipelines.or(file.keep_pipelines))? {
            config.keep_pipelines_secs = n;
        }
        if let Some(n) = duration("keep-logs", self.keep_logs.or(file.keep_logs))? {
            config.keep_logs_secs = n;
        }
        if let Some(n) = duration(
            "runner-poll-timeout",
            self.runner_poll_timeout.or(file.runner_poll_timeout),
        )? {
            config.runner_poll_timeout_secs = n;
        }
        if let Some(n) = duration(
            "runner-job-timeout",
            self.runner_job_timeout.or(file.runner_job_timeout),
        )? {
            config.runner_job_timeout_secs = n.max(1);
        }
        if let Some(n) = duration("mirror-interval", self.mirror_interval.or(file.mirror_interval))? {
            config.mirror_interval_secs = n.max(1);
        }
        if let Some(n) = duration(
            "min-schedule-interval",
            self.min_schedule_interval.or(file.min_schedule_interval),
        )? {
            config.min_schedule_interval_secs = n;
        }
        if let Some(n) = self.max_artifacts_bytes.or(file.max_artifacts_bytes) {
            config.max_artifacts_bytes = n;
        }
        if let Some(n) = self.max_test_report_bytes.or(file.max_test_report_bytes) {
            config.max_test_report_bytes = n;
        }
        if let Some(n) = duration(
            "retention-interval",
            self.retention_interval.or(file.retention_interval),
        )? {
            config.retention_interval_secs = n.max(1);
        }
        if let Some(n) = duration("shutdown-grace", self.shutdown_grace.or(file.shutdown_grace))? {
            config.shutdown_grace_secs = n;
        }
        if let Some(n) = self.sign_in_rate_limit.or(file.sign_in_rate_limit) {
            config.sign_in_rate_limit = n;
        }
        if let Some(n) = self.trigger_rate_limit.or(file.trigger_rate_limit) {
            config.trigger_rate_limit = n;
        }
        config.job_user = self.job_user.or(file.job_user);
        if let Some(sandbox) = self.job_sandbox.or(file.job_sandbox) {
            config.job_sandbox = sandbox;
        }
        if let Some(range) = self.job_uids.or(file.job_uids) {
            config.job_uids = parse_uid_range(&range)?;
        }
        if let Some(engine) = self.job_engine.or(file.job_engine) {
            config.job_engine = engine;
        }
        config.job_read_paths = if self.job_read_paths.is_empty() {
            file.job_read_paths.unwrap_or_default()
        } else {
            self.job_read_paths
        };
        config.allow_local_requests = self.allow_local_requests || file.allow_local_requests.unwrap_or(false);
        config.import_path_dirs = if self.import_path_dirs.is_empty() {
            file.import_path_dirs.unwrap_or_default()
        } else {
            self.import_path_dirs
        };
        let secret = |file: Option<PathBuf>, taken: Option<String>| -> Result<Option<String>, String> {
            match file {
                Some(path) => std::fs::read_to_string(&path)
                    .map(|t| Some(t.trim_end_matches(['\r', '\n']).to_string()))
                    .map_err(|e| format!("cannot read {}: {e}", path.display())),
                None => Ok(taken),
            }
        };
        config.root_password = secret(self.root_password_file, root_secrets.0)?;
        config.root_token = secret(self.root_token_file, root_secrets.1)?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let root_secrets = take_root_secrets();
    spur::configure_allocator();
    // The job helpers: run inside a job's fence, before anything else starts.
    let mut argv = std::env::args_os();
    if let Some(mode) = argv.nth(1) {
        let rest: Vec<std::ffi::OsString> = argv.collect();
        if mode == "sandbox-exec" {
            let e = spur::sandbox::landlock::sandbox_exec(&rest);
            eprintln!("spur sandbox-exec: {e}");
            return ExitCode::from(126);
        }
        if mode == "job-files" {
            return ExitCode::from(u8::try_from(spur::executor::job_files::main(&rest)).unwrap_or(1));
        }
    }
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json_logs = matches!(&cli.command, Command::Serve(a) if a.log_format.as_deref() == Some("json"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        Command::Ci {
            command: CiCommand::Plan(args),
        } => plan(*args),
        Command::Backup(args) => backup(args),
        Command::Restore(args) => match spur::backup::restore(&args.file, &args.data_dir, args.force) {
            Ok(summary) => {
                println!(
                    "restored {} into {} ({} repositories, {} job logs, {} artifacts archives)",
                    args.file.display(),
                    args.data_dir.display(),
                    summary.repositories,
                    summary.logs,
                    summary.artifacts
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("spur: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(args) => match args.into_config(root_secrets) {
            Ok(config) => run(config),
            Err(e) => {
                eprintln!("spur: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn plan(args: PlanArgs) -> ExitCode {
    let request = spur::plan_cli::PlanRequest {
        source: args.source,
        ref_name: args.ref_name.clone(),
        tag: args.tag,
        variables: args.vars,
        project_variables: args.project_vars,
        inputs: args.inputs,
        project_path: args.project_path,
        protected: args.protected,
        server_url: args.server_url,
        project_dirs: args
            .project_dirs
            .into_iter()
            .map(|(path, dir)| (path.trim_matches('/').to_string(), PathBuf::from(dir)))
            .collect(),
        remote_dirs: args
            .remote_dirs
            .into_iter()
            .map(|(prefix, dir)| (prefix, PathBuf::from(dir)))
            .collect(),
        merge_request: Some(spur::ci_config::plan::MergeRequest {
            iid: args.mr_iid,
            source_branch: args.ref_name.clone(),
            target_branch: args.mr_target_branch.unwrap_or_else(|| args.default_branch.clone()),
            title: args.mr_title,
            labels: args.mr_labels,
        }),
        default_branch: args.default_branch,
    };
    match spur::plan_cli::plan_file(&args.config, &request) {
        Ok(report) => {
            use std::io::Write;
            // A reader that stops early (`| head`) is not an error of ours.
            let _ = writeln!(std::io::stdout(), "{report:#}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spur: {e}");
            ExitCode::from(2)
        }
    }
}

fn backup(args: BackupArgs) -> ExitCode {
    let outcome = match (&args.url, &args.data_dir) {
        (Some(url), _) => spur::backup::download(
            url,
            args.token.as_deref().unwrap_or_default(),
            &args.file,
            args.cacert.as_deref(),
        ),
        (None, Some(dir)) => spur::backup::backup_offline(dir, &args.file).map(|s| {
            format!(
                "{} repositories, {} job logs, {} artifacts archives",
                s.repositories, s.logs, s.artifacts
            )
        }),
        (None, None) => Err("say where from: --url (a running server) or --data-dir (a stopped one)".into()),
    };
    match outcome {
        Ok(what) => {
            println!("wrote {} ({what})", args.file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spur: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> ExitCode {
    let started = std::time::Instant::now();
    let result = actix_web::rt::System::new().block_on(async move {
        let listener =
            TcpListener::bind(config.listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let mut config = config;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if config.listen.port() == 0 && config.external_url == format!("http://{}", config.listen) {
            config.external_url = format!("http://{addr}");
        }
        let grace = std::time::Duration::from_secs(config.shutdown_grace_secs);
        let running = spur::serve(config, listener).await.map_err(|e| e.to_string())?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "spur is listening on http://{}",
            running.addr
        );
        // actix stops on SIGTERM/SIGINT: no new connections, in-flight requests finish.
        running.server.await.map_err(|e| e.to_string())?;
        spur::shutdown(&running.spur, grace).await;
        // Closed cleanly, the database opens at the next start without redb's repair pass.
        let store = running.spur.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap_or(false);
        tracing::info!(closed, "database closed");
        Ok::<(), String>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spur: {e}");
            ExitCode::FAILURE
        }
    }
}
