//! Data-driven tests of the expression language: the cases live in `cases.txt`, and `check` is
//! the only place that calls the API.

use super::{Expression, Value};

fn variables(name: &str) -> Option<String> {
    let value = match name {
        "EMPTY" => "",
        "SET" => "my variable",
        "teststring" => "abcde",
        "pattern1" => "/^ab.*/",
        "BADRE" => "/a(b/",
        "SPACE" => "  ",
        "SOURCE" => "trigger",
        "TAG" => "v1.2.3",
        _ => return None,
    };
    Some(value.to_string())
}

fn value_json(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Str(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Pattern(_, source) => source.clone(),
    }
}

/// Checks one case; returns a description of the failure, if any.
fn check(expected: &str, text: &str) -> Option<String> {
    let parsed = Expression::parse(text);
    let outcome = match (&parsed, expected) {
        (Err(_), "invalid") => return None,
        (Err(e), _) => format!("syntax error {e}"),
        (Ok(_), "invalid") => "parsed".into(),
        (Ok(expr), "yes" | "no") => {
            let got = if expr.matches(&variables) { "yes" } else { "no" };
            if got == expected {
                return None;
            }
            got.to_string()
        }
        (Ok(expr), _) => {
            let got = expr
                .evaluate(&variables)
                .map(|v| format!("value={}", value_json(&v)))
                .unwrap_or_else(|e| e.0);
            if got == expected {
                return None;
            }
            got
        }
    };
    Some(format!("{text:?}: expected {expected}, got {outcome}"))
}

#[test]
fn cases_from_cases_txt() {
    let cases = include_str!("cases.txt");
    let mut failures = Vec::new();
    let mut count = 0;
    for line in cases.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let (expected, text) = line.split_once(" | ").unwrap_or((line, ""));
        count += 1;
        failures.extend(check(expected.trim(), text));
    }
    assert!(count > 60, "cases.txt was not read");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn never_panics_on_arbitrary_input() {
    let pieces = [
        "$A", "\"x\"", "'y'", "/ab/", "null", "true", "==", "!=", "=~", "!~", "&&", "||", "!", "(", ")", " ", "/", "$",
        "\\",
    ];
    // every sequence of up to three pieces: parse, and evaluate what parses
    for a in pieces {
        for b in pieces {
            for c in pieces {
                let text = format!("{a}{b}{c}");
                if let Ok(e) = Expression::parse(&text) {
                    let _ = e.matches(&variables);
                }
            }
        }
    }
}
