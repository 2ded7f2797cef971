//! Splits a `rules:if` expression into tokens, trying GitLab's token kinds in GitLab's order at
//! each position (first match wins).

use regex::Regex;
use std::sync::LazyLock;

/// More tokens than this is a syntax error, as in GitLab.
pub const MAX_TOKENS: usize = 100;

/// One token of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `(`
    Open,
    /// `)`
    Close,
    /// `$[[ inputs.NAME ]]`
    Input(String),
    /// `$NAME`
    Variable(String),
    /// `"text"` or `'text'`, without escapes.
    Str(String),
    /// `/body/flags`: the body with `\/` turned into `/`, and the flags.
    Pattern { body: String, flags: String },
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// `==`
    Eq,
    /// `=~`
    Matches,
    /// `!=`
    NotEq,
    /// `!~`
    NotMatches,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `!`
    Not,
}

/// Why an expression could not be split into tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexError {
    /// Nothing matches at this byte offset.
    UnknownLexeme(usize),
    /// More than [`MAX_TOKENS`] tokens.
    TooManyTokens,
}

static INPUT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\$\[\[\s*inputs\.([\w-]+)\s*\]\]").ok());
static VARIABLE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\$(\w+)").ok());
static STRING: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r#"^(?:"([^"]*)"|'([^']*)')"#).ok());
static PATTERN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^/((?:[^/]|\\/)+[^\\])/([ismU]*)").ok());
static BOOLEAN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^(true|false)\b").ok());

/// Splits `text` into tokens.
pub fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        let rest = text.get(pos..).unwrap_or_default();
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            return Ok(tokens);
        }
        let (token, len) = next_token(trimmed).ok_or(LexError::UnknownLexeme(pos))?;
        tokens.push(token);
        if tokens.len() > MAX_TOKENS {
            return Err(LexError::TooManyTokens);
        }
        pos += len;
    }
}

/// The token at the start of `s` and its length in bytes.
fn next_token(s: &str) -> Option<(Token, usize)> {
    let captures = |re: &LazyLock<Option<Regex>>| re.as_ref().and_then(|re| re.captures(s));
    let fixed = |prefix: &str, token: Token| s.starts_with(prefix).then_some((token, prefix.len()));
    let group = |c: &regex::Captures<'_>, i: usize| c.get(i).map_or(String::new(), |m| m.as_str().to_string());
    let whole = |c: &regex::Captures<'_>| c.get(0).map_or(0, |m| m.end());
    if let Some(t) = fixed("(", Token::Open).or_else(|| fixed(")", Token::Close)) {
        return Some(t);
    }
    if let Some(c) = captures(&INPUT) {
        return Some((Token::Input(group(&c, 1)), whole(&c)));
    }
    if let Some(c) = captures(&VARIABLE) {
        return Some((Token::Variable(group(&c, 1)), whole(&c)));
    }
    if let Some(c) = captures(&STRING) {
        let text = c
            .get(1)
            .or_else(|| c.get(2))
            .map_or(String::new(), |m| m.as_str().to_string());
        return Some((Token::Str(text), whole(&c)));
    }
    if let Some(c) = captures(&PATTERN) {
        let body = group(&c, 1).replace("\\/", "/");
        return Some((
            Token::Pattern {
                body,
                flags: group(&c, 2),
            },
            whole(&c),
        ));
    }
    if let Some(t) = fixed("null", Token::Null) {
        return Some(t);
    }
    if let Some(c) = captures(&BOOLEAN) {
        return Some((Token::Bool(group(&c, 1) == "true"), whole(&c)));
    }
    [
        ("==", Token::Eq),
        ("=~", Token::Matches),
        ("!=", Token::NotEq),
        ("!~", Token::NotMatches),
        ("&&", Token::And),
        ("||", Token::Or),
        ("!", Token::Not),
    ]
    .into_iter()
    .find_map(|(prefix, token)| fixed(prefix, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_gitlab_order() {
        assert_eq!(
            tokenize(r#"($A == "x") || $B =~ /a\/b+/i && !null"#).unwrap(),
            vec![
                Token::Open,
                Token::Variable("A".into()),
                Token::Eq,
                Token::Str("x".into()),
                Token::Close,
                Token::Or,
                Token::Variable("B".into()),
                Token::Matches,
                Token::Pattern {
                    body: "a/b+".into(),
                    flags: "i".into()
                },
                Token::And,
                Token::Not,
                Token::Null,
            ]
        );
    }

    #[test]
    fn lexical_errors() {
        assert_eq!(tokenize("${VAR}"), Err(LexError::UnknownLexeme(0)));
        assert_eq!(
            tokenize("$A =~ /a/"),
            Err(LexError::UnknownLexeme(6)),
            "single-character bodies are not patterns"
        );
        assert_eq!(tokenize("$A =~ //"), Err(LexError::UnknownLexeme(6)));
        assert_eq!(tokenize("$A =~ /ab/x"), Err(LexError::UnknownLexeme(10)));
        assert_eq!(tokenize(&"$A ".repeat(101)), Err(LexError::TooManyTokens));
        assert_eq!(tokenize("  ").unwrap(), vec![]);
    }
}
