//! A job with `image:` on a host with a container engine, as gitlab-runner's docker executor
//! runs it: its images pulled by `pull_policy` (with `DOCKER_AUTH_CONFIG`'s credentials), a
//! network of its own (isolated from every other job's) where its `services:` answer by alias
//! and by their default host names, and each script in a fresh container of the image with
//! the checkout mounted at `/builds/<namespace>/<project>`. Never privileged, never the host's
//! network, pid namespace or data dir; every container and the network are removed after.

use super::container_script::{DETECT_SHELL, expanded, is_reference, is_shell_name};
use super::{FILES_TIMEOUT, JobRun, Log};
use crate::domain::Image;
use crate::sandbox::engine::Engine;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long a service may take to accept connections on its exposed ports (GitLab's
/// `wait_for_services_timeout`).
const SERVICES_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an engine command other than a pull may take.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(120);
/// The most services a job may start.
const MAX_SERVICES: usize = 10;
/// The most processes of each container (the job's and each service's).
const PIDS_LIMIT: &str = "1024";
/// The most bytes of an engine command's output kept for the log.
const MAX_ENGINE_OUTPUT: usize = 64 * 1024;

/// Where the job's folders are inside its containers.
pub(super) struct Mounts {
    /// `CI_PROJECT_DIR`: `/builds/<namespace>/<project>`.
    pub project_dir: String,
    /// File variables: `<CI_PROJECT_DIR>.tmp`, read-only.
    pub files_dir: String,
}

impl Mounts {
    /// The folders of a job of `full_path`.
    pub fn of(full_path: &str) -> Mounts {
        let project_dir = format!("/builds/{full_path}");
        Mounts {
            files_dir: format!("{project_dir}.tmp"),
            project_dir,
        }
    }
}

/// Why preparing the containers failed: the job's failure reason and the log line.
pub(super) struct PrepareError {
    pub reason: &'static str,
    pub message: String,
}

/// The containers and network of one running job.
pub(super) struct Containers {
    engine: Engine,
    label: String,
    /// `spur-<instance>-job-<id>`: the network's name and every container's prefix.
    name: String,
    /// The job's image, its name expanded.
    pub image: Image,
    /// The id its pull yielded: what every build container runs.
    image_id: String,
    pub mounts: Mounts,
    /// spur's private folder for the engine's files (credentials, service variables).
    private: PathBuf,
    /// Where `DOCKER_AUTH_CONFIG` was written, when the job has one.
    auth: Option<PathBuf>,
    network: bool,
    services: Vec<String>,
    builds: usize,
}

impl Containers {
    /// The containers job `job_id` will have (nothing is created yet).
    pub fn new(
        engine: Engine,
        label: &str,
        job_id: u64,
        image: Image,
        full_path: &str,
        private: PathBuf,
    ) -> Containers {
        let instance = label.rsplit('=').next().unwrap_or_default();
        Containers {
            engine,
            label: label.to_string(),
            name: format!("spur-{}-job-{job_id}", &instance[..instance.len().min(8)]),
            image,
            image_id: String::new(),
            mounts: Mounts::of(full_path),
            private,
            auth: None,
            network: false,
            services: Vec::new(),
            builds: 0,
        }
    }

    /// The engine's name, as the log shows the executor.
    pub fn engine_name(&self) -> &'static str {
        self.engine.program
    }

    /// Writes a file only spur reads into the engine's private folder; its path.
    fn private_file(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        match std::fs::DirBuilder::new().mode(0o700).create(&self.private) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let path = self.private.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        file.write_all(contents.as_bytes())?;
        Ok(path)
    }

    /// Writes the `auths` of `DOCKER_AUTH_CONFIG` where only spur reads it, for pulls. The rest
    /// (`credHelpers`, `credsStore`) would name programs the engine runs as spur: dropped.
    pub fn set_auth(&mut self, config: &str) -> std::io::Result<()> {
        let auths = serde_json::from_str::<serde_json::Value>(config)
            .ok()
            .and_then(|v| v.get("auths").filter(|a| a.is_object()).cloned())
            .unwrap_or_else(|| serde_json::json!({}));
        let kept = serde_json::json!({ "auths": auths }).to_string();
        self.auth = Some(self.private_file("config.json", &kept)?);
        Ok(())
    }

    /// Pulls the image and the services' images, makes the job's network and starts its
    /// services, logging each step as gitlab-runner does.
    pub async fn prepare(
        &mut self,
        log: &mut Log,
        services: &[Image],
        env: &[(String, String)],
    ) -> Result<(), PrepareError> {
        let engine = self.engine.program;
        // Names are checked before any is printed or handed to the engine: a name is a
        // registry reference, never a file on the host, an option or a line of its own.
        for name in std::iter::once(&self.image.name).chain(services.iter().map(|s| &s.name)) {
            let name = crate::ci_config::job_settings::expand(name, env);
            if !is_reference(&name) {
                return Err(PrepareError {
                    reason: "image_pull_failure",
                    message: format!("invalid reference format: {}", name.escape_debug()),
                });
            }
        }
        log.framing(&format!(
            "\x1b[0KUsing {engine} executor with image {} ...\x1b[0;m\n",
            self.image.name
        ));
        if services.len() > MAX_SERVICES {
            return Err(PrepareError {
                reason: "runner_configuration_error",
                message: format!("a job may start at most {MAX_SERVICES} services"),
            });
        }
        let mut create = vec![
            "network".to_string(),
            "create".into(),
            "--label".into(),
            self.label.clone(),
        ];
        if self.engine.is_podman() {
            create.extend(["-o".into(), "isolate=true".into()]);
        }
        create.push(self.name.clone());
        self.engine_run(&create, ENGINE_TIMEOUT)
            .await
            .map_err(|e| system(format!("cannot create the job's network: {e}")))?;
        self.network = true;
        for (i, service) in services.iter().enumerate() {
            let service = expanded(service, env);
            log.framing(&format!("\x1b[0KStarting service {} ...\x1b[0;m\n", service.name));
            let id = self.pull(log, &service).await?;
            let name = format!("{}-service-{i}", self.name);
            let mut args = self.run_args(&name, &service);
            args.insert(1, "-d".into());
            for host in service.host_names() {
                args.extend(["--network-alias".into(), host]);
            }
            // Variables travel in a private file, never on a command line others can read;
            // an env file holds one line a variable, so multi-line values stay out.
            let lines: String = env
                .iter()
                .chain(&service.variables)
                .filter(|(k, v)| is_shell_name(k) && !v.contains(['\n', '\r', '\0']))
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            let env_file = self
                .private_file(&format!("service-{i}.env"), &lines)
                .map_err(|e| system(format!("cannot write the service's variables: {e}")))?;
            args.extend(["--env-file".into(), env_file.to_string_lossy().into()]);
            // By the id the pull yielded: nothing between may swap what the name means.
            args.push(id);
            if let Some(entrypoint) = &service.entrypoint {
                args.extend(entrypoint.iter().skip(1).cloned());
            }
            args.extend(service.command.clone().unwrap_or_default());
            self.services.push(name.clone());
            self.engine_run(&args, ENGINE_TIMEOUT)
                .await
                .map_err(|e| system(format!("cannot start service {}: {e}", service.name)))?;
        }
        if !services.is_empty() {
            self.wait_for_services(log).await;
        }
        let image = self.image.clone();
        self.image_id = self.pull(log, &image).await?;
        Ok(())
    }

    /// Pulls `image` as its `pull_policy` says (`always` when it says nothing), trying each
    /// policy in turn until one yields the image; its id.
    async fn pull(&self, log: &mut Log, image: &Image) -> Result<String, PrepareError> {
        if !is_reference(&image.name) {
            // Never handed to the engine: a name like `--privileged` would read as an option.
            return Err(PrepareError {
                reason: "image_pull_failure",
                message: format!("invalid reference format: {:?}", image.name),
            });
        }
        let policies: Vec<String> = if image.pull_policy.is_empty() {
            vec!["always".into()]
        } else {
            image.pull_policy.clone()
        };
        let mut last_error = String::new();
        for policy in &policies {
            let present = || {
                let args = [
                    "image".into(),
                    "inspect".into(),
                    "--format".into(),
                    "{{.Id}}".into(),
                    image.name.clone(),
                ];
                async move { self.engine_run(&args, ENGINE_TIMEOUT).await }
            };
            // The image's id when the engine already said it.
            let found: Result<Option<String>, String> = match policy.as_str() {
                "never" => present()
                    .await
                    .map(Some)
                    .map_err(|_| format!("Error: No such image: {}", image.name)),
                "if-not-present" | "always" => {
                    let local = match policy.as_str() {
                        "if-not-present" => present().await.ok(),
                        _ => None,
                    };
                    match local {
                        Some(id) => Ok(Some(id)),
                        None => {
                            log.framing(&format!("\x1b[0KPulling docker image {} ...\x1b[0;m\n", image.name));
                            let mut args = vec!["pull".to_string()];
                            if let Some(auth) = &self.auth {
                                args.extend(self.auth_args(auth));
                            }
                            // podman reads other transports (archives, folders) from a prefix:
                            // a registry's only.
                            args.push(if self.engine.is_podman() {
                                format!("docker://{}", image.name)
                            } else {
                                image.name.clone()
                            });
                            self.engine_run(&args, FILES_TIMEOUT).await.map(|_| None)
                        }
                    }
                }
                other => Err(format!("unknown pull policy {other:?}")),
            };
            match found {
                Ok(known) => {
                    let id = match known {
                        Some(id) => Ok(id),
                        None => present().await,
                    };
                    let id = id.unwrap_or_default().trim().to_string();
                    let hex = id.trim_start_matches("sha256:");
                    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        last_error = format!("the engine gave no id for {}", image.name);
                        continue;
                    }
                    log.framing(&format!(
                        "\x1b[0KUsing docker image sha256:{hex} for {} ...\x1b[0;m\n",
                        image.name
                    ));
                    return Ok(hex.to_string());
                }
                Err(e) => last_error = e,
            }
        }
        Err(PrepareError {
            reason: "image_pull_failure",
            message: format!(
                "failed to pull image {:?} with specified policies [{}]: {}",
                image.name,
                policies.join(" "),
                last_error.trim()
            ),
        })
    }

    /// Registry credentials for a pull: podman reads docker's `config.json` as an auth file;
    /// docker reads the folder holding it.
    fn auth_args(&self, auth: &Path) -> Vec<String> {
        if self.engine.is_podman() {
            vec!["--authfile".into(), auth.to_string_lossy().into()]
        } else {
            let dir = auth.parent().unwrap_or(auth);
            vec!["--config".into(), dir.to_string_lossy().into()]
        }
    }

    /// Waits until every service accepts connections on the ports its image exposes, or
    /// `SERVICES_TIMEOUT` passed (then warns, as gitlab-runner does, and goes on).
    async fn wait_for_services(&self, log: &mut Log) {
        log.framing(&format!(
            "\x1b[0KWaiting for services to be up and running (timeout {} seconds)...\x1b[0;m\n",
            SERVICES_TIMEOUT.as_secs()
        ));
        let deadline = tokio::time::Instant::now() + SERVICES_TIMEOUT;
        for name in &self.services {
            let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}|{{json .Config.ExposedPorts}}";
            let inspected = self
                .engine_run(
                    &["inspect".into(), "--format".into(), format.into(), name.clone()],
                    ENGINE_TIMEOUT,
                )
                .await
                .unwrap_or_default();
            let (ips, ports) = inspected.split_once('|').unwrap_or_default();
            let ip = ips.split_whitespace().next().unwrap_or_default().to_string();
            let ports: Vec<u16> = serde_json::from_str::<serde_json::Value>(ports.trim())
                .ok()
                .and_then(|v| {
                    v.as_object()
                        .map(|m| m.keys().filter_map(|k| k.split('/').next()?.parse().ok()).collect())
                })
                .unwrap_or_default();
            for port in ports {
                let up = async {
                    loop {
                        if tokio::net::TcpStream::connect((ip.as_str(), port)).await.is_ok() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                if tokio::time::timeout_at(deadline, up).await.is_err() {
                    log.framing(&format!(
                        "\x1b[0;33m*** WARNING: Service {name} probably didn't start properly.\n\nHealth check error:\nservice {name} did not accept connections on port {port} within {} seconds\x1b[0;m\n",
                        SERVICES_TIMEOUT.as_secs()
                    ));
                    return;
                }
            }
        }
    }

    /// `run` and its options for a container of this job named `name` running `image`:
    /// `--rm` is left out so that spur removes it itself, after its exit code is read.
    fn run_args(&self, name: &str, image: &Image) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--name".into(),
            name.into(),
            "--label".into(),
            self.label.clone(),
            "--network".into(),
            self.name.clone(),
            "--cap-drop".into(),
            "MKNOD".into(),
            "--cap-drop".into(),
            "NET_RAW".into(),
            "--pids-limit".into(),
            PIDS_LIMIT.into(),
        ];
        // `--flag=value`: a value is never read as an option of its own.
        if let Some(user) = &image.user {
            args.push(format!("--user={user}"));
        }
        if let Some(entrypoint) = &image.entrypoint {
            args.push(format!(
                "--entrypoint={}",
                entrypoint.first().cloned().unwrap_or_default()
            ));
        }
        args
    }

    /// The command that starts a new container of the job's image with the shell gitlab-runner
    /// would pick (bash when present, else sh), reading its script from stdin.
    pub fn script_command(&mut self, ws: &crate::executor::workspace::Workspace) -> tokio::process::Command {
        self.builds += 1;
        let name = format!("{}-build-{}", self.name, self.builds);
        let mut args = self.run_args(&name, &self.image);
        let m = &self.mounts;
        args.extend([
            "-i".into(),
            "-w".into(),
            m.project_dir.clone(),
            "-v".into(),
            format!("{}:{}", ws.project_dir.display(), m.project_dir),
            "-v".into(),
            format!("{}:{}:ro", ws.files.display(), m.files_dir),
            self.image_id.clone(),
        ]);
        // The rest of an entrypoint list comes before the command, as `docker run` would pass it.
        if let Some(entrypoint) = &self.image.entrypoint {
            args.extend(entrypoint.iter().skip(1).cloned());
        }
        args.extend(["sh".into(), "-c".into(), DETECT_SHELL.into(), "sh".into()]);
        let mut cmd = self.engine.command();
        cmd.args(args);
        cmd
    }

    /// Removes the container the last `script_command` started (stopped at once).
    pub async fn remove_build(&self) {
        let name = format!("{}-build-{}", self.name, self.builds);
        let _ = self
            .engine_run(&[self.remove_args(), vec![name]].concat(), ENGINE_TIMEOUT)
            .await;
    }

    /// `rm` that kills at once: podman would wait 10 s for a `SIGTERM` a shell as pid 1 ignores;
    /// docker's `-f` kills.
    fn remove_args(&self) -> Vec<String> {
        // `-v`: the anonymous volumes an image's `VOLUME` made go too.
        let mut args: Vec<String> = vec!["rm".into(), "-f".into(), "-v".into()];
        if self.engine.is_podman() {
            args.extend(["-t".into(), "0".into()]);
        }
        args
    }

    /// Removes every container of the job and its network.
    pub async fn remove_all(&self) {
        // Each build container went when its script ended; the services go now.
        if !self.services.is_empty() {
            let mut args = self.remove_args();
            args.extend(self.services.iter().cloned());
            if let Err(e) = self.engine_run(&args, ENGINE_TIMEOUT).await {
                tracing::debug!(containers = %self.name, error = %e.trim(), "removing the job's containers");
            }
        }
        if self.network
            && let Err(e) = self
                .engine_run(&["network".into(), "rm".into(), self.name.clone()], ENGINE_TIMEOUT)
                .await
        {
            tracing::warn!(network = %self.name, error = %e.trim(), "cannot remove the job's network");
        }
    }

    /// Runs an engine command to its end; its stdout, or its stderr as the error.
    async fn engine_run(&self, args: &[String], timeout: Duration) -> Result<String, String> {
        let mut cmd = self.engine.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.engine.program))?;
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("{} {} took too long", self.engine.program, args[0]))?
            .map_err(|e| e.to_string())?;
        let text = |bytes: &[u8]| String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ENGINE_OUTPUT)]).into_owned();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(text(&out.stderr))
        }
    }
}

fn system(message: String) -> PrepareError {
    PrepareError {
        reason: "runner_system_failure",
        message,
    }
}

impl JobRun<'_> {
    /// The job's containers, when it has an image and spur a container engine.
    pub(super) fn containers(&self, project_path: &str) -> Option<Containers> {
        let engine = self.spur.engine.get()?.clone();
        let image = self.job.settings.image.clone()?;
        let private = self.ws.private_dir.join("engine");
        Some(Containers::new(
            engine,
            &self.spur.engine_label,
            self.job.id,
            image,
            project_path,
            private,
        ))
    }

    /// Expands the image's name, writes the registry credentials and prepares the containers.
    /// Services and image names see the job's variables but its secrets: masked and file
    /// variables, tokens.
    pub(super) async fn prepare_containers(
        &self,
        c: &mut Containers,
        project: &crate::domain::Project,
        vars: &crate::domain::JobVariables,
        log: &mut Log,
    ) -> Result<(), PrepareError> {
        let mut env = crate::job_env::runtime_variables(self.spur, project, self.pipeline, self.job, self.token);
        env.extend(vars.vars.iter().cloned());
        if let Some((_, auth)) = vars.vars.iter().rev().find(|(k, _)| k == "DOCKER_AUTH_CONFIG") {
            c.set_auth(auth)
                .map_err(|e| system(format!("cannot write DOCKER_AUTH_CONFIG: {e}")))?;
        }
        let shared: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, v)| {
                !vars.file_keys.contains(k) && !vars.masked.contains(v) && v != self.token && k != "DOCKER_AUTH_CONFIG"
            })
            .collect();
        // Image names are expanded without secrets, so none reaches the log or a command line.
        c.image = expanded(&c.image, &shared);
        c.prepare(log, &self.job.settings.services, &shared).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_credentials_keep_auths_only() {
        let dir = std::env::temp_dir().join(format!("spur-auth-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let engine = Engine {
            program: "podman",
            version: "4".into(),
        };
        let mut c = Containers::new(
            engine,
            "spur.instance=x",
            1,
            Image::default(),
            "g/p",
            dir.join("engine"),
        );
        c.set_auth(r#"{"auths":{"r.example":{"auth":"dTpw"}},"credHelpers":{"r.example":"evil"},"credsStore":"evil"}"#)
            .unwrap();
        let written = std::fs::read_to_string(dir.join("engine/config.json")).unwrap();
        assert_eq!(written, r#"{"auths":{"r.example":{"auth":"dTpw"}}}"#);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mounts_follow_gitlab() {
        let m = Mounts::of("group/app");
        assert_eq!(m.project_dir, "/builds/group/app");
        assert_eq!(m.files_dir, "/builds/group/app.tmp");
    }
}
