//! JSON rendering of site objects in Jira Cloud's shapes.
//!
//! Key order follows the examples in `docs/jira-api-notes.md` (serde_json is built
//! with `preserve_order`). Optional properties that Jira leaves out (private
//! `emailAddress`, `visibility` on public comments, worklog `comment`, …) are left
//! out here too rather than sent as `null`.

use serde_json::{Map, Value, json};

use crate::site::{
    Board, Comment, FieldDef, History, Issue, Project, SEVERITIES, Site, Sprint, User, Worklog,
};

/// Avatar URL set for a user, project or app.
fn avatars(base: &str, kind: &str, owner: &str) -> Value {
    let mut m = Map::new();
    for size in ["48x48", "24x24", "16x16", "32x32"] {
        m.insert(
            size.to_string(),
            Value::String(format!(
                "{base}/secure/{kind}avatar?size={size}&ownerId={owner}"
            )),
        );
    }
    Value::Object(m)
}

/// An Atlassian Document Format document with one paragraph per entry.
pub fn adf(paragraphs: &[String]) -> Value {
    let content: Vec<Value> = paragraphs
        .iter()
        .map(|p| json!({"type": "paragraph", "content": [{"type": "text", "text": p}]}))
        .collect();
    json!({"type": "doc", "version": 1, "content": content})
}

fn adf_text(text: &str) -> Value {
    adf(&[text.to_string()])
}

impl Site {
    fn user_self(&self, u: &User) -> String {
        format!(
            "{}/rest/api/3/user?accountId={}",
            self.base_url, u.account_id
        )
    }

    /// The `/users/search` and `/myself` form of a user.
    pub fn user_full(&self, idx: usize) -> Value {
        let u = &self.users[idx];
        let mut m = Map::new();
        m.insert("self".into(), json!(self.user_self(u)));
        m.insert("accountId".into(), json!(u.account_id));
        m.insert("accountType".into(), json!(u.account_type));
        if let Some(app) = u.app_type {
            m.insert("appType".into(), json!(app));
        }
        if let Some(email) = &u.email {
            m.insert("emailAddress".into(), json!(email));
        }
        m.insert(
            "avatarUrls".into(),
            avatars(&self.base_url, "user", &u.account_id),
        );
        m.insert("displayName".into(), json!(u.display_name));
        m.insert("active".into(), json!(u.active));
        if let Some(tz) = u.time_zone {
            m.insert("timeZone".into(), json!(tz));
        }
        if let Some(locale) = u.locale {
            m.insert("locale".into(), json!(locale));
        }
        Value::Object(m)
    }

    /// The embedded `UserDetails` form (no `locale`).
    pub fn user_embed(&self, idx: usize) -> Value {
        let u = &self.users[idx];
        let mut m = Map::new();
        m.insert("self".into(), json!(self.user_self(u)));
        m.insert("accountId".into(), json!(u.account_id));
        if let Some(email) = &u.email {
            m.insert("emailAddress".into(), json!(email));
        }
        m.insert(
            "avatarUrls".into(),
            avatars(&self.base_url, "user", &u.account_id),
        );
        m.insert("displayName".into(), json!(u.display_name));
        m.insert("active".into(), json!(u.active));
        if let Some(tz) = u.time_zone {
            m.insert("timeZone".into(), json!(tz));
        }
        m.insert("accountType".into(), json!(u.account_type));
        Value::Object(m)
    }

    /// A field definition (`/rest/api/3/field`).
    pub fn field_json(&self, f: &FieldDef) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(f.id));
        m.insert("key".into(), json!(f.id));
        m.insert("name".into(), json!(f.name));
        if f.custom {
            m.insert("untranslatedName".into(), json!(f.name));
        }
        m.insert("custom".into(), json!(f.custom));
        m.insert("orderable".into(), json!(f.orderable));
        m.insert("navigable".into(), json!(f.navigable));
        m.insert("searchable".into(), json!(f.searchable));
        m.insert("clauseNames".into(), json!(f.clause_names));
        if f.project_scoped
            && let Some(p) = self.projects.iter().find(|p| p.simplified)
        {
            m.insert(
                "scope".into(),
                json!({"type": "PROJECT", "project": {"id": p.id}}),
            );
        }
        if let Some(schema) = self.field_schema(f) {
            m.insert("schema".into(), schema);
        }
        Value::Object(m)
    }

    /// The `schema` (JsonTypeBean) of a field, if it has one.
    pub fn field_schema(&self, f: &FieldDef) -> Option<Value> {
        let (ty, items) = f.schema?;
        let mut s = Map::new();
        s.insert("type".into(), json!(ty));
        if let Some(items) = items {
            s.insert("items".into(), json!(items));
        }
        match (f.custom_type, f.custom_id) {
            (Some(custom), Some(id)) => {
                s.insert("custom".into(), json!(custom));
                s.insert("customId".into(), json!(id));
            }
            _ => {
                s.insert("system".into(), json!(f.id));
            }
        }
        Some(Value::Object(s))
    }

    fn status_category(&self, category: i64) -> Value {
        let (key, color, name) = match category {
            2 => ("new", "blue-gray", "To Do"),
            4 => ("indeterminate", "yellow", "In Progress"),
            3 => ("done", "green", "Done"),
            _ => ("undefined", "medium-gray", "No Category"),
        };
        json!({"self": format!("{}/rest/api/3/statuscategory/{category}", self.base_url),
               "id": category, "key": key, "colorName": color, "name": name})
    }

    /// A status (`/rest/api/3/status` form, also embedded in issues).
    pub fn status_json(&self, idx: usize) -> Value {
        let s = &self.statuses[idx];
        json!({"self": format!("{}/rest/api/3/status/{}", self.base_url, s.id),
               "description": s.description,
               "iconUrl": format!("{}{}", self.base_url, s.icon),
               "name": s.name, "untranslatedName": s.name, "id": s.id,
               "statusCategory": self.status_category(s.category)})
    }

    fn status_embed(&self, idx: usize) -> Value {
        let s = &self.statuses[idx];
        json!({"self": format!("{}/rest/api/3/status/{}", self.base_url, s.id),
               "description": s.description,
               "iconUrl": format!("{}{}", self.base_url, s.icon),
               "name": s.name, "id": s.id,
               "statusCategory": self.status_category(s.category)})
    }

    /// A priority (`/priority/search` form).
    pub fn priority_json(&self, idx: usize) -> Value {
        let p = &self.priorities[idx];
        let mut m = Map::new();
        m.insert(
            "self".into(),
            json!(format!("{}/rest/api/3/priority/{}", self.base_url, p.id)),
        );
        m.insert("statusColor".into(), json!(p.color));
        m.insert("description".into(), json!(p.description));
        m.insert(
            "iconUrl".into(),
            json!(format!("{}{}", self.base_url, p.icon)),
        );
        m.insert("name".into(), json!(p.name));
        m.insert("id".into(), json!(p.id));
        m.insert("isDefault".into(), json!(p.is_default));
        if let Some(a) = p.avatar_id {
            m.insert("avatarId".into(), json!(a));
        }
        Value::Object(m)
    }

    fn priority_embed(&self, idx: usize) -> Value {
        let p = &self.priorities[idx];
        json!({"self": format!("{}/rest/api/3/priority/{}", self.base_url, p.id),
               "iconUrl": format!("{}{}", self.base_url, p.icon), "name": p.name, "id": p.id})
    }

    fn issue_type_json(&self, idx: usize) -> Value {
        let t = &self.issue_types[idx];
        json!({"self": format!("{}/rest/api/3/issuetype/{}", self.base_url, t.id),
               "id": t.id, "description": t.description,
               "iconUrl": format!("{}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{}?size=medium", self.base_url, t.avatar_id),
               "name": t.name, "subtask": t.subtask, "avatarId": t.avatar_id,
               "hierarchyLevel": t.hierarchy_level})
    }

    fn project_category(&self, p: &Project) -> Value {
        match p.category {
            Some((id, name, description)) => json!({
                "self": format!("{}/rest/api/3/projectCategory/{id}", self.base_url),
                "id": id, "name": name, "description": description}),
            None => Value::Null,
        }
    }

    fn project_embed(&self, idx: usize) -> Value {
        let p = &self.projects[idx];
        let mut m = Map::new();
        m.insert(
            "self".into(),
            json!(format!("{}/rest/api/3/project/{}", self.base_url, p.id)),
        );
        m.insert("id".into(), json!(p.id));
        m.insert("key".into(), json!(p.key));
        m.insert("name".into(), json!(p.name));
        m.insert("projectTypeKey".into(), json!(p.type_key));
        m.insert("simplified".into(), json!(p.simplified));
        m.insert(
            "avatarUrls".into(),
            avatars(&self.base_url, "project", &p.id),
        );
        if p.category.is_some() {
            m.insert("projectCategory".into(), self.project_category(p));
        }
        Value::Object(m)
    }

    /// A project (`/project/search` form); `expand` is the request's expand list.
    pub fn project_json(&self, idx: usize, expand: &[String]) -> Value {
        let p = &self.projects[idx];
        let has = |name: &str| expand.iter().any(|e| e.eq_ignore_ascii_case(name));
        let mut m = Map::new();
        m.insert(
            "expand".into(),
            json!("description,lead,issueTypes,url,projectKeys,permissions,insight"),
        );
        m.insert(
            "self".into(),
            json!(format!("{}/rest/api/3/project/{}", self.base_url, p.id)),
        );
        m.insert("id".into(), json!(p.id));
        m.insert("key".into(), json!(p.key));
        m.insert("name".into(), json!(p.name));
        if has("description") {
            m.insert("description".into(), json!(p.description));
        }
        if has("lead") {
            m.insert("lead".into(), self.user_embed(p.lead));
        }
        m.insert(
            "avatarUrls".into(),
            avatars(&self.base_url, "project", &p.id),
        );
        if p.category.is_some() {
            m.insert("projectCategory".into(), self.project_category(p));
        }
        m.insert("projectTypeKey".into(), json!(p.type_key));
        m.insert("simplified".into(), json!(p.simplified));
        m.insert(
            "style".into(),
            json!(if p.simplified { "next-gen" } else { "classic" }),
        );
        if p.simplified {
            m.insert(
                "entityId".into(),
                json!(format!("{:08x}-0000-4000-8000-{:012x}", p.id.len(), idx)),
            );
            m.insert(
                "uuid".into(),
                json!(format!("{:08x}-0000-4000-8000-{:012x}", p.id.len(), idx)),
            );
        }
        m.insert("isPrivate".into(), json!(false));
        m.insert("properties".into(), json!({}));
        if has("url")
            && let Some(url) = &p.url
        {
            m.insert("url".into(), json!(url));
        }
        if has("insight") {
            let issues: Vec<&Issue> = self.issues.iter().filter(|i| i.project == idx).collect();
            let last = issues.iter().map(|i| i.updated).max_by_key(|s| s.ms);
            m.insert(
                "insight".into(),
                json!({"totalIssueCount": issues.len(),
                       "lastIssueUpdateTime": last.map(|s| crate::time::Stamp::utc(s.ms).jira())}),
            );
        }
        if has("issueTypes") {
            let types: Vec<Value> = (0..self.issue_types.len())
                .map(|t| self.issue_type_json(t))
                .collect();
            m.insert("issueTypes".into(), Value::Array(types));
        }
        Value::Object(m)
    }

    /// A comment (`/issue/{k}/comment` form).
    pub fn comment_json(&self, issue: &Issue, c: &Comment) -> Value {
        let mut m = Map::new();
        m.insert(
            "self".into(),
            json!(format!(
                "{}/rest/api/3/issue/{}/comment/{}",
                self.base_url, issue.id, c.id
            )),
        );
        m.insert("id".into(), json!(c.id.to_string()));
        m.insert("author".into(), self.user_embed(c.author));
        m.insert("body".into(), adf_text(&c.text));
        m.insert("updateAuthor".into(), self.user_embed(c.update_author));
        m.insert("created".into(), json!(c.created.jira()));
        m.insert("updated".into(), json!(c.updated.jira()));
        m.insert("jsdPublic".into(), json!(true));
        if c.restricted {
            m.insert(
                "visibility".into(),
                json!({"type": "role", "value": "Developers", "identifier": "Developers"}),
            );
        }
        Value::Object(m)
    }

    /// A worklog (`/issue/{k}/worklog` form).
    pub fn worklog_json(&self, issue: &Issue, w: &Worklog) -> Value {
        let mut m = Map::new();
        m.insert(
            "self".into(),
            json!(format!(
                "{}/rest/api/3/issue/{}/worklog/{}",
                self.base_url, issue.id, w.id
            )),
        );
        m.insert("author".into(), self.user_embed(w.author));
        m.insert("updateAuthor".into(), self.user_embed(w.update_author));
        if let Some(text) = &w.text {
            m.insert("comment".into(), adf_text(text));
        }
        m.insert("created".into(), json!(w.created.jira()));
        m.insert("updated".into(), json!(w.updated.jira()));
        if w.restricted {
            m.insert(
                "visibility".into(),
                json!({"type": "group", "value": "jira-developers", "identifier": "5a1b2c3d-0000-4000-8000-00000000dev0"}),
            );
        }
        m.insert("started".into(), json!(w.started.jira()));
        m.insert(
            "timeSpent".into(),
            json!(crate::time::jira_duration(w.seconds)),
        );
        m.insert("timeSpentSeconds".into(), json!(w.seconds));
        m.insert("id".into(), json!(w.id.to_string()));
        m.insert("issueId".into(), json!(issue.id.to_string()));
        Value::Object(m)
    }

    /// A changelog history.
    pub fn history_json(&self, h: &History) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(h.id.to_string()));
        m.insert("author".into(), self.user_embed(h.author));
        m.insert("created".into(), json!(h.created.jira()));
        m.insert("items".into(), Value::Array(h.items.clone()));
        if let Some(meta) = &h.metadata {
            m.insert("historyMetadata".into(), meta.clone());
        }
        Value::Object(m)
    }

    /// A board (`/rest/agile/1.0/board` form).
    pub fn board_json(&self, b: &Board) -> Value {
        let p = &self.projects[b.project];
        let display = format!("{} ({})", p.name, p.key);
        json!({"id": b.id, "self": format!("{}/rest/agile/1.0/board/{}", self.base_url, b.id),
               "name": b.name, "type": b.kind,
               "location": {"projectId": p.id.parse::<i64>().unwrap_or(0), "displayName": display,
                            "projectName": p.name, "projectKey": p.key, "projectTypeKey": p.type_key,
                            "avatarURI": format!("{}/rest/api/2/universal_avatar/view/type/project/avatar/10400?size=small", self.base_url),
                            "name": display}})
    }

    /// A sprint (`/board/{id}/sprint` form).
    pub fn sprint_json(&self, s: &Sprint) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(s.id));
        m.insert(
            "self".into(),
            json!(format!("{}/rest/agile/1.0/sprint/{}", self.base_url, s.id)),
        );
        m.insert("state".into(), json!(s.state));
        m.insert("name".into(), json!(s.name));
        if let Some(t) = s.start {
            m.insert("startDate".into(), json!(t.agile()));
        }
        if let Some(t) = s.end {
            m.insert("endDate".into(), json!(t.agile()));
        }
        if let Some(t) = s.complete {
            m.insert("completeDate".into(), json!(t.agile()));
        }
        m.insert("createdDate".into(), json!(s.created.agile()));
        m.insert("originBoardId".into(), json!(s.origin_board));
        if let Some(goal) = &s.goal {
            m.insert("goal".into(), json!(goal));
        }
        Value::Object(m)
    }

    fn issue_ref(&self, idx: usize) -> Value {
        let i = &self.issues[idx];
        json!({"id": i.id.to_string(), "key": i.key,
               "self": format!("{}/rest/api/3/issue/{}", self.base_url, i.id),
               "fields": {"summary": i.summary, "status": self.status_embed(i.status),
                          "priority": self.priority_embed(i.priority),
                          "issuetype": self.issue_type_json(i.issue_type)}})
    }

    fn version_json(&self, p: &Project, v: usize) -> Value {
        let v = &p.versions[v];
        let mut m = Map::new();
        m.insert(
            "self".into(),
            json!(format!("{}/rest/api/3/version/{}", self.base_url, v.id)),
        );
        m.insert("id".into(), json!(v.id));
        m.insert("description".into(), json!(v.description));
        m.insert("name".into(), json!(v.name));
        m.insert("archived".into(), json!(v.archived));
        m.insert("released".into(), json!(v.released));
        if let Some(d) = &v.release_date {
            m.insert("releaseDate".into(), json!(d));
        }
        Value::Object(m)
    }

    /// The value of one field of an issue (`null` when unset).
    pub fn issue_field(&self, issue: &Issue, field: &str) -> Value {
        let base = &self.base_url;
        let project = &self.projects[issue.project];
        let spent: i64 = issue.worklogs.iter().map(|w| w.seconds).sum();
        let remaining = issue.original_estimate.map(|o| (o - spent).max(0));
        match field {
            "statuscategorychangedate" => json!(issue.status_changed.jira()),
            "issuetype" => self.issue_type_json(issue.issue_type),
            "timespent" | "aggregatetimespent" => if spent > 0 { json!(spent) } else { Value::Null },
            "project" => self.project_embed(issue.project),
            "fixVersions" => Value::Array(issue.fix_versions.iter().map(|&v| self.version_json(project, v)).collect()),
            "versions" => Value::Array(issue.versions.iter().map(|&v| self.version_json(project, v)).collect()),
            "resolution" => match issue.resolution_date {
                Some(_) => json!({"self": format!("{base}/rest/api/3/resolution/10000"), "id": "10000",
                                  "description": "Work has been completed on this issue.", "name": "Done"}),
                None => Value::Null,
            },
            "resolutiondate" => issue.resolution_date.map_or(Value::Null, |s| json!(s.jira())),
            "workratio" => match issue.original_estimate {
                Some(o) if o > 0 => json!(spent * 100 / o),
                _ => json!(-1),
            },
            "lastViewed" => Value::Null,
            "watches" => json!({"self": format!("{base}/rest/api/3/issue/{}/watchers", issue.key),
                                "watchCount": issue.watch_count, "isWatching": false}),
            "created" => json!(issue.created.jira()),
            "updated" => json!(issue.updated.jira()),
            "priority" => self.priority_embed(issue.priority),
            "labels" => json!(issue.labels),
            "timeestimate" | "aggregatetimeestimate" => remaining.map_or(Value::Null, |r| json!(r)),
            "timeoriginalestimate" | "aggregatetimeoriginalestimate" => issue.original_estimate.map_or(Value::Null, |o| json!(o)),
            "issuelinks" => Value::Array(
                issue
                    .links
                    .iter()
                    .map(|l| {
                        let mut m = Map::new();
                        m.insert("id".into(), json!(l.id.to_string()));
                        m.insert("self".into(), json!(format!("{base}/rest/api/3/issueLink/{}", l.id)));
                        m.insert("type".into(), json!({"id": "10000", "name": "Blocks", "inward": "is blocked by",
                                                        "outward": "blocks", "self": format!("{base}/rest/api/3/issueLinkType/10000")}));
                        let side = if l.outward { "outwardIssue" } else { "inwardIssue" };
                        m.insert(side.into(), self.issue_ref(l.other));
                        Value::Object(m)
                    })
                    .collect(),
            ),
            "assignee" => issue.assignee.map_or(Value::Null, |u| self.user_embed(u)),
            "status" => self.status_embed(issue.status),
            "components" => Value::Array(
                issue
                    .components
                    .iter()
                    .filter_map(|&c| project.components.get(c))
                    .map(|c| {
                        let mut m = Map::new();
                        m.insert("self".into(), json!(format!("{base}/rest/api/3/component/{}", c.id)));
                        m.insert("id".into(), json!(c.id));
                        m.insert("name".into(), json!(c.name));
                        if let Some(d) = c.description {
                            m.insert("description".into(), json!(d));
                        }
                        Value::Object(m)
                    })
                    .collect(),
            ),
            "description" => issue.description.as_ref().map_or(Value::Null, |p| adf(p)),
            "timetracking" => {
                let mut m = Map::new();
                if let Some(o) = issue.original_estimate {
                    m.insert("originalEstimate".into(), json!(crate::time::jira_duration(o)));
                }
                if let Some(r) = remaining {
                    m.insert("remainingEstimate".into(), json!(crate::time::jira_duration(r)));
                }
                if spent > 0 {
                    m.insert("timeSpent".into(), json!(crate::time::jira_duration(spent)));
                }
                if let Some(o) = issue.original_estimate {
                    m.insert("originalEstimateSeconds".into(), json!(o));
                }
                if let Some(r) = remaining {
                    m.insert("remainingEstimateSeconds".into(), json!(r));
                }
                if spent > 0 {
                    m.insert("timeSpentSeconds".into(), json!(spent));
                }
                Value::Object(m)
            }
            "security" => Value::Null,
            "attachment" => Value::Array(
                issue
                    .attachments
                    .iter()
                    .map(|a| {
                        json!({"self": format!("{base}/rest/api/3/attachment/{}", a.id), "id": a.id.to_string(),
                               "filename": a.filename, "author": self.user_embed(a.author),
                               "created": a.created.jira(), "size": a.size, "mimeType": a.mime,
                               "content": format!("{base}/rest/api/3/attachment/content/{}", a.id),
                               "thumbnail": format!("{base}/rest/api/3/attachment/thumbnail/{}", a.id)})
                    })
                    .collect(),
            ),
            "summary" => json!(issue.summary),
            "creator" => self.user_embed(issue.creator),
            "subtasks" => Value::Array(issue.subtasks.iter().map(|&s| self.issue_ref(s)).collect()),
            "reporter" => self.user_embed(issue.reporter),
            "aggregateprogress" | "progress" => {
                let total = spent + remaining.unwrap_or(0);
                let mut m = Map::new();
                m.insert("progress".into(), json!(spent));
                m.insert("total".into(), json!(total));
                if total > 0 {
                    m.insert("percent".into(), json!(spent * 100 / total));
                }
                Value::Object(m)
            }
            "environment" => issue.environment.as_ref().map_or(Value::Null, |e| adf_text(e)),
            "duedate" => issue.due.as_ref().map_or(Value::Null, |d| json!(d)),
            "votes" => json!({"self": format!("{base}/rest/api/3/issue/{}/votes", issue.key),
                              "votes": issue.votes, "hasVoted": false}),
            "parent" => issue.parent.map_or(Value::Null, |p| self.issue_ref(p)),
            "comment" => {
                let comments: Vec<Value> = issue.comments.iter().map(|c| self.comment_json(issue, c)).collect();
                json!({"comments": comments, "self": format!("{base}/rest/api/3/issue/{}/comment", issue.id),
                       "maxResults": issue.comments.len(), "total": issue.comments.len(), "startAt": 0})
            }
            "worklog" => {
                let worklogs: Vec<Value> = issue.worklogs.iter().take(20).map(|w| self.worklog_json(issue, w)).collect();
                json!({"startAt": 0, "maxResults": 20, "total": issue.worklogs.len(), "worklogs": worklogs})
            }
            "customfield_10010" => issue.story_points.map_or(Value::Null, |p| json!(p)),
            "customfield_10020" => match issue.sprint {
                Some(s) => {
                    let sp = &self.sprints[s];
                    let mut m = Map::new();
                    m.insert("id".into(), json!(sp.id));
                    m.insert("name".into(), json!(sp.name));
                    m.insert("state".into(), json!(sp.state));
                    m.insert("boardId".into(), json!(sp.origin_board));
                    m.insert("goal".into(), json!(sp.goal.clone().unwrap_or_default()));
                    if let Some(t) = sp.start {
                        m.insert("startDate".into(), json!(t.agile()));
                    }
                    if let Some(t) = sp.end {
                        m.insert("endDate".into(), json!(t.agile()));
                    }
                    if let Some(t) = sp.complete {
                        m.insert("completeDate".into(), json!(t.agile()));
                    }
                    json!([Value::Object(m)])
                }
                None => Value::Null,
            },
            "customfield_10030" => issue.severity.map_or(Value::Null, |s| {
                let (id, value) = SEVERITIES[s];
                json!({"self": format!("{base}/rest/api/3/customFieldOption/{id}"), "value": value, "id": id})
            }),
            "customfield_10040" => issue.customer_notes.as_ref().map_or(Value::Null, |n| json!(n)),
            "customfield_10050" => issue.start_date.as_ref().map_or(Value::Null, |d| json!(d)),
            _ => Value::Null,
        }
    }

    /// The embedded changelog page: the newest `cap` histories, newest first, with
    /// the real `total`.
    pub fn embedded_changelog(&self, issue: &Issue) -> Value {
        let cap = self.embedded_changelog_cap;
        let histories: Vec<Value> = issue
            .histories
            .iter()
            .rev()
            .take(cap)
            .map(|h| self.history_json(h))
            .collect();
        json!({"startAt": 0, "maxResults": histories.len(), "total": issue.histories.len(), "histories": histories})
    }
}
