//! The runtime settings of a planned job that the scheduler and executors read: `timeout`,
//! `retry`, `start_in`, `interruptible`, `image`, `services` and `cache`. Values GitLab would
//! reject are read leniently here (the planner validates structure); durations follow
//! ChronicDuration's common forms (`1h 30m`, `3600 seconds`, `2h20min`, `90`).

use super::variables::scalar_text;
use super::yaml::{Mapping, Yaml};
use crate::domain::{ArtifactsSpec, Image, JobSettings, ReleaseLink, ReleaseSpec};

/// Reads a job's settings from its composed configuration; `vars` expands `cache:key`.
pub fn read(config: &Mapping, vars: &[(String, String)]) -> JobSettings {
    let mut s = JobSettings {
        timeout_secs: config
            .get("timeout")
            .and_then(scalar_text)
            .and_then(|t| parse_duration(&t)),
        start_in_secs: config
            .get("start_in")
            .and_then(scalar_text)
            .and_then(|t| parse_duration(&t)),
        interruptible: matches!(config.get("interruptible"), Some(Yaml::Bool(true))),
        image: config.get("image").and_then(image),
        services: match config.get("services") {
            Some(Yaml::Seq(items)) => items.iter().filter_map(image).collect(),
            _ => Vec::new(),
        },
        ..JobSettings::default()
    };
    s.release = read_release(config.get("release"));
    read_retry(config.get("retry"), &mut s);
    read_cache(config.get("cache"), vars, &mut s);
    s.artifacts = read_artifacts(config.get("artifacts"), vars);
    s.environment = read_environment(config.get("environment"), vars);
    s.resource_group = config
        .get("resource_group")
        .and_then(scalar_text)
        .map(|g| expand(&g, vars))
        .filter(|g| !g.is_empty());
    if let Some(Yaml::Map(artifacts)) = config.get("artifacts") {
        if let Some(Yaml::Map(reports)) = artifacts.get("reports") {
            s.junit = strings(reports.get("junit")).iter().map(|p| expand(p, vars)).collect();
        }
        if !s.junit.is_empty() {
            s.reports_expire_in = artifacts.get("expire_in").and_then(scalar_text);
        }
    }
    s.dependencies = match config.get("dependencies") {
        Some(Yaml::Seq(items)) => Some(items.iter().filter_map(scalar_text).collect()),
        _ => None,
    };
    if let Some(Yaml::Seq(needs)) = config.get("needs") {
        s.needs_without_artifacts = needs
            .iter()
            .filter_map(|n| match n {
                Yaml::Map(m) if matches!(m.get("artifacts"), Some(Yaml::Bool(false))) => {
                    m.get("job").and_then(scalar_text)
                }
                _ => None,
            })
            .collect();
        s.artifact_needs = needs.iter().filter_map(|n| artifact_need(n, vars)).collect();
    }
    s
}

/// A `needs:project` or `needs:pipeline:job` entry that fetches artifacts (`artifacts` is
/// true unless set to false), with variables expanded.
fn artifact_need(need: &Yaml, vars: &[(String, String)]) -> Option<crate::domain::ArtifactNeed> {
    let Yaml::Map(m) = need else { return None };
    if matches!(m.get("artifacts"), Some(Yaml::Bool(false))) {
        return None;
    }
    let job = expand(&m.get("job").and_then(scalar_text)?, vars);
    if let Some(project) = m.get("project").and_then(scalar_text) {
        return Some(crate::domain::ArtifactNeed {
            project: Some(expand(&project, vars).trim_matches('/').to_string()),
            job,
            ref_name: m.get("ref").and_then(scalar_text).map(|r| expand(&r, vars)),
        });
    }
    m.get("pipeline").map(|_| crate::domain::ArtifactNeed {
        project: None,
        job,
        ref_name: None,
    })
}

/// `artifacts:` with `paths` or `untracked` (reports alone keep nothing spur serves).
fn read_artifacts(artifacts: Option<&Yaml>, vars: &[(String, String)]) -> Option<ArtifactsSpec> {
    let Some(Yaml::Map(m)) = artifacts else { return None };
    let spec = ArtifactsSpec {
        name: m.get("name").and_then(scalar_text).map(|n| expand(&n, vars)),
        paths: strings(m.get("paths")).iter().map(|p| expand(p, vars)).collect(),
        exclude: strings(m.get("exclude")).iter().map(|p| expand(p, vars)).collect(),
        untracked: matches!(m.get("untracked"), Some(Yaml::Bool(true))),
        when: m
            .get("when")
            .and_then(scalar_text)
            .unwrap_or_else(|| "on_success".into()),
        expire_in: m.get("expire_in").and_then(scalar_text),
    };
    (!spec.paths.is_empty() || spec.untracked).then_some(spec)
}

/// `environment:` as a name or a mapping; names and URLs expanded with the pipeline's variables.
fn read_environment(env: Option<&Yaml>, vars: &[(String, String)]) -> Option<crate::domain::EnvironmentSpec> {
    let env = env?;
    let (name, m) = match env {
        Yaml::Map(m) => (m.get("name").and_then(scalar_text)?, Some(m)),
        other => (scalar_text(other)?, None),
    };
    let name = expand(&name, vars).trim().to_string();
    // A name GitLab would refuse (after expansion) names no environment.
    if !crate::domain::valid_environment_name(&name) {
        return None;
    }
    let text = |k: &str| m.and_then(|m| m.get(k)).and_then(scalar_text);
    let action = text("action").unwrap_or_else(|| "start".into());
    if !["start", "prepare", "stop", "verify", "access"].contains(&action.as_str()) {
        return None;
    }
    let tier = text("deployment_tier")
        .filter(|t| ["production", "staging", "testing", "development", "other"].contains(&t.as_str()))
        .unwrap_or_else(|| crate::domain::guess_tier(&name).to_string());
    Some(crate::domain::EnvironmentSpec {
        url: text("url")
            .map(|u| expand(&u, vars))
            .filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 255),
        action,
        on_stop: text("on_stop"),
        auto_stop_in: text("auto_stop_in"),
        tier,
        name,
    })
}

/// `release:` with its `tag_name` (GitLab requires it); values are expanded when the job runs.
fn read_release(release: Option<&Yaml>) -> Option<ReleaseSpec> {
    let Some(Yaml::Map(m)) = release else { return None };
    let text = |k: &str| m.get(k).and_then(scalar_text);
    let links = match m.get("assets") {
        Some(Yaml::Map(assets)) => match assets.get("links") {
            Some(Yaml::Seq(items)) => items
                .iter()
                .filter_map(|item| {
                    let Yaml::Map(l) = item else { return None };
                    let text = |k: &str| l.get(k).and_then(scalar_text);
                    Some(ReleaseLink {
                        id: 0,
                        name: text("name")?,
                        url: text("url")?,
                        direct_asset_path: text("direct_asset_path").or_else(|| text("filepath")),
                        link_type: text("link_type").unwrap_or_else(|| "other".into()),
                    })
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Some(ReleaseSpec {
        tag_name: text("tag_name").filter(|t| !t.is_empty())?,
        name: text("name"),
        description: text("description"),
        reference: text("ref"),
        tag_message: text("tag_message"),
        released_at: text("released_at"),
        links,
    })
}

/// An `image:` or `services:` entry: a name, or a mapping of GitLab's sub-keys.
fn image(y: &Yaml) -> Option<Image> {
    let Yaml::Map(m) = y else {
        return scalar_text(y).filter(|s| !s.is_empty()).map(|name| Image {
            name,
            ..Image::default()
        });
    };
    let list = |key: &str| match m.get(key) {
        Some(Yaml::Seq(items)) => Some(items.iter().filter_map(scalar_text).collect()),
        Some(other) => scalar_text(other).map(|s| vec![s]),
        None => None,
    };
    Some(Image {
        name: m.get("name").and_then(scalar_text).filter(|s| !s.is_empty())?,
        entrypoint: list("entrypoint"),
        command: list("command"),
        alias: m.get("alias").and_then(scalar_text),
        pull_policy: strings(m.get("pull_policy")),
        variables: match m.get("variables") {
            Some(Yaml::Map(vars)) => vars
                .iter()
                .filter_map(|(k, v)| {
                    let value = match v {
                        Yaml::Map(full) => full.get("value").and_then(scalar_text),
                        other => scalar_text(other),
                    };
                    Some((k.clone(), value?))
                })
                .collect(),
            _ => Vec::new(),
        },
        user: match m.get("docker") {
            Some(Yaml::Map(docker)) => docker.get("user").and_then(scalar_text),
            _ => None,
        },
    })
}

fn read_retry(retry: Option<&Yaml>, s: &mut JobSettings) {
    match retry {
        Some(Yaml::Int(n)) => s.retry_max = (*n).clamp(0, 2) as u32,
        Some(Yaml::Map(m)) => {
            if let Some(Yaml::Int(n)) = m.get("max") {
                s.retry_max = (*n).clamp(0, 2) as u32;
            }
            s.retry_when = strings(m.get("when"));
            s.retry_when.retain(|w| w != "always");
            s.retry_exit_codes = match m.get("exit_codes") {
                Some(Yaml::Int(n)) => vec![*n],
                Some(Yaml::Seq(items)) => items
                    .iter()
                    .filter_map(|i| if let Yaml::Int(n) = i { Some(*n) } else { None })
                    .collect(),
                _ => Vec::new(),
            };
        }
        _ => {}
    }
}

fn read_cache(cache: Option<&Yaml>, vars: &[(String, String)], s: &mut JobSettings) {
    let first = match cache {
        Some(Yaml::Seq(items)) => items.first(),
        other => other,
    };
    let Some(Yaml::Map(m)) = first else { return };
    let paths = strings(m.get("paths"));
    if paths.is_empty() {
        return;
    }
    let key = m.get("key").and_then(|k| match k {
        Yaml::Map(km) => km.get("prefix").and_then(scalar_text),
        other => scalar_text(other),
    });
    let key = expand(&key.unwrap_or_else(|| "default".into()), vars);
    s.cache_key = Some(sanitize_cache_key(&key));
    s.cache_paths = paths.iter().map(|p| expand(p, vars)).collect();
    s.cache_policy = match m
        .get("policy")
        .and_then(scalar_text)
        .map(|p| expand(&p, vars))
        .as_deref()
    {
        Some("pull") => crate::domain::CachePolicy::Pull,
        Some("push") => crate::domain::CachePolicy::Push,
        _ => crate::domain::CachePolicy::PullPush,
    };
}

fn strings(y: Option<&Yaml>) -> Vec<String> {
    match y {
        Some(Yaml::Seq(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(other) => scalar_text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A cache key that is one safe path component (GitLab refuses `/` and `.`/`..` keys).
fn sanitize_cache_key(key: &str) -> String {
    let cleaned: String = key
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "default".into(),
        _ => cleaned,
    }
}

/// Expands `$NAME` and `${NAME}` with already-expanded values (unknown names become empty,
/// `$$` a literal `$`), through the planner's one scanner.
pub fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut lookup = |name: &str| {
        Ok::<_, std::convert::Infallible>(vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    };
    super::variables::expand_refs(text, super::variables::MAX_EXPANDED_BYTES, &mut lookup)
        .unwrap_or_else(|_| text.to_string())
}

/// Parses a duration as ChronicDuration does for the common forms; `None` when unreadable.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let mut total = 0u64;
    let mut number = String::new();
    let mut unit = String::new();
    let mut seen = false;
    let mut flush = |number: &mut String, unit: &mut String| -> Option<()> {
        if number.is_empty() {
            return if unit.is_empty() { Some(()) } else { None };
        }
        let n: f64 = number.parse().ok()?;
        let factor = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" | "week" | "weeks" => 604800.0,
            _ => return None,
        };
        total += (n * factor) as u64;
        seen = true;
        number.clear();
        unit.clear();
        Some(())
    };
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            if !unit.is_empty() {
                flush(&mut number, &mut unit)?;
            }
            number.push(c);
        } else if c.is_ascii_alphabetic() {
            unit.push(c);
        } else if c == ' ' || c == ',' {
            if !unit.is_empty() {
                flush(&mut number, &mut unit)?;
            }
        } else if unit != "and" {
            return None;
        }
        if unit == "and" {
            unit.clear();
        }
    }
    flush(&mut number, &mut unit)?;
    seen.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_chronic_duration() {
        let cases = [
            ("3600", Some(3600)),
            ("1h 30m", Some(5400)),
            ("3600 seconds", Some(3600)),
            ("2h20min", Some(8400)),
            ("30 minutes", Some(1800)),
            ("1 day", Some(86400)),
            ("1.5h", Some(5400)),
            ("10 mins and 5 seconds", Some(605)),
            ("soon", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), want, "{text}");
        }
    }

    #[test]
    fn expansion_uses_the_latest_value_and_blanks_unknown_names() {
        let vars = vec![("A".to_string(), "1".to_string()), ("A".to_string(), "2".to_string())];
        assert_eq!(expand("x-$A-${A}-$B-$", &vars), "x-2-2--$");
    }
}
