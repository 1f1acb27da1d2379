//! The JQL subset understood by the mock: a tokenizer, a recursive-descent parser
//! and an evaluator over the generated site.
//!
//! Supported:
//!
//! * boolean structure: `AND` (`&&`, `&`), `OR` (`||`, `|`), `NOT` (`!`), parentheses;
//! * fields: `project`, `updated`/`updatedDate`, `created`/`createdDate`,
//!   `issuetype`/`type`, `status`, `priority`, and `key`/`issuekey`/`id`/`issue`;
//! * operators: `=`, `!=`, `IN (…)`, `NOT IN (…)`, `IS [NOT] EMPTY|NULL`, and for the
//!   two date fields also `>`, `>=`, `<`, `<=`; `= EMPTY` / `!= EMPTY` too;
//! * date values: an unquoted number is epoch **milliseconds**; quoted (or unquoted)
//!   `yyyy-MM-dd HH:mm`, `yyyy/MM/dd HH:mm`, `yyyy-MM-dd`, `yyyy/MM/dd` are read in
//!   UTC with minute precision; relative `-5d`, `-4h`, `-30m`, `-2w` are relative to
//!   now;
//! * `ORDER BY` over `updated`, `created`, `key` (and its aliases `issuekey`, `id`,
//!   `issue`: Jira orders these by project key, then issue number), each `ASC` or
//!   `DESC` (default `ASC`), at most 7 fields. Without `ORDER BY` the order is
//!   `key ASC`. Ties are always broken by issue id ascending. (In the generated
//!   site issue ids increase in key order, so `id` and `key` sorts agree.)
//!
//! Anything else (functions, `~`, `WAS`, `CHANGED`, unknown fields, other sort
//! fields, an unbounded query) is an error, answered with `400` and Jira's
//! `errorMessages` body.

mod ast;
mod eval;
mod lexer;
mod parser;

pub use ast::{Expr, Field, Literal, Op, Query, SortField};
pub use eval::search;
pub use parser::parse;

/// A JQL error: the message goes into `errorMessages`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JqlError(pub String);

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, JqlError> {
    Err(JqlError(msg.into()))
}
