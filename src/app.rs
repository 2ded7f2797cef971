//! Assembling spur: opening the data dir into a `context::Spur` (the job fence, the
//! application settings, first-start bootstrap of `root`) and starting the pipeline engine.
//! Only the wiring (`lib.rs`) calls it.

use crate::auth;
use crate::clock;
use crate::config::Config;
pub use crate::context::Spur;
use crate::domain::{TokenScope, User};
use crate::git::Repos;
use crate::scheduler;
use crate::secrets::{self, Secrets};
use crate::storage::{NewUser, Store};
use crate::trace::Traces;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A start-up failure, with a message meant for the operator.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl Spur {
    /// Opens the data dir (creating it on first start) and bootstraps `root` on an empty one.
    pub async fn open(config: &Config) -> Result<Spur, StartError> {
        let dir = &config.data_dir;
        {
            use crate::config::layout;
            use std::os::unix::fs::DirBuilderExt;
            for sub in ["", layout::ARTIFACTS, layout::REPOSITORIES] {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir.join(sub))
                    .map_err(|e| StartError(format!("cannot create data dir {}: {e}", dir.display())))?;
            }
        }
        let secrets = Secrets::load_or_create(&dir.join(crate::config::layout::SECRET_KEY))
            .map_err(|e| StartError(e.to_string()))?;
        let db_path = dir.join(crate::config::layout::DATABASE);
        // Right after a crash the lock can outlive the old process for a moment (a child it was
        // forking still holds the file until its exec closes it): try again for two seconds.
        let mut opened = Store::open(&db_path);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while matches!(opened, Err(crate::storage::Error::AlreadyOpen)) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            opened = Store::open(&db_path);
        }
        let store = opened.map_err(|e| match e {
            crate::storage::Error::AlreadyOpen => StartError(format!(
                "another spur is already using the data dir {} (its database is locked); stop it or choose another --data-dir",
                dir.display()
            )),
            other => StartError(format!("cannot open {}: {other}", db_path.display())),
        })?;
        store.set_min_free_bytes(config.min_free_bytes);
        let traces_dir = dir.join(crate::config::layout::TRACES);
        let traces = Traces::new(traces_dir.clone(), config.max_trace_bytes)
            .map_err(|e| StartError(format!("cannot create {}: {e}", traces_dir.display())))?;
        let sandbox = crate::sandbox::Sandbox::parse(&config.job_sandbox).ok_or_else(|| {
            StartError(format!(
                "--job-sandbox {:?}: choose landlock, bwrap or none",
                config.job_sandbox
            ))
        })?;
        let isolation = crate::sandbox::Isolation::new(
            dir,
            crate::sandbox::Options {
                sandbox,
                job_user: config.job_user.clone(),
                job_uids: config.job_uids,
                read_paths: config.job_read_paths.clone(),
            },
        )
        .map_err(StartError)?;
        secure_data_dir(dir, isolation.other_uid() && isolation.builds_dir.starts_with(dir))
            .map_err(|e| StartError(format!("cannot secure the data dir {}: {e}", dir.display())))?;
        let engine_choice = crate::sandbox::engine::Choice::parse(&config.job_engine).ok_or_else(|| {
            StartError(format!(
                "--job-engine {:?}: choose auto, podman, docker or none",
                config.job_engine
            ))
        })?;
        let engine = crate::sandbox::engine::Detected::start(engine_choice)
            .map_err(|e| StartError(format!("--job-engine {}: {e}", config.job_engine)))?;
        let (scheduler, inbox) = scheduler::channel();
        let concurrent = config
            .concurrent
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let spur = Spur {
            scheduler,
            inbox: Mutex::new(Some(inbox)),
            traces,
            job_timeout_secs: config.job_timeout_secs,
            concurrent,
            max_downstream_depth: config.max_downstream_depth,
            metrics: crate::metrics::Metrics::default(),
            shutdown: crate::context::Shutdown::default(),
            isolation: Arc::new(isolation),
            engine,
            engine_label: crate::sandbox::engine::instance_label(dir),
            import_path_dirs: config.import_path_dirs.clone(),
            allow_local_requests: config.allow_local_requests,
            outbound: Arc::new(std::sync::RwLock::new(crate::outbound::Policy::new(
                &store
                    .application_settings()
                    .map_err(|e| StartError(format!("cannot read the application settings: {e}")))?,
                config.allow_local_requests,
            ))),
            remote_includes: crate::outbound::TextCache::default(),
            runner_contacts: crate::context::RunnerContacts::default(),
            runner_poll_timeout: std::time::Duration::from_secs(config.runner_poll_timeout_secs),
            runner_job_timeout_secs: config.runner_job_timeout_secs,
            max_artifacts_bytes: config.max_artifacts_bytes,
            max_test_report_bytes: config.max_test_report_bytes,
            push_locks: crate::context::ProjectLocks::default(),
            events: crate::events::Events::default(),
            mirror_interval: std::time::Duration::from_secs(config.mirror_interval_secs.max(1)),
            min_schedule_interval_ms: i64::try_from(config.min_schedule_interval_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX / 4),
            schedules_changed: tokio::sync::Notify::new(),
            schedule_play_quota: crate::rate_limit::Quota::new(1, std::time::Duration::from_secs(60)),
            sign_in_limiter: crate::rate_limit::Limiter::new(
                config.sign_in_rate_limit,
                std::time::Duration::from_secs(60),
            ),
            trigger_limiter: crate::rate_limit::Limiter::new(
                config.trigger_rate_limit,
                std::time::Duration::from_secs(60),
            ),
            hook_test_quota: crate::rate_limit::Quota::new(5, std::time::Duration::from_secs(60)),
            hook_resend_quota: crate::rate_limit::Quota::new(5, std::time::Duration::from_secs(60)),
            retention: crate::retention::Policy {
                keep_pipelines_secs: config.keep_pipelines_secs,
                keep_logs_secs: config.keep_logs_secs,
                interval_secs: config.retention_interval_secs,
            },
            store,
            secrets,
            repos: Repos::new(dir.join(crate::config::layout::REPOSITORIES)),
            external_url: config.external_url.clone(),
            data_dir: dir.clone(),
            max_body_bytes: config.max_body_bytes,
            root_password_pending: Arc::default(),
        };
        spur.bootstrap_root(config).await?;
        crate::accounts::remove_stale_root_credentials(dir);
        tracing::info!(isolation = %spur.isolation.describe(), builds_dir = %spur.isolation.builds_dir.display(), "job isolation");
        secure_data_dir(
            dir,
            spur.isolation.other_uid() && spur.isolation.builds_dir.starts_with(dir),
        )
        .map_err(|e| StartError(format!("cannot secure the data dir {}: {e}", dir.display())))?;
        Ok(spur)
    }

    /// Creates the administrator `root` on first start and writes its credentials to
    /// `<data-dir>/initial_root_credentials` (mode 0600). Never logs them. Root's password is
    /// hashed after this returns (see `set_root_password`), so that a first start answers as
    /// soon as a later one does.
    async fn bootstrap_root(&self, config: &Config) -> Result<(), StartError> {
        let err = |e: String| StartError(format!("first start: {e}"));
        if let Some(root) = self.store.user_by_username("root").map_err(|e| err(e.to_string()))? {
            // A first start that stopped before root's hash was written: hash it again.
            if root.password_hash == auth::PASSWORD_BEING_SET {
                match config.root_password.clone().or_else(|| self.generated_root_password()) {
                    Some(password) => self.set_root_password(root.id, password),
                    None => tracing::error!(
                        "root has no password (its first start stopped early and its credentials file is gone); sign in with its token and set one"
                    ),
                }
            }
            return Ok(());
        }
        // Only what spur chose itself is written down: secrets given through the environment
        // or a file are the operator's, and are never copied to disk.
        let mut generated = String::new();
        let password = match &config.root_password {
            Some(p) => p.clone(),
            None => {
                let p = secrets::hex(&secrets::random_array::<16>().map_err(|e| err(e.to_string()))?);
                generated.push_str(&format!("password: {p}\n"));
                p
            }
        };
        let token = match &config.root_token {
            Some(t) => t.clone(),
            None => {
                let t = secrets::new_token("glpat-").map_err(|e| err(e.to_string()))?;
                generated.push_str(&format!("personal_access_token: {t}\n"));
                t
            }
        };
        if !generated.is_empty() {
            let path = self.data_dir.join(crate::accounts::ROOT_CREDENTIALS);
            write_private(&path, &format!("# spur's first administrator; change or revoke these. This file is deleted after 24 hours.\nusername: root\n{generated}"))
                .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
        }
        let now = clock::now();
        let new = NewUser {
            username: "root".into(),
            name: "Administrator".into(),
            email: "admin@example.com".into(),
            password_hash: auth::PASSWORD_BEING_SET.into(),
            admin: true,
            now,
        };
        let user: User = self
            .store
            .create_user(new)
            .await
            .map_err(|e| err(e.to_string()))?
            .map_err(|r| err(format!("{r:?}")))?;
        let digest = self.secrets.digest(&token);
        self.store
            .create_personal_access_token(
                digest,
                user.id,
                "initial root token".into(),
                vec![TokenScope::Api],
                None,
                now,
            )
            .await
            .map_err(|e| err(e.to_string()))?;
        self.set_root_password(user.id, password);
        if generated.is_empty() {
            tracing::info!("created the administrator root with the password and token given");
        } else {
            let path = self.data_dir.join(crate::accounts::ROOT_CREDENTIALS);
            tracing::info!(path = %path.display(), "created the administrator root; its credentials are in this file for 24 hours");
        }
        Ok(())
    }

    /// Hashes root's first password in the background and stores the hash, unless root's
    /// password was set some other way meanwhile.
    fn set_root_password(&self, root_id: u64, password: String) {
        use std::sync::atomic::Ordering;
        let store = self.store.clone();
        let pending = self.root_password_pending.clone();
        pending.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            let hashed = tokio::task::spawn_blocking(move || auth::hash_password(&password)).await;
            let stored = match hashed {
                Ok(Ok(hash)) => store
                    .replace_password_hash(root_id, auth::PASSWORD_BEING_SET, hash)
                    .await
                    .map_err(|e| e.to_string()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.to_string()),
            };
            pending.store(false, Ordering::SeqCst);
            if let Err(e) = stored {
                tracing::error!(error = %e, "cannot store root's password; it is hashed again at the next start");
            }
        });
    }

    /// The password spur generated for root on its first start, from the credentials file.
    fn generated_root_password(&self) -> Option<String> {
        let text = fs::read_to_string(self.data_dir.join(crate::accounts::ROOT_CREDENTIALS)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("password: "))
            .map(|p| p.trim().to_string())
    }

    /// Starts the pipeline engine on its own runtime thread: the scheduler (which first recovers
    /// unfinished jobs) and the built-in executor's workers. Only the first call starts it.
    pub fn start_engine(self: &Arc<Self>) -> Result<(), StartError> {
        let Some(inbox) = self.inbox.lock().ok().and_then(|mut i| i.take()) else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spur-engine")
            .enable_all()
            .build()
            .map_err(|e| StartError(format!("cannot start the pipeline engine: {e}")))?;
        let spur = self.clone();
        std::thread::Builder::new()
            .name("spur-engine".into())
            .spawn(move || {
                runtime.block_on(async move {
                    crate::executor::start(spur.clone(), spur.concurrent);
                    // Every background task, started here and nowhere else, ends with the
                    // shutdown signal; their handles are awaited when the engine stops.
                    let mut tasks = tokio::task::JoinSet::new();
                    let mut background = |task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
                        let spur = spur.clone();
                        tasks.spawn(async move {
                            tokio::select! {
                                () = task => {}
                                () = spur.shutdown.started() => {}
                            }
                        });
                    };
                    background(Box::pin(crate::retention::run(spur.clone())));
                    background(Box::pin(crate::runners::liveness::run(spur.clone())));
                    let every = std::time::Duration::from_secs(spur.retention.interval_secs.clamp(1, 3600));
                    background(Box::pin(crate::artifacts::expire(spur.clone(), every)));
                    background(Box::pin(crate::push::follow(spur.clone(), spur.mirror_interval)));
                    if spur.store.any_listener().unwrap_or(true) {
                        spur.events.listen();
                    }
                    if let Some(events) = spur.events.take_receiver() {
                        background(Box::pin(crate::hooks::run(spur.clone(), events)));
                    }
                    background(Box::pin(crate::retention::sweep_sessions(spur.clone())));
                    background(Box::pin(crate::schedules::spawn(spur.clone())));
                    background(Box::pin(crate::environments::auto_stop(spur.clone())));
                    background(Box::pin(crate::memory::return_freed_memory()));
                    crate::engine::run(spur, inbox).await;
                    tasks.shutdown().await;
                })
            })
            .map_err(|e| StartError(format!("cannot start the pipeline engine: {e}")))?;
        Ok(())
    }

    /// The URL of a path under the external URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.external_url, path.trim_start_matches('/'))
    }
}

/// Makes the data dir private: the folder `0700` (`0711` when job users must pass through it to
/// their workspaces under `builds/`), the key, database and credentials `0600`, every other
/// folder in it `0700`; tightens whatever an earlier version or an operator left looser.
fn secure_data_dir(dir: &Path, traversable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode: u32| -> std::io::Result<()> {
        match fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => Ok(()),
            Ok(m) if m.permissions().mode() & 0o7777 != mode => {
                if m.permissions().mode() & 0o077 & !mode != 0 {
                    tracing::info!(path = %p.display(), "was open to other users; made private");
                }
                fs::set_permissions(p, fs::Permissions::from_mode(mode))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    };
    set(dir, if traversable { 0o711 } else { 0o700 })?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() && entry.file_name() != "builds" {
            set(&path, 0o700)?;
        } else if kind.is_file() {
            set(&path, 0o600)?;
        }
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Proves the database takes writes (a durable write of a probe record), for readiness checks.
pub async fn probe_storage(spur: &Spur) -> Result<(), crate::storage::Error> {
    spur.store.touch().await
}
