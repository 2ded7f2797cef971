//! spur: a self-hosted CI server in one binary, wire-compatible with GitLab's pipeline trigger API.
//!
//! Codemap (details in `ARCHITECTURE.md`): `domain` holds the nouns; `storage` the redb file and
//! its group-committing writer; `secrets` the data dir's key; `auth` credentials and roles;
//! `git` repositories; `ci_config` planning pipelines from `.gitlab-ci.yml`; `pipeline_create`
//! and `pipeline_trigger` creating them; `scheduler` owning job state; `executor` the built-in
//! shell executor; `trace` job logs; `http` the GitLab API.

pub(crate) mod accounts;
pub(crate) mod app;
pub(crate) mod application_settings;
pub(crate) mod artifacts;
pub(crate) mod auth;
pub mod backup;
/// Project badges and their placeholders.
pub(crate) mod badges;
pub(crate) mod bridge;
pub(crate) mod clock;
/// Commit statuses posted by external systems, as jobs of the `external` stage.
pub(crate) mod commit_statuses;
pub mod config;
pub(crate) mod context;
pub(crate) mod domain;
pub(crate) mod engine;
/// Environments and deployments.
pub(crate) mod environments;
pub(crate) mod events;
pub mod executor;
pub(crate) mod git;
pub(crate) mod hooks;
pub(crate) mod http;
/// Idempotency keys for the endpoints that create pipelines.
pub(crate) mod idempotency;
pub(crate) mod job_env;
/// One async lock per key.
pub(crate) mod keyed_lock;
pub(crate) mod members;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod mirror;
pub mod outbound;
pub(crate) mod pipeline_trigger;
pub mod plan_cli;
pub(crate) mod project_create;
pub(crate) mod project_variables;
pub(crate) mod projects;
pub(crate) mod protected_refs;
pub(crate) mod push;
pub(crate) mod rate_limit;
/// Creating and deleting branches and tags through the API, with push pipelines.
pub(crate) mod refs;
pub(crate) mod releases;
pub(crate) mod retention;
pub(crate) mod runners;
pub mod sandbox;
pub(crate) mod scheduler;
/// Pipeline schedules and the task that runs them.
pub(crate) mod schedules;
pub(crate) mod secrets;
pub mod storage;
pub(crate) mod test_reports;
pub(crate) mod trace;
pub(crate) mod trigger_tokens;

use actix_web::{App, HttpServer, web};
use app::{Spur, StartError};
use config::Config;
use std::net::TcpListener;
use std::sync::Arc;

/// A running server: where it listens and how to stop it.
pub struct Running {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    /// The shared core, for embedding and benchmarks.
    pub spur: Arc<Spur>,
    /// The actix server; await it to run until a signal stops it.
    pub server: actix_web::dev::Server,
}

/// Stops the pipeline engine after the HTTP server stopped: no new job starts, running jobs get
/// `grace` to finish, then the rest are killed and failed with a clear reason. Pending jobs stay
/// pending and run after the next start.
pub async fn shutdown(spur: &Arc<Spur>, grace: std::time::Duration) {
    spur.shutdown.begin();
    let deadline = std::time::Instant::now() + grace;
    loop {
        // Jobs on GitLab runners go on without spur and report after its restart.
        let mut running = 0;
        let _ = spur.store.for_each_active_job(|j| {
            if j.status == domain::JobStatus::Running && j.runner_id.is_none() {
                running += 1;
            }
        });
        if running == 0 {
            tracing::info!("spur stopped; no job was running");
            spur.isolation.remove_shared_builds_dir();
            return;
        }
        if std::time::Instant::now() >= deadline {
            match spur
                .scheduler
                .abort_running("spur was stopped while the job was running")
                .await
            {
                Ok(n) => tracing::info!(jobs = n, "spur stopped; running jobs were failed"),
                Err(e) => tracing::error!(error = ?e, "could not fail the running jobs"),
            }
            // Give the executors a moment to kill and reap the jobs' process groups.
            let reaped = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while executor::shell::LIVE_SHELLS.load(std::sync::atomic::Ordering::SeqCst) > 0
                && std::time::Instant::now() < reaped
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            spur.isolation.remove_shared_builds_dir();
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Sets up the allocator (see `memory::configure`); the binary calls it first thing.
pub fn configure_allocator() {
    memory::configure();
}

/// Opens the data dir and starts serving on `listener`. The server runs when awaited.
pub async fn serve(config: Config, listener: TcpListener) -> Result<Running, StartError> {
    let spur = Arc::new(Spur::open(&config).await?);
    spur.start_engine()?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(format!("listener: {e}")))?;
    let data = web::Data::from(spur.clone());
    let workers = if config.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        config.workers
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap_fn(http::ui::finish_pages)
            .wrap_fn(http::keep_compressed_as_is)
            .wrap_fn(http::log_request)
            .wrap(http::security_headers())
            .wrap(actix_web::middleware::Compress::default())
            .configure(http::routes)
            .default_service(web::to(http::ui::unknown))
    })
    .workers(workers)
    .shutdown_timeout(10)
    .backlog(2048)
    .listen(listener)
    .map_err(|e| StartError(format!("cannot listen on {addr}: {e}")))?
    .run();
    Ok(Running { addr, spur, server })
}
pub mod ci_config;
pub(crate) mod pipeline_create;
pub(crate) mod rules;

#[cfg(test)]
mod fuzz_tests;
