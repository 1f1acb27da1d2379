//! Stream-map expressions: Python expressions, as the Meltano SDK evaluates them with
//! `simpleeval`, parsed by `rustpython-parser` (Python's own grammar) and evaluated here over
//! a small, closed subset. Nothing outside the subset can run: no imports, no attribute
//! access but the listed methods, no loops or comprehensions, no I/O. Every expression is
//! parsed and checked once, at start-up; a call of an unknown function is refused then, with
//! its position.
//!
//! The subset (the SDK's names and functions where it has them):
//!
//! * literals: strings, f-strings without format specs, integers, floats, `True`, `False`,
//!   `None`, lists, tuples (as lists), dicts;
//! * names: each property of the record, `record` and `_` (the whole record), `config`
//!   (`stream_map_config`), `self` (the property's own value), `__stream_name__`;
//! * operators: `+ - * / // % **`, unary `- + not`, `and`, `or`, comparisons (chained),
//!   `in`, `not in`, `is None`, `x if c else y`, `a[k]`, `a[i:j:k]`;
//! * functions: `md5`, `sha256`, `int`, `float`, `str`, `bool`, `len`, `abs`, `round`,
//!   `min`, `max`, `json.dumps`, `json.loads`;
//! * methods of strings (`lower upper strip lstrip rstrip split rsplit replace startswith
//!   endswith title capitalize find zfill join isdigit`) and dicts (`get keys values
//!   items`).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use md5::Digest;
use rustpython_parser::Parse;
use rustpython_parser::ast::{self, Ranged};
use serde_json::{Map, Value, json};

use super::python::{self, Arith, Num};

/// Functions an expression may call by name.
const FUNCTIONS: [&str; 11] = [
    "md5", "sha256", "int", "float", "str", "bool", "len", "abs", "round", "min", "max",
];

/// Methods an expression may call on a value.
const METHODS: [&str; 21] = [
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "split",
    "rsplit",
    "replace",
    "startswith",
    "endswith",
    "title",
    "capitalize",
    "find",
    "zfill",
    "join",
    "isdigit",
    "get",
    "keys",
    "values",
    "items",
    "count",
];

/// An expression that failed at start-up: the character position (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {reason}")]
pub struct ExprProblem {
    /// Where in the expression, counting characters from 1.
    pub position: usize,
    /// What is wrong.
    pub reason: String,
}

/// An expression that failed on a record, in Python's words (`KeyError: 'email'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EvalError {
    /// Python's exception name.
    pub kind: &'static str,
    /// Its message.
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        EvalError {
            kind,
            message: message.into(),
        }
    }
}

/// A parsed and checked expression.
#[derive(Clone)]
pub struct Expression {
    source: String,
    tree: ast::Expr,
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expression({:?})", self.source)
    }
}

/// What an expression sees.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The record.
    pub record: &'a Map<String, Value>,
    /// `stream_map_config`.
    pub config: &'a Value,
    /// The stream's name after mapping (`__stream_name__`).
    pub stream: &'a str,
    /// The source stream's name (`__original_stream_name__`).
    pub original_stream: &'a str,
    /// The mapped property's value in the record, if it has one (`self`).
    pub this: Option<&'a Value>,
}

type Val<'a> = Cow<'a, Value>;

impl Expression {
    /// Parses `source` and checks that it stays within the supported subset.
    pub fn parse(source: &str) -> Result<Expression, ExprProblem> {
        let tree = ast::Expr::parse(source, "<stream map>").map_err(|e| ExprProblem {
            position: char_position(source, u32::from(e.offset) as usize),
            reason: e.error.to_string(),
        })?;
        check(&tree).map_err(|(at, reason)| ExprProblem {
            position: char_position(source, at),
            reason,
        })?;
        Ok(Expression {
            source: source.to_string(),
            tree,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression over one record.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        eval(&self.tree, scope).map(Cow::into_owned)
    }

    /// The JSON Schema of the expression's value, as far as it can be told without data;
    /// `None` when it cannot. `property` gives the schema of a record property by name.
    pub fn infer_schema(&self, property: &dyn Fn(&str) -> Option<Value>) -> Option<Value> {
        infer(&self.tree, property)
    }
}

fn char_position(source: &str, byte: usize) -> usize {
    source
        .get(..byte.min(source.len()))
        .map_or(1, |s| s.chars().count() + 1)
}

fn start(e: &impl Ranged) -> usize {
    u32::from(e.start()) as usize
}

/// Refuses, with its byte offset, any construct outside the subset.
fn check(e: &ast::Expr) -> Result<(), (usize, String)> {
    use ast::Expr as E;
    let refuse = |what: &str| Err((start(e), format!("{what} are not supported in stream maps")));
    match e {
        E::BoolOp(b) => b.values.iter().try_for_each(check),
        E::BinOp(b) => match b.op {
            ast::Operator::Add
            | ast::Operator::Sub
            | ast::Operator::Mult
            | ast::Operator::Div
            | ast::Operator::FloorDiv
            | ast::Operator::Mod
            | ast::Operator::Pow => check(&b.left).and_then(|()| check(&b.right)),
            _ => refuse("bitwise and matrix operators"),
        },
        E::UnaryOp(u) => match u.op {
            ast::UnaryOp::Invert => refuse("bitwise operators"),
            _ => check(&u.operand),
        },
        E::IfExp(i) => [&i.test, &i.body, &i.orelse]
            .into_iter()
            .try_for_each(|e| check(e)),
        E::Dict(d) => {
            for (k, v) in d.keys.iter().zip(&d.values) {
                match k {
                    Some(k) => check(k)?,
                    None => return refuse("dict unpacking (**)"),
                }
                check(v)?;
            }
            Ok(())
        }
        E::Compare(c) => {
            check(&c.left)?;
            c.comparators.iter().try_for_each(check)
        }
        E::Call(call) => {
            if let Some(k) = call.keywords.first() {
                return Err((start(k), "keyword arguments are not supported".into()));
            }
            match call.func.as_ref() {
                E::Name(n) if FUNCTIONS.contains(&n.id.as_str()) => {}
                E::Name(n) => {
                    return Err((
                        start(n),
                        format!(
                            "unknown function '{}' (supported: {})",
                            n.id,
                            FUNCTIONS.join(", ")
                        ),
                    ));
                }
                E::Attribute(a) => match a.value.as_ref() {
                    E::Name(m) if m.id.as_str() == "json" => {
                        if !matches!(a.attr.as_str(), "dumps" | "loads") {
                            return Err((
                                start(a),
                                format!(
                                    "unknown function 'json.{}' (supported: json.dumps, json.loads)",
                                    a.attr
                                ),
                            ));
                        }
                    }
                    value => {
                        check(value)?;
                        if !METHODS.contains(&a.attr.as_str()) {
                            return Err((
                                start(a),
                                format!(
                                    "unknown method '{}' (supported: {})",
                                    a.attr,
                                    METHODS.join(", ")
                                ),
                            ));
                        }
                    }
                },
                other => {
                    return Err((
                        start(other),
                        "only named functions and methods can be called".into(),
                    ));
                }
            }
            for arg in &call.args {
                if matches!(arg, E::Starred(_)) {
                    return Err((start(arg), "argument unpacking (*) is not supported".into()));
                }
                check(arg)?;
            }
            Ok(())
        }
        E::FormattedValue(f) => {
            if f.format_spec.is_some() {
                return refuse("f-string format specs");
            }
            if !matches!(
                f.conversion,
                ast::ConversionFlag::None | ast::ConversionFlag::Str
            ) {
                return refuse("f-string conversions other than !s");
            }
            check(&f.value)
        }
        E::JoinedStr(j) => j.values.iter().try_for_each(check),
        E::Constant(c) => match c.value {
            ast::Constant::None
            | ast::Constant::Bool(_)
            | ast::Constant::Str(_)
            | ast::Constant::Int(_)
            | ast::Constant::Float(_) => Ok(()),
            ast::Constant::Tuple(_) => Ok(()),
            _ => refuse("bytes, complex numbers and ellipses"),
        },
        E::Attribute(a) => Err((
            start(a),
            format!(
                "attribute '{}' is not supported (only method calls such as .lower() are); \
                 use record['...'] for a property",
                a.attr
            ),
        )),
        E::Subscript(s) => {
            check(&s.value)?;
            check(&s.slice)
        }
        E::Slice(s) => [&s.lower, &s.upper, &s.step]
            .into_iter()
            .flatten()
            .try_for_each(|e| check(e)),
        E::Name(n) => match n.id.as_str() {
            "fake" => Err((start(n), "Faker ('fake') is not supported".into())),
            "datetime" => Err((start(n), "the 'datetime' module is not supported".into())),
            "json" => Err((
                start(n),
                "'json' can only be called as json.dumps(...) or json.loads(...)".into(),
            )),
            _ => Ok(()),
        },
        E::List(l) => l.elts.iter().try_for_each(check),
        E::Tuple(t) => t.elts.iter().try_for_each(check),
        E::NamedExpr(_) => refuse("assignment expressions (:=)"),
        E::Lambda(_) => refuse("lambdas"),
        E::Set(_) => refuse("sets"),
        E::ListComp(_) | E::SetComp(_) | E::DictComp(_) | E::GeneratorExp(_) => {
            refuse("comprehensions")
        }
        E::Await(_) | E::Yield(_) | E::YieldFrom(_) => refuse("await and yield"),
        E::Starred(_) => refuse("starred expressions"),
    }
}

fn owned<'a>(v: Value) -> Val<'a> {
    Cow::Owned(v)
}

fn eval<'a>(e: &ast::Expr, s: &Scope<'a>) -> Result<Val<'a>, EvalError> {
    use ast::Expr as E;
    match e {
        E::Constant(c) => Ok(owned(constant(&c.value)?)),
        E::Name(n) => name(n.id.as_str(), s),
        E::BoolOp(b) => {
            let mut last = owned(Value::Null);
            for (i, value) in b.values.iter().enumerate() {
                last = eval(value, s)?;
                let truth = python::truthy(&last);
                let decided = match b.op {
                    ast::BoolOp::And => !truth,
                    ast::BoolOp::Or => truth,
                };
                if decided || i + 1 == b.values.len() {
                    break;
                }
            }
            Ok(last)
        }
        E::UnaryOp(u) => {
            let v = eval(&u.operand, s)?;
            match u.op {
                ast::UnaryOp::Not => Ok(owned(Value::Bool(!python::truthy(&v)))),
                ast::UnaryOp::USub => match Num::of(&v) {
                    Some(Num::Int(i)) => {
                        i.checked_neg()
                            .map(|n| owned(Value::from(n)))
                            .ok_or_else(|| {
                                EvalError::new("OverflowError", "integer negation overflows")
                            })
                    }
                    Some(Num::Float(f)) => python::number(Num::Float(-f)).map(owned),
                    None => Err(bad_operand("unary -", &v)),
                },
                ast::UnaryOp::UAdd => match Num::of(&v) {
                    Some(n) => python::number(n).map(owned),
                    None => Err(bad_operand("unary +", &v)),
                },
                ast::UnaryOp::Invert => Err(bad_operand("unary ~", &v)),
            }
        }
        E::BinOp(b) => {
            let op = match b.op {
                ast::Operator::Add => Arith::Add,
                ast::Operator::Sub => Arith::Sub,
                ast::Operator::Mult => Arith::Mul,
                ast::Operator::Div => Arith::Div,
                ast::Operator::FloorDiv => Arith::FloorDiv,
                ast::Operator::Mod => Arith::Mod,
                ast::Operator::Pow => Arith::Pow,
                _ => return Err(EvalError::new("SyntaxError", "unsupported operator")),
            };
            let left = eval(&b.left, s)?;
            let right = eval(&b.right, s)?;
            python::arith(op, &left, &right).map(owned)
        }
        E::IfExp(i) => {
            if python::truthy(&*eval(&i.test, s)?) {
                eval(&i.body, s)
            } else {
                eval(&i.orelse, s)
            }
        }
        E::Compare(c) => {
            let mut left = eval(&c.left, s)?;
            for (op, right) in c.ops.iter().zip(&c.comparators) {
                let right = eval(right, s)?;
                if !compare(*op, &left, &right)? {
                    return Ok(owned(Value::Bool(false)));
                }
                left = right;
            }
            Ok(owned(Value::Bool(true)))
        }
        E::Call(call) => {
            let args = call
                .args
                .iter()
                .map(|a| eval(a, s))
                .collect::<Result<Vec<_>, _>>()?;
            match call.func.as_ref() {
                E::Name(n) => function(n.id.as_str(), &args).map(owned),
                E::Attribute(a) => match a.value.as_ref() {
                    E::Name(m) if m.id.as_str() == "json" => {
                        json_function(a.attr.as_str(), &args).map(owned)
                    }
                    value => {
                        let receiver = eval(value, s)?;
                        method(&receiver, a.attr.as_str(), &args).map(owned)
                    }
                },
                _ => Err(EvalError::new("TypeError", "object is not callable")),
            }
        }
        E::Subscript(sub) => {
            // `record['x']` reads the property without copying the record.
            if let E::Name(n) = sub.value.as_ref()
                && matches!(n.id.as_str(), "record" | "_")
                && !matches!(sub.slice.as_ref(), E::Slice(_))
            {
                let key = eval(&sub.slice, s)?;
                return match key.as_ref() {
                    Value::String(k) => python::member(s.record, k).map(Cow::Borrowed),
                    other => Err(EvalError::new("KeyError", python::repr(other))),
                };
            }
            let container = eval(&sub.value, s)?;
            if let E::Slice(sl) = sub.slice.as_ref() {
                let bound = |b: &Option<Box<ast::Expr>>| -> Result<Option<i64>, EvalError> {
                    match b {
                        None => Ok(None),
                        Some(b) => match eval(b, s)?.as_ref() {
                            Value::Null => Ok(None),
                            v => match Num::of(v) {
                                Some(Num::Int(i)) => Ok(Some(i)),
                                _ => Err(EvalError::new(
                                    "TypeError",
                                    "slice indices must be integers or None",
                                )),
                            },
                        },
                    }
                };
                let (lower, upper, step) = (bound(&sl.lower)?, bound(&sl.upper)?, bound(&sl.step)?);
                return python::slice(&container, lower, upper, step).map(owned);
            }
            let key = eval(&sub.slice, s)?;
            match (container, key.as_ref()) {
                (Cow::Borrowed(Value::Object(map)), Value::String(k)) => {
                    python::member(map, k).map(Cow::Borrowed)
                }
                (container, key) => python::index(&container, key).map(owned),
            }
        }
        E::List(l) => list(&l.elts, s),
        E::Tuple(t) => list(&t.elts, s),
        E::Dict(d) => {
            let mut map = Map::new();
            for (k, v) in d.keys.iter().zip(&d.values) {
                let Some(k) = k else {
                    return Err(EvalError::new(
                        "SyntaxError",
                        "dict unpacking is not supported",
                    ));
                };
                let key = match eval(k, s)?.into_owned() {
                    Value::String(k) => k,
                    other => python::to_str(&other),
                };
                map.insert(key, eval(v, s)?.into_owned());
            }
            Ok(owned(Value::Object(map)))
        }
        E::JoinedStr(j) => {
            let mut out = String::new();
            for part in &j.values {
                match part {
                    E::Constant(c) => {
                        if let ast::Constant::Str(text) = &c.value {
                            out.push_str(text);
                        }
                    }
                    E::FormattedValue(f) => out.push_str(&python::to_str(&*eval(&f.value, s)?)),
                    other => out.push_str(&python::to_str(&*eval(other, s)?)),
                }
            }
            Ok(owned(Value::String(out)))
        }
        E::FormattedValue(f) => Ok(owned(Value::String(python::to_str(&*eval(&f.value, s)?)))),
        _ => Err(EvalError::new("SyntaxError", "unsupported expression")),
    }
}

fn list<'a>(items: &[ast::Expr], s: &Scope<'a>) -> Result<Val<'a>, EvalError> {
    items
        .iter()
        .map(|e| eval(e, s).map(Cow::into_owned))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| owned(Value::Array(v)))
}

fn constant(c: &ast::Constant) -> Result<Value, EvalError> {
    Ok(match c {
        ast::Constant::None => Value::Null,
        ast::Constant::Bool(b) => Value::Bool(*b),
        ast::Constant::Str(s) => Value::String(s.clone()),
        ast::Constant::Int(i) => Value::from(i64::try_from(i).map_err(|_| {
            EvalError::new("OverflowError", format!("{i} does not fit in 64 bits"))
        })?),
        ast::Constant::Float(f) => python::number(Num::Float(*f))?,
        ast::Constant::Tuple(items) => {
            Value::Array(items.iter().map(constant).collect::<Result<_, _>>()?)
        }
        _ => return Err(EvalError::new("SyntaxError", "unsupported constant")),
    })
}

fn name<'a>(id: &str, s: &Scope<'a>) -> Result<Val<'a>, EvalError> {
    match id {
        "record" | "_" => Ok(owned(Value::Object(s.record.clone()))),
        "config" => Ok(Cow::Borrowed(s.config)),
        "__stream_name__" => Ok(owned(Value::String(s.stream.to_string()))),
        "__original_stream_name__" => Ok(owned(Value::String(s.original_stream.to_string()))),
        "self" => Ok(s.this.map_or(owned(Value::Null), Cow::Borrowed)),
        _ => s
            .record
            .get(id)
            .map(Cow::Borrowed)
            .ok_or_else(|| EvalError::new("NameError", format!("name '{id}' is not defined"))),
    }
}

fn bad_operand(op: &str, v: &Value) -> EvalError {
    EvalError::new(
        "TypeError",
        format!("bad operand type for {op}: '{}'", python::type_name(v)),
    )
}

fn compare(op: ast::CmpOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    use ast::CmpOp as C;
    let ordered = |symbol: &str, want: &dyn Fn(Ordering) -> bool| {
        python::order(symbol, a, b).map(|o| o.is_some_and(want))
    };
    match op {
        C::Eq => Ok(python::equal(a, b)),
        C::NotEq => Ok(!python::equal(a, b)),
        C::Lt => ordered("<", &|o| o == Ordering::Less),
        C::LtE => ordered("<=", &|o| o != Ordering::Greater),
        C::Gt => ordered(">", &|o| o == Ordering::Greater),
        C::GtE => ordered(">=", &|o| o != Ordering::Less),
        C::In => python::contains(b, a),
        C::NotIn => python::contains(b, a).map(|c| !c),
        // Identity is only meaningful here for None, True and False.
        C::Is => Ok(a == b && matches!(a, Value::Null | Value::Bool(_))),
        C::IsNot => Ok(!(a == b && matches!(a, Value::Null | Value::Bool(_)))),
    }
}

fn arity(name: &str, args: &[Val<'_>], low: usize, high: usize) -> Result<(), EvalError> {
    if args.len() < low || args.len() > high {
        let wanted = if low == high {
            format!("{low}")
        } else {
            format!("{low} to {high}")
        };
        return Err(EvalError::new(
            "TypeError",
            format!("{name}() takes {wanted} argument(s) ({} given)", args.len()),
        ));
    }
    Ok(())
}

fn function(name: &str, args: &[Val<'_>]) -> Result<Value, EvalError> {
    match name {
        "md5" | "sha256" => {
            arity(name, args, 1, 1)?;
            // A missing value stays missing rather than hashing the text "None".
            if args[0].is_null() {
                return Ok(Value::Null);
            }
            let text = python::to_str(&args[0]);
            let hex = if name == "md5" {
                hex(&md5::Md5::digest(text.as_bytes()))
            } else {
                hex(&sha2::Sha256::digest(text.as_bytes()))
            };
            Ok(Value::String(hex))
        }
        "str" => {
            arity(name, args, 0, 1)?;
            Ok(Value::String(
                args.first().map(|a| python::to_str(a)).unwrap_or_default(),
            ))
        }
        "bool" => {
            arity(name, args, 0, 1)?;
            Ok(Value::Bool(args.first().is_some_and(|a| python::truthy(a))))
        }
        "int" => {
            arity(name, args, 0, 1)?;
            let Some(a) = args.first() else {
                return Ok(json!(0));
            };
            to_int(a).map(Value::from)
        }
        "float" => {
            arity(name, args, 0, 1)?;
            let Some(a) = args.first() else {
                return Ok(json!(0.0));
            };
            let f = match a.as_ref() {
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
                    EvalError::new(
                        "ValueError",
                        // The value itself stays out of errors (it may be a secret).
                        format!(
                            "could not convert string to float (a str of {} characters)",
                            s.chars().count()
                        ),
                    )
                })?,
                v => match Num::of(v) {
                    Some(Num::Int(i)) => i as f64,
                    Some(Num::Float(f)) => f,
                    None => {
                        return Err(EvalError::new(
                            "TypeError",
                            format!(
                                "float() argument must be a string or a real number, not '{}'",
                                python::type_name(v)
                            ),
                        ));
                    }
                },
            };
            python::number(Num::Float(f))
        }
        "len" => {
            arity(name, args, 1, 1)?;
            match args[0].as_ref() {
                Value::String(s) => Ok(Value::from(s.chars().count())),
                Value::Array(a) => Ok(Value::from(a.len())),
                Value::Object(o) => Ok(Value::from(o.len())),
                v => Err(EvalError::new(
                    "TypeError",
                    format!("object of type '{}' has no len()", python::type_name(v)),
                )),
            }
        }
        "abs" => {
            arity(name, args, 1, 1)?;
            match Num::of(&args[0]) {
                Some(Num::Int(i)) => i
                    .checked_abs()
                    .map(Value::from)
                    .ok_or_else(|| EvalError::new("OverflowError", "abs() overflows")),
                Some(Num::Float(f)) => python::number(Num::Float(f.abs())),
                None => Err(bad_operand("abs()", &args[0])),
            }
        }
        "round" => {
            arity(name, args, 1, 2)?;
            let digits = match args.get(1) {
                None => None,
                Some(d) => Some(to_int(d)?),
            };
            match (Num::of(&args[0]), digits) {
                (Some(Num::Int(i)), None) => Ok(Value::from(i)),
                (Some(Num::Int(i)), Some(d)) if d >= 0 => Ok(Value::from(i)),
                // round(1250, -2) is 1200: to a multiple of 10^-d, ties to even.
                (Some(Num::Int(i)), Some(d)) => {
                    let Some(unit) = u32::try_from(d.unsigned_abs())
                        .ok()
                        .and_then(|e| 10i64.checked_pow(e))
                    else {
                        // 10^-d is beyond 64 bits: 0, or a multiple of it that overflows.
                        return if i.unsigned_abs() <= 5_000_000_000_000_000_000 {
                            Ok(Value::from(0))
                        } else {
                            Err(EvalError::new("OverflowError", "round() overflows"))
                        };
                    };
                    let (q, r) = (i.div_euclid(unit), i.rem_euclid(unit));
                    let up = r * 2 > unit || (r * 2 == unit && q % 2 != 0);
                    (if up { q + 1 } else { q })
                        .checked_mul(unit)
                        .map(Value::from)
                        .ok_or_else(|| EvalError::new("OverflowError", "round() overflows"))
                }
                (Some(Num::Float(f)), None) => {
                    let r = round_half_even(f);
                    if r.is_finite() && r.abs() < 9.2e18 {
                        Ok(Value::from(r as i64))
                    } else {
                        Err(EvalError::new(
                            "OverflowError",
                            format!(
                                "cannot convert float {} to a 64-bit integer",
                                python::float_repr(f)
                            ),
                        ))
                    }
                }
                // Python rounds the exact binary value, as formatting does: 2.675 is
                // 2.67499999... and rounds to 2.67.
                (Some(Num::Float(f)), Some(d)) if d >= 0 => {
                    let text = format!("{:.*}", d.min(340) as usize, f);
                    python::number(Num::Float(text.parse().unwrap_or(f)))
                }
                (Some(Num::Float(f)), Some(d)) if d < -308 => {
                    python::number(Num::Float(0.0f64.copysign(f)))
                }
                (Some(Num::Float(f)), Some(d)) => {
                    let scale = 10f64.powi(d.clamp(-308, 0).unsigned_abs() as i32);
                    python::number(Num::Float(round_half_even(f / scale) * scale))
                }
                (None, _) => Err(EvalError::new(
                    "TypeError",
                    format!(
                        "type {} doesn't define __round__ method",
                        python::type_name(&args[0])
                    ),
                )),
            }
        }
        "min" | "max" => {
            let items: Vec<Value> = match args {
                [one] => match one.as_ref() {
                    Value::Array(items) => items.clone(),
                    v => {
                        return Err(EvalError::new(
                            "TypeError",
                            format!("'{}' object is not iterable", python::type_name(v)),
                        ));
                    }
                },
                many => many.iter().map(|a| a.as_ref().clone()).collect(),
            };
            let mut best: Option<Value> = None;
            for item in items {
                best = Some(match best {
                    None => item,
                    Some(b) => {
                        let o = python::order(if name == "min" { "<" } else { ">" }, &item, &b)?;
                        let better = match name {
                            "min" => o == Some(Ordering::Less),
                            _ => o == Some(Ordering::Greater),
                        };
                        if better { item } else { b }
                    }
                });
            }
            best.ok_or_else(|| {
                EvalError::new("ValueError", format!("{name}() arg is an empty sequence"))
            })
        }
        other => Err(EvalError::new(
            "NameError",
            format!("name '{other}' is not defined"),
        )),
    }
}

fn round_half_even(f: f64) -> f64 {
    let r = f.round();
    if (f - f.trunc()).abs() == 0.5 {
        2.0 * (f / 2.0).round()
    } else {
        r
    }
}

fn to_int(v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::String(s) => s.trim().replace('_', "").parse::<i64>().map_err(|_| {
            EvalError::new(
                "ValueError",
                format!(
                    "invalid literal for int() with base 10 (a str of {} characters)",
                    s.chars().count()
                ),
            )
        }),
        other => match Num::of(other) {
            Some(Num::Int(i)) => Ok(i),
            Some(Num::Float(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.trunc() as i64),
            Some(Num::Float(f)) => Err(EvalError::new(
                "OverflowError",
                format!("cannot convert float {} to integer", python::float_repr(f)),
            )),
            None => Err(EvalError::new(
                "TypeError",
                format!(
                    "int() argument must be a string or a real number, not '{}'",
                    python::type_name(other)
                ),
            )),
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_function(name: &str, args: &[Val<'_>]) -> Result<Value, EvalError> {
    arity(&format!("json.{name}"), args, 1, 1)?;
    match name {
        // Python's json.dumps separators: ", " and ": ".
        "dumps" => Ok(Value::String(python_json(&args[0]))),
        _ => match args[0].as_ref() {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| EvalError::new("JSONDecodeError", e.to_string())),
            v => Err(EvalError::new(
                "TypeError",
                format!("the JSON object must be str, not {}", python::type_name(v)),
            )),
        },
    }
}

/// `json.dumps`'s output: `", "` and `": "` separators, Python's float digits, and
/// `ensure_ascii` escapes.
fn python_json(v: &Value) -> String {
    match v {
        Value::String(s) => ascii_json_string(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", ascii_json_string(k), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Number(_) => match Num::of(v) {
            Some(Num::Float(f)) => python::float_repr(f),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

fn ascii_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn string_arg<'v>(
    method: &str,
    args: &'v [Val<'_>],
    at: usize,
) -> Result<Option<&'v str>, EvalError> {
    match args.get(at).map(|a| a.as_ref()) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(EvalError::new(
            "TypeError",
            format!(
                "{method}() argument must be str, not {}",
                python::type_name(v)
            ),
        )),
    }
}

fn method(receiver: &Value, name: &str, args: &[Val<'_>]) -> Result<Value, EvalError> {
    let no_method = || {
        EvalError::new(
            "AttributeError",
            format!(
                "'{}' object has no attribute '{name}'",
                python::type_name(receiver)
            ),
        )
    };
    match receiver {
        Value::String(s) => string_method(s, name, args).ok_or_else(no_method)?,
        Value::Object(map) => {
            match name {
                "get" => {
                    arity(name, args, 1, 2)?;
                    let found = match args[0].as_ref() {
                        Value::String(k) => map.get(k).cloned(),
                        _ => None,
                    };
                    Ok(found
                        .unwrap_or_else(|| args.get(1).map_or(Value::Null, |d| d.as_ref().clone())))
                }
                "keys" => Ok(Value::Array(
                    map.keys().cloned().map(Value::String).collect(),
                )),
                "values" => Ok(Value::Array(map.values().cloned().collect())),
                "items" => Ok(Value::Array(
                    map.iter().map(|(k, v)| json!([k, v])).collect(),
                )),
                _ => Err(no_method()),
            }
        }
        Value::Array(items) if name == "count" => {
            arity(name, args, 1, 1)?;
            Ok(Value::from(
                items.iter().filter(|i| python::equal(i, &args[0])).count(),
            ))
        }
        _ => Err(no_method()),
    }
}

fn string_method(s: &str, name: &str, args: &[Val<'_>]) -> Option<Result<Value, EvalError>> {
    let text = |t: String| Ok(Value::String(t));
    let strip_set = |at: usize| string_arg(name, args, at);
    let result = (|| match name {
        "lower" => text(s.to_lowercase()),
        "upper" => text(s.to_uppercase()),
        "title" => text(title(s)),
        "capitalize" => {
            let mut chars = s.chars();
            text(match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            })
        }
        "strip" | "lstrip" | "rstrip" => {
            arity(name, args, 0, 1)?;
            let set = strip_set(0)?;
            let is_stripped = |c: char| set.map_or(py_space(c), |set| set.contains(c));
            text(
                match name {
                    "strip" => s.trim_matches(is_stripped),
                    "lstrip" => s.trim_start_matches(is_stripped),
                    _ => s.trim_end_matches(is_stripped),
                }
                .to_string(),
            )
        }
        "split" | "rsplit" => {
            arity(name, args, 0, 2)?;
            let sep = strip_set(0)?;
            let max = match args.get(1) {
                None => None,
                Some(m) => Some(to_int(m)?).filter(|m| *m >= 0).map(|m| m as usize),
            };
            let parts: Vec<String> = match (sep, max, name) {
                (Some(""), _, _) => return Err(EvalError::new("ValueError", "empty separator")),
                (Some(sep), None, _) => s.split(sep).map(str::to_string).collect(),
                (Some(sep), Some(m), "split") => s.splitn(m + 1, sep).map(str::to_string).collect(),
                (Some(sep), Some(m), _) => {
                    let mut p: Vec<String> = s.rsplitn(m + 1, sep).map(str::to_string).collect();
                    p.reverse();
                    p
                }
                (None, None, _) => s
                    .split(py_space)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                (None, Some(m), "split") => split_whitespace_n(s, m),
                (None, Some(m), _) => {
                    let reversed: String = s.chars().rev().collect();
                    let mut parts: Vec<String> = split_whitespace_n(&reversed, m)
                        .into_iter()
                        .map(|p| p.chars().rev().collect())
                        .collect();
                    parts.reverse();
                    parts
                }
            };
            Ok(Value::Array(parts.into_iter().map(Value::String).collect()))
        }
        "replace" => {
            arity(name, args, 2, 2)?;
            let (Some(from), Some(to)) = (strip_set(0)?, strip_set(1)?) else {
                return Err(EvalError::new(
                    "TypeError",
                    "replace() arguments must be str",
                ));
            };
            text(s.replace(from, to))
        }
        "startswith" | "endswith" => {
            arity(name, args, 1, 1)?;
            let affixes: Vec<String> = match args[0].as_ref() {
                Value::String(a) => vec![a.clone()],
                Value::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                v => {
                    return Err(EvalError::new(
                        "TypeError",
                        format!(
                            "{name} first arg must be str or a tuple of str, not {}",
                            python::type_name(v)
                        ),
                    ));
                }
            };
            Ok(Value::Bool(affixes.iter().any(|a| {
                if name == "startswith" {
                    s.starts_with(a.as_str())
                } else {
                    s.ends_with(a.as_str())
                }
            })))
        }
        "find" => {
            arity(name, args, 1, 1)?;
            let needle = strip_set(0)?.unwrap_or("");
            Ok(Value::from(
                s.find(needle)
                    .map_or(-1, |at| s[..at].chars().count() as i64),
            ))
        }
        "count" => {
            arity(name, args, 1, 1)?;
            let needle = strip_set(0)?.unwrap_or("");
            Ok(Value::from(if needle.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(needle).count()
            }))
        }
        "zfill" => {
            arity(name, args, 1, 1)?;
            let width = to_int(&args[0])?.max(0) as u64;
            python::check_length(width)?;
            let width = width as usize;
            let len = s.chars().count();
            if len >= width {
                return text(s.to_string());
            }
            let pad = "0".repeat(width - len);
            text(match s.strip_prefix(['-', '+']) {
                Some(rest) => format!("{}{pad}{rest}", &s[..1]),
                None => format!("{pad}{s}"),
            })
        }
        "join" => {
            arity(name, args, 1, 1)?;
            let Value::Array(items) = args[0].as_ref() else {
                return Err(EvalError::new("TypeError", "can only join a list"));
            };
            let mut parts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(p) => parts.push(p.as_str()),
                    v => {
                        return Err(EvalError::new(
                            "TypeError",
                            format!(
                                "sequence item {i}: expected str instance, {} found",
                                python::type_name(v)
                            ),
                        ));
                    }
                }
            }
            text(parts.join(s))
        }
        "isdigit" => Ok(Value::Bool(
            !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
        )),
        _ => Err(EvalError::new("AttributeError", String::new())),
    })();
    match result {
        Err(e) if e.kind == "AttributeError" && e.message.is_empty() => None,
        other => Some(other),
    }
}

/// `str.split(None, max)`: runs of whitespace separate, at most `max` splits, the rest kept
/// with its inner whitespace (leading whitespace of the rest dropped, as Python does).
fn split_whitespace_n(s: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s.trim_start_matches(py_space);
    while !rest.is_empty() {
        if parts.len() == max {
            parts.push(rest.to_string());
            break;
        }
        match rest.find(py_space) {
            Some(end) => {
                parts.push(rest[..end].to_string());
                rest = rest[end..].trim_start_matches(py_space);
            }
            None => {
                parts.push(rest.to_string());
                break;
            }
        }
    }
    parts
}

/// Python's `str.isspace`: Unicode white space plus the ASCII separators `\x1c`-`\x1f`.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_cased = false;
    for c in s.chars() {
        if previous_cased {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        previous_cased = c.is_alphabetic();
    }
    out
}

fn typed(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

/// The schema of an expression's value, where the expression alone tells it.
fn infer(e: &ast::Expr, property: &dyn Fn(&str) -> Option<Value>) -> Option<Value> {
    use ast::Expr as E;
    match e {
        E::Constant(c) => match &c.value {
            ast::Constant::Str(_) => Some(typed("string")),
            ast::Constant::Int(_) => Some(typed("integer")),
            ast::Constant::Float(_) => Some(typed("number")),
            ast::Constant::Bool(_) => Some(typed("boolean")),
            _ => None,
        },
        E::JoinedStr(_) => Some(typed("string")),
        E::Compare(_) => Some(typed("boolean")),
        E::UnaryOp(u) => match u.op {
            ast::UnaryOp::Not => Some(typed("boolean")),
            _ => infer(&u.operand, property),
        },
        E::Name(n) => match n.id.as_str() {
            "__stream_name__" | "__original_stream_name__" => Some(typed("string")),
            "record" | "_" | "config" | "self" => None,
            other => property(other),
        },
        E::Subscript(s) => match s.slice.as_ref() {
            E::Constant(ast::ExprConstant {
                value: ast::Constant::Str(key),
                ..
            }) => match s.value.as_ref() {
                E::Name(n) if matches!(n.id.as_str(), "record" | "_") => property(key),
                inner => infer(inner, property)?.get("properties")?.get(key).cloned(),
            },
            // A position or a slice of a string is a string; a position in a list, an item.
            _ => {
                let container = infer(&s.value, property)?;
                match single_type(&container)?.as_str() {
                    "string" => Some(typed("string")),
                    "array" if !matches!(s.slice.as_ref(), E::Slice(_)) => {
                        container.get("items").cloned()
                    }
                    _ => None,
                }
            }
        },
        E::IfExp(i) => {
            // `x if c else None` has the type of `x` (computed properties are nullable).
            let is_none = |e: &ast::Expr| matches!(e, E::Constant(c) if matches!(c.value, ast::Constant::None));
            match (is_none(&i.body), is_none(&i.orelse)) {
                (true, _) => infer(&i.orelse, property),
                (_, true) => infer(&i.body, property),
                _ => {
                    let body = infer(&i.body, property)?;
                    (infer(&i.orelse, property)? == body).then_some(body)
                }
            }
        }
        E::BinOp(b) => {
            let kind = |e: &ast::Expr| infer(e, property).and_then(|s| single_type(&s));
            let (l, r) = (kind(&b.left)?, kind(&b.right)?);
            match (b.op, l.as_str(), r.as_str()) {
                (ast::Operator::Add, "string", "string") => Some(typed("string")),
                (ast::Operator::Div, "integer" | "number", "integer" | "number") => {
                    Some(typed("number"))
                }
                (ast::Operator::Pow, _, _) => None,
                (_, "integer", "integer") => Some(typed("integer")),
                (_, "integer" | "number", "integer" | "number") => Some(typed("number")),
                _ => None,
            }
        }
        E::Call(call) => match call.func.as_ref() {
            E::Name(n) => match n.id.as_str() {
                "md5" | "sha256" | "str" => Some(typed("string")),
                "int" | "len" => Some(typed("integer")),
                "float" => Some(typed("number")),
                "bool" => Some(typed("boolean")),
                _ => None,
            },
            E::Attribute(a) => match a.attr.as_str() {
                "lower" | "upper" | "strip" | "lstrip" | "rstrip" | "replace" | "title"
                | "capitalize" | "zfill" | "join" => Some(typed("string")),
                "dumps" => Some(typed("string")),
                "startswith" | "endswith" | "isdigit" => Some(typed("boolean")),
                "find" | "count" => Some(typed("integer")),
                "split" | "rsplit" => {
                    Some(json!({"type": ["array", "null"], "items": {"type": "string"}}))
                }
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// The one non-null JSON type a schema allows, if it allows just one.
fn single_type(schema: &Value) -> Option<String> {
    match schema.get("type")? {
        Value::String(t) => Some(t.clone()),
        Value::Array(types) => {
            let mut named = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null");
            let first = named.next()?;
            named.next().is_none().then(|| first.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str, record: Value) -> Result<Value, EvalError> {
        let config = json!({"salt": "pepper", "n": 3});
        let expr =
            Expression::parse(source).map_err(|p| EvalError::new("SyntaxError", p.to_string()))?;
        let record = record.as_object().cloned().unwrap_or_default();
        expr.eval(&Scope {
            record: &record,
            config: &config,
            stream: "users",
            original_stream: "users",
            this: record.get("email"),
        })
    }

    #[test]
    fn evaluates_the_sdks_everyday_expressions() {
        let r = json!({"id": 7, "email": "Ann@Example.com", "nested": {"x": 2}, "tags": ["a", "b"], "score": 2.5, "none": null});
        let cases = [
            ("md5(email)", json!("2bd27504149156f0c6c917bf68c8499d")),
            (
                "md5(config['salt'] + email)",
                json!("1d8f14a53f6b31738427862679159b22"),
            ),
            ("email.lower().split('@')[-1]", json!("example.com")),
            ("record['nested']['x'] * 2", json!(4)),
            ("_['id'] + config['n']", json!(10)),
            ("id > 5 and '@' in email", json!(true)),
            ("'example' not in email", json!(true)),
            ("'big' if id > 100 else 'small'", json!("small")),
            ("int('42') + len(tags)", json!(44)),
            ("float(id) / 2", json!(3.5)),
            ("str(score) + '!'", json!("2.5!")),
            ("none is None", json!(true)),
            ("none or 'default'", json!("default")),
            ("f'{__stream_name__}-{id}'", json!("users-7")),
            ("self.upper()", json!("ANN@EXAMPLE.COM")),
            ("record.get('missing', 0)", json!(0)),
            ("json.dumps(nested)", json!("{\"x\": 2}")),
            ("email[:3]", json!("Ann")),
            ("round(score)", json!(2)),
            ("1 < id <= 7", json!(true)),
            ("md5(none)", Value::Null),
        ];
        for (source, want) in cases {
            assert_eq!(run(source, r.clone()), Ok(want), "{source}");
        }
        let sha = run("sha256('a')", json!({})).expect("sha256");
        assert_eq!(
            sha,
            json!("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")
        );
    }

    #[test]
    fn runtime_errors_are_worded_as_python_words_them() {
        let r = json!({"id": 7, "email": null});
        let e = |s| run(s, r.clone()).expect_err(s).to_string();
        assert_eq!(e("emial"), "NameError: name 'emial' is not defined");
        assert_eq!(e("record['x']"), "KeyError: 'x'");
        assert_eq!(
            e("id + 'a'"),
            "TypeError: unsupported operand type(s) for +: 'int' and 'str'"
        );
        assert_eq!(
            e("email.lower()"),
            "AttributeError: 'NoneType' object has no attribute 'lower'"
        );
        assert_eq!(e("id / 0"), "ZeroDivisionError: division by zero");
    }

    #[test]
    fn refuses_what_it_cannot_run_before_any_data() {
        let problem = |s: &str| Expression::parse(s).expect_err(s);
        let p = problem("upper(email)");
        assert_eq!(p.position, 1);
        assert!(p.reason.contains("unknown function 'upper'"), "{p}");
        let p = problem("email.encode()");
        assert!(p.reason.contains("unknown method 'encode'"), "{p}");
        assert_eq!(p.position, 1);
        let p = problem("id +");
        assert!(p.position >= 4, "{p}");
        assert!(
            problem("__import__('os')")
                .reason
                .contains("unknown function")
        );
        assert!(problem("email.__class__").reason.contains("attribute"));
        assert!(
            problem("[x for x in tags]")
                .reason
                .contains("comprehensions")
        );
        assert!(problem("fake.email()").reason.contains("Faker"));
        assert!(problem("lambda: 1").reason.contains("lambdas"));
        assert!(
            problem("str(x, encoding='utf8')")
                .reason
                .contains("keyword")
        );
    }

    #[test]
    fn infers_the_type_of_computed_values() {
        let property = |name: &str| (name == "id").then(|| json!({"type": "integer"}));
        let infer = |s: &str| Expression::parse(s).expect(s).infer_schema(&property);
        assert_eq!(infer("md5(email)"), Some(typed("string")));
        assert_eq!(infer("id * 2"), Some(typed("integer")));
        assert_eq!(infer("id / 2"), Some(typed("number")));
        assert_eq!(infer("id"), Some(json!({"type": "integer"})));
        assert_eq!(infer("record['id']"), Some(json!({"type": "integer"})));
        assert_eq!(infer("id > 3"), Some(typed("boolean")));
        assert_eq!(infer("record.get('x')"), None);
        assert_eq!(
            infer("md5(email) if email else None"),
            Some(typed("string"))
        );
        assert_eq!(infer("1 if id else 'a'"), None);
        assert_eq!(
            infer("email.split('@')[-1]"),
            Some(json!({"type": "string"}))
        );
        assert_eq!(infer("str(id)[:2]"), Some(typed("string")));
    }
}
