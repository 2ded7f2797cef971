//! Unit test reports: `artifacts:reports:junit` read after the built-in executor's jobs
//! (parallel jobs sharing one suite, a failed job's report kept, a hostile file refused, a
//! file over `--max-test-report-bytes` failing its job), answered by `test_report` and
//! `test_report_summary` as GitLab does, and shown on the Tests tab and in the pipelines list.

use crate::support::{Repo, Server, finished_pipeline, job_log, send};
use reqwest::Method;
use serde_json::Value;

const UNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="math">
    <testcase classname="math.Add" name="adds" time="0.25"/>
    <testcase classname="math.Add" name="overflows" time="1.5"><failure message="assert">expected &lt;1&gt; got 2<![CDATA[ <script>alert(1)</script> ]]></failure></testcase>
    <testcase classname="math.Div" name="by zero" time="0.1"><error>ZeroDivisionError</error></testcase>
    <testcase classname="math.Div" name="later"><skipped/></testcase>
  </testsuite>
</testsuites>
"#;

const HOSTILE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd"><!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<testsuite name="x"><testcase name="leak"><failure>&secret;&b;</failure></testcase></testsuite>
"#;

const CONFIG: &str = r#"
unit:
  parallel: 2
  script:
    - cp reports/unit.xml "unit-$CI_NODE_INDEX.xml"
    - exit 1
  allow_failure: true
  artifacts:
    reports:
      junit: unit-*.xml
hostile:
  script: [cp reports/hostile.xml hostile.xml]
  artifacts:
    reports:
      junit: [hostile.xml]
big:
  script:
    - printf '<testsuite name="big"><testcase name="a"><failure>' > big.xml
    - head -c 300000 /dev/zero | tr '\0' y >> big.xml
    - printf '</failure></testcase></testsuite>' >> big.xml
  artifacts:
    reports:
      junit: big.xml
none:
  script: [echo no report]
"#;

fn suite<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["test_suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no suite {name}: {report}"))
}

#[tokio::test]
async fn junit_reports_of_jobs_reach_the_api_and_the_tests_tab() {
    let s = Server::start_with(&["--max-test-report-bytes", "100000"]);
    let repo = Repo::with_files(&[
        (".gitlab-ci.yml", CONFIG),
        ("reports/unit.xml", UNIT),
        ("reports/hostile.xml", HOSTILE),
    ]);
    let pid = s.project("tr", repo.path()).await;
    let (status, _) = send(
        s.root(Method::PUT, &format!("/projects/{pid}"))
            .form(&[("visibility", "public")]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_u64().unwrap();
    let done = finished_pipeline(&s, pid, id).await;
    let (_, jobs) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/jobs"))).await;
    let job = |name: &str| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {jobs}"))
    };
    // The report over the limit fails its job, with the reason in its log.
    let big = job("big");
    assert_eq!(big["status"], "failed", "{done}");
    let log = job_log(&s, pid, &big["id"]).await;
    assert!(log.contains("larger than 100000 bytes"), "{log}");
    assert_eq!(job("hostile")["status"], "success");

    let (status, report) = send(s.anon(Method::GET, &format!("/projects/{pid}/pipelines/{id}/test_report"))).await;
    assert_eq!(status, 200, "{report}");
    let names: Vec<&str> = report["test_suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["unit", "hostile"],
        "one suite for both parallel jobs; none for big or none"
    );
    // The two parallel jobs read the same cases: each counted once.
    assert_eq!(
        (
            &report["total_count"],
            &report["success_count"],
            &report["failed_count"],
            &report["error_count"],
            &report["skipped_count"]
        ),
        (&4.into(), &1.into(), &1.into(), &1.into(), &1.into()),
        "{report}"
    );
    let unit = suite(&report, "unit");
    assert_eq!(unit["suite_error"], Value::Null);
    let statuses: Vec<&str> = unit["test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["error", "failed", "success", "skipped"], "{unit}");
    let failed = &unit["test_cases"][1];
    assert_eq!(failed["name"], "overflows");
    assert_eq!(failed["classname"], "math.Add");
    assert_eq!(failed["execution_time"], 1.5);
    assert_eq!(failed["system_output"], "expected <1> got 2 <script>alert(1)</script>");
    // No DTD is read and no entity expanded: the file is refused as a whole.
    let hostile = suite(&report, "hostile");
    assert!(
        hostile["suite_error"]
            .as_str()
            .unwrap()
            .starts_with("JUnit XML parsing failed"),
        "{hostile}"
    );
    assert_eq!(hostile["test_cases"], serde_json::json!([]));
    assert!(!report.to_string().contains("root:x:0"));

    let (status, summary) = send(s.anon(
        Method::GET,
        &format!("/projects/{pid}/pipelines/{id}/test_report_summary"),
    ))
    .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["total"]["count"], 8,
        "per job, as GitLab's build report results: {summary}"
    );
    assert_eq!(summary["total"]["failed"], 2);
    let unit = suite(&summary, "unit");
    assert_eq!(unit["build_ids"].as_array().unwrap().len(), 2);
    assert!(suite(&summary, "hostile")["suite_error"].is_string());

    // Other pipelines and projects are not found.
    let (status, _) = send(s.anon(Method::GET, &format!("/projects/{pid}/pipelines/999999/test_report"))).await;
    assert_eq!(status, 404);

    // The Tests tab lists the failures first, escaped; the list shows the failure count.
    let page = s
        .http
        .get(format!("{}/root/tr/-/pipelines/{id}/test_report", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("overflows"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "escaped as askama escapes"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.find("by zero").unwrap() < html.find("adds").unwrap());
    assert!(html.contains("JUnit XML parsing failed"));
    let list = s
        .http
        .get(format!("{}/root/tr/-/pipelines", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("4 failed tests"),
        "failures and errors of both jobs: {list}"
    );

    // Erasing a job erases its report.
    let hostile_id = job("hostile")["id"].as_u64().unwrap();
    let (status, _) = send(s.root(Method::POST, &format!("/projects/{pid}/jobs/{hostile_id}/erase"))).await;
    assert_eq!(status, 201);
    let (_, report) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines/{id}/test_report"))).await;
    assert_eq!(report["test_suites"].as_array().unwrap().len(), 1, "{report}");
}
