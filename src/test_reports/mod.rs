//! Unit test reports (`artifacts:reports:junit`): read from what a runner uploads (gzip, one
//! member a file) or what the built-in executor packs (a zip), kept per job with their counts,
//! and put together per pipeline as GitLab's `test_report` and `test_report_summary` answer:
//! one suite per job name (parallel instances share one), a case counted once per suite, class
//! and name.

pub mod junit;

use crate::context::Spur;
use crate::domain::{Job, JobTestReport, TestCase, TestCounts, TestStatus};
use std::collections::HashMap;
use std::io::Read;

/// One suite of a pipeline's report: the cases of the jobs sharing a name.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// The job's name without its `N/M` parallel suffix.
    pub name: String,
    /// Its counts.
    pub counts: TestCounts,
    /// Its cases: errors, failures, passes, skips; the slowest first within each.
    pub cases: Vec<TestCase>,
    /// The jobs whose reports make it up.
    pub build_ids: Vec<u64>,
}

/// A pipeline's report: every suite and their sum.
#[derive(Debug, Clone, Default)]
pub struct PipelineReport {
    /// Summed over the suites.
    pub counts: TestCounts,
    /// One a job name, in job order.
    pub suites: Vec<Suite>,
}

/// Reads a runner's `junit` upload: gzip members, each one XML file, at most `limit` bytes
/// unpacked (`Err` past that, so a small bomb is refused like a large file).
pub fn from_gzip(bytes: &[u8], limit: u64) -> Result<JobTestReport, String> {
    let mut report = JobTestReport::default();
    let mut rest: &[u8] = bytes;
    let mut total = 0u64;
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        let mut xml = Vec::new();
        let read = (&mut decoder)
            .take(limit.saturating_sub(total) + 1)
            .read_to_end(&mut xml);
        if read.is_err() {
            report.suite_error = Some("JUnit XML parsing failed: the upload is not gzip".into());
            return Ok(report);
        }
        total += xml.len() as u64;
        if total > limit {
            return Err(too_large(limit));
        }
        junit::parse_into(&xml, &mut report);
        rest = decoder.into_inner();
    }
    Ok(report)
}

/// Reads the built-in executor's packing: a zip of the files `reports:junit` matched, at most
/// `limit` bytes unpacked.
pub fn from_zip(file: std::fs::File, limit: u64) -> Result<JobTestReport, String> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut report = JobTestReport::default();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        if !entry.is_file() {
            continue;
        }
        let mut xml = Vec::new();
        (&mut entry)
            .take(limit.saturating_sub(total) + 1)
            .read_to_end(&mut xml)
            .map_err(|e| e.to_string())?;
        total += xml.len() as u64;
        if total > limit {
            return Err(too_large(limit));
        }
        junit::parse_into(&xml, &mut report);
    }
    Ok(report)
}

/// Why an upload was not kept.
#[derive(Debug)]
pub enum UploadError {
    /// Larger than `--max-test-report-bytes`, packed or unpacked.
    TooLarge,
    /// A failure inside spur.
    Internal(String),
}

/// Keeps a runner's `junit` upload (a gzip file at `path`, removed afterwards) as the job's
/// report. A file that is not JUnit is kept as a report with a `suite_error`, as GitLab does.
pub async fn store_upload(spur: &Spur, job_id: u64, path: std::path::PathBuf) -> Result<(), UploadError> {
    let limit = spur.max_test_report_bytes;
    let read = tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let result = if size > limit {
            Err(UploadError::TooLarge)
        } else {
            std::fs::read(&path)
                .map_err(|e| UploadError::Internal(e.to_string()))
                .and_then(|bytes| from_gzip(&bytes, limit).map_err(|_| UploadError::TooLarge))
        };
        let _ = std::fs::remove_file(&path);
        result
    })
    .await
    .map_err(|e| UploadError::Internal(e.to_string()))??;
    store(spur, job_id, read).await.map_err(UploadError::Internal)?;
    Ok(())
}

fn too_large(limit: u64) -> String {
    format!("413 Request Entity Too Large: the test report is larger than {limit} bytes")
}

/// Keeps a job's report (replacing an earlier one) with its counts.
pub async fn store(spur: &Spur, job_id: u64, report: JobTestReport) -> Result<TestCounts, String> {
    let counts = counts_of(&dedupe(&report.cases), &report.cases, report.suite_error.clone());
    spur.store
        .put_test_report(job_id, report, counts.clone())
        .await
        .map_err(|e| e.to_string())?;
    Ok(counts)
}

/// GitLab's suite name of a job: its name without a `1/3` parallel suffix.
pub fn suite_name(job: &Job) -> String {
    static SUFFIX: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"([\s:]+(\d+[\s:/\\]+\d+)){1,3}\s*\z").ok());
    if job.name.ends_with(']') {
        return job.name.clone();
    }
    match SUFFIX.as_ref() {
        Some(re) => re.replace(&job.name, "").trim().to_string(),
        None => job.name.clone(),
    }
}

/// The report of a pipeline's current jobs (retried ones left out), one suite a job name.
pub fn pipeline_report(spur: &Spur, pipeline_id: u64) -> Result<PipelineReport, crate::storage::Error> {
    let jobs = current_jobs(spur, pipeline_id)?;
    let mut suites: Vec<(Suite, Vec<TestCase>)> = Vec::new();
    for job in &jobs {
        let Some(report) = spur.store.test_report(job.id)? else {
            continue;
        };
        let name = suite_name(job);
        let at = match suites.iter().position(|(s, _)| s.name == name) {
            Some(at) => at,
            None => {
                suites.push((
                    Suite {
                        name,
                        ..Suite::default()
                    },
                    Vec::new(),
                ));
                suites.len() - 1
            }
        };
        let (suite, all) = &mut suites[at];
        suite.build_ids.push(job.id);
        if report.suite_error.is_some() {
            suite.counts.suite_error = report.suite_error;
        }
        all.extend(report.cases);
    }
    let mut out = PipelineReport::default();
    for (mut suite, all) in suites {
        let mut cases = dedupe(&all);
        suite.counts = counts_of(&cases, &all, suite.counts.suite_error.take());
        cases.sort_by(|a, b| {
            a.status
                .cmp(&b.status)
                .then(b.execution_time.total_cmp(&a.execution_time))
        });
        suite.cases = cases;
        add(&mut out.counts, &suite.counts);
        suite.counts.time = round(suite.counts.time);
        out.suites.push(suite);
    }
    out.counts.time = round(out.counts.time);
    Ok(out)
}

/// A pipeline's summary from its jobs' stored counts (no cases read): the total and one entry
/// a job name.
pub fn pipeline_summary(spur: &Spur, pipeline_id: u64) -> Result<PipelineReport, crate::storage::Error> {
    let jobs = current_jobs(spur, pipeline_id)?;
    let ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
    let names: HashMap<u64, String> = jobs.iter().map(|j| (j.id, suite_name(j))).collect();
    let mut out = PipelineReport::default();
    for (id, counts) in spur.store.test_counts(&ids)? {
        let name = names.get(&id).cloned().unwrap_or_default();
        add(&mut out.counts, &counts);
        match out.suites.iter_mut().find(|s| s.name == name) {
            Some(suite) => {
                add(&mut suite.counts, &counts);
                suite.build_ids.push(id);
            }
            None => out.suites.push(Suite {
                name,
                counts,
                cases: Vec::new(),
                build_ids: vec![id],
            }),
        }
    }
    for suite in &mut out.suites {
        suite.counts.time = round(suite.counts.time);
    }
    out.counts.time = round(out.counts.time);
    Ok(out)
}

/// How many tests failed or errored in a pipeline, when its jobs have reports.
pub fn failed_count(spur: &Spur, pipeline_id: u64) -> Result<Option<u64>, crate::storage::Error> {
    let ids: Vec<u64> = current_jobs(spur, pipeline_id)?.iter().map(|j| j.id).collect();
    let counts = spur.store.test_counts(&ids)?;
    Ok((!counts.is_empty()).then(|| counts.iter().map(|(_, c)| c.failed + c.error).sum()))
}

/// A pipeline's jobs, retried attempts left out.
fn current_jobs(spur: &Spur, pipeline_id: u64) -> Result<Vec<Job>, crate::storage::Error> {
    Ok(spur
        .store
        .pipeline_jobs(pipeline_id)?
        .into_iter()
        .filter(|j| !j.retried)
        .collect())
}

/// One case per status, suite, class and name (the last read wins, in the first one's place),
/// as GitLab keys them.
fn dedupe(cases: &[TestCase]) -> Vec<TestCase> {
    type Key<'a> = (TestStatus, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let mut at: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<TestCase> = Vec::new();
    for case in cases {
        let key = (
            case.status,
            case.suite_name.as_deref(),
            case.classname.as_deref(),
            case.name.as_deref(),
        );
        match at.get(&key) {
            Some(&i) => out[i] = case.clone(),
            None => {
                at.insert(key, out.len());
                out.push(case.clone());
            }
        }
    }
    out
}

/// Counts of the kept cases (none when a file could not be read); the time is summed over every
/// case read, as GitLab adds it.
fn counts_of(kept: &[TestCase], read: &[TestCase], suite_error: Option<String>) -> TestCounts {
    let mut counts = TestCounts {
        total: kept.len() as u64,
        time: read.iter().map(|c| c.execution_time).sum(),
        ..TestCounts::default()
    };
    // GitLab counts nothing in a suite it could not read.
    if suite_error.is_some() {
        counts.total = 0;
        counts.suite_error = suite_error;
        return counts;
    }
    for case in kept {
        match case.status {
            TestStatus::Success => counts.success += 1,
            TestStatus::Failed => counts.failed += 1,
            TestStatus::Skipped => counts.skipped += 1,
            TestStatus::Error => counts.error += 1,
        }
    }
    counts
}

fn add(sum: &mut TestCounts, counts: &TestCounts) {
    sum.total += counts.total;
    sum.success += counts.success;
    sum.failed += counts.failed;
    sum.skipped += counts.skipped;
    sum.error += counts.error;
    sum.time += counts.time;
    if sum.suite_error.is_none() {
        sum.suite_error.clone_from(&counts.suite_error);
    }
}

/// Seconds to two decimals, so summed floats read as a person wrote them.
fn round(seconds: f64) -> f64 {
    (seconds * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn each_gzip_member_is_a_file_and_unpacking_is_bounded() {
        let mut upload = gz(br#"<testsuite name="a"><testcase name="one"/></testsuite>"#);
        upload.extend(gz(
            br#"<testsuite name="b"><testcase name="two"><failure/></testcase></testsuite>"#,
        ));
        let report = from_gzip(&upload, 1 << 20).unwrap();
        assert_eq!(report.cases.len(), 2);
        assert_eq!(report.suite_error, None);
        // 10 MB of zeros packs into a few KB and is still refused.
        let bomb = gz(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 100_000);
        assert!(from_gzip(&bomb, 1 << 20).unwrap_err().contains("larger than"));
        let not_gzip = from_gzip(b"<testsuite/>", 1 << 20).unwrap();
        assert!(not_gzip.suite_error.unwrap().contains("not gzip"));
    }

    #[test]
    fn cases_count_once_per_status_suite_class_and_name() {
        let mut report = JobTestReport::default();
        let xml = br#"<testsuite name="s"><testcase name="a" time="1"/><testcase name="a" time="2"/><testcase name="a"><failure/></testcase></testsuite>"#;
        junit::parse_into(xml, &mut report);
        let kept = dedupe(&report.cases);
        let counts = counts_of(&kept, &report.cases, None);
        assert_eq!((counts.total, counts.success, counts.failed), (2, 1, 1));
        assert_eq!(counts.time, 3.0);
        assert_eq!(kept[0].execution_time, 2.0, "the last read wins");
    }
}
