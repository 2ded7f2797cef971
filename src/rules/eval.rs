//! Evaluates an expression tree with GitLab's (Ruby's) semantics: `&&`/`||` return an operand,
//! an empty string is truthy there, `=~` against a plain string is a substring test, and the
//! final answer is Ruby's `present?`.

use super::parser::{BinaryOp, Expr};
use regex::{Regex, RegexBuilder};
use std::sync::LazyLock;

/// Largest compiled regex accepted, in bytes: patterns come from users.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A value during evaluation.
#[derive(Debug, Clone)]
pub enum Value {
    /// An unset variable or `null`.
    Null,
    /// Text.
    Str(String),
    /// `true`/`false` literals and the results of comparisons.
    Bool(bool),
    /// A compiled regex literal, with its source text.
    Pattern(Regex, String),
}

impl Value {
    /// Ruby truthiness, used by `&&` and `||`: only `nil` and `false` are false.
    fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    /// Ruby's `present?`: `nil`, `false` and blank strings are not present.
    pub fn present(&self) -> bool {
        match self {
            Value::Null | Value::Bool(false) => false,
            Value::Str(s) => !s.trim().is_empty(),
            Value::Bool(true) | Value::Pattern(..) => true,
        }
    }

    fn text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Pattern(_, source) => source.clone(),
        }
    }
}

/// A failure while evaluating (an invalid regex, typically from a variable): the clause is false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

/// Evaluates `expr`, reading variables through `lookup`.
pub fn evaluate(expr: &Expr, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, EvalError> {
    Ok(match expr {
        Expr::Variable(name) => lookup(name).map_or(Value::Null, Value::Str),
        // Inputs are interpolated before evaluation in GitLab; spur has none yet.
        Expr::Input(_) | Expr::Null => Value::Null,
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Pattern { body, flags } => Value::Pattern(compile(body, flags)?, format!("/{body}/{flags}")),
        Expr::Not(inner) => Value::Bool(!evaluate(inner, lookup)?.present()),
        Expr::Binary(BinaryOp::And, l, r) => {
            let left = evaluate(l, lookup)?;
            if left.truthy() { evaluate(r, lookup)? } else { left }
        }
        Expr::Binary(BinaryOp::Or, l, r) => {
            let left = evaluate(l, lookup)?;
            if left.truthy() { left } else { evaluate(r, lookup)? }
        }
        Expr::Binary(op, l, r) => {
            let left = evaluate(l, lookup)?;
            let right = evaluate(r, lookup)?;
            Value::Bool(match op {
                BinaryOp::Eq => equal(&left, &right),
                BinaryOp::NotEq => !equal(&left, &right),
                BinaryOp::Matches => matches(&left, &right)?.unwrap_or(false),
                BinaryOp::NotMatches => matches(&left, &right)?.is_none_or(|m| !m),
                BinaryOp::And | BinaryOp::Or => false,
            })
        }
    })
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Bool(x), Value::Str(s)) | (Value::Str(s), Value::Bool(x)) => *s == x.to_string(),
        _ => false,
    }
}

/// `a =~ b`: `None` when `b` is nil, else whether it matches.
fn matches(a: &Value, b: &Value) -> Result<Option<bool>, EvalError> {
    let text = a.text();
    Ok(Some(match b {
        Value::Null => return Ok(None),
        Value::Pattern(re, _) => re.is_match(&text),
        other => {
            let pattern = other.text();
            match regex_literal(&pattern) {
                Some((body, flags)) => compile(&body, &flags)?.is_match(&text),
                // GitLab's documented quirk: a plain string "pattern" is a substring test.
                None => pattern.contains(&text),
            }
        }
    }))
}

static LITERAL: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^/((?:[^/]|\\/)+[^\\])/([ismU]*)$").ok());

/// Reads `/body/flags` from a string, as GitLab does for `$VAR =~ $PATTERN`.
fn regex_literal(s: &str) -> Option<(String, String)> {
    let c = LITERAL.as_ref()?.captures(s)?;
    let body = c.get(1)?.as_str().replace("\\/", "/");
    Some((body, c.get(2).map_or(String::new(), |m| m.as_str().to_string())))
}

fn compile(body: &str, flags: &str) -> Result<Regex, EvalError> {
    let source = if flags.is_empty() {
        body.to_string()
    } else {
        format!("(?{flags}){body}")
    };
    RegexBuilder::new(&source)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| EvalError(format!("invalid regular expression /{body}/{flags}: {e}")))
}
