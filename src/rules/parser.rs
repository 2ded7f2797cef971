//! Parses tokens into an expression tree by the grammar of GitLab's spec (tightest first: `!`,
//! then `== != =~ !~` left-associative, then `&&`, then `||`).

use super::lexer::Token;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `==`
    Eq,
    /// `!=`
    NotEq,
    /// `=~`
    Matches,
    /// `!~`
    NotMatches,
    /// `&&`
    And,
    /// `||`
    Or,
}

/// An expression tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `$NAME`
    Variable(String),
    /// `$[[ inputs.NAME ]]`
    Input(String),
    /// A string literal.
    Str(String),
    /// A regex literal.
    Pattern { body: String, flags: String },
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// `!expr`
    Not(Box<Expr>),
    /// `left op right`
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

/// Why tokens do not form an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// No tokens at all.
    Empty,
    /// A value or `(` was expected at this token index (or at the end).
    ExpectedValue(usize),
    /// A `)` was expected at this token index (or at the end).
    ExpectedClose(usize),
    /// Tokens are left over after a complete expression, from this index.
    Trailing(usize),
}

/// Parses a whole token list.
pub fn parse(tokens: &[Token]) -> Result<Expr, ParseError> {
    if tokens.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut p = Parser { tokens, pos: 0 };
    let expr = p.or_expr()?;
    if p.pos < tokens.len() {
        return Err(ParseError::Trailing(p.pos));
    }
    Ok(expr)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn binary(
        &mut self,
        ops: &[(Token, BinaryOp)],
        next: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let mut left = next(self)?;
        while let Some(op) = self
            .peek()
            .and_then(|t| ops.iter().find(|(tok, _)| tok == t).map(|(_, op)| *op))
        {
            self.pos += 1;
            let right = next(self)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        self.binary(&[(Token::Or, BinaryOp::Or)], Self::and_expr)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        self.binary(&[(Token::And, BinaryOp::And)], Self::cmp_expr)
    }

    fn cmp_expr(&mut self) -> Result<Expr, ParseError> {
        let ops = [
            (Token::Eq, BinaryOp::Eq),
            (Token::NotEq, BinaryOp::NotEq),
            (Token::Matches, BinaryOp::Matches),
            (Token::NotMatches, BinaryOp::NotMatches),
        ];
        self.binary(&ops, Self::unary)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.pos;
        let token = self.peek().cloned().ok_or(ParseError::ExpectedValue(at))?;
        self.pos += 1;
        Ok(match token {
            Token::Open => {
                let inner = self.or_expr()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(ParseError::ExpectedClose(self.pos));
                }
                self.pos += 1;
                inner
            }
            Token::Variable(name) => Expr::Variable(name),
            Token::Input(name) => Expr::Input(name),
            Token::Str(s) => Expr::Str(s),
            Token::Pattern { body, flags } => Expr::Pattern { body, flags },
            Token::Null => Expr::Null,
            Token::Bool(b) => Expr::Bool(b),
            _ => return Err(ParseError::ExpectedValue(at)),
        })
    }
}
