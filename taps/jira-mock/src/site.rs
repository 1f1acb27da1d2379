//! Deterministic generation of the mock site.
//!
//! Everything is derived from one `fastrand::Rng::with_seed(seed)`, generated in a
//! fixed order, and never from the wall clock: the same [`SiteSpec`] always gives the
//! same site (ids, keys, timestamps, texts). Only `/_mock/touch` changes it later.
//!
//! Shapes follow `docs/jira-api-notes.md`: string ids on the platform API, integer
//! ids on the Agile API and for `statusCategory.id`, timestamps in 2024 rendered with
//! `+0000` and (for some objects) other offsets, rich text as ADF.

use std::collections::BTreeMap;

use fastrand::Rng;
use serde_json::{Value, json};

pub use crate::catalog::SEVERITIES;
use crate::catalog::{
    APP_NAMES, COMMENT_TEXTS, FIRST_NAMES, LABELS, LAST_NAMES, LOCALES, OBJECTS, PROJECT_KEYS,
    TIME_ZONES, VERBS, WORKLOG_TEXTS, fields, issue_types, priorities, statuses,
};
pub use crate::model::*;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Stamp, date_ms};

/// Epoch ms of 2024-01-01T00:00:00Z, the start of the generated timeline.
fn timeline_start() -> i64 {
    date_ms(2024, 1, 1)
}

/// Epoch ms of 2024-12-31T00:00:00Z, the latest generated `updated`.
fn timeline_end() -> i64 {
    date_ms(2024, 12, 31)
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// A display offset (minutes): mostly UTC, sometimes +0200, -0500 or +1000.
fn pick_offset(rng: &mut Rng) -> i32 {
    match rng.u8(..10) {
        0 => 120,
        1 => -300,
        2 => 600,
        _ => 0,
    }
}

fn hex_id(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
        .collect()
}

fn uuid_like(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        hex_id(rng, 8),
        hex_id(rng, 4),
        hex_id(rng, 4),
        hex_id(rng, 4),
        hex_id(rng, 12)
    )
}

/// A time in `[lo, hi]` (ms), uniformly; `lo` when the range is empty.
fn between(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    if hi <= lo { lo } else { rng.i64(lo..=hi) }
}

fn gen_users(rng: &mut Rng, n: usize) -> Vec<User> {
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let (account_type, app_type) = if i > 0 && i % 8 == 7 {
            ("app", Some("service"))
        } else if n > 5 && i == n - 1 {
            ("customer", None)
        } else {
            ("atlassian", None)
        };
        let user = match account_type {
            "app" => User {
                account_id: format!("557058:{}", uuid_like(rng)),
                account_type,
                app_type,
                display_name: APP_NAMES[(i / 8) % APP_NAMES.len()].to_string(),
                email: None,
                active: true,
                time_zone: None,
                locale: None,
            },
            "customer" => User {
                account_id: format!("qm:{}:{}", uuid_like(rng), uuid_like(rng)),
                account_type,
                app_type: None,
                display_name: "Pat Customer".to_string(),
                email: Some("pat.customer@example.org".to_string()),
                active: true,
                time_zone: Some("UTC"),
                locale: None,
            },
            _ => {
                let first = FIRST_NAMES[i % FIRST_NAMES.len()];
                let last = LAST_NAMES[(i * 7 + i / FIRST_NAMES.len()) % LAST_NAMES.len()];
                let slug: String = format!("{first}.{last}")
                    .to_lowercase()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '.' {
                            c
                        } else {
                            'x'
                        }
                    })
                    .collect();
                // The first user (the caller of /myself) always shows everything.
                let private = i > 0 && rng.u8(..3) == 0;
                User {
                    account_id: hex_id(rng, 24),
                    account_type,
                    app_type: None,
                    display_name: format!("{first} {last}"),
                    email: (!private).then(|| format!("{slug}{i}@example.com")),
                    active: i == 0 || rng.u8(..10) != 0,
                    time_zone: (i == 0 || rng.u8(..6) != 0).then(|| *pick(rng, TIME_ZONES)),
                    locale: (!private).then(|| *pick(rng, LOCALES)),
                }
            }
        };
        users.push(user);
    }
    users
}

fn gen_projects(rng: &mut Rng, n: usize, users: &[User]) -> Vec<Project> {
    let humans: Vec<usize> = (0..users.len())
        .filter(|&i| users[i].account_type == "atlassian")
        .collect();
    let mut keys: Vec<(String, String)> = (0..n)
        .map(|i| match PROJECT_KEYS.get(i) {
            Some((k, name)) => (k.to_string(), name.to_string()),
            None => (format!("PRJ{i}"), format!("Project {i}")),
        })
        .collect();
    // Ids follow key order, so that id order == key order for issues as well.
    keys.sort();
    let mut component_id = 10000;
    let mut version_id = 10000;
    let mut projects = Vec::with_capacity(n);
    for (i, (key, name)) in keys.into_iter().enumerate() {
        let simplified = n >= 3 && i == n - 1;
        let components = ["API", "UI", "Infrastructure"]
            .iter()
            .map(|&c| {
                component_id += 1;
                Component {
                    id: component_id.to_string(),
                    name: c,
                    description: (c != "UI").then_some("Owned by the platform team"),
                }
            })
            .collect();
        let versions = [
            ("1.0.0", true, Some((2024, 3, 1))),
            ("1.1.0", true, Some((2024, 7, 15))),
            ("2.0.0", false, None),
        ]
        .iter()
        .map(|&(v, released, date)| {
            version_id += 1;
            Version {
                id: version_id.to_string(),
                name: v.to_string(),
                description: if released {
                    format!("{key} release {v}")
                } else {
                    String::new()
                },
                archived: false,
                released,
                release_date: date.map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
            }
        })
        .collect();
        let lead = if humans.is_empty() {
            0
        } else {
            *pick(rng, &humans)
        };
        projects.push(Project {
            id: (10000 + i).to_string(),
            key: key.clone(),
            name,
            description: format!("Issues of the {} team.", key.to_lowercase()),
            lead,
            category: (i % 2 == 0).then_some(("10000", "PRODUCT", "Product teams")),
            type_key: if i == 2 { "business" } else { "software" },
            simplified,
            url: (i == 0).then(|| format!("https://{}.example.com", key.to_lowercase())),
            components,
            versions,
        });
    }
    projects
}

/// Scrum board per project, one kanban board (first project) and a second scrum
/// board on the first project that shares the first board's active sprint.
fn gen_boards(rng: &mut Rng, projects: &[Project]) -> (Vec<Board>, Vec<Sprint>) {
    let mut boards = Vec::new();
    let mut sprints: Vec<Sprint> = Vec::new();
    let start = timeline_start();
    let mut next_sprint_id = 1i64;
    for (p, project) in projects.iter().enumerate() {
        let board_id = p as i64 + 1;
        let count = 3 + rng.usize(..4);
        let offset = if p == 1 { 600 } else { 0 };
        let mut list = Vec::new();
        let first = start + (p as i64) * 3 * DAY_MS + 9 * HOUR_MS;
        for s in 0..count {
            let state = if s + 2 < count {
                "closed"
            } else if s + 2 == count {
                "active"
            } else {
                "future"
            };
            let begin = first + (s as i64) * 14 * DAY_MS;
            let created = Stamp::utc(begin - 2 * DAY_MS + rng.i64(0..HOUR_MS)).with_offset(offset);
            let (start_s, end_s, complete) = match state {
                "future" => (None, None, None),
                st => {
                    let b = Stamp::utc(begin).with_offset(offset);
                    let e = Stamp::utc(begin + 14 * DAY_MS).with_offset(offset);
                    let c = (st == "closed").then(|| {
                        Stamp::utc(begin + 14 * DAY_MS + rng.i64(0..2 * HOUR_MS))
                            .with_offset(offset)
                    });
                    (Some(b), Some(e), c)
                }
            };
            sprints.push(Sprint {
                id: next_sprint_id,
                name: format!("{} Sprint {}", project.key, s + 1),
                state,
                start: start_s,
                end: end_s,
                complete,
                created,
                origin_board: board_id,
                goal: match rng.u8(..3) {
                    0 => None,
                    1 => Some(String::new()),
                    _ => Some(format!("Ship {}", pick(rng, OBJECTS))),
                },
            });
            list.push(sprints.len() - 1);
            next_sprint_id += 1;
        }
        boards.push(Board {
            id: board_id,
            name: format!("{} board", project.key),
            kind: "scrum",
            project: p,
            sprints: list,
        });
    }
    if let Some(first) = projects.first() {
        let n = projects.len() as i64;
        boards.push(Board {
            id: n + 1,
            name: format!("{} kanban", first.key),
            kind: "kanban",
            project: 0,
            sprints: Vec::new(),
        });
        // A second scrum board with two sprints of its own plus the shared active
        // sprint of board 1 (whose originBoardId stays 1).
        let board_id = n + 2;
        let mut own = Vec::new();
        for (s, &state) in ["closed", "future"].iter().enumerate() {
            let begin = start + 30 * DAY_MS + (s as i64) * 28 * DAY_MS;
            sprints.push(Sprint {
                id: next_sprint_id,
                name: format!("Platform Sprint {}", s + 1),
                state,
                start: (state == "closed").then(|| Stamp::utc(begin)),
                end: (state == "closed").then(|| Stamp::utc(begin + 14 * DAY_MS)),
                complete: (state == "closed").then(|| Stamp::utc(begin + 14 * DAY_MS + 1_234)),
                created: Stamp::utc(begin - DAY_MS),
                origin_board: board_id,
                goal: Some("Platform hardening".to_string()),
            });
            own.push(sprints.len() - 1);
            next_sprint_id += 1;
        }
        let shared = boards.first().and_then(|b| {
            b.sprints
                .iter()
                .copied()
                .find(|&s| sprints[s].state == "active")
        });
        let mut list = vec![own[0]];
        list.extend(shared);
        list.push(own[1]);
        boards.push(Board {
            id: board_id,
            name: "Platform team".to_string(),
            kind: "scrum",
            project: 0,
            sprints: list,
        });
    }
    (boards, sprints)
}

fn adf_paragraphs(rng: &mut Rng, key_hint: &str) -> Vec<String> {
    let n = 1 + rng.usize(..3);
    (0..n)
        .map(|i| match i {
            0 => format!("{} {} ({key_hint}).", pick(rng, VERBS), pick(rng, OBJECTS)),
            _ => pick(rng, COMMENT_TEXTS).to_string(),
        })
        .collect()
}

/// Changelog items for one history.
fn history_items(
    rng: &mut Rng,
    site_users: &[User],
    humans: &[usize],
    statuses: &[Status],
    priorities: &[Priority],
    sprint_name: Option<(&str, i64)>,
    current_status: &mut usize,
) -> Vec<Value> {
    let n = 1 + usize::from(rng.u8(..4) == 0);
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let item = match rng.u8(..7) {
            0 | 1 => {
                let from = *current_status;
                let to = (from + 1 + rng.usize(..statuses.len() - 1)) % statuses.len();
                *current_status = to;
                json!({"field": "status", "fieldtype": "jira", "fieldId": "status",
                       "from": statuses[from].id, "fromString": statuses[from].name,
                       "to": statuses[to].id, "toString": statuses[to].name})
            }
            2 => {
                let to = &site_users[*pick(rng, humans)];
                let from = (rng.bool()).then(|| &site_users[*pick(rng, humans)]);
                json!({"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                       "from": from.map(|u| u.account_id.clone()),
                       "fromString": from.map(|u| u.display_name.clone()),
                       "to": to.account_id, "toString": to.display_name,
                       "tmpFromAccountId": from.map(|u| u.account_id.clone()),
                       "tmpToAccountId": to.account_id})
            }
            3 => {
                let from = pick(rng, priorities);
                let to = pick(rng, priorities);
                json!({"field": "priority", "fieldtype": "jira", "fieldId": "priority",
                       "from": from.id, "fromString": from.name, "to": to.id, "toString": to.name})
            }
            4 => {
                let a = pick(rng, LABELS);
                let b = pick(rng, LABELS);
                json!({"field": "labels", "fieldtype": "jira", "fieldId": "labels",
                       "from": null, "fromString": a, "to": null, "toString": format!("{a} {b}")})
            }
            5 => match sprint_name {
                Some((name, id)) => {
                    json!({"field": "Sprint", "fieldtype": "custom", "fieldId": "customfield_10020",
                       "from": "", "fromString": "", "to": id.to_string(), "toString": name})
                }
                None => {
                    json!({"field": "Story Points", "fieldtype": "custom", "fieldId": "customfield_10010",
                       "from": null, "fromString": null, "to": null, "toString": "3"})
                }
            },
            _ => {
                let from = rng.u8(1..9).to_string();
                let to = rng.u8(1..14).to_string();
                json!({"field": "Story Points", "fieldtype": "custom", "fieldId": "customfield_10010",
                       "from": null, "fromString": from, "to": null, "toString": to})
            }
        };
        items.push(item);
    }
    items
}

impl Site {
    /// Generate the site for `spec`; `base_url` is used for every `self` link.
    pub fn generate(spec: &SiteSpec, base_url: &str) -> Site {
        let mut rng = Rng::with_seed(spec.seed);
        let users = gen_users(&mut rng, spec.users.max(2));
        let humans: Vec<usize> = (0..users.len())
            .filter(|&i| users[i].account_type == "atlassian")
            .collect();
        let apps: Vec<usize> = (0..users.len())
            .filter(|&i| users[i].account_type == "app")
            .collect();
        let statuses = statuses();
        let priorities = priorities();
        let issue_types = issue_types();
        let projects = gen_projects(&mut rng, spec.projects, &users);
        let (boards, sprints) = gen_boards(&mut rng, &projects);

        let n_projects = projects.len().max(1);
        let per = spec.issues_per_project;
        let total = n_projects * per;
        let start = timeline_start();
        let end = timeline_end();
        // Creation times interleave projects over ~10 months of 2024.
        let step = if total == 0 {
            0
        } else {
            (300 * DAY_MS) / total as i64
        };

        let mut issues: Vec<Issue> = Vec::with_capacity(total);
        let mut next_id = 10001u64;
        let mut comment_id = 10000u64;
        let mut worklog_id = 10000u64;
        let mut history_id = 10000u64;
        let mut link_id = 10000u64;
        let mut attachment_id = 10000u64;

        for (p, project) in projects.iter().enumerate() {
            let project_sprints: Vec<usize> = boards
                .iter()
                .find(|b| b.project == p && b.kind == "scrum")
                .map(|b| b.sprints.clone())
                .unwrap_or_default();
            let project_start = issues.len();
            for number in 1..=per {
                let g = ((number - 1) * n_projects + p) as i64;
                let created_ms = start + g * step + rng.i64(0..3 * HOUR_MS);
                let updated_ms = (created_ms + rng.i64(0..45 * DAY_MS))
                    .min(end)
                    .max(created_ms);
                let offset = pick_offset(&mut rng);
                let issue_type = if number == 1 {
                    TYPE_EPIC
                } else if number % 12 == 7 {
                    TYPE_SUBTASK
                } else {
                    [TYPE_BUG, TYPE_STORY, TYPE_TASK][rng.usize(..3)]
                };
                let parent = match issue_type {
                    TYPE_EPIC => None,
                    TYPE_SUBTASK => {
                        // The previous issue, unless it is the epic or a subtask itself.
                        let prev = issues.len() - 1;
                        (number > 2
                            && issues[prev].issue_type != TYPE_SUBTASK
                            && issues[prev].issue_type != TYPE_EPIC)
                            .then_some(prev)
                            .or(Some(project_start).filter(|_| number > 1))
                    }
                    _ => (rng.bool() && number > 1).then_some(project_start),
                };
                let issue_type = if issue_type == TYPE_SUBTASK
                    && parent.is_some_and(|i| issues[i].issue_type == TYPE_EPIC)
                {
                    TYPE_TASK
                } else {
                    issue_type
                };
                let status = match rng.u8(..10) {
                    0..=2 => STATUS_TODO,
                    3..=4 => 1,
                    5 => 2,
                    _ => STATUS_DONE,
                };
                let status_changed = between(&mut rng, created_ms, updated_ms);
                let resolution_date = (status == STATUS_DONE).then(|| {
                    Stamp::utc(between(&mut rng, status_changed, updated_ms)).with_offset(offset)
                });
                let summary = format!("{} {}", pick(&mut rng, VERBS), pick(&mut rng, OBJECTS));
                let key = format!("{}-{}", project.key, number);
                let description = (rng.u8(..5) != 0).then(|| adf_paragraphs(&mut rng, &key));
                let environment =
                    (rng.u8(..6) == 0).then(|| format!("Chrome {} on macOS", 110 + rng.u8(..20)));
                let assignee = (rng.u8(..5) != 0).then(|| *pick(&mut rng, &humans));
                let reporter = *pick(&mut rng, &humans);
                let creator = if rng.u8(..4) == 0 {
                    *pick(&mut rng, &humans)
                } else {
                    reporter
                };
                let mut labels: Vec<String> = Vec::new();
                for _ in 0..rng.usize(..4) {
                    let l = pick(&mut rng, LABELS).to_string();
                    if !labels.contains(&l) {
                        labels.push(l);
                    }
                }
                let components: Vec<usize> = match rng.u8(..4) {
                    0 => vec![],
                    1 => vec![0, 2],
                    n => vec![usize::from(n) - 1],
                };
                let fix_versions: Vec<usize> = if status == STATUS_DONE {
                    vec![rng.usize(..2)]
                } else if rng.bool() {
                    vec![2]
                } else {
                    vec![]
                };
                let versions: Vec<usize> = if issue_type == TYPE_BUG && rng.bool() {
                    vec![rng.usize(..2)]
                } else {
                    vec![]
                };
                let due = (rng.u8(..3) == 0)
                    .then(|| Stamp::utc(updated_ms + rng.i64(0..30) * DAY_MS).date());
                let start_date = (rng.u8(..4) == 0).then(|| Stamp::utc(created_ms).date());
                let sprint =
                    (!project_sprints.is_empty() && issue_type != TYPE_EPIC && rng.u8(..5) < 3)
                        .then(|| *pick(&mut rng, &project_sprints));
                let original_estimate = (rng.bool()).then(|| i64::from(rng.u8(1..17)) * 3600);
                let story_points = (issue_type == TYPE_STORY || rng.u8(..4) == 0)
                    .then(|| f64::from([1u8, 2, 3, 5, 8, 13][rng.usize(..6)]));
                let severity = (issue_type == TYPE_BUG).then(|| rng.usize(..SEVERITIES.len()));
                let customer_notes = (project.simplified && rng.bool())
                    .then(|| format!("Reported by customer #{}", rng.u16(100..999)));

                // Comments.
                let mut comments = Vec::new();
                for _ in 0..rng.usize(..6) {
                    comment_id += 1;
                    let c_created = between(&mut rng, created_ms, updated_ms);
                    let c_updated = if rng.u8(..4) == 0 {
                        between(&mut rng, c_created, updated_ms)
                    } else {
                        c_created
                    };
                    let c_offset = pick_offset(&mut rng);
                    let author = *pick(&mut rng, &humans);
                    comments.push(Comment {
                        id: comment_id,
                        author,
                        update_author: if rng.u8(..5) == 0 {
                            *pick(&mut rng, &humans)
                        } else {
                            author
                        },
                        text: pick(&mut rng, COMMENT_TEXTS).to_string(),
                        created: Stamp::utc(c_created).with_offset(c_offset),
                        updated: Stamp::utc(c_updated).with_offset(c_offset),
                        restricted: rng.u8(..8) == 0,
                    });
                }
                comments.sort_by_key(|c| (c.created.ms, c.id));

                // Worklogs.
                let mut worklogs = Vec::new();
                for _ in 0..rng.usize(..4) {
                    worklog_id += 1;
                    let started = between(&mut rng, created_ms, updated_ms);
                    let seconds = i64::from(rng.u8(1..17)) * 900;
                    let w_created = (started + seconds * 1000 + rng.i64(0..MINUTE_MS))
                        .min(updated_ms)
                        .max(started);
                    let author = *pick(&mut rng, &humans);
                    worklogs.push(Worklog {
                        id: worklog_id,
                        author,
                        update_author: author,
                        text: (rng.u8(..3) != 0).then(|| pick(&mut rng, WORKLOG_TEXTS).to_string()),
                        created: Stamp::utc(w_created),
                        updated: Stamp::utc(w_created),
                        started: Stamp::utc(started).with_offset(pick_offset(&mut rng)),
                        seconds,
                        restricted: rng.u8(..10) == 0,
                    });
                }
                worklogs.sort_by_key(|w| (w.created.ms, w.id));

                // Changelog histories: a few issues have more than the embedded cap.
                let g_index = issues.len();
                let n_hist = if spec.large_changelog_every > 0
                    && g_index % spec.large_changelog_every == 3
                {
                    spec.large_changelog_len + rng.usize(..10)
                } else {
                    rng.usize(..9)
                };
                let sprint_info = sprint.map(|s| (sprints[s].name.clone(), sprints[s].id));
                let mut times: Vec<i64> = (0..n_hist)
                    .map(|_| between(&mut rng, created_ms, updated_ms))
                    .collect();
                times.sort_unstable();
                let mut current_status = STATUS_TODO;
                let mut histories = Vec::with_capacity(n_hist);
                for t in times {
                    history_id += 1;
                    let automated = !apps.is_empty() && rng.u8(..6) == 0;
                    let author = if automated {
                        *pick(&mut rng, &apps)
                    } else {
                        *pick(&mut rng, &humans)
                    };
                    let items = history_items(
                        &mut rng,
                        &users,
                        &humans,
                        &statuses,
                        &priorities,
                        sprint_info.as_ref().map(|(n, id)| (n.as_str(), *id)),
                        &mut current_status,
                    );
                    histories.push(History {
                        id: history_id,
                        author,
                        created: Stamp::utc(t).with_offset(offset),
                        items,
                        metadata: automated.then(|| {
                            json!({"type": "jira.automation", "description": "Automation rule",
                                   "activityDescription": "Automation for Jira",
                                   "actor": {"id": users[author].account_id, "type": "application", "displayName": users[author].display_name}})
                        }),
                    });
                }

                let attachments = if number % 7 == 0 {
                    attachment_id += 1;
                    vec![Attachment {
                        id: attachment_id,
                        filename: format!("screenshot-{number}.png"),
                        author: reporter,
                        created: Stamp::utc(created_ms + 5 * MINUTE_MS),
                        size: i64::from(rng.u32(1_000..900_000)),
                        mime: "image/png",
                    }]
                } else {
                    vec![]
                };

                issues.push(Issue {
                    id: next_id,
                    key,
                    project: p,
                    number,
                    issue_type,
                    summary,
                    description,
                    environment,
                    status,
                    priority: rng.usize(..priorities.len()),
                    assignee,
                    reporter,
                    creator,
                    labels,
                    created: Stamp::utc(created_ms).with_offset(offset),
                    updated: Stamp::utc(updated_ms).with_offset(offset),
                    status_changed: Stamp::utc(status_changed).with_offset(offset),
                    resolution_date,
                    due,
                    start_date,
                    components,
                    fix_versions,
                    versions,
                    parent,
                    subtasks: Vec::new(),
                    links: Vec::new(),
                    attachments,
                    original_estimate,
                    story_points,
                    sprint,
                    severity,
                    customer_notes,
                    watch_count: i64::from(rng.u8(..4)),
                    votes: i64::from(rng.u8(..3)),
                    comments,
                    worklogs,
                    histories,
                });
                next_id += 1;
            }
        }

        // Subtask lists and "Blocks" links (stored on both ends).
        for i in 0..issues.len() {
            if let Some(parent) = issues[i].parent
                && issues[i].issue_type == TYPE_SUBTASK
            {
                issues[parent].subtasks.push(i);
            }
            if issues[i].number % 5 == 3 && issues[i].number > 1 {
                link_id += 1;
                let other = i - 1;
                issues[i].links.push(Link {
                    id: link_id,
                    other,
                    outward: true,
                });
                issues[other].links.push(Link {
                    id: link_id,
                    other: i,
                    outward: false,
                });
            }
        }

        make_ties(&mut issues, n_projects, per);

        let by_key = issues
            .iter()
            .enumerate()
            .map(|(i, x)| (x.key.clone(), i))
            .collect();
        let by_id = issues.iter().enumerate().map(|(i, x)| (x.id, i)).collect();
        Site {
            base_url: base_url.trim_end_matches('/').to_string(),
            embedded_changelog_cap: spec.embedded_changelog_cap,
            users,
            statuses,
            priorities,
            issue_types,
            fields: fields(),
            projects,
            issues,
            boards,
            sprints,
            by_key,
            by_id,
            next_comment_id: comment_id + 1,
            last_touch_ms: 0,
            touched: 0,
        }
    }

    /// Find an issue by key (case-insensitive) or numeric id.
    pub fn find_issue(&self, id_or_key: &str) -> Option<usize> {
        if let Ok(id) = id_or_key.parse::<u64>() {
            return self.by_id.get(&id).copied();
        }
        self.by_key.get(&id_or_key.to_ascii_uppercase()).copied()
    }

    /// Object counts.
    pub fn totals(&self) -> SiteTotals {
        let cap = self.embedded_changelog_cap;
        let mut per_project = BTreeMap::new();
        for p in &self.projects {
            per_project.insert(p.key.clone(), 0);
        }
        for issue in &self.issues {
            *per_project
                .entry(self.projects[issue.project].key.clone())
                .or_insert(0) += 1;
        }
        let mut unique: Vec<i64> = self.sprints.iter().map(|s| s.id).collect();
        unique.sort_unstable();
        unique.dedup();
        SiteTotals {
            users: self.users.len(),
            fields: self.fields.len(),
            statuses: self.statuses.len(),
            priorities: self.priorities.len(),
            projects: self.projects.len(),
            issues: self.issues.len(),
            issues_per_project: per_project,
            comments: self.issues.iter().map(|i| i.comments.len()).sum(),
            worklogs: self.issues.iter().map(|i| i.worklogs.len()).sum(),
            changelogs: self.issues.iter().map(|i| i.histories.len()).sum(),
            issues_with_truncated_changelog: self
                .issues
                .iter()
                .filter(|i| i.histories.len() > cap)
                .count(),
            embedded_changelog_cap: cap,
            boards: self.boards.len(),
            scrum_boards: self.boards.iter().filter(|b| b.kind == "scrum").count(),
            kanban_boards: self.boards.iter().filter(|b| b.kind == "kanban").count(),
            sprints: self.boards.iter().map(|b| b.sprints.len()).sum(),
            sprints_unique: unique.len(),
            touched: self.touched,
        }
    }

    /// Set `updated` of the given issues to `now_ms` (rendered `+0000`) and add one
    /// comment to each. `now_ms` is raised to stay monotonic across touches.
    pub fn touch(&mut self, indexes: &[usize], now_ms: i64) -> (Vec<String>, Stamp) {
        let now = Stamp::utc(now_ms.max(self.last_touch_ms));
        self.last_touch_ms = now.ms;
        let mut keys = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let id = self.next_comment_id;
            self.next_comment_id += 1;
            let Some(issue) = self.issues.get_mut(i) else {
                continue;
            };
            issue.updated = now;
            issue.comments.push(Comment {
                id,
                author: 0,
                update_author: 0,
                text: format!("Touched by jira-mock at {}.", now.jira()),
                created: now,
                updated: now,
                restricted: false,
            });
            self.touched += 1;
            keys.push(issue.key.clone());
        }
        (keys, now)
    }
}

/// Give some issues exactly the same `updated` instant as another issue, to
/// exercise `ORDER BY updated, key` tie-breaks and inclusive `>=` bookmarks:
/// pairs across neighbouring projects (same issue number) and pairs of consecutive
/// issues within a project. The later of the two instants wins, so `updated`
/// never goes before `created`.
fn make_ties(issues: &mut [Issue], n_projects: usize, per: usize) {
    let at = |p: usize, number: usize| p * per + number - 1;
    for p in (0..n_projects.saturating_sub(1)).step_by(2) {
        for number in (2..=per).step_by(6) {
            let (a, b) = (at(p, number), at(p + 1, number));
            let ms = issues[a].updated.ms.max(issues[b].updated.ms);
            issues[a].updated.ms = ms;
            issues[b].updated.ms = ms;
        }
    }
    for p in 0..n_projects {
        for number in (5..per).step_by(10) {
            let (a, b) = (at(p, number), at(p, number + 1));
            let ms = issues[a].updated.ms.max(issues[b].updated.ms);
            issues[a].updated.ms = ms;
            issues[b].updated.ms = ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SiteSpec {
        SiteSpec {
            seed: 42,
            users: 25,
            projects: 3,
            issues_per_project: 40,
            embedded_changelog_cap: 40,
            large_changelog_every: 17,
            large_changelog_len: 45,
        }
    }

    #[test]
    fn deterministic_and_sane() {
        let a = Site::generate(&spec(), "http://x");
        let b = Site::generate(&spec(), "http://x");
        assert_eq!(a.totals(), b.totals());
        assert_eq!(a.issues[7].updated, b.issues[7].updated);
        assert_eq!(a.users[3].account_id, b.users[3].account_id);
        let t = a.totals();
        assert_eq!(t.issues, 120);
        assert!(t.issues_with_truncated_changelog >= 2, "{t:?}");
        for issue in &a.issues {
            assert!(issue.updated.ms >= issue.created.ms, "{}", issue.key);
            for h in issue.histories.windows(2) {
                assert!(h[0].created.ms <= h[1].created.ms);
            }
        }
        // Ties on updated exist across different issues.
        let mut ms: Vec<i64> = a.issues.iter().map(|i| i.updated.ms).collect();
        ms.sort_unstable();
        let before = ms.len();
        ms.dedup();
        assert!(ms.len() < before);
        // Some non-UTC offsets.
        assert!(a.issues.iter().any(|i| i.updated.offset_min != 0));
        // id order == key order.
        for w in a.issues.windows(2) {
            assert!(w[0].id < w[1].id);
            let pk = |i: &Issue| (a.projects[i.project].key.clone(), i.number);
            assert!(pk(&w[0]) < pk(&w[1]));
        }
        let c = Site::generate(&SiteSpec { seed: 7, ..spec() }, "http://x");
        assert_ne!(a.users[3].account_id, c.users[3].account_id);
    }
}
