//! Running `trigger:` jobs (bridges): creating the downstream pipeline — multi-project (source
//! `pipeline`, in another project as the bridge's user) or child (source `parent_pipeline`,
//! same project and commit, from the `include` files) — with the forwarded variables and the
//! depth and hierarchy limits, then reporting the bridge's end to the scheduler. With
//! `strategy: depend` the scheduler finishes the bridge when the downstream pipeline ends.

use crate::auth;
use crate::clock;
use crate::context::Spur;
use crate::domain::{Bridge, Job, Pipeline, PipelineSource, PipelineStatus, Project, Variable, VariableType};
use crate::git::{Origin, ResolvedRef};
use crate::pipeline_create::{self, CreateRefusal, CreateRequest, blocking};
use crate::pipeline_trigger::{downstream_link, pipeline_variables_of};
use crate::scheduler::JobEnd;
use std::sync::Arc;

/// GitLab's failure reason for a bridge whose downstream pipeline could not be created.
pub const CREATION_FAILED: &str = "downstream_pipeline_creation_failed";

/// Creates the downstream pipeline of a started bridge and reports the bridge's end (now, or
/// when the downstream pipeline ends for `strategy: depend`).
pub async fn run(spur: Arc<Spur>, job: Job, upstream: Pipeline) {
    let Some(bridge) = job.bridge.clone() else { return };
    match create_downstream(&spur, &job, &upstream, &bridge).await {
        Ok(downstream) => {
            spur.traces.append_notice(
                job.id,
                &format!(
                    "Downstream pipeline #{} created in {}",
                    downstream.id,
                    spur.store
                        .project(downstream.project_id)
                        .ok()
                        .flatten()
                        .map_or_else(|| downstream.project_id.to_string(), |p| p.full_path)
                ),
            );
            if !bridge.mirror {
                spur.scheduler.finish(job.id, JobEnd::Success);
            } else if let Some(end) = mirrored_end(downstream.status) {
                spur.scheduler.finish(job.id, end);
            }
        }
        Err(reason) => {
            spur.traces.append_notice(
                job.id,
                &format!("ERROR: downstream pipeline can not be created, {reason}"),
            );
            spur.scheduler.finish(
                job.id,
                JobEnd::Failed {
                    reason: CREATION_FAILED.into(),
                    exit_code: None,
                },
            );
        }
    }
}

/// The end a mirroring bridge takes from its downstream pipeline's status, once it is final.
pub fn mirrored_end(status: PipelineStatus) -> Option<JobEnd> {
    match status {
        PipelineStatus::Success | PipelineStatus::Skipped => Some(JobEnd::Success),
        PipelineStatus::Canceled => Some(JobEnd::Canceled),
        PipelineStatus::Failed => Some(JobEnd::Failed {
            reason: "downstream_pipeline_failed".into(),
            exit_code: None,
        }),
        _ => None,
    }
}

async fn create_downstream(
    spur: &Arc<Spur>,
    job: &Job,
    upstream: &Pipeline,
    bridge: &Bridge,
) -> Result<Pipeline, String> {
    if let Some(invalid) = &bridge.invalid {
        return Err(invalid.clone());
    }
    let child = bridge.project.is_none();
    let link = downstream_link(spur, upstream, job.id, child, bridge.mirror)?;
    let user = spur
        .store
        .user(job.user_id)
        .map_err(|e| e.to_string())?
        .filter(|u| !u.blocked)
        .ok_or("the bridge's user can no longer run pipelines")?;
    let target = match &bridge.project {
        Some(path) => spur
            .store
            .project_by_path(path)
            .map_err(|e| e.to_string())?
            .ok_or("downstream project could not be found")?,
        None => spur
            .store
            .project(upstream.project_id)
            .map_err(|e| e.to_string())?
            .ok_or("the project was deleted")?,
    };
    let access = auth::project_access(&spur.store, Some(&user), &target, clock::now()).map_err(|e| e.to_string())?;
    if !access.can_read {
        return Err("downstream project could not be found".into());
    }
    let variables = forwarded_variables(spur, bridge, upstream)?;
    let count = variables.len();
    let ref_name = bridge
        .branch
        .clone()
        .or_else(|| {
            if child {
                Some(upstream.ref_name.clone())
            } else {
                target.default_branch.clone()
            }
        })
        .unwrap_or_else(|| "main".into());
    let source = if child {
        PipelineSource::ParentPipeline
    } else {
        PipelineSource::Pipeline
    };
    let request = CreateRequest {
        upstream: Some(link),
        child_include: child.then(|| child_includes(bridge)),
        inputs: if child {
            Default::default()
        } else {
            bridge.inputs.clone()
        },
        commit: child.then(|| ResolvedRef {
            short: upstream.ref_name.clone(),
            tag: upstream.tag,
            sha: upstream.sha.clone(),
        }),
        ..CreateRequest::new(source, user, access, ref_name, variables, count)
    };
    record(spur, target, request).await
}

/// A child pipeline's files with their inputs: a file's own, else `trigger:inputs`.
fn child_includes(bridge: &Bridge) -> Vec<(String, serde_json::Value)> {
    bridge
        .include
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let own = bridge.include_inputs.get(i).filter(|v| !v.is_null()).cloned();
            let inputs = own.unwrap_or_else(|| {
                if bridge.inputs.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::Value::Object(bridge.inputs.clone())
                }
            });
            (path.clone(), inputs)
        })
        .collect()
}

/// The downstream pipeline's variables: the bridge's YAML variables, then (with
/// `forward:pipeline_variables`) the upstream pipeline's own.
fn forwarded_variables(spur: &Spur, bridge: &Bridge, upstream: &Pipeline) -> Result<Vec<Variable>, String> {
    let mut out: Vec<Variable> = bridge
        .yaml_variables
        .iter()
        .map(|(k, v)| Variable {
            key: k.clone(),
            value: v.clone(),
            variable_type: VariableType::EnvVar,
            raw: true,
        })
        .collect();
    if bridge.forward_pipeline_variables {
        let theirs = pipeline_variables_of(spur, upstream.id).map_err(|e| format!("{e:?}"))?;
        out.extend(
            theirs
                .into_iter()
                .filter(|v| v.key != crate::pipeline_trigger::TRIGGER_PAYLOAD),
        );
    }
    Ok(out)
}

/// Prepares and records the downstream pipeline; a configuration error is stored as a failed
/// pipeline (its bridge then fails with the message).
async fn record(spur: &Arc<Spur>, project: Project, request: CreateRequest) -> Result<Pipeline, String> {
    let origin = Origin::of(&project);
    let s = spur.clone();
    let prepared = blocking(move || pipeline_create::prepare(&s, &project, &origin, &request))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let prepared = prepared.map_err(refusal_text)?;
    pipeline_create::record(spur, prepared, true)
        .await
        .map_err(|e| format!("{e:?}"))?
        .map_err(refusal_text)
}

fn refusal_text(r: CreateRefusal) -> String {
    match r {
        CreateRefusal::NotFound => "downstream project could not be found".into(),
        CreateRefusal::Invalid(m) | CreateRefusal::Unprocessable(m) | CreateRefusal::Unauthorized(m) => m,
    }
}
