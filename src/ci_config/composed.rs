//! Composing `.gitlab-ci.yml` (inputs, includes, `extends`, `!reference`) and checking it, and
//! the compositions remembered by their text: a `.gitlab-ci.yml` with no `spec:` header,
//! no `include` and no inputs composes to the same checked configuration every time (extends
//! and `!reference` depend on the text alone), so triggers of an unchanged file skip parsing,
//! composing and checking it. The key is the text's BLAKE3 hash; the cache holds a bounded
//! amount of text. Failures are not kept.

use super::compose::{self, FileSource};
use super::inputs;
use super::plan::{Context, PlanError, defaults, job_definitions, situation, stages, workflow_rules};
use super::predefined::{predefined, user_vars};
use super::validate::validate;
use super::yaml::{self, Mapping};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The largest file kept, and the most text kept in all.
const MAX_TEXT: usize = 64 << 10;
const MAX_TOTAL: usize = 256 << 10;

/// What `plan` takes from `.gitlab-ci.yml` before it looks at the pipeline: the composed
/// configuration, its stages, job definitions and defaults, checked.
#[derive(Default)]
pub(super) struct Composed {
    /// The configuration after includes, `extends` and `!reference`.
    pub(super) config: Mapping,
    /// `.pre`, the stages, `.post`.
    pub(super) stages: Vec<String>,
    /// The job definitions, by name.
    pub(super) jobs: Vec<(String, Mapping)>,
    /// `default:`.
    pub(super) defaults: Mapping,
    /// Whether `workflow:rules` exists.
    pub(super) has_workflow_rules: bool,
}
/// The pipeline's `Composed` configuration: remembered by text when it neither includes files
/// nor takes inputs (see `composed`), else composed with the pipeline's include context.
pub(super) fn composed(
    source: &dyn FileSource,
    files: &[String],
    ctx: &Context,
    pushed: Option<&[String]>,
) -> Result<Arc<Composed>, PlanError> {
    let text = source
        .read(".gitlab-ci.yml")
        .ok_or_else(|| PlanError::Config("Missing CI config file".to_string()))?;
    let key = if ctx.inputs.is_empty() { key(&text) } else { None };
    if let Some(hit) = key.as_ref().and_then(get) {
        return Ok(hit);
    }
    let include_situation = situation(ctx, source, files, pushed);
    let mut include_vars = predefined(ctx);
    include_vars.extend(&user_vars(&ctx.project_variables, &ctx.raw_variables));
    include_vars.extend(&user_vars(&ctx.pipeline_variables, &ctx.raw_variables));
    let include_context = compose::IncludeContext {
        masked: &ctx.masked_variables,
        vars: &include_vars,
        situation: &include_situation,
    };
    let (config, self_contained) = compose_text(&text, source, Some(&include_context), &ctx.inputs)?;
    let stages = stages(&config).map_err(PlanError::Config)?;
    let jobs = job_definitions(&config).map_err(PlanError::Config)?;
    let defaults = defaults(&config).map_err(PlanError::Config)?;
    let has_workflow_rules = workflow_rules(&config).is_some();
    validate(&config, &jobs, &stages).map_err(PlanError::Config)?;
    let composed = Arc::new(Composed {
        config,
        stages,
        jobs,
        defaults,
        has_workflow_rules,
    });
    if let Some(key) = key.filter(|_| self_contained) {
        put(key, text.len(), composed.clone());
    }
    Ok(composed)
}

/// `.gitlab-ci.yml` with the pipeline's `inputs` interpolated, then includes, `extends` and
/// `!reference`.
pub(super) fn compose_config(
    source: &dyn FileSource,
    context: Option<&compose::IncludeContext>,
    args: &Mapping,
) -> Result<Mapping, PlanError> {
    let text = source
        .read(".gitlab-ci.yml")
        .ok_or_else(|| PlanError::Config("Missing CI config file".to_string()))?;
    compose_text(&text, source, context, args).map(|(config, _)| config)
}

/// Composes `text`; answers too whether the result depends on the text alone (no `spec:`
/// header, no `include`).
fn compose_text(
    text: &str,
    source: &dyn FileSource,
    context: Option<&compose::IncludeContext>,
    args: &Mapping,
) -> Result<(Mapping, bool), PlanError> {
    let raw: Vec<(String, String)> = context
        .map(|c| {
            c.vars
                .0
                .iter()
                .map(|v| (String::from(&*v.name), String::from(&*v.value)))
                .collect()
        })
        .unwrap_or_default();
    let vars = inputs::Vars {
        values: &raw,
        masked: context.map_or(&[][..], |c| c.masked),
    };
    let config = inputs::load(text, args, inputs::Origin::Request, vars).map_err(|e| match e {
        inputs::InputsError::Load(e) => PlanError::Config(e.to_string()),
        inputs::InputsError::Inputs(m) => PlanError::Inputs(m),
    })?;
    let self_contained =
        args.is_empty() && config.get("include").is_none() && matches!(yaml::split(text), Ok((None, _)));
    let config = compose::resolve_includes(config, source, context).map_err(PlanError::Config)?;
    let config = compose::resolve_extends(config).map_err(PlanError::Config)?;
    let config = compose::resolve_references(config).map_err(PlanError::Config)?;
    Ok((config, self_contained))
}

struct Entry {
    config: Arc<Composed>,
    size: usize,
    used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], Entry>,
    total: usize,
    clock: u64,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// At most this many jobs for [`plans_quickly`].
const QUICK_JOBS: usize = 50;

/// Whether a pipeline of `text` (given no inputs) is planned without composing: its checked
/// form is kept and has at most [`QUICK_JOBS`] jobs. Such a plan reads nothing outside the
/// repository and costs less than a hop to another thread.
pub fn plans_quickly(text: &str) -> bool {
    key(text).and_then(|k| get(&k)).is_some_and(|c| is_quick(&c))
}

fn is_quick(composed: &Composed) -> bool {
    composed.jobs.len() <= QUICK_JOBS
}

/// The key of `text`, when a composition of it may be kept.
pub fn key(text: &str) -> Option<[u8; 32]> {
    (text.len() <= MAX_TEXT).then(|| *blake3::hash(text.as_bytes()).as_bytes())
}

/// The composed configuration of the text hashed to `key`, if kept.
pub fn get(key: &[u8; 32]) -> Option<Arc<Composed>> {
    let mut guard = CACHE.lock().ok()?;
    let cache = guard.get_or_insert_with(Cache::default);
    cache.clock += 1;
    let now = cache.clock;
    let entry = cache.entries.get_mut(key)?;
    entry.used = now;
    Some(entry.config.clone())
}

/// Keeps `config` as the composition of a text of `size` bytes hashed to `key`, dropping the
/// least recently used entries to stay within `MAX_TOTAL`.
pub fn put(key: [u8; 32], size: usize, config: Arc<Composed>) {
    let Ok(mut guard) = CACHE.lock() else { return };
    let cache = guard.get_or_insert_with(Cache::default);
    cache.clock += 1;
    let used = cache.clock;
    while cache.total + size > MAX_TOTAL {
        let Some(oldest) = cache.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
            break;
        };
        if let Some(e) = cache.entries.remove(&oldest) {
            cache.total -= e.size;
        }
    }
    if let Some(old) = cache.entries.insert(key, Entry { config, size, used }) {
        cache.total -= old.size;
    }
    cache.total += size;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_drops_the_least_recently_used() {
        let small = "a: 1\n".repeat(10_000); // 50 KB
        let k = key(&small).unwrap();
        assert!(key(&"x".repeat(MAX_TEXT + 1)).is_none(), "large files are not kept");
        put(k, small.len(), Arc::new(Composed::default()));
        assert!(get(&k).is_some());
        // Five more such files push the first (least recently used) out.
        for i in 0..5 {
            let text = format!("{small}b{i}: 2\n");
            put(key(&text).unwrap(), text.len(), Arc::new(Composed::default()));
        }
        assert!(get(&k).is_none());
        let total = CACHE.lock().unwrap().as_ref().unwrap().total;
        assert!(total <= MAX_TOTAL, "{total}");
    }

    #[test]
    fn only_kept_small_configurations_plan_quickly() {
        assert!(
            !plans_quickly("never:\n  script: seen\n"),
            "one not kept is planned off the worker"
        );
        let job = (String::from("j"), Mapping::default());
        let small = Composed {
            jobs: vec![job.clone(); QUICK_JOBS],
            ..Composed::default()
        };
        let large = Composed {
            jobs: vec![job; QUICK_JOBS + 1],
            ..Composed::default()
        };
        assert!(is_quick(&small) && !is_quick(&large));
    }
}
