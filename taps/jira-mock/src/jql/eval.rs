//! Evaluation of a parsed query against the site: values are resolved (project
//! keys, status names, dates) and every issue is tested, then sorted.

use std::cmp::Ordering;

use super::JqlError;
use super::ast::{Expr, Field, Literal, Op, Query, SortField};
use crate::site::{Issue, Site};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, date_ms};

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
