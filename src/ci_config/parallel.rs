//! `parallel:` and `parallel:matrix`: how many instances a job has, their names (`job 1/3`,
//! `job: [a, b]`) and each instance's variables.

use super::variables::{self, VarList};
use super::yaml::{Mapping, Yaml};

/// Most instances one `parallel:` job may have (GitLab's limit).
pub(super) const MAX_PARALLEL: usize = 200;

/// How many instances `parallel:` asks for, if the job uses it.
pub(super) fn parallel_count(job: &Mapping) -> Option<usize> {
    match job.get("parallel")? {
        Yaml::Int(n) => Some(usize::try_from(*n).unwrap_or(0)),
        Yaml::Map(m) => match m.get("matrix") {
            Some(Yaml::Seq(rows)) => Some(rows.iter().map(matrix_row_size).fold(0usize, usize::saturating_add)),
            _ => Some(0),
        },
        _ => Some(0),
    }
}

/// The number of combinations one matrix row gives, saturating.
pub(super) fn matrix_row_size(row: &Yaml) -> usize {
    let Yaml::Map(row) = row else { return 0 };
    row.iter()
        .map(|(_, values)| if let Yaml::Seq(items) = values { items.len() } else { 1 })
        .fold(1usize, usize::saturating_mul)
}

/// `parallel: N` gives `name 1/N` ... `name N/N`; `parallel: matrix` gives `name: [v1, v2]`.
pub(super) fn parallel_instances(name: &str, job: &Mapping) -> Vec<(String, VarList)> {
    match job.get("parallel") {
        Some(Yaml::Int(n)) if *n >= 1 => (1..=*n)
            .map(|i| {
                let mut v = VarList::default();
                v.set("CI_NODE_INDEX", &i.to_string(), false);
                v.set("CI_NODE_TOTAL", &n.to_string(), false);
                (format!("{name} {i}/{n}"), v)
            })
            .collect(),
        Some(Yaml::Map(m)) => match m.get("matrix") {
            Some(Yaml::Seq(rows)) => matrix_instances(name, rows),
            _ => vec![(name.to_string(), VarList::default())],
        },
        _ => vec![(name.to_string(), VarList::default())],
    }
}

pub(super) fn matrix_instances(name: &str, rows: &[Yaml]) -> Vec<(String, VarList)> {
    let mut combos: Vec<Vec<(String, String)>> = Vec::new();
    for row in rows {
        let Yaml::Map(row) = row else { continue };
        let mut partial: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (key, values) in row.iter() {
            let values: Vec<String> = match values {
                Yaml::Seq(items) => items.iter().filter_map(variables::scalar_text).collect(),
                other => variables::scalar_text(other).into_iter().collect(),
            };
            partial = partial
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut q = p.clone();
                        q.push((key.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        combos.extend(partial);
    }
    let total = combos.len();
    combos
        .into_iter()
        .enumerate()
        .map(|(i, combo)| {
            let mut v = VarList::default();
            for (k, val) in &combo {
                v.set(k, val, false);
            }
            v.set("CI_NODE_INDEX", &(i + 1).to_string(), false);
            v.set("CI_NODE_TOTAL", &total.to_string(), false);
            let label = combo.iter().map(|(_, val)| val.as_str()).collect::<Vec<_>>().join(", ");
            (format!("{name}: [{label}]"), v)
        })
        .collect()
}
