//! The mock site's data model: plain structs, rendered to JSON by `render`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Stamp;

/// The generation parameters (a subset of `MockConfig`).
#[derive(Clone, Debug)]
pub struct SiteSpec {
    pub seed: u64,
    pub users: usize,
    pub projects: usize,
    pub issues_per_project: usize,
    pub embedded_changelog_cap: usize,
    pub large_changelog_every: usize,
    pub large_changelog_len: usize,
}

/// A user account (`/users/search` form; embedded users drop `locale`).
#[derive(Clone, Debug)]
pub struct User {
    pub account_id: String,
    pub account_type: &'static str,
    pub app_type: Option<&'static str>,
    pub display_name: String,
    pub email: Option<String>,
    pub active: bool,
    pub time_zone: Option<&'static str>,
    pub locale: Option<&'static str>,
}

/// A workflow status.
#[derive(Clone, Debug)]
pub struct Status {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub icon: &'static str,
    /// Status category id: 2 = new, 4 = indeterminate, 3 = done.
    pub category: i64,
}

/// An issue priority.
#[derive(Clone, Debug)]
pub struct Priority {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub color: &'static str,
    pub icon: &'static str,
    pub is_default: bool,
    pub avatar_id: Option<i64>,
}

/// An issue type.
#[derive(Clone, Debug)]
pub struct IssueType {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub avatar_id: i64,
    pub hierarchy_level: i64,
    pub subtask: bool,
}

/// Indexes into [`Site::issue_types`].
pub const TYPE_EPIC: usize = 0;
pub const TYPE_BUG: usize = 1;
pub const TYPE_STORY: usize = 2;
pub const TYPE_TASK: usize = 3;
pub const TYPE_SUBTASK: usize = 4;

/// Indexes into [`Site::statuses`].
pub const STATUS_TODO: usize = 0;
pub const STATUS_DONE: usize = 3;

/// A project component.
#[derive(Clone, Debug)]
pub struct Component {
    pub id: String,
    pub name: &'static str,
    pub description: Option<&'static str>,
}

/// A project version.
#[derive(Clone, Debug)]
pub struct Version {
    pub id: String,
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub released: bool,
    pub release_date: Option<String>,
}

/// A project.
#[derive(Clone, Debug)]
pub struct Project {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub lead: usize,
    pub category: Option<(&'static str, &'static str, &'static str)>,
    pub type_key: &'static str,
    /// Team-managed ("next-gen") project.
    pub simplified: bool,
    pub url: Option<String>,
    pub components: Vec<Component>,
    pub versions: Vec<Version>,
}

/// A comment on an issue.
#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub author: usize,
    pub update_author: usize,
    pub text: String,
    pub created: Stamp,
    pub updated: Stamp,
    pub restricted: bool,
}

/// A worklog on an issue.
#[derive(Clone, Debug)]
pub struct Worklog {
    pub id: u64,
    pub author: usize,
    pub update_author: usize,
    pub text: Option<String>,
    pub created: Stamp,
    pub updated: Stamp,
    pub started: Stamp,
    pub seconds: i64,
    pub restricted: bool,
}

/// One changelog history (a set of field changes made at once).
#[derive(Clone, Debug)]
pub struct History {
    pub id: u64,
    pub author: usize,
    pub created: Stamp,
    pub items: Vec<Value>,
    pub metadata: Option<Value>,
}

/// A link between two issues, stored on both ends.
#[derive(Clone, Debug)]
pub struct Link {
    pub id: u64,
    /// Index of the other issue.
    pub other: usize,
    /// `true` when this issue "blocks" the other one (`outwardIssue`).
    pub outward: bool,
}

/// An attachment.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: u64,
    pub filename: String,
    pub author: usize,
    pub created: Stamp,
    pub size: i64,
    pub mime: &'static str,
}

/// An issue with all its child objects.
#[derive(Clone, Debug)]
pub struct Issue {
    pub id: u64,
    pub key: String,
    pub project: usize,
    pub number: usize,
    pub issue_type: usize,
    pub summary: String,
    pub description: Option<Vec<String>>,
    pub environment: Option<String>,
    pub status: usize,
    pub priority: usize,
    pub assignee: Option<usize>,
    pub reporter: usize,
    pub creator: usize,
    pub labels: Vec<String>,
    pub created: Stamp,
    pub updated: Stamp,
    pub status_changed: Stamp,
    pub resolution_date: Option<Stamp>,
    pub due: Option<String>,
    pub start_date: Option<String>,
    pub components: Vec<usize>,
    pub fix_versions: Vec<usize>,
    pub versions: Vec<usize>,
    pub parent: Option<usize>,
    pub subtasks: Vec<usize>,
    pub links: Vec<Link>,
    pub attachments: Vec<Attachment>,
    pub original_estimate: Option<i64>,
    pub story_points: Option<f64>,
    /// Index into [`Site::sprints`].
    pub sprint: Option<usize>,
    pub severity: Option<usize>,
    pub customer_notes: Option<String>,
    pub watch_count: i64,
    pub votes: i64,
    pub comments: Vec<Comment>,
    pub worklogs: Vec<Worklog>,
    /// Oldest first.
    pub histories: Vec<History>,
}

/// An Agile board.
#[derive(Clone, Debug)]
pub struct Board {
    pub id: i64,
    pub name: String,
    pub kind: &'static str,
    pub project: usize,
    /// Indexes into [`Site::sprints`], in board order (closed, active, future).
    pub sprints: Vec<usize>,
}

/// A sprint.
#[derive(Clone, Debug)]
pub struct Sprint {
    pub id: i64,
    pub name: String,
    pub state: &'static str,
    pub start: Option<Stamp>,
    pub end: Option<Stamp>,
    pub complete: Option<Stamp>,
    pub created: Stamp,
    pub origin_board: i64,
    pub goal: Option<String>,
}

/// A field definition (`/rest/api/3/field`).
#[derive(Clone, Debug)]
pub struct FieldDef {
    pub id: &'static str,
    pub name: &'static str,
    pub custom: bool,
    pub orderable: bool,
    pub navigable: bool,
    pub searchable: bool,
    pub clause_names: &'static [&'static str],
    /// `(type, items)`; `None` for fields without a schema (`issuekey`, `thumbnail`).
    pub schema: Option<(&'static str, Option<&'static str>)>,
    /// Custom field type key (`com.atlassian…`), for custom fields.
    pub custom_type: Option<&'static str>,
    pub custom_id: Option<i64>,
    /// Whether issues carry this field under `fields` (false for `issuekey`, `thumbnail`).
    pub on_issue: bool,
    /// Scoped to one (team-managed) project.
    pub project_scoped: bool,
}

/// Object counts of the site, for tests to compare a sync against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteTotals {
    pub users: usize,
    pub fields: usize,
    pub statuses: usize,
    pub priorities: usize,
    pub projects: usize,
    pub issues: usize,
    pub issues_per_project: BTreeMap<String, usize>,
    pub comments: usize,
    pub worklogs: usize,
    pub changelogs: usize,
    /// Issues whose changelog is longer than the embedded cap (the tap must page
    /// `/issue/{key}/changelog` for these).
    pub issues_with_truncated_changelog: usize,
    pub embedded_changelog_cap: usize,
    pub boards: usize,
    pub scrum_boards: usize,
    pub kanban_boards: usize,
    /// Rows of the `sprints` stream: one per (board, sprint) pair, shared sprints
    /// counted once per board that lists them.
    pub sprints: usize,
    /// Distinct sprint ids.
    pub sprints_unique: usize,
    /// Issues touched through `/_mock/touch` so far.
    pub touched: usize,
}

/// The whole generated site.
#[derive(Clone, Debug)]
pub struct Site {
    pub base_url: String,
    pub embedded_changelog_cap: usize,
    pub users: Vec<User>,
    pub statuses: Vec<Status>,
    pub priorities: Vec<Priority>,
    pub issue_types: Vec<IssueType>,
    pub fields: Vec<FieldDef>,
    pub projects: Vec<Project>,
    /// Sorted by id (which is also key order).
    pub issues: Vec<Issue>,
    pub boards: Vec<Board>,
    pub sprints: Vec<Sprint>,
    pub by_key: HashMap<String, usize>,
    pub by_id: HashMap<u64, usize>,
    pub next_comment_id: u64,
    pub last_touch_ms: i64,
    pub touched: usize,
}
