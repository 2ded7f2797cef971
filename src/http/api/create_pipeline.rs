//! `POST /projects/:id/pipeline`: a Developer+ creates an `api` pipeline for `ref` with
//! `variables` (an array of `{key, value, variable_type}`) and `inputs` (an object). Any failure is 400 and stores
//! nothing, as GitLab does for this endpoint.

use super::idempotent::{Gate, gate};
use crate::domain::{AccessLevel, PipelineSource, Variable, VariableType, is_valid_variable_key};
use crate::http::error::ApiError;
use crate::http::params::{Params, Validation};
use crate::http::{State, json_response, project_with_role, views};
use crate::pipeline_create::{CreateError, CreateRefusal, CreateRequest, create};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// Creates the pipeline.
pub async fn create_api_pipeline(
    req: HttpRequest,
    spur: State,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, access) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let ref_name = v.required_string(&params, "ref");
    let variables = match params.get("variables") {
        None => Some(Vec::new()),
        Some(value) => parse_variables(value).or_else(|| {
            v.fail("variables", "is invalid");
            None
        }),
    };
    let inputs = match params.get("inputs") {
        None => Some(serde_json::Map::new()),
        Some(Value::Object(inputs)) => Some(inputs.clone()),
        Some(_) => {
            v.fail("inputs", "is invalid");
            None
        }
    };
    v.finish()?;
    let (Some(ref_name), Some(variables), Some(inputs)) = (ref_name, variables, inputs) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    if let Some(bad) = variables.iter().find(|var| !is_valid_variable_key(&var.key)) {
        return Err(ApiError::invalid(
            "base",
            &format!(
                "Variables key '{}' is invalid: it can contain only letters, digits and '_'",
                bad.key
            ),
        ));
    }
    let count = variables.len();
    // The credential: the user and the token (none for a browser session).
    let credential = format!("user-token {} {:?}", actor.user.id, actor.token_id);
    let sent = serde_json::json!({
        "ref": ref_name,
        "variables": variables.iter().map(|v| serde_json::json!([v.key, v.value, v.variable_type.as_str()])).collect::<Vec<_>>(),
        "inputs": inputs,
    });
    // The caller was just authenticated, with rights on the project.
    let (_in_flight, idempotency) = match gate(&req, &spur, &project, &credential, &sent, || Ok(true)).await? {
        Gate::Answer(replay) => return Ok(replay),
        Gate::Go(Some((held, tag))) => (Some(held), Some(tag)),
        Gate::Go(None) => (None, None),
    };
    let request = CreateRequest {
        inputs,
        idempotency,
        ..CreateRequest::new(
            PipelineSource::Api,
            actor.user.clone(),
            access,
            ref_name,
            variables,
            count,
        )
    };
    match create(spur.clone().into_inner(), project.clone(), request).await {
        Ok(Ok(pipeline)) => Ok(json_response(
            StatusCode::CREATED,
            &views::pipeline(&spur, &project, &pipeline, Some(&actor.user)),
        )),
        Ok(Err(CreateRefusal::NotFound)) => Err(ApiError::not_found("Project")),
        Ok(Err(CreateRefusal::Invalid(m) | CreateRefusal::Unprocessable(m) | CreateRefusal::Unauthorized(m))) => {
            Err(ApiError::invalid("base", &m))
        }
        Err(CreateError::Storage(e)) => Err(e.into()),
        Err(CreateError::Internal(e)) => Err(ApiError::internal(e)),
    }
}

/// `variables` as GitLab's API takes them: `[{key, value, variable_type}]`, in JSON or as
/// `variables[][key]=...` form fields.
fn parse_variables(value: &Value) -> Option<Vec<Variable>> {
    let Value::Array(items) = value else { return None };
    items
        .iter()
        .map(|item| {
            let key = item.get("key")?.as_str()?.trim().to_string();
            let value = match item.get("value") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return None,
            };
            let variable_type = match item.get("variable_type").and_then(Value::as_str) {
                None | Some("env_var") => VariableType::EnvVar,
                Some("file") => VariableType::File,
                Some(_) => return None,
            };
            Some(Variable {
                key,
                value,
                variable_type,
                raw: false,
            })
        })
        .collect()
}
