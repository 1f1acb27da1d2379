//! Fixed catalogues of the mock site: statuses, priorities, issue types, the field
//! table, and the word pools that generated names and texts are drawn from.

use crate::model::{FieldDef, IssueType, Priority, Status};

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Emma", "Mia", "Liam", "Noah", "Olivia", "Ava", "Lucas", "Sofia", "Mateo", "Yuki", "Priya",
    "Arjun", "Chen", "Fatima", "Omar", "Lena", "Jonas", "Chloé", "Diego", "Aisha", "Hiro", "Inès",
    "Tomasz", "Zara", "Kofi",
];
pub(crate) const LAST_NAMES: &[&str] = &[
    "Richards", "Krystof", "Okafor", "Tanaka", "Novak", "Silva", "Müller", "Haddad", "Kowalski",
    "Rossi", "Nguyen", "Patel", "Dubois", "Andersen", "Garcia",
];
pub(crate) const APP_NAMES: &[&str] = &[
    "Automation for Jira",
    "Slack",
    "GitHub for Jira",
    "Statuspage",
];
pub(crate) const TIME_ZONES: &[&str] = &[
    "Europe/London",
    "Australia/Sydney",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "UTC",
];
pub(crate) const LOCALES: &[&str] = &["en_GB", "en_US", "de_DE", "ja_JP", "fr_FR"];
pub(crate) const PROJECT_KEYS: &[(&str, &str)] = &[
    ("ALPHA", "Alpha Platform"),
    ("BETA", "Beta Mobile"),
    ("GAMMA", "Gamma Operations"),
    ("DELTA", "Delta Data"),
    ("EPSILON", "Epsilon Billing"),
    ("ZETA", "Zeta Search"),
    ("ETA", "Eta Identity"),
    ("THETA", "Theta Infra"),
];
pub(crate) const VERBS: &[&str] = &[
    "Fix",
    "Add",
    "Investigate",
    "Refactor",
    "Document",
    "Improve",
    "Remove",
    "Migrate",
];
pub(crate) const OBJECTS: &[&str] = &[
    "checkout flow",
    "login timeout",
    "CSV export",
    "search indexing",
    "rate limiter",
    "billing webhook",
    "dark mode",
    "audit log",
    "password reset e-mail",
    "dashboard widgets",
    "API pagination",
    "mobile push notifications",
];
pub(crate) const LABELS: &[&str] = &[
    "backend",
    "frontend",
    "regression",
    "tech-debt",
    "customer",
    "security",
    "performance",
    "ux",
];
pub(crate) const COMMENT_TEXTS: &[&str] = &[
    "Reproduced on staging.",
    "Could this be related to the last deploy?",
    "PR is up for review.",
    "Verified the fix in production.",
    "Adding logs to narrow it down.",
    "Customer confirmed it works now — thanks!",
    "Blocked until the API change ships.",
];
pub(crate) const WORKLOG_TEXTS: &[&str] = &[
    "Root-caused the issue.",
    "Pairing session.",
    "Wrote tests.",
    "Code review.",
];

pub(crate) fn statuses() -> Vec<Status> {
    vec![
        Status {
            id: "10000",
            name: "To Do",
            description: "",
            icon: "/images/icons/statuses/open.png",
            category: 2,
        },
        Status {
            id: "3",
            name: "In Progress",
            description: "This issue is being actively worked on at the moment by the assignee.",
            icon: "/images/icons/statuses/inprogress.png",
            category: 4,
        },
        Status {
            id: "10001",
            name: "In Review",
            description: "Waiting for code review.",
            icon: "/images/icons/statuses/generic.png",
            category: 4,
        },
        Status {
            id: "10002",
            name: "Done",
            description: "Work has been completed on this issue.",
            icon: "/images/icons/statuses/closed.png",
            category: 3,
        },
    ]
}

pub(crate) fn priorities() -> Vec<Priority> {
    vec![
        Priority {
            id: "1",
            name: "Highest",
            description: "This problem will block progress.",
            color: "#d04437",
            icon: "/images/icons/priorities/highest.svg",
            is_default: false,
            avatar_id: None,
        },
        Priority {
            id: "2",
            name: "High",
            description: "Serious problem that could block progress.",
            color: "#f15c75",
            icon: "/images/icons/priorities/high.svg",
            is_default: false,
            avatar_id: None,
        },
        Priority {
            id: "3",
            name: "Medium",
            description: "Has the potential to affect progress.",
            color: "#ffab00",
            icon: "/images/icons/priorities/medium.svg",
            is_default: true,
            avatar_id: Some(10305),
        },
        Priority {
            id: "4",
            name: "Low",
            description: "Minor problem or easily worked around.",
            color: "#707070",
            icon: "/images/icons/priorities/low.svg",
            is_default: false,
            avatar_id: None,
        },
        Priority {
            id: "5",
            name: "Lowest",
            description: "Trivial problem with little or no impact on progress.",
            color: "#999999",
            icon: "/images/icons/priorities/lowest.svg",
            is_default: false,
            avatar_id: None,
        },
    ]
}

pub(crate) fn issue_types() -> Vec<IssueType> {
    vec![
        IssueType {
            id: "10000",
            name: "Epic",
            description: "A big user story that needs to be broken down.",
            avatar_id: 10307,
            hierarchy_level: 1,
            subtask: false,
        },
        IssueType {
            id: "10001",
            name: "Bug",
            description: "A problem or error.",
            avatar_id: 10303,
            hierarchy_level: 0,
            subtask: false,
        },
        IssueType {
            id: "10002",
            name: "Story",
            description: "Functionality or a feature expressed as a user goal.",
            avatar_id: 10315,
            hierarchy_level: 0,
            subtask: false,
        },
        IssueType {
            id: "10003",
            name: "Task",
            description: "A small, distinct piece of work.",
            avatar_id: 10318,
            hierarchy_level: 0,
            subtask: false,
        },
        IssueType {
            id: "10004",
            name: "Subtask",
            description: "A small piece of work that's part of a larger task.",
            avatar_id: 10316,
            hierarchy_level: -1,
            subtask: true,
        },
    ]
}

/// A system field.
#[allow(clippy::too_many_arguments)]
const fn sys(
    id: &'static str,
    name: &'static str,
    ty: &'static str,
    items: Option<&'static str>,
    orderable: bool,
    navigable: bool,
    searchable: bool,
    clause_names: &'static [&'static str],
) -> FieldDef {
    FieldDef {
        id,
        name,
        custom: false,
        orderable,
        navigable,
        searchable,
        clause_names,
        schema: Some((ty, items)),
        custom_type: None,
        custom_id: None,
        on_issue: true,
        project_scoped: false,
    }
}

/// A custom field (`customfield_NNNNN`).
const fn custom(
    id: &'static str,
    name: &'static str,
    ty: &'static str,
    items: Option<&'static str>,
    custom_type: &'static str,
    custom_id: i64,
    clause_names: &'static [&'static str],
) -> FieldDef {
    FieldDef {
        id,
        name,
        custom: true,
        orderable: true,
        navigable: true,
        searchable: true,
        clause_names,
        schema: Some((ty, items)),
        custom_type: Some(custom_type),
        custom_id: Some(custom_id),
        on_issue: true,
        project_scoped: false,
    }
}

/// A field without a schema that issues do not carry (`issuekey`, `thumbnail`).
const fn bare(
    id: &'static str,
    name: &'static str,
    clause_names: &'static [&'static str],
) -> FieldDef {
    FieldDef {
        id,
        name,
        custom: false,
        orderable: false,
        navigable: true,
        searchable: false,
        clause_names,
        schema: None,
        custom_type: None,
        custom_id: None,
        on_issue: false,
        project_scoped: false,
    }
}

const T: bool = true;
const F: bool = false;

/// The field table: the order here is the order of keys under `fields` on issues.
/// Columns of `sys`: id, name, schema type, items, orderable, navigable, searchable,
/// JQL clause names.
#[rustfmt::skip]
pub(crate) fn fields() -> Vec<FieldDef> {
    let mut out = vec![
        bare("issuekey", "Key", &["id", "issue", "issuekey", "key"]),
        sys("statuscategorychangedate", "Status Category Changed", "datetime", None, F, T, T, &["statusCategoryChangedDate"]),
        sys("issuetype", "Issue Type", "issuetype", None, T, T, T, &["issuetype", "type"]),
        sys("timespent", "Time Spent", "number", None, F, T, F, &["timespent"]),
        sys("project", "Project", "project", None, F, T, T, &["project"]),
        sys("fixVersions", "Fix versions", "array", Some("version"), T, T, T, &["fixVersion"]),
        sys("aggregatetimespent", "Σ Time Spent", "number", None, F, T, F, &[]),
        sys("resolution", "Resolution", "resolution", None, T, T, T, &["resolution"]),
        sys("resolutiondate", "Resolved", "datetime", None, F, T, T, &["resolutiondate", "resolved"]),
        sys("workratio", "Work Ratio", "number", None, F, T, T, &["workratio"]),
        sys("lastViewed", "Last Viewed", "datetime", None, F, T, F, &["lastViewed"]),
        sys("watches", "Watchers", "watches", None, F, T, T, &["watchers"]),
        sys("created", "Created", "datetime", None, F, T, T, &["created", "createdDate"]),
        sys("priority", "Priority", "priority", None, T, T, T, &["priority"]),
        sys("labels", "Labels", "array", Some("string"), T, T, T, &["labels"]),
        sys("timeestimate", "Remaining Estimate", "number", None, F, T, F, &["remainingEstimate", "timeestimate"]),
        sys("aggregatetimeoriginalestimate", "Σ Original Estimate", "number", None, F, T, F, &[]),
        sys("versions", "Affects versions", "array", Some("version"), T, T, T, &["affectedVersion"]),
        sys("issuelinks", "Linked Issues", "array", Some("issuelinks"), T, F, T, &["issueLink"]),
        sys("assignee", "Assignee", "user", None, T, T, T, &["assignee"]),
        sys("updated", "Updated", "datetime", None, F, T, T, &["updated", "updatedDate"]),
        sys("status", "Status", "status", None, F, T, T, &["status"]),
        sys("components", "Components", "array", Some("component"), T, T, T, &["component"]),
        sys("timeoriginalestimate", "Original estimate", "number", None, F, T, F, &["originalEstimate", "timeoriginalestimate"]),
        sys("description", "Description", "string", None, T, T, T, &["description"]),
        sys("timetracking", "Time tracking", "timetracking", None, T, F, T, &[]),
        sys("security", "Security Level", "securitylevel", None, T, T, T, &["level"]),
        sys("attachment", "Attachment", "array", Some("attachment"), T, F, T, &["attachments"]),
        sys("aggregatetimeestimate", "Σ Remaining Estimate", "number", None, F, T, F, &[]),
        sys("summary", "Summary", "string", None, T, T, T, &["summary"]),
        sys("creator", "Creator", "user", None, F, T, T, &["creator"]),
        sys("subtasks", "Sub-tasks", "array", Some("issuelinks"), F, T, F, &["subtasks"]),
        sys("reporter", "Reporter", "user", None, T, T, T, &["reporter"]),
        sys("aggregateprogress", "Σ Progress", "progress", None, F, T, F, &[]),
        sys("environment", "Environment", "string", None, T, T, T, &["environment"]),
        sys("duedate", "Due date", "date", None, T, T, T, &["due", "duedate"]),
        sys("progress", "Progress", "progress", None, F, T, F, &["progress"]),
        sys("votes", "Votes", "votes", None, F, T, F, &["votes"]),
        sys("parent", "Parent", "issuelink", None, T, T, T, &["parent"]),
        sys("comment", "Comment", "comments-page", None, T, F, T, &["comment"]),
        sys("worklog", "Log Work", "array", Some("worklog"), T, F, F, &[]),
        custom("customfield_10010", "Story Points", "number", None, "com.atlassian.jira.plugin.system.customfieldtypes:float", 10010, &["cf[10010]", "Story Points", "Story Points[Number]"]),
        custom("customfield_10020", "Sprint", "array", Some("json"), "com.pyxis.greenhopper.jira:gh-sprint", 10020, &["cf[10020]", "Sprint"]),
        custom("customfield_10030", "Severity", "option", None, "com.atlassian.jira.plugin.system.customfieldtypes:select", 10030, &["cf[10030]", "Severity", "Severity[Dropdown]"]),
        custom("customfield_10040", "Customer notes", "string", None, "com.atlassian.jira.plugin.system.customfieldtypes:textarea", 10040, &["cf[10040]", "Customer notes"]),
        custom("customfield_10050", "Start date", "date", None, "com.atlassian.jira.plugin.system.customfieldtypes:datepicker", 10050, &["cf[10050]", "Start date", "Start date[Date]"]),
        bare("thumbnail", "Images", &[]),
    ];
    // "Customer notes" belongs to the team-managed project.
    for field in &mut out {
        field.project_scoped = field.id == "customfield_10040";
    }
    out
}

/// Severity option values for `customfield_10030`: `(id, value)`.
pub const SEVERITIES: &[(&str, &str)] = &[("10100", "S1"), ("10101", "S2"), ("10102", "S3")];
