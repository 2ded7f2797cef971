//! Environments and deployments. A pipeline's commit records the environment of each job that
//! names one (made on first use) and the job's deployment, so both exist once the pipeline does.

use super::codec::{decode, encode, get_json};
use super::tables::{
    DEPLOYMENT_IIDS, DEPLOYMENTS, ENVIRONMENTS, JOB_DEPLOYMENTS, PROJECT_DEPLOYMENTS, PROJECT_ENVIRONMENTS,
};
use super::{Error, Store, ids_under, next_id};
use crate::domain::{Deployment, Environment, Job, Millis, environment_slug};
use redb::{ReadableTable, WriteTransaction};

/// Most environments a project keeps.
pub const MAX_ENVIRONMENTS: usize = 10_000;

/// A new environment named `name` (not yet stored).
pub fn new_environment(project_id: u64, name: &str, url: Option<String>, tier: &str, now: Millis) -> Environment {
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Environment {
        id: 0,
        project_id,
        name: name.to_string(),
        slug: environment_slug(name, &hex),
        external_url: url,
        tier: tier.to_string(),
        state: "available".into(),
        stopped_at: None,
        stop_job_id: None,
        auto_stop_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// In a pipeline's commit: the job's environment (made if new; a new URL kept) and its
/// deployment record.
pub(super) fn record_job(tx: &WriteTransaction, job: &Job, now: Millis) -> Result<(), Error> {
    let Some(spec) = &job.settings.environment else {
        return Ok(());
    };
    let existing = tx
        .open_table(PROJECT_ENVIRONMENTS)?
        .get((job.project_id, spec.name.as_str()))?
        .map(|g| g.value());
    let env_id = match existing {
        Some(id) => {
            if spec.url.is_some() && spec.action == "start" {
                let found: Option<Environment> = get_json(&tx.open_table(ENVIRONMENTS)?, id)?;
                if let Some(mut env) = found {
                    env.external_url.clone_from(&spec.url);
                    env.updated_at = now;
                    tx.open_table(ENVIRONMENTS)?.insert(id, encode(&env)?.as_slice())?;
                }
            }
            id
        }
        None => {
            if spec.action == "stop" {
                return Ok(());
            }
            let count = tx
                .open_table(PROJECT_ENVIRONMENTS)?
                .range((job.project_id, "")..(job.project_id + 1, ""))?
                .count();
            if count >= MAX_ENVIRONMENTS {
                return Ok(());
            }
            let mut env = new_environment(job.project_id, &spec.name, spec.url.clone(), &spec.tier, now);
            env.id = next_id(tx, "next_environment_id")?;
            tx.open_table(ENVIRONMENTS)?.insert(env.id, encode(&env)?.as_slice())?;
            tx.open_table(PROJECT_ENVIRONMENTS)?
                .insert((job.project_id, spec.name.as_str()), env.id)?;
            env.id
        }
    };
    let iid = {
        let mut iids = tx.open_table(DEPLOYMENT_IIDS)?;
        let iid = iids.get(job.project_id)?.map_or(0, |g| g.value()) + 1;
        iids.insert(job.project_id, iid)?;
        iid
    };
    let deployment = Deployment {
        id: next_id(tx, "next_deployment_id")?,
        iid,
        project_id: job.project_id,
        environment_id: env_id,
        job_id: job.id,
        pipeline_id: job.pipeline_id,
        action: spec.action.clone(),
        on_stop: spec.on_stop.clone(),
        created_at: now,
    };
    tx.open_table(DEPLOYMENTS)?
        .insert(deployment.id, encode(&deployment)?.as_slice())?;
    tx.open_table(PROJECT_DEPLOYMENTS)?
        .insert((job.project_id, deployment.id), ())?;
    tx.open_table(JOB_DEPLOYMENTS)?.insert(job.id, deployment.id)?;
    Ok(())
}

/// Removes the deployment of a job being deleted.
pub(super) fn remove_job(tx: &WriteTransaction, job_id: u64) -> Result<(), Error> {
    let Some(id) = tx.open_table(JOB_DEPLOYMENTS)?.remove(job_id)?.map(|g| g.value()) else {
        return Ok(());
    };
    let found: Option<Deployment> = get_json(&tx.open_table(DEPLOYMENTS)?, id)?;
    tx.open_table(DEPLOYMENTS)?.remove(id)?;
    if let Some(d) = found {
        tx.open_table(PROJECT_DEPLOYMENTS)?.remove((d.project_id, id))?;
    }
    Ok(())
}

/// Removes every environment and deployment of a project being deleted.
pub(super) fn remove_project(tx: &WriteTransaction, project_id: u64) -> Result<(), Error> {
    let ids = ids_under(&tx.open_table(PROJECT_DEPLOYMENTS)?, project_id)?;
    {
        let mut deployments = tx.open_table(DEPLOYMENTS)?;
        for id in &ids {
            deployments.remove(*id)?;
        }
    }
    tx.open_table(PROJECT_DEPLOYMENTS)?
        .retain_in((project_id, 0)..=(project_id, u64::MAX), |_, _| false)?;
    let mut envs = Vec::new();
    for entry in tx
        .open_table(PROJECT_ENVIRONMENTS)?
        .range((project_id, "")..(project_id + 1, ""))?
    {
        envs.push(entry?.1.value());
    }
    let mut table = tx.open_table(ENVIRONMENTS)?;
    for id in envs {
        table.remove(id)?;
    }
    tx.open_table(PROJECT_ENVIRONMENTS)?
        .retain_in((project_id, "")..(project_id + 1, ""), |_, _| false)?;
    tx.open_table(DEPLOYMENT_IIDS)?.remove(project_id)?;
    Ok(())
}

impl Store {
    /// A project's environments, by name.
    pub fn environments(&self, project_id: u64) -> Result<Vec<Environment>, Error> {
        self.read(|tx| {
            let index = tx.open_table(PROJECT_ENVIRONMENTS)?;
            let table = tx.open_table(ENVIRONMENTS)?;
            let mut out = Vec::new();
            for entry in index.range((project_id, "")..(project_id + 1, ""))? {
                if let Some(env) = get_json(&table, entry?.1.value())? {
                    out.push(env);
                }
            }
            Ok(out)
        })
    }

    /// An environment by id.
    pub fn environment(&self, id: u64) -> Result<Option<Environment>, Error> {
        self.read(|tx| get_json(&tx.open_table(ENVIRONMENTS)?, id))
    }

    /// Stores a new environment; `None` when the name is taken (or the project is full).
    pub async fn create_environment(&self, env: Environment) -> Result<Option<Environment>, Error> {
        self.write(move |tx| {
            let mut env = env;
            let mut index = tx.open_table(PROJECT_ENVIRONMENTS)?;
            if index.get((env.project_id, env.name.as_str()))?.is_some()
                || index.range((env.project_id, "")..(env.project_id + 1, ""))?.count() >= MAX_ENVIRONMENTS
            {
                return Ok(None);
            }
            env.id = next_id(tx, "next_environment_id")?;
            index.insert((env.project_id, env.name.as_str()), env.id)?;
            tx.open_table(ENVIRONMENTS)?.insert(env.id, encode(&env)?.as_slice())?;
            Ok(Some(env))
        })
        .await
    }

    /// Replaces an environment; false when it is gone.
    pub async fn save_environment(&self, env: Environment) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(ENVIRONMENTS)?;
            if table.get(env.id)?.is_none() {
                return Ok(false);
            }
            table.insert(env.id, encode(&env)?.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Deletes an environment (its deployments stay with their jobs, without it).
    pub async fn delete_environment(&self, env: Environment) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(ENVIRONMENTS)?.remove(env.id)?;
            tx.open_table(PROJECT_ENVIRONMENTS)?
                .remove((env.project_id, env.name.as_str()))?;
            Ok(())
        })
        .await
    }

    /// A project's deployments (every action), in id order.
    pub fn deployments(&self, project_id: u64) -> Result<Vec<Deployment>, Error> {
        self.read(|tx| {
            let ids = ids_under(&tx.open_table(PROJECT_DEPLOYMENTS)?, project_id)?;
            let table = tx.open_table(DEPLOYMENTS)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(found) = table.get(id)? {
                    out.push(decode(found.value())?);
                }
            }
            Ok(out)
        })
    }

    /// A deployment by id.
    pub fn deployment(&self, id: u64) -> Result<Option<Deployment>, Error> {
        self.read(|tx| get_json(&tx.open_table(DEPLOYMENTS)?, id))
    }
}
