//! Python's value semantics over JSON values, as far as stream-map expressions need them:
//! truthiness, `str()` and `repr()`, arithmetic, comparison and `in`, with Python's error
//! wording, so an expression written for the Meltano SDK means the same here.
//!
//! A JSON number is a Python `int` when it is an integer that fits in 64 bits, else a
//! `float`. Integer arithmetic that would overflow 64 bits is an error rather than a silent
//! float.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::expr::EvalError;

/// A JSON number as Python sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn of(value: &Value) -> Option<Num> {
        match value {
            // Python's bool is an int.
            Value::Bool(b) => Some(Num::Int(i64::from(*b))),
            Value::Number(n) => Some(match n.as_i64() {
                Some(i) => Num::Int(i),
                None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            _ => None,
        }
    }

    fn float(self) -> f64 {
        match self {
            // i64 to f64 rounds for huge values, as Python's float(int) does.
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// A Python number as JSON; NaN and infinities have no JSON form.
pub(crate) fn number(n: Num) -> Result<Value, EvalError> {
    match n {
        Num::Int(i) => Ok(Value::from(i)),
        Num::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| EvalError::new("ValueError", format!("{f} has no JSON form"))),
    }
}

/// Python's name for the type of `value`.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's truthiness.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(_) => Num::of(value).is_some_and(|n| n.float() != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str(value)`.
pub(crate) fn to_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr(value)`.
pub(crate) fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(_) => match Num::of(value) {
            Some(Num::Int(i)) => i.to_string(),
            Some(Num::Float(f)) => float_repr(f),
            None => String::new(),
        },
        Value::String(s) => string_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", string_repr(k), repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's float repr: the shortest digits that round-trip, in positional notation for
/// exponents from -4 to 15 and scientific notation (`1e+16`) outside them.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e3".
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exponent.unsigned_abs())
    }
}

/// The longest string or list an expression may build, as simpleeval limits it (a record
/// value, not a memory bomb).
pub(crate) const MAX_LENGTH: u64 = 100_000;

/// How many values (and string characters) a value holds, nested ones included: what a
/// repetition copies.
fn size_of_value(v: &Value) -> u64 {
    match v {
        Value::String(s) => 1 + s.chars().count() as u64,
        Value::Array(items) => 1 + items.iter().map(size_of_value).sum::<u64>(),
        Value::Object(map) => 1 + map.values().map(size_of_value).sum::<u64>(),
        _ => 1,
    }
}

/// A `MemoryError` for results longer than [`MAX_LENGTH`].
pub(crate) fn check_length(length: u64) -> Result<(), EvalError> {
    if length > MAX_LENGTH {
        return Err(EvalError::new(
            "MemoryError",
            format!("the result would be longer than {MAX_LENGTH}"),
        ));
    }
    Ok(())
}

fn unsupported(op: &str, a: &Value, b: &Value) -> EvalError {
    EvalError::new(
        "TypeError",
        format!(
            "unsupported operand type(s) for {op}: '{}' and '{}'",
            type_name(a),
            type_name(b)
        ),
    )
}

fn overflow() -> EvalError {
    EvalError::new("OverflowError", "integer result does not fit in 64 bits")
}

fn zero_division(what: &str) -> EvalError {
    EvalError::new("ZeroDivisionError", what)
}

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

impl Arith {
    fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
            Arith::FloorDiv => "//",
            Arith::Mod => "%",
            Arith::Pow => "** or pow()",
        }
    }
}

/// `a <op> b` with Python's rules for numbers, strings and lists.
pub(crate) fn arith(op: Arith, a: &Value, b: &Value) -> Result<Value, EvalError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) if op == Arith::Add => {
            Ok(Value::String(format!("{x}{y}")))
        }
        (Value::Array(x), Value::Array(y)) if op == Arith::Add => {
            Ok(Value::Array(x.iter().chain(y).cloned().collect()))
        }
        (Value::String(s), n) | (n, Value::String(s)) if op == Arith::Mul => match Num::of(n) {
            Some(Num::Int(times)) => {
                let times = times.max(0) as u64;
                check_length((s.chars().count() as u64).saturating_mul(times))?;
                Ok(Value::String(s.repeat(times as usize)))
            }
            _ => Err(EvalError::new(
                "TypeError",
                format!(
                    "can't multiply sequence by non-int of type '{}'",
                    type_name(n)
                ),
            )),
        },
        (Value::Array(items), n) | (n, Value::Array(items)) if op == Arith::Mul => {
            match Num::of(n) {
                Some(Num::Int(times)) => {
                    let times = if items.is_empty() {
                        0
                    } else {
                        times.max(0) as u64
                    };
                    let size: u64 = items.iter().map(size_of_value).sum();
                    check_length(size.saturating_mul(times))?;
                    Ok(Value::Array(
                        (0..times).flat_map(|_| items.iter().cloned()).collect(),
                    ))
                }
                _ => Err(EvalError::new(
                    "TypeError",
                    format!(
                        "can't multiply sequence by non-int of type '{}'",
                        type_name(n)
                    ),
                )),
            }
        }
        _ => match (Num::of(a), Num::of(b)) {
            (Some(x), Some(y)) => number(numeric(op, x, y)?),
            _ => Err(unsupported(op.symbol(), a, b)),
        },
    }
}

fn numeric(op: Arith, x: Num, y: Num) -> Result<Num, EvalError> {
    let (Num::Int(a), Num::Int(b)) = (x, y) else {
        return numeric_float(op, x.float(), y.float());
    };
    let result = match op {
        Arith::Add => a.checked_add(b),
        Arith::Sub => a.checked_sub(b),
        Arith::Mul => a.checked_mul(b),
        // True division of ints is a float, as in Python 3.
        Arith::Div => return numeric_float(op, a as f64, b as f64),
        Arith::FloorDiv | Arith::Mod if b == 0 => {
            return Err(zero_division("integer division or modulo by zero"));
        }
        // Python floors toward negative infinity; the remainder takes the divisor's sign.
        Arith::FloorDiv => a.checked_div(b).map(|q| {
            if a % b != 0 && ((a < 0) != (b < 0)) {
                q - 1
            } else {
                q
            }
        }),
        // `i64::MIN % -1` is 0 in Python, as wrapping_rem has it.
        Arith::Mod => Some(a.wrapping_rem(b)).map(|r| {
            if r != 0 && ((r < 0) != (b < 0)) {
                r + b
            } else {
                r
            }
        }),
        // A negative exponent makes a float, as in Python.
        Arith::Pow if b < 0 => return numeric_float(op, a as f64, b as f64),
        Arith::Pow => u32::try_from(b).ok().and_then(|e| a.checked_pow(e)),
    };
    result.map(Num::Int).ok_or_else(overflow)
}

fn numeric_float(op: Arith, a: f64, b: f64) -> Result<Num, EvalError> {
    let value = match op {
        Arith::Add => a + b,
        Arith::Sub => a - b,
        Arith::Mul => a * b,
        Arith::Div if b == 0.0 => return Err(zero_division("division by zero")),
        Arith::Div => a / b,
        Arith::FloorDiv if b == 0.0 => return Err(zero_division("float floor division by zero")),
        Arith::FloorDiv => float_divmod(a, b).0,
        Arith::Mod if b == 0.0 => return Err(zero_division("float modulo")),
        Arith::Mod => float_divmod(a, b).1,
        Arith::Pow if a == 0.0 && b < 0.0 => {
            return Err(zero_division("0.0 cannot be raised to a negative power"));
        }
        Arith::Pow => a.powf(b),
    };
    Ok(Num::Float(value))
}

/// CPython's `float_divmod`: the remainder from `fmod`, taking the divisor's sign, and
/// the quotient from it (so `1 // 0.1` is `9.0` and `1 % 0.1` is `0.0999...`).
fn float_divmod(a: f64, b: f64) -> (f64, f64) {
    let mut m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(b);
    }
    let floordiv = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 { f + 1.0 } else { f }
    } else {
        0.0f64.copysign(a / b)
    };
    (floordiv, m)
}

/// Python's `a == b`: numbers compare by value (`1 == 1.0`), containers element-wise.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => match (Num::of(a), Num::of(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
            (Some(x), Some(y)) => x.float() == y.float(),
            _ => a == b,
        },
    }
}

/// Python's ordering of `a` and `b` for `<`, `<=`, `>`, `>=`; a `TypeError` for types
/// Python does not order.
pub(crate) fn order(symbol: &str, a: &Value, b: &Value) -> Result<Option<Ordering>, EvalError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(Some(x.cmp(y))),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !equal(p, q) {
                    return order(symbol, p, q);
                }
            }
            Ok(Some(x.len().cmp(&y.len())))
        }
        _ => match (Num::of(a), Num::of(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => Ok(Some(x.cmp(&y))),
            (Some(x), Some(y)) => Ok(x.float().partial_cmp(&y.float())),
            _ => Err(EvalError::new(
                "TypeError",
                format!(
                    "'{symbol}' not supported between instances of '{}' and '{}'",
                    type_name(a),
                    type_name(b)
                ),
            )),
        },
    }
}

/// Python's `needle in haystack`.
pub(crate) fn contains(haystack: &Value, needle: &Value) -> Result<bool, EvalError> {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => Ok(h.contains(n.as_str())),
        (Value::String(_), other) => Err(EvalError::new(
            "TypeError",
            format!(
                "'in <string>' requires string as left operand, not {}",
                type_name(other)
            ),
        )),
        (Value::Array(items), n) => Ok(items.iter().any(|i| equal(i, n))),
        (Value::Object(map), Value::String(key)) => Ok(map.contains_key(key)),
        (Value::Object(_), _) => Ok(false),
        (other, _) => Err(EvalError::new(
            "TypeError",
            format!("argument of type '{}' is not iterable", type_name(other)),
        )),
    }
}

/// `container[index]` for a dict key, or a list or string position (negative from the end).
pub(crate) fn index(container: &Value, key: &Value) -> Result<Value, EvalError> {
    match container {
        Value::Object(map) => match key {
            Value::String(k) => map
                .get(k)
                .cloned()
                .ok_or_else(|| EvalError::new("KeyError", string_repr(k))),
            other => Err(EvalError::new("KeyError", repr(other))),
        },
        Value::Array(items) => {
            let at = position(key, items.len(), "list")?;
            Ok(items[at].clone())
        }
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            let at = position(key, chars.len(), "string")?;
            Ok(Value::String(chars[at].to_string()))
        }
        other => Err(EvalError::new(
            "TypeError",
            format!("'{}' object is not subscriptable", type_name(other)),
        )),
    }
}

/// A dict key lookup that borrows, for the common `record['a']['b']`.
pub(crate) fn member<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a Value, EvalError> {
    map.get(key)
        .ok_or_else(|| EvalError::new("KeyError", string_repr(key)))
}

fn position(key: &Value, len: usize, what: &str) -> Result<usize, EvalError> {
    let Some(Num::Int(i)) = Num::of(key).filter(|_| !key.is_boolean()) else {
        return Err(EvalError::new(
            "TypeError",
            format!("{what} indices must be integers, not {}", type_name(key)),
        ));
    };
    let at = if i < 0 { i + len as i64 } else { i };
    if at < 0 || at >= len as i64 {
        return Err(EvalError::new(
            "IndexError",
            format!("{what} index out of range"),
        ));
    }
    Ok(at as usize)
}

/// `container[lower:upper:step]` on a list or string.
pub(crate) fn slice(
    container: &Value,
    lower: Option<i64>,
    upper: Option<i64>,
    step: Option<i64>,
) -> Result<Value, EvalError> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(EvalError::new("ValueError", "slice step cannot be zero"));
    }
    let pick = |len: usize| -> Vec<usize> {
        let len = len as i64;
        let clamp = |v: i64, low: i64, high: i64| v.clamp(low, high);
        let resolve = |v: i64| if v < 0 { v + len } else { v };
        let mut out = Vec::new();
        if step > 0 {
            let start = clamp(lower.map_or(0, resolve), 0, len);
            let stop = clamp(upper.map_or(len, resolve), 0, len);
            let mut i = start;
            while i < stop {
                out.push(i as usize);
                match i.checked_add(step) {
                    Some(next) => i = next,
                    None => break,
                }
            }
        } else {
            let start = clamp(lower.map_or(len - 1, resolve), -1, len - 1);
            let stop = clamp(upper.map_or(-1, resolve), -1, len - 1);
            let mut i = start;
            while i > stop {
                out.push(i as usize);
                match i.checked_add(step) {
                    Some(next) => i = next,
                    None => break,
                }
            }
        }
        out
    };
    match container {
        Value::Array(items) => Ok(Value::Array(
            pick(items.len())
                .into_iter()
                .map(|i| items[i].clone())
                .collect(),
        )),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(Value::String(
                pick(chars.len()).into_iter().map(|i| chars[i]).collect(),
            ))
        }
        other => Err(EvalError::new(
            "TypeError",
            format!("'{}' object is not subscriptable", type_name(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (f, text) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
        ] {
            assert_eq!(float_repr(f), text, "{f}");
        }
    }

    #[test]
    fn arithmetic_follows_python() {
        let n = |v: Value| v;
        assert_eq!(
            arith(Arith::FloorDiv, &json!(-7), &json!(2)).ok(),
            Some(n(json!(-4)))
        );
        assert_eq!(
            arith(Arith::Mod, &json!(-7), &json!(2)).ok(),
            Some(n(json!(1)))
        );
        assert_eq!(
            arith(Arith::Mod, &json!(7), &json!(-2)).ok(),
            Some(n(json!(-1)))
        );
        assert_eq!(
            arith(Arith::Div, &json!(7), &json!(2)).ok(),
            Some(n(json!(3.5)))
        );
        assert_eq!(
            arith(Arith::Pow, &json!(2), &json!(-1)).ok(),
            Some(n(json!(0.5)))
        );
        assert_eq!(
            arith(Arith::Add, &json!("a"), &json!("b")).ok(),
            Some(n(json!("ab")))
        );
        assert_eq!(
            arith(Arith::Mul, &json!("ab"), &json!(2)).ok(),
            Some(n(json!("abab")))
        );
        let e = arith(Arith::Add, &json!(1), &json!("b")).expect_err("int + str");
        assert_eq!(
            e.to_string(),
            "TypeError: unsupported operand type(s) for +: 'int' and 'str'"
        );
        assert!(arith(Arith::Mul, &json!(i64::MAX), &json!(2)).is_err());
        assert!(arith(Arith::Div, &json!(1), &json!(0)).is_err());
    }

    #[test]
    fn comparisons_and_membership_follow_python() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!(true), &json!(1)));
        assert_eq!(
            order("<", &json!("a"), &json!("b")).ok(),
            Some(Some(Ordering::Less))
        );
        assert!(order("<", &json!("a"), &json!(1)).is_err());
        assert_eq!(contains(&json!("x@a.com"), &json!("@a")).ok(), Some(true));
        assert_eq!(contains(&json!({"k": 1}), &json!("k")).ok(), Some(true));
        assert!(contains(&json!(3), &json!(1)).is_err());
        assert_eq!(index(&json!([1, 2, 3]), &json!(-1)).ok(), Some(json!(3)));
        assert!(index(&json!({"a": 1}), &json!("b")).is_err());
        assert_eq!(
            slice(&json!("hello"), Some(1), Some(3), None).ok(),
            Some(json!("el"))
        );
        assert_eq!(
            slice(&json!([1, 2, 3]), None, None, Some(-1)).ok(),
            Some(json!([3, 2, 1]))
        );
        let at = |s: Value, l, u, st| slice(&s, l, u, st).ok();
        assert_eq!(
            at(json!("abc"), Some(1), None, Some(i64::MAX)),
            Some(json!("b"))
        );
        assert_eq!(
            at(json!("abc"), Some(-1), None, Some(i64::MIN)),
            Some(json!("c"))
        );
        assert!(arith(Arith::Mul, &json!("ab"), &json!(1i64 << 62)).is_err());
        assert_eq!(
            arith(Arith::Mul, &json!([]), &json!(1i64 << 60)).ok(),
            Some(json!([]))
        );
        assert!(arith(Arith::Mul, &json!([1]), &json!(1i64 << 40)).is_err());
        let wide = json!([vec![0; 50_000]]);
        assert!(arith(Arith::Mul, &wide, &json!(50_000)).is_err());
        assert!(arith(Arith::Mul, &json!("é"), &json!(60_000)).is_ok());
        assert_eq!(
            arith(Arith::Mod, &json!(i64::MIN), &json!(-1)).ok(),
            Some(json!(0))
        );
        assert_eq!(
            arith(Arith::FloorDiv, &json!(1), &json!(0.1)).ok(),
            Some(json!(9.0))
        );
        assert_eq!(
            arith(Arith::Mod, &json!(-7.5), &json!(2)).ok(),
            Some(json!(0.5))
        );
        assert_eq!(
            repr(&json!({"a": [1, "it's", null]})),
            r#"{'a': [1, "it's", None]}"#
        );
    }
}
