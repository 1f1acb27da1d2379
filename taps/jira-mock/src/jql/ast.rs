//! The parsed form of a query.

use super::{JqlError, err};

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
    pub(crate) fn parse(name: &str) -> Result<Field, JqlError> {
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

    pub(crate) fn name(self) -> &'static str {
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

    pub(crate) fn is_date(self) -> bool {
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
    pub(crate) fn text(&self) -> &str {
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

/// The operator as written in JQL.
pub(crate) fn op_text(op: Op) -> &'static str {
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
