//! The CI/CD variable expression language of `rules:if`, `workflow:rules:if` and
//! `only/except:variables`: a lexer, a parser and an evaluator, pure and total (any input gives a
//! value or a syntax error, never a panic).

mod eval;
mod lexer;
mod parser;

pub use eval::{EvalError, Value};
pub use lexer::LexError;
pub use parser::ParseError;

/// A parsed expression, ready to evaluate against many variable sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression(parser::Expr);

/// Why an expression is not valid; GitLab reports any of these as `invalid expression syntax`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// The text could not be split into tokens.
    Lex(LexError),
    /// The tokens do not form an expression.
    Parse(ParseError),
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyntaxError::Lex(LexError::UnknownLexeme(at)) => write!(f, "Unknown lexeme found at {at}!"),
            SyntaxError::Lex(LexError::TooManyTokens) => write!(f, "Too many tokens!"),
            SyntaxError::Parse(ParseError::Empty) => write!(f, "Empty expression!"),
            SyntaxError::Parse(e) => write!(f, "Invalid expression ({e:?})"),
        }
    }
}

impl std::error::Error for SyntaxError {}

impl Expression {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Expression, SyntaxError> {
        let tokens = lexer::tokenize(text).map_err(SyntaxError::Lex)?;
        parser::parse(&tokens).map(Expression).map_err(SyntaxError::Parse)
    }

    /// Parses `text` once per thread: a configuration repeats the same `if:` in many jobs, and
    /// validation and planning both read it. Short texts only, and at most a few thousand, so
    /// the cache stays small.
    pub fn parse_cached(text: &str) -> Result<std::rc::Rc<Expression>, SyntaxError> {
        type Cache = std::collections::HashMap<String, Result<std::rc::Rc<Expression>, SyntaxError>>;
        thread_local! {
            static CACHE: std::cell::RefCell<Cache> = std::cell::RefCell::new(Cache::new());
        }
        const MAX_TEXT: usize = 1024;
        const MAX_ENTRIES: usize = 4096;
        if text.len() > MAX_TEXT {
            return Expression::parse(text).map(std::rc::Rc::new);
        }
        CACHE.with(|cache| {
            if let Some(hit) = cache.borrow().get(text) {
                return hit.clone();
            }
            let parsed = Expression::parse(text).map(std::rc::Rc::new);
            let mut cache = cache.borrow_mut();
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(text.to_string(), parsed.clone());
            parsed
        })
    }

    /// The expression's value with variables from `lookup`.
    pub fn evaluate(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, EvalError> {
        eval::evaluate(&self.0, lookup)
    }

    /// Whether a rule with this `if:` applies: the value is present; evaluation errors are false.
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        self.evaluate(lookup).is_ok_and(|v| v.present())
    }
}

#[cfg(test)]
mod tests;
