//! Reading a `trigger:` job (a bridge): a multi-project target (`trigger: group/project`, or
//! `{project, branch}`) or a child pipeline (`{include: ...}`), `strategy`, and `forward`.
//! Variables in `project` and `branch` are expanded with the job's variables.

use super::job_settings::expand;
use super::variables::scalar_text;
use super::yaml::{Yaml, to_json};
use crate::domain::Bridge;

/// The bridge a `trigger:` value describes; problems are kept in `invalid` for run time.
pub fn read(trigger: &Yaml, vars: &[(String, String)], yaml_variables: Vec<(String, String)>) -> Bridge {
    let mut b = Bridge {
        yaml_variables,
        ..Bridge::default()
    };
    match trigger {
        Yaml::Str(project) => b.project = Some(expand(project, vars)),
        Yaml::Map(m) => {
            b.project = m.get("project").and_then(scalar_text).map(|p| expand(&p, vars));
            b.branch = m.get("branch").and_then(scalar_text).map(|p| expand(&p, vars));
            b.mirror = matches!(
                m.get("strategy").and_then(scalar_text).as_deref(),
                Some("depend" | "mirror")
            );
            if let Some(include) = m.get("include") {
                match include_files(include) {
                    Ok(files) => {
                        (b.include, b.include_inputs) = files.into_iter().unzip();
                    }
                    Err(e) => b.invalid = Some(e),
                }
            }
            match m.get("inputs") {
                None | Some(Yaml::Null) => {}
                Some(inputs @ Yaml::Map(_)) => {
                    if let serde_json::Value::Object(o) = to_json(inputs) {
                        b.inputs = o;
                    }
                }
                Some(_) => b.invalid = Some("trigger:inputs should be a hash".into()),
            }
            if let Some(Yaml::Map(forward)) = m.get("forward") {
                if matches!(forward.get("yaml_variables"), Some(Yaml::Bool(false))) {
                    b.yaml_variables.clear();
                }
                b.forward_pipeline_variables = matches!(forward.get("pipeline_variables"), Some(Yaml::Bool(true)));
            }
            if b.project.is_none() && b.include.is_empty() && b.invalid.is_none() {
                b.invalid = Some("config must specify either project or include".into());
            }
        }
        _ => b.invalid = Some("trigger config should be a string or a hash".into()),
    }
    b
}

/// The local files of `trigger:include` (a path, or a list of paths and `{local: path,
/// inputs: {...}}`), each with its own `inputs` (`null` when it gives none).
fn include_files(include: &Yaml) -> Result<Vec<(String, serde_json::Value)>, String> {
    let one = |y: &Yaml| match y {
        Yaml::Str(s) => Ok((s.clone(), serde_json::Value::Null)),
        Yaml::Map(m) => match m.get("local").and_then(scalar_text) {
            Some(path) => match m.get("inputs") {
                None | Some(Yaml::Null) => Ok((path, serde_json::Value::Null)),
                Some(inputs @ Yaml::Map(_)) => Ok((path, to_json(inputs))),
                Some(_) => Err("Include `inputs` must be a hash".to_string()),
            },
            None => Err("child pipelines can include local files only in spur".to_string()),
        },
        _ => Err("trigger:include must be a path or a list of local files".to_string()),
    };
    let files = match include {
        Yaml::Seq(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        other => vec![one(other)?],
    };
    if files.len() > 3 {
        return Err("trigger:include holds at most 3 files".into());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Yaml {
        let (m, _) = super::super::yaml::load(&format!("t: {text}\n")).unwrap();
        m.get("t").unwrap().clone()
    }

    #[test]
    fn multi_project_child_and_forwarding() {
        let vars = vec![("TARGET".to_string(), "grp/app".to_string())];
        let b = read(&yaml("$TARGET"), &vars, vec![("A".into(), "1".into())]);
        assert_eq!(b.project.as_deref(), Some("grp/app"));
        assert_eq!(b.yaml_variables.len(), 1);
        let b = read(
            &yaml(
                "{project: grp/app, branch: stable, strategy: depend, forward: {yaml_variables: false, pipeline_variables: true}}",
            ),
            &[],
            vec![("A".into(), "1".into())],
        );
        assert_eq!(
            (b.branch.as_deref(), b.mirror, b.forward_pipeline_variables),
            (Some("stable"), true, true)
        );
        assert!(b.yaml_variables.is_empty());
        let b = read(
            &yaml("{include: [ci/child.yml, {local: ci/more.yml, inputs: {n: 2}}], inputs: {env: prod}}"),
            &[],
            vec![],
        );
        assert_eq!(b.include, vec!["ci/child.yml", "ci/more.yml"]);
        assert_eq!(
            b.include_inputs,
            vec![serde_json::Value::Null, serde_json::json!({"n": 2})]
        );
        assert_eq!(serde_json::Value::Object(b.inputs), serde_json::json!({"env": "prod"}));
        let b = read(&yaml("{strategy: depend}"), &[], vec![]);
        assert_eq!(
            b.invalid.as_deref(),
            Some("config must specify either project or include")
        );
    }
}
