//! A recursive-descent parser over the tokens of [`super::lexer`].

use super::ast::{Expr, Field, Literal, Op, Query, SortField, op_text};
use super::lexer::{Tok, Token, at, describe, tokenize};
use super::{JqlError, err};

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn peek_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }

    fn expect_word(&mut self, kw: &str) -> Result<(), JqlError> {
        if self.peek_word(kw) {
            self.i += 1;
            Ok(())
        } else {
            let t = self.peek();
            err(format!(
                "Error in the JQL Query: Expecting '{kw}' but got {}.{}",
                describe(t),
                at(t)
            ))
        }
    }

    fn at_order_by(&self) -> bool {
        self.peek_word("order")
    }

    fn or_expr(&mut self) -> Result<Expr, JqlError> {
        let mut left = self.and_expr()?;
        while matches!(self.peek(), Some(Token { tok: Tok::Or, .. })) {
            self.i += 1;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, JqlError> {
        let mut left = self.not_expr()?;
        while matches!(self.peek(), Some(Token { tok: Tok::And, .. })) {
            self.i += 1;
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, JqlError> {
        if matches!(self.peek(), Some(Token { tok: Tok::Not, .. })) {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        if matches!(
            self.peek(),
            Some(Token {
                tok: Tok::LParen,
                ..
            })
        ) {
            self.i += 1;
            let inner = self.or_expr()?;
            match self.next() {
                Some(Token {
                    tok: Tok::RParen, ..
                }) => return Ok(inner),
                other => {
                    return err(format!(
                        "Error in the JQL Query: Expecting ')' before {}.{}",
                        describe(other.as_ref()),
                        at(other.as_ref())
                    ));
                }
            }
        }
        self.clause()
    }

    /// A field name or a value: a word (not `ORDER`) or a quoted string, as a literal.
    /// A function call is refused: the mock knows no JQL functions. `expecting` completes
    /// Jira's "Expecting ... but got" error.
    fn operand(&mut self, expecting: &str) -> Result<Literal, JqlError> {
        let t = self.next();
        let lit = match t.as_ref().map(|t| &t.tok) {
            Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("order") => Literal::Word(w.clone()),
            Some(Tok::Quoted(q)) => Literal::Quoted(q.clone()),
            _ => {
                return err(format!(
                    "Error in the JQL Query: Expecting {expecting} but got {}.{}",
                    describe(t.as_ref()),
                    at(t.as_ref())
                ));
            }
        };
        if matches!(
            self.peek(),
            Some(Token {
                tok: Tok::LParen,
                ..
            })
        ) {
            return err(format!(
                "jira-mock does not support JQL functions ('{}(…)').",
                lit.text()
            ));
        }
        Ok(lit)
    }

    fn clause(&mut self) -> Result<Expr, JqlError> {
        let name = self.operand("a field name")?.text().to_string();
        let field = Field::parse(&name)?;
        let op_tok = self.next();
        let op = match op_tok.as_ref().map(|t| &t.tok) {
            Some(Tok::Op("=")) => Op::Eq,
            Some(Tok::Op("!=")) => Op::Ne,
            Some(Tok::Op(">")) => Op::Gt,
            Some(Tok::Op(">=")) => Op::Ge,
            Some(Tok::Op("<")) => Op::Lt,
            Some(Tok::Op("<=")) => Op::Le,
            Some(Tok::Op(o @ ("~" | "!~"))) => {
                return err(format!(
                    "The operator '{o}' is not supported by the '{}' field.",
                    field.name()
                ));
            }
            Some(Tok::Not) => {
                let t = self.next();
                match t.as_ref().map(|t| &t.tok) {
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::NotIn,
                    _ => {
                        return err(format!(
                            "Error in the JQL Query: Expecting 'IN' after 'NOT' but got {}.{}",
                            describe(t.as_ref()),
                            at(t.as_ref())
                        ));
                    }
                }
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("is") => {
                let negated = matches!(self.peek(), Some(Token { tok: Tok::Not, .. }));
                if negated {
                    self.i += 1;
                }
                let t = self.next();
                match t.as_ref().map(|t| &t.tok) {
                    Some(Tok::Word(w))
                        if w.eq_ignore_ascii_case("empty") || w.eq_ignore_ascii_case("null") =>
                    {
                        return Ok(Expr::Clause {
                            field,
                            op: if negated { Op::IsNotEmpty } else { Op::IsEmpty },
                            values: Vec::new(),
                        });
                    }
                    _ => {
                        return err(format!(
                            "Error in the JQL Query: Expecting 'EMPTY' or 'NULL' but got {}.{}",
                            describe(t.as_ref()),
                            at(t.as_ref())
                        ));
                    }
                }
            }
            Some(Tok::Word(w)) if ["was", "changed"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                return err(format!(
                    "jira-mock does not support the '{}' operator in JQL.",
                    w.to_uppercase()
                ));
            }
            _ => {
                return err(format!(
                    "Error in the JQL Query: Expecting operator but got {}. Valid operators are '=', '!=', '<', '>', '<=', '>=', 'IN', 'NOT IN', 'IS' and 'IS NOT'.{}",
                    describe(op_tok.as_ref()),
                    at(op_tok.as_ref())
                ));
            }
        };
        if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && !field.is_date() {
            return err(format!(
                "The operator '{}' is not supported by the '{}' field.",
                op_text(op),
                field.name()
            ));
        }
        let values = if matches!(op, Op::In | Op::NotIn) {
            match self.next() {
                Some(Token {
                    tok: Tok::LParen, ..
                }) => {}
                other => {
                    return err(format!(
                        "Error in the JQL Query: Expecting '(' but got {}.{}",
                        describe(other.as_ref()),
                        at(other.as_ref())
                    ));
                }
            }
            let mut values = vec![self.value()?];
            loop {
                match self.next() {
                    Some(Token {
                        tok: Tok::Comma, ..
                    }) => values.push(self.value()?),
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => break,
                    other => {
                        return err(format!(
                            "Error in the JQL Query: Expecting ')' before {}.{}",
                            describe(other.as_ref()),
                            at(other.as_ref())
                        ));
                    }
                }
            }
            values
        } else {
            let v = self.value()?;
            if let Literal::Word(w) = &v
                && (w.eq_ignore_ascii_case("empty") || w.eq_ignore_ascii_case("null"))
            {
                let op = match op {
                    Op::Eq => Op::IsEmpty,
                    Op::Ne => Op::IsNotEmpty,
                    _ => {
                        return err(format!(
                            "The operator '{}' does not support the EMPTY value.",
                            op_text(op)
                        ));
                    }
                };
                return Ok(Expr::Clause {
                    field,
                    op,
                    values: Vec::new(),
                });
            }
            vec![v]
        };
        Ok(Expr::Clause { field, op, values })
    }

    fn value(&mut self) -> Result<Literal, JqlError> {
        self.operand("either a value, list or function")
    }

    fn order_by(&mut self) -> Result<Vec<(SortField, bool)>, JqlError> {
        self.expect_word("order")?;
        self.expect_word("by")?;
        let mut order = Vec::new();
        loop {
            let t = self.next();
            let name = match t.as_ref().map(|t| &t.tok) {
                Some(Tok::Word(w)) => w.clone(),
                Some(Tok::Quoted(q)) => q.clone(),
                _ => {
                    return err(format!(
                        "Error in the JQL Query: Expecting a field name in the ORDER BY clause but got {}.{}",
                        describe(t.as_ref()),
                        at(t.as_ref())
                    ));
                }
            };
            let field = match name.to_ascii_lowercase().as_str() {
                "updated" | "updateddate" => SortField::Updated,
                "created" | "createddate" => SortField::Created,
                "key" | "issuekey" | "id" | "issue" => SortField::Key,
                _ => {
                    // Fields unknown to Jira get Jira's message; others the mock's.
                    if let Err(e) = Field::parse(&name)
                        && e.0.starts_with("Field '")
                    {
                        return Err(e);
                    }
                    return err(format!(
                        "jira-mock cannot sort by '{name}'. Supported ORDER BY fields: updated, created, key (id, issuekey)."
                    ));
                }
            };
            let asc = if self.peek_word("asc") {
                self.i += 1;
                true
            } else if self.peek_word("desc") {
                self.i += 1;
                false
            } else {
                // Without a direction the mock sorts ascending.
                true
            };
            order.push((field, asc));
            match self.peek() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => self.i += 1,
                None => break,
                other => {
                    return err(format!(
                        "Error in the JQL Query: Expecting ',' or the end of the query but got {}.{}",
                        describe(other),
                        at(other)
                    ));
                }
            }
        }
        if order.len() > 7 {
            return err("The ORDER BY clause can sort by at most 7 fields.");
        }
        Ok(order)
    }
}

/// Parse a JQL string. An empty query or one with only `ORDER BY` is rejected as
/// unbounded (as `/search/jql` does).
pub fn parse(src: &str) -> Result<Query, JqlError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, i: 0 };
    let filter = if p.peek().is_none() || p.at_order_by() {
        None
    } else {
        let e = p.or_expr()?;
        if p.peek().is_some() && !p.at_order_by() {
            let t = p.peek();
            return err(format!(
                "Error in the JQL Query: Expecting either 'OR' or 'AND' but got {}.{}",
                describe(t),
                at(t)
            ));
        }
        Some(e)
    };
    let order = if p.peek().is_some() {
        p.order_by()?
    } else {
        Vec::new()
    };
    if filter.is_none() {
        return err(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
        );
    }
    Ok(Query { filter, order })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_incremental_query() {
        let q = parse("project in (ALPHA, \"BETA\") AND updated >= 1705314225000 ORDER BY updated ASC, id ASC")
            .expect("parse");
        assert_eq!(
            q.order,
            vec![(SortField::Updated, true), (SortField::Key, true)]
        );
        let Some(Expr::And(a, b)) = q.filter else {
            panic!("not an AND")
        };
        assert_eq!(
            *a,
            Expr::Clause {
                field: Field::Project,
                op: Op::In,
                values: vec![
                    Literal::Word("ALPHA".into()),
                    Literal::Quoted("BETA".into())
                ]
            }
        );
        assert_eq!(
            *b,
            Expr::Clause {
                field: Field::Updated,
                op: Op::Ge,
                values: vec![Literal::Word("1705314225000".into())]
            }
        );
    }

    #[test]
    fn parens_not_or_and_keywords_case() {
        let q = parse("(project = ALPHA or project = beta) and not status = \"In Progress\" order by key desc")
            .expect("parse");
        assert!(matches!(q.filter, Some(Expr::And(_, _))));
        assert_eq!(q.order, vec![(SortField::Key, false)]);
    }

    #[test]
    fn errors() {
        for (jql, needle) in [
            ("", "Unbounded"),
            ("ORDER BY updated", "Unbounded"),
            ("project = ALPHA AND", "Expecting a field name"),
            ("(project = ALPHA", "Expecting ')'"),
            (
                "project = ALPHA updated > 1",
                "Expecting either 'OR' or 'AND'",
            ),
            ("foo = 1", "Field 'foo' does not exist"),
            ("assignee = currentUser()", "does not support the field"),
            ("updated > startOfDay()", "functions"),
            ("summary ~ foo", "does not support the field"),
            ("project ~ foo", "operator '~'"),
            ("status > 3", "operator '>'"),
            ("project = \"ALPHA", "has not been completed"),
            ("updated > 1 ORDER BY assignee", "cannot sort"),
            ("updated > 1 ORDER BY updated ASC key", "Expecting ','"),
        ] {
            let e = parse(jql).expect_err(jql);
            assert!(e.0.contains(needle), "{jql}: {}", e.0);
        }
    }
}
