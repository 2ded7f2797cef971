//! Data-driven tests of the processing rules: `cases.txt` lists pipelines, the statuses
//! `advance` must reach and the pipeline status they add up to.

use super::{advance, pipeline_status};
use crate::domain::{Job, JobStatus, JobWhen, PipelineStatus};

fn status(s: &str) -> JobStatus {
    JobStatus::parse(s).unwrap_or_else(|| panic!("unknown status {s}"))
}

fn job(line: &str) -> Job {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 7, "job NAME STAGE WHEN AF NEEDS STATUS: {line}");
    Job {
        id: 0,
        pipeline_id: 1,
        project_id: 1,
        name: f[1].into(),
        stage: f[2].into(),
        stage_index: f[2].parse().unwrap(),
        status: status(f[6]),
        when: JobWhen::parse(f[3]).unwrap_or_else(|| panic!("unknown when {}", f[3])),
        allow_failure: f[4] == "af",
        allow_failure_exit_codes: vec![],
        needs: match f[5] {
            "-" => None,
            "[]" => Some(vec![]),
            list => Some(list.split(',').map(String::from).collect()),
        },
        before_script: vec![],
        script: vec![],
        after_script: vec![],
        trigger: None,
        tags: vec![],
        user_id: 1,
        created_at: 0,
        started_at: None,
        finished_at: None,
        settings: Default::default(),
        queued_at: None,
        scheduled_at: None,
        failure_reason: None,
        exit_code: None,
        retried: false,
        attempt: 0,
        runner: None,
        runner_id: None,
        bridge: None,
        external: None,
        erased_at: None,
        played_variables: Vec::new(),
    }
}

#[test]
fn processing_cases() {
    let text = include_str!("cases.txt");
    let mut count = 0;
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let name = lines[0].strip_prefix("case ").expect("a block starts with `case NAME`");
        let mut jobs: Vec<Job> = lines.iter().filter(|l| l.starts_with("job ")).map(|l| job(l)).collect();
        advance(&mut jobs, 1000);
        for line in &lines {
            if let Some(expect) = line.strip_prefix("expect ") {
                for pair in expect.split_whitespace() {
                    let (n, st) = pair.split_once('=').unwrap();
                    let got = jobs
                        .iter()
                        .find(|j| j.name == n)
                        .unwrap_or_else(|| panic!("{name}: no job {n}"));
                    assert_eq!(got.status.as_str(), st, "case {name}: job {n}");
                }
            }
            if let Some(p) = line.strip_prefix("pipeline ") {
                assert_eq!(
                    pipeline_status(&jobs),
                    PipelineStatus::parse(p).unwrap(),
                    "case {name}: pipeline"
                );
            }
        }
        count += 1;
    }
    assert!(count >= 15, "only {count} cases ran");
}
