//! Unit test reports: the test cases a job's `artifacts:reports:junit` files list, as GitLab's
//! JUnit parser reads them, kept per job.

use serde::{Deserialize, Serialize};

/// A test case's outcome; GitLab lists them in this order (errors first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    /// The test could not run (`<error>`).
    Error,
    /// An assertion failed (`<failure>`).
    Failed,
    /// It passed.
    Success,
    /// It was skipped (`<skipped>`).
    Skipped,
}

impl TestStatus {
    /// GitLab's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Error => "error",
            TestStatus::Failed => "failed",
            TestStatus::Success => "success",
            TestStatus::Skipped => "skipped",
        }
    }
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// The `name` of the `<testsuite>` (or `<testsuites>`) holding it.
    pub suite_name: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `classname`.
    pub classname: Option<String>,
    /// `file`.
    pub file: Option<String>,
    /// `time`, in seconds (0 when absent or not a number).
    pub execution_time: f64,
    /// The outcome.
    pub status: TestStatus,
    /// The text of its `<failure>`, `<error>` or `<skipped>` element.
    pub system_output: Option<String>,
}

/// What one job's JUnit files held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTestReport {
    /// The job's test cases, in file order.
    pub cases: Vec<TestCase>,
    /// Why a file could not be read (`JUnit XML parsing failed: ...`), as GitLab's
    /// `suite_error`.
    pub suite_error: Option<String>,
}

/// How many cases of each outcome a report holds, and their time: what lists and summaries read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestCounts {
    /// Every case counted once (GitLab keys a case by suite, class and name).
    pub total: u64,
    /// Passed.
    pub success: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
    /// Errored.
    pub error: u64,
    /// Seconds, summed over the cases read.
    pub time: f64,
    /// The report's `suite_error`.
    pub suite_error: Option<String>,
}
