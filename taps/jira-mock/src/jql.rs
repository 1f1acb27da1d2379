//! The JQL subset understood by the mock: a tokenizer, a recursive-descent parser
//! and an evaluator over the generated site.
//!
//! Supported:
//!
//! * boolean structure: `AND` (`&&`, `&`), `OR` (`||`, `|`), `NOT` (`!`), parentheses;
//! * fields: `project`, `updated`/`updatedDate`, `created`/`createdDate`,
//!   `issuetype`/`type`, `status`, `priority`, and `key`/`issuekey`/`id`/`issue`;
//! * operators: `=`, `!=`, `IN (…)`, `NOT IN (…)`, `IS [NOT] EMPTY|NULL`, and for the
//!   two date fields also `>`, `>=`, `<`, `<=`;
//! * date values: an unquoted number is epoch **milliseconds**; quoted (or unquoted)
//!   `yyyy-MM-dd HH:mm`, `yyyy/MM/dd HH:mm`, `yyyy-MM-dd`, `yyyy/MM/dd` are read in
//!   UTC with minute precision; relative `-5d`, `-4h`, `-30m`, `-2w` are relative to
//!   now;
//! * `ORDER BY` over `updated`, `created`, `key` (and its aliases `issuekey`, `id`,
//!   `issue`: Jira orders these by project key, then issue number), each `ASC` or
//!   `DESC`, at most 7 fields. Ties are always broken by issue id ascending.
//!
//! Anything else (functions, `~`, `WAS`, `CHANGED`, unknown fields, other sort
//! fields, an unbounded query) is an error, answered with `400` and Jira's
//! `errorMessages` body.

use std::cmp::Ordering;

use crate::site::{Issue, Site};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, date_ms};

/// A JQL error: the message goes into `errorMessages`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JqlError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, JqlError> {
    Err(JqlError(msg.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    And,
    Or,
    Not,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character position, for error messages.
    pos: usize,
}

fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "the end of the query".to_string(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Quoted(q)) => format!("'\"{q}\"'"),
        Some(Tok::LParen) => "'('".to_string(),
        Some(Tok::RParen) => "')'".to_string(),
        Some(Tok::Comma) => "','".to_string(),
        Some(Tok::Op(o)) => format!("'{o}'"),
        Some(Tok::And) => "'AND'".to_string(),
        Some(Tok::Or) => "'OR'".to_string(),
        Some(Tok::Not) => "'NOT'".to_string(),
    }
}

fn at(t: Option<&Token>) -> String {
    match t {
        Some(t) => format!(" (line 1, character {})", t.pos),
        None => String::new(),
    }
}

fn tokenize(src: &str) -> Result<Vec<Token>, JqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let (tok, len) = match (c, two.as_str()) {
            (_, "!=") => (Tok::Op("!="), 2),
            (_, ">=") => (Tok::Op(">="), 2),
            (_, "<=") => (Tok::Op("<="), 2),
            (_, "!~") => (Tok::Op("!~"), 2),
            (_, "&&") => (Tok::And, 2),
            (_, "||") => (Tok::Or, 2),
            ('=', _) => (Tok::Op("="), 1),
            ('>', _) => (Tok::Op(">"), 1),
            ('<', _) => (Tok::Op("<"), 1),
            ('~', _) => (Tok::Op("~"), 1),
            ('&', _) => (Tok::And, 1),
            ('|', _) => (Tok::Or, 1),
            ('!', _) => (Tok::Not, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('"' | '\'', _) => {
                let quote = c;
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return err(format!(
                                "Error in the JQL Query: The quoted string '{s}' has not been completed. (line 1, character {pos})"
                            ));
                        }
                        Some('\\') => {
                            if let Some(&n) = chars.get(j + 1) {
                                s.push(n);
                            }
                            j += 2;
                        }
                        Some(&ch) if ch == quote => break,
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Quoted(s), j + 1 - i)
            }
            _ => {
                let mut j = i;
                while j < chars.len()
                    && !chars[j].is_whitespace()
                    && !"=!<>~&|(),\"'".contains(chars[j])
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let tok = match word.to_ascii_uppercase().as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Word(word),
                };
                (tok, j - i)
            }
        };
        out.push(Token { tok, pos });
        i += len;
    }
    Ok(out)
}

/// A field that can appear in a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Project,
    Updated,
    Created,
    IssueType,
    Status,
    Priority,
    Key,
}

impl Field {
    fn parse(name: &str) -> Result<Field, JqlError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "project" => Field::Project,
            "updated" | "updateddate" => Field::Updated,
            "created" | "createddate" => Field::Created,
            "issuetype" | "type" => Field::IssueType,
            "status" => Field::Status,
            "priority" => Field::Priority,
            "key" | "issuekey" | "id" | "issue" => Field::Key,
            "assignee" | "reporter" | "creator" | "labels" | "summary" | "description" | "text"
            | "resolution" | "resolved" | "resolutiondate" | "duedate" | "due" | "component"
            | "fixversion" | "sprint" | "parent" | "statuscategory" | "labels[]" | "comment"
            | "worklogdate" | "filter" => {
                return err(format!(
                    "jira-mock does not support the field '{name}' in JQL. Supported fields: project, updated, created, issuetype, status, priority, key."
                ));
            }
            _ => {
                return err(format!(
                    "Field '{name}' does not exist or you do not have permission to view it."
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Field::Project => "project",
            Field::Updated => "updated",
            Field::Created => "created",
            Field::IssueType => "issuetype",
            Field::Status => "status",
            Field::Priority => "priority",
            Field::Key => "key",
        }
    }

    fn is_date(self) -> bool {
        matches!(self, Field::Updated | Field::Created)
    }
}

/// A clause operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
}

/// A literal as written: unquoted or quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Word(String),
    Quoted(String),
}

impl Literal {
    fn text(&self) -> &str {
        match self {
            Literal::Word(s) | Literal::Quoted(s) => s,
        }
    }
}

/// A parsed boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause {
        field: Field,
        op: Op,
        values: Vec<Literal>,
    },
}

/// A sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Updated,
    Created,
    Key,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Option<Expr>,
    pub order: Vec<(SortField, bool)>,
}

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

    fn clause(&mut self) -> Result<Expr, JqlError> {
        let t = self.next();
        let name = match t.as_ref().map(|t| &t.tok) {
            Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("order") => w.clone(),
            Some(Tok::Quoted(q)) => q.clone(),
            _ => {
                return err(format!(
                    "Error in the JQL Query: Expecting a field name but got {}.{}",
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
                "jira-mock does not support JQL functions ('{name}(…)')."
            ));
        }
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
        let t = self.next();
        let lit = match t.as_ref().map(|t| &t.tok) {
            Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("order") => Literal::Word(w.clone()),
            Some(Tok::Quoted(q)) => Literal::Quoted(q.clone()),
            _ => {
                return err(format!(
                    "Error in the JQL Query: Expecting either a value, list or function but got {}.{}",
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
                    // Validate the name like a clause field would, then refuse it.
                    Field::parse(&name)?;
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

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::In => "in",
        Op::NotIn => "not in",
        Op::IsEmpty => "is",
        Op::IsNotEmpty => "is not",
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

/// Read a date literal as epoch ms.
fn date_value(lit: &Literal, field: Field, now_ms: i64) -> Result<i64, JqlError> {
    let text = lit.text().trim();
    let invalid = || {
        JqlError(format!(
            "Date value '{text}' for field '{}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.",
            field.name()
        ))
    };
    if let Literal::Word(w) = lit
        && let Ok(ms) = w.parse::<i64>()
    {
        return Ok(ms);
    }
    // Relative periods: -5d, 4h, -30m, -2w.
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    if let Some(unit) = body.chars().last()
        && let Ok(n) = body[..body.len() - unit.len_utf8()].parse::<i64>()
    {
        let size = match unit.to_ascii_lowercase() {
            'w' => Some(7 * DAY_MS),
            'd' => Some(DAY_MS),
            'h' => Some(HOUR_MS),
            'm' => Some(MINUTE_MS),
            _ => None,
        };
        if let Some(size) = size {
            return Ok(now_ms + sign * n * size);
        }
    }
    let normalized = text.replace('/', "-");
    let (date, time) = match normalized.split_once(' ') {
        Some((d, t)) => (d.to_string(), Some(t.trim().to_string())),
        None => (normalized, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(invalid());
    };
    if chrono::NaiveDate::from_ymd_opt(y, m, d).is_none() {
        return Err(invalid());
    }
    let mut ms = date_ms(y, m, d);
    if let Some(time) = time {
        let Some((h, min)) = time.split_once(':') else {
            return Err(invalid());
        };
        let (Ok(h), Ok(min)) = (h.parse::<i64>(), min.parse::<i64>()) else {
            return Err(invalid());
        };
        if !(0..24).contains(&h) || !(0..60).contains(&min) {
            return Err(invalid());
        }
        ms += h * HOUR_MS + min * MINUTE_MS;
    }
    Ok(ms)
}

/// A compiled predicate: values resolved against the site.
#[derive(Debug, Clone)]
enum Pred {
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    Const(bool),
    /// Index-valued fields: matches when the issue's value is (not) in the set.
    OneOf {
        field: Field,
        set: Vec<usize>,
        negate: bool,
    },
    Date {
        field: Field,
        op: Op,
        ms: i64,
    },
}

fn resolve(site: &Site, field: Field, lit: &Literal) -> Result<usize, JqlError> {
    let v = lit.text();
    let not_found = || {
        JqlError(format!(
            "The value '{v}' does not exist for the field '{}'.",
            field.name()
        ))
    };
    match field {
        Field::Project => site
            .projects
            .iter()
            .position(|p| {
                p.key.eq_ignore_ascii_case(v) || p.id == v || p.name.eq_ignore_ascii_case(v)
            })
            .ok_or_else(not_found),
        Field::IssueType => site
            .issue_types
            .iter()
            .position(|t| t.name.eq_ignore_ascii_case(v) || t.id == v)
            .ok_or_else(not_found),
        Field::Status => site
            .statuses
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(v) || s.id == v)
            .ok_or_else(not_found),
        Field::Priority => site
            .priorities
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(v) || p.id == v)
            .ok_or_else(not_found),
        Field::Key => site.find_issue(v).ok_or_else(|| {
            JqlError(format!(
                "An issue with key '{v}' does not exist for field 'key'."
            ))
        }),
        Field::Updated | Field::Created => Err(not_found()),
    }
}

fn compile_expr(site: &Site, e: &Expr, now_ms: i64) -> Result<Pred, JqlError> {
    Ok(match e {
        Expr::And(a, b) => Pred::And(
            Box::new(compile_expr(site, a, now_ms)?),
            Box::new(compile_expr(site, b, now_ms)?),
        ),
        Expr::Or(a, b) => Pred::Or(
            Box::new(compile_expr(site, a, now_ms)?),
            Box::new(compile_expr(site, b, now_ms)?),
        ),
        Expr::Not(a) => Pred::Not(Box::new(compile_expr(site, a, now_ms)?)),
        Expr::Clause { field, op, values } => match op {
            // No supported field is ever empty.
            Op::IsEmpty => Pred::Const(false),
            Op::IsNotEmpty => Pred::Const(true),
            _ if field.is_date() => {
                let ms: Vec<i64> = values
                    .iter()
                    .map(|v| date_value(v, *field, now_ms))
                    .collect::<Result<_, _>>()?;
                match op {
                    Op::In | Op::NotIn => {
                        let mut pred = Pred::Const(false);
                        for m in ms {
                            pred = Pred::Or(
                                Box::new(pred),
                                Box::new(Pred::Date {
                                    field: *field,
                                    op: Op::Eq,
                                    ms: m,
                                }),
                            );
                        }
                        if *op == Op::NotIn {
                            Pred::Not(Box::new(pred))
                        } else {
                            pred
                        }
                    }
                    _ => Pred::Date {
                        field: *field,
                        op: *op,
                        ms: ms.first().copied().unwrap_or_default(),
                    },
                }
            }
            _ => {
                let set = values
                    .iter()
                    .map(|v| resolve(site, *field, v))
                    .collect::<Result<Vec<_>, _>>()?;
                Pred::OneOf {
                    field: *field,
                    set,
                    negate: matches!(op, Op::Ne | Op::NotIn),
                }
            }
        },
    })
}

fn eval(p: &Pred, site: &Site, idx: usize) -> bool {
    let issue: &Issue = &site.issues[idx];
    match p {
        Pred::And(a, b) => eval(a, site, idx) && eval(b, site, idx),
        Pred::Or(a, b) => eval(a, site, idx) || eval(b, site, idx),
        Pred::Not(a) => !eval(a, site, idx),
        Pred::Const(b) => *b,
        Pred::OneOf { field, set, negate } => {
            let v = match field {
                Field::Project => issue.project,
                Field::IssueType => issue.issue_type,
                Field::Status => issue.status,
                Field::Priority => issue.priority,
                _ => idx,
            };
            set.contains(&v) != *negate
        }
        Pred::Date { field, op, ms } => {
            let v = if *field == Field::Updated {
                issue.updated.ms
            } else {
                issue.created.ms
            };
            match op {
                Op::Eq => v == *ms,
                Op::Ne => v != *ms,
                Op::Gt => v > *ms,
                Op::Ge => v >= *ms,
                Op::Lt => v < *ms,
                Op::Le => v <= *ms,
                _ => false,
            }
        }
    }
}

/// Run a parsed query: the indexes of matching issues, in query order (default
/// `key ASC`), ties broken by id ascending.
pub fn search(site: &Site, q: &Query, now_ms: i64) -> Result<Vec<usize>, JqlError> {
    let pred = match &q.filter {
        Some(e) => compile_expr(site, e, now_ms)?,
        None => Pred::Const(true),
    };
    let mut hits: Vec<usize> = (0..site.issues.len())
        .filter(|&i| eval(&pred, site, i))
        .collect();
    let key_order = |a: &Issue, b: &Issue| {
        site.projects[a.project]
            .key
            .cmp(&site.projects[b.project].key)
            .then(a.number.cmp(&b.number))
    };
    hits.sort_by(|&x, &y| {
        let (a, b) = (&site.issues[x], &site.issues[y]);
        for (field, asc) in &q.order {
            let o = match field {
                SortField::Updated => a.updated.ms.cmp(&b.updated.ms),
                SortField::Created => a.created.ms.cmp(&b.created.ms),
                SortField::Key => key_order(a, b),
            };
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        if q.order.is_empty() {
            let o = key_order(a, b);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.id.cmp(&b.id)
    });
    Ok(hits)
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

    #[test]
    fn dates() {
        let f = Field::Updated;
        let q = |s: &str| Literal::Quoted(s.to_string());
        assert_eq!(
            date_value(&Literal::Word("1705314225000".into()), f, 0),
            Ok(1_705_314_225_000)
        );
        assert_eq!(
            date_value(&q("2024-01-15 10:23"), f, 0),
            Ok(1_705_314_180_000)
        );
        assert_eq!(
            date_value(&q("2024/01/15 10:23"), f, 0),
            Ok(1_705_314_180_000)
        );
        assert_eq!(date_value(&q("2024-01-15"), f, 0), Ok(1_705_276_800_000));
        assert_eq!(
            date_value(&Literal::Word("-1d".into()), f, DAY_MS * 3),
            Ok(DAY_MS * 2)
        );
        assert!(date_value(&q("2024-13-01"), f, 0).is_err());
        assert!(date_value(&q("yesterday"), f, 0).is_err());
        assert!(date_value(&q("1705314225000"), f, 0).is_err());
    }
}
