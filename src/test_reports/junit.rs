//! GitLab's JUnit parser (`Gitlab::Ci::Parsers::Test::Junit`) over quick-xml: test cases are
//! read under one top-level `<testsuites>` or nested `<testsuite>`s; `<failure>`, `<error>` and
//! `<skipped>` set the status and their text is the output. No DTD is read and no entity
//! expanded: a document with a `DOCTYPE` is refused, so no file or URL is ever fetched.

use crate::domain::{JobTestReport, TestCase, TestStatus};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Most test cases one job's reports may hold.
pub const MAX_CASES: usize = 100_000;
/// Deepest element nesting read.
const MAX_DEPTH: usize = 256;
/// Most bytes kept of one test case's output.
const MAX_OUTPUT: usize = 64 * 1024;
/// Most bytes kept of a name, class, file or suite name.
const MAX_ATTRIBUTE: usize = 1024;
/// Most bytes of text one job's cases may hold once read (a suite name is copied into each).
pub const MAX_READ_BYTES: usize = 32 * 1024 * 1024;
/// Longest time a case may claim, in seconds (so that sums stay finite).
const MAX_SECONDS: f64 = 1e12;

/// Where an element sits, as far as the parser cares.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// `<testsuites>` at the top, or a `<testsuite>` at the top or in one of these.
    Suite,
    /// A `<testcase>` in a suite.
    Case,
    /// `<failure>`, `<error>` or `<skipped>` in a case: its text is the output.
    Outcome,
    /// Anything else: ignored, with all it holds.
    Other,
}

/// Adds the test cases of one XML document to `report`; a document that is not well-formed
/// (or has a DOCTYPE, or too many cases) adds none and sets `suite_error` as GitLab words it.
pub fn parse_into(xml: &[u8], report: &mut JobTestReport) {
    let room = MAX_CASES.saturating_sub(report.cases.len());
    let used: usize = report.cases.iter().map(weight).sum();
    match parse(xml, room, MAX_READ_BYTES.saturating_sub(used)) {
        Ok(cases) => report.cases.extend(cases),
        Err(e) => report.suite_error = Some(e),
    }
}

/// Bytes of text a case holds.
fn weight(c: &TestCase) -> usize {
    [&c.suite_name, &c.name, &c.classname, &c.file, &c.system_output]
        .iter()
        .map(|s| s.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + 64
}

fn parse(xml: &[u8], room: usize, budget: usize) -> Result<Vec<TestCase>, String> {
    let mut spent = 0usize;
    let syntax = |e: &dyn std::fmt::Display| format!("JUnit XML parsing failed: {e}");
    let text = String::from_utf8_lossy(xml);
    let mut reader = Reader::from_str(&text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<(Place, Option<String>)> = Vec::new();
    let mut cases = Vec::new();
    let mut case: Option<TestCase> = None;
    let mut output: Option<String> = None;
    let mut saw_element = false;
    let mut counted = 0;
    loop {
        while counted < cases.len() {
            spent += weight(&cases[counted]);
            counted += 1;
        }
        if spent > budget {
            return Err(format!(
                "JUnit data parsing failed: the cases hold more than {MAX_READ_BYTES} bytes of text"
            ));
        }
        let event = reader.read_event().map_err(|e| syntax(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                saw_element = true;
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(&"the document is nested too deeply"));
                }
                let place = place_of(&stack, e.local_name().as_ref());
                let name = attribute(e, "name");
                match place {
                    Place::Case => {
                        if cases.len() >= room {
                            return Err(format!("JUnit data parsing failed: more than {MAX_CASES} test cases"));
                        }
                        let suite_name = stack.last().and_then(|(_, n)| n.clone());
                        case = Some(TestCase {
                            suite_name,
                            name: name.clone(),
                            classname: attribute(e, "classname"),
                            file: attribute(e, "file"),
                            execution_time: attribute(e, "time").map_or(0.0, |t| leading_number(&t)),
                            status: TestStatus::Success,
                            system_output: None,
                        });
                    }
                    Place::Outcome => {
                        let status = match e.local_name().as_ref() {
                            "failure" => TestStatus::Failed,
                            "error" => TestStatus::Error,
                            _ => TestStatus::Skipped,
                        };
                        if let Some(c) = case.as_mut() {
                            // GitLab looks for a failure first, then an error, then skipped.
                            if rank(status) > rank(c.status) {
                                c.status = status;
                                c.system_output = attribute(e, "message");
                                output = Some(String::new());
                            }
                        }
                    }
                    Place::Suite | Place::Other => {}
                }
                if empty {
                    close(place, &mut case, &mut output, &mut cases);
                } else {
                    stack.push((place, name));
                }
            }
            Event::End(_) => {
                if let Some((place, _)) = stack.pop() {
                    close(place, &mut case, &mut output, &mut cases);
                }
            }
            Event::Text(ref t) => {
                if let Some(out) = output.as_mut() {
                    push_bounded(out, &t.xml10_content());
                }
            }
            Event::CData(ref t) => {
                if let Some(out) = output.as_mut() {
                    push_bounded(out, &t.xml10_content());
                }
            }
            Event::GeneralRef(ref r) => {
                let text = match r.resolve_char_ref().map_err(|e| syntax(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.xml10_content();
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => s.to_string(),
                            None => return Err(syntax(&format!("undefined entity &{name};"))),
                        }
                    }
                };
                if let Some(out) = output.as_mut() {
                    push_bounded(out, &text);
                }
            }
            Event::DocType(_) => {
                return Err(syntax(&"a DOCTYPE is not allowed (entities are never expanded)"));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(syntax(&"the document ends inside an element"));
    }
    if !saw_element {
        return Err(syntax(&"the document has no root element"));
    }
    Ok(cases)
}

/// Which outcome wins when a case has several, as GitLab checks them.
fn rank(status: TestStatus) -> u8 {
    match status {
        TestStatus::Success => 0,
        TestStatus::Skipped => 1,
        TestStatus::Error => 2,
        TestStatus::Failed => 3,
    }
}

/// Where an element named `tag` sits under `stack`, by GitLab's walk of the document.
fn place_of(stack: &[(Place, Option<String>)], tag: &str) -> Place {
    let parent = stack.last().map(|(p, _)| *p);
    match (parent, tag) {
        (None, "testsuites" | "testsuite") => Place::Suite,
        (Some(Place::Suite), "testsuite") => Place::Suite,
        (Some(Place::Suite), "testcase") => Place::Case,
        (Some(Place::Case), "failure" | "error" | "skipped") => Place::Outcome,
        _ => Place::Other,
    }
}

/// Ends an element: a case is kept, an outcome's text becomes the case's output.
fn close(place: Place, case: &mut Option<TestCase>, output: &mut Option<String>, cases: &mut Vec<TestCase>) {
    match place {
        Place::Outcome => {
            if let (Some(c), Some(text)) = (case.as_mut(), output.take()) {
                let text = text.trim();
                if !text.is_empty() {
                    c.system_output = Some(text.to_string());
                }
            }
        }
        Place::Case => {
            if let Some(c) = case.take() {
                cases.push(c);
            }
        }
        Place::Suite | Place::Other => {}
    }
}

fn push_bounded(out: &mut String, text: &str) {
    let room = MAX_OUTPUT.saturating_sub(out.len());
    if text.len() <= room {
        out.push_str(text);
    } else {
        let mut end = room;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&text[..end]);
    }
}

fn attribute(e: &BytesStart, key: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == key)
        .map(|a| {
            let mut value = match a.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(v) => v.into_owned(),
                Err(_) => a.value.into_owned(),
            };
            if value.len() > MAX_ATTRIBUTE {
                let mut end = MAX_ATTRIBUTE;
                while !value.is_char_boundary(end) {
                    end -= 1;
                }
                value.truncate(end);
            }
            value
        })
}

/// Ruby's `String#to_f`: the leading decimal number, 0 when there is none.
fn leading_number(text: &str) -> f64 {
    let t = text.trim_start();
    let mut end = 0;
    let bytes = t.as_bytes();
    let mut seen_dot = false;
    let mut seen_exp = false;
    while end < bytes.len() {
        let b = bytes[end];
        let ok = b.is_ascii_digit()
            || (b == b'-' || b == b'+') && (end == 0 || matches!(bytes[end - 1], b'e' | b'E'))
            || b == b'.' && !seen_dot && !seen_exp
            || (b == b'e' || b == b'E') && !seen_exp && end > 0;
        if !ok {
            break;
        }
        seen_dot |= b == b'.';
        seen_exp |= b == b'e' || b == b'E';
        end += 1;
    }
    let mut slice = &t[..end];
    while !slice.is_empty() && slice.parse::<f64>().is_err() {
        slice = &slice[..slice.len() - 1];
    }
    slice
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map_or(0.0, |n| n.clamp(-MAX_SECONDS, MAX_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(xml: &str) -> JobTestReport {
        let mut report = JobTestReport::default();
        parse_into(xml.as_bytes(), &mut report);
        report
    }

    /// (document, cases as `status suite/class/name time`, start of the suite error)
    const CASES: &[(&str, &[&str], Option<&str>)] = &[
        (
            r#"<testsuites name="all"><testsuite name="s"><testcase classname="c" name="ok" time="0.5"/><testcase name="bad" time="1,5"><failure message="m">expected &lt;1&gt;<![CDATA[ raw <x> ]]></failure></testcase><testcase name="gone"><skipped/></testcase><testcase name="boom"><error>E&#65;</error><failure>F</failure></testcase></testsuite></testsuites>"#,
            &[
                "success s/c/ok 0.5",
                "failed s/-/bad 1",
                "skipped s/-/gone 0",
                "failed s/-/boom 0",
            ],
            None,
        ),
        // A bare testsuite, nested suites (PHPUnit), cases directly under testsuites.
        (
            r#"<testsuite name="outer"><testsuite name="inner"><testcase name="a"/></testsuite><testcase name="b"/></testsuite>"#,
            &["success inner/-/a 0", "success outer/-/b 0"],
            None,
        ),
        (
            r#"<testsuites name="top"><testcase name="t"/></testsuites>"#,
            &["success top/-/t 0"],
            None,
        ),
        // Cases outside a suite, or under other elements, are not read (as GitLab's walk).
        (r#"<root><testcase name="x"/></root>"#, &[], None),
        (
            r#"<testsuite name="s"><properties><testcase name="x"/></properties></testsuite>"#,
            &[],
            None,
        ),
        // Broken, empty and hostile documents add nothing and say why.
        (
            r#"<testsuite name="s"><testcase name="x"></testsuite>"#,
            &[],
            Some("JUnit XML parsing failed"),
        ),
        ("", &[], Some("JUnit XML parsing failed")),
        ("not xml at all", &[], Some("JUnit XML parsing failed")),
        (
            r#"<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite name="s"><testcase name="a"><failure>&x;</failure></testcase></testsuite>"#,
            &[],
            Some("JUnit XML parsing failed: a DOCTYPE"),
        ),
        (
            r#"<testsuite name="s"><testcase name="a"><failure>&x;</failure></testcase></testsuite>"#,
            &[],
            Some("JUnit XML parsing failed: undefined entity"),
        ),
    ];

    #[test]
    fn documents_read_as_gitlab_reads_them() {
        for (xml, expected, error) in CASES {
            let report = read(xml);
            let got: Vec<String> = report
                .cases
                .iter()
                .map(|c| {
                    format!(
                        "{} {}/{}/{} {}",
                        c.status.as_str(),
                        c.suite_name.as_deref().unwrap_or("-"),
                        c.classname.as_deref().unwrap_or("-"),
                        c.name.as_deref().unwrap_or("-"),
                        c.execution_time
                    )
                })
                .collect();
            assert_eq!(got, *expected, "{xml}");
            match error {
                Some(start) => assert!(
                    report.suite_error.as_deref().is_some_and(|e| e.starts_with(start)),
                    "{xml}: {:?}",
                    report.suite_error
                ),
                None => assert_eq!(report.suite_error, None, "{xml}"),
            }
        }
        let first = read(CASES[0].0);
        assert_eq!(first.cases[1].system_output.as_deref(), Some("expected <1> raw <x>"));
        assert_eq!(first.cases[2].system_output, None);
        assert_eq!(
            first.cases[3].system_output.as_deref(),
            Some("F"),
            "a failure wins over an error"
        );
    }

    #[test]
    fn depth_count_and_output_are_bounded() {
        let deep = "<testsuite>".repeat(MAX_DEPTH + 1);
        assert!(read(&deep).suite_error.unwrap().contains("nested too deeply"));
        let many = format!(
            "<testsuite name=\"s\">{}</testsuite>",
            "<testcase name=\"x\"/>".repeat(MAX_CASES + 1)
        );
        let report = read(&many);
        assert!(report.cases.is_empty());
        assert!(report.suite_error.unwrap().contains("more than"));
        let long = format!(
            "<testsuite name=\"s\"><testcase name=\"x\"><failure>{}</failure></testcase></testsuite>",
            "y".repeat(MAX_OUTPUT * 2)
        );
        assert_eq!(read(&long).cases[0].system_output.as_ref().unwrap().len(), MAX_OUTPUT);
    }

    #[test]
    fn a_long_suite_name_copied_into_many_cases_is_bounded() {
        let xml = format!(
            "<testsuite name=\"{}\">{}</testsuite>",
            "S".repeat(1_000_000),
            "<testcase/>".repeat(50_000)
        );
        let report = read(&xml);
        assert!(report.cases.is_empty());
        assert!(report.suite_error.unwrap().contains("bytes of text"));
        let one = read(&format!(
            "<testsuite name=\"{}\"><testcase/></testsuite>",
            "S".repeat(5000)
        ));
        assert_eq!(one.cases[0].suite_name.as_ref().unwrap().len(), MAX_ATTRIBUTE);
    }

    #[test]
    fn times_read_like_ruby_to_f() {
        assert_eq!(leading_number("1.7e308"), MAX_SECONDS);
        assert_eq!(leading_number("1.25"), 1.25);
        assert_eq!(leading_number("3s"), 3.0);
        assert_eq!(leading_number("1e2"), 100.0);
        assert_eq!(leading_number("abc"), 0.0);
        assert_eq!(leading_number("-"), 0.0);
        assert_eq!(leading_number("NaN"), 0.0);
    }
}
