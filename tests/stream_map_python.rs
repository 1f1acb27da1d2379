//! Stream-map expressions against Python itself: generated expressions over generated
//! records, evaluated here and by `python3` with the Meltano SDK's names and functions
//! (`md5`, `sha256`, `bool`, `json`, ...); results must be equal JSON, and where Python raises,
//! so must we, with the same exception name.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};
use singer_core::stream_map::{Expression, Scope};

/// The SDK's evaluation names, in plain Python (no simpleeval needed for this subset).
const PYTHON: &str = r#"
import hashlib, json, sys
def md5(s): return None if s is None else hashlib.md5(str(s).encode("utf-8")).hexdigest()
def sha256(s): return None if s is None else hashlib.sha256(str(s).encode("utf-8")).hexdigest()
builtins = {"md5": md5, "sha256": sha256, "int": int, "float": float, "str": str, "bool": bool,
            "len": len, "abs": abs, "round": round, "min": min, "max": max, "json": json}
for line in sys.stdin:
    case = json.loads(line)
    record = case["record"]
    names = dict(record)
    names.update({"record": record, "_": record, "config": case["config"], "__stream_name__": "s",
                  "__original_stream_name__": "s"})
    try:
        value = eval(case["expr"], {"__builtins__": builtins}, names)
        out = {"ok": value}
        text = json.dumps(out)
    except Exception as e:
        text = json.dumps({"error": type(e).__name__})
    print(text, flush=False)
"#;

struct Gen(fastrand::Rng);

impl Gen {
    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.0.usize(..options.len())]
    }

    fn int(&mut self, depth: u32) -> String {
        if depth == 0 || self.0.u8(..3) == 0 {
            return match self.0.u8(..4) {
                0 => self.0.i64(-20..20).to_string(),
                1 => "id".into(),
                2 => "n".into(),
                _ => "config['k']".into(),
            };
        }
        let (a, b) = (self.int(depth - 1), self.int(depth - 1));
        match self.0.u8(..8) {
            0 => format!("({a} {} {b})", self.pick(&["+", "-", "*", "//", "%"])),
            1 => format!("len({})", self.string(depth - 1)),
            2 => format!("int({})", self.float(depth - 1)),
            3 => format!("abs({a})"),
            4 => format!("-{a}"),
            5 => format!("({a} if {} else {b})", self.boolean(depth - 1)),
            6 => format!("{}.find({})", self.string(depth - 1), self.string(0)),
            _ => format!("round({})", self.float(depth - 1)),
        }
    }

    fn float(&mut self, depth: u32) -> String {
        if depth == 0 || self.0.u8(..3) == 0 {
            return match self.0.u8(..3) {
                0 => format!("{:.2}", self.0.f64() * 40.0 - 20.0),
                1 => "x".into(),
                _ => "float(id)".into(),
            };
        }
        let (a, b) = (self.int(depth - 1), self.int(depth - 1));
        match self.0.u8(..4) {
            0 => format!("({a} / {b})"),
            1 => format!("({} * {})", self.float(depth - 1), self.float(depth - 1)),
            2 => format!("round({}, 2)", self.float(depth - 1)),
            _ => format!("({} - {b})", self.float(depth - 1)),
        }
    }

    fn string(&mut self, depth: u32) -> String {
        if depth == 0 || self.0.u8(..3) == 0 {
            return match self.0.u8(..5) {
                0 => format!("'{}'", self.pick(&["a", "Ab c", "", "x@y.org", " pad "])),
                1 => "name".into(),
                2 => "email".into(),
                3 => "record['tags'][0]".into(),
                _ => "config['salt']".into(),
            };
        }
        let s = self.string(depth - 1);
        match self.0.u8(..13) {
            0 => format!("({s} + {})", self.string(depth - 1)),
            1 => format!(
                "{s}.{}()",
                self.pick(&["lower", "upper", "strip", "title", "capitalize"])
            ),
            2 => format!(
                "{s}.split({})[{}]",
                self.pick(&["'@'", "' '", ""]),
                self.0.i64(-2..2)
            ),
            3 => format!("{s}[{}:{}]", self.0.i64(-3..3), self.0.i64(-3..5)),
            4 => format!("str({})", self.int(depth - 1)),
            5 => format!("str({})", self.float(depth - 1)),
            6 => format!("md5({s})"),
            7 => format!("{s}.replace('a', 'b')"),
            // Double quotes: quotes of the same kind nest in f-strings only from Python 3.12.
            8 => format!("f\"<{{{}}}-{{{}}}>\"", self.string(0), self.int(0)),
            9 => format!("({s} * {})", self.0.i64(-1..3)),
            10 => format!(
                "json.dumps({})",
                self.pick(&["record", "tags", "nested", "x", "flag"])
            ),
            11 => format!("'-'.join({s}.split(' '))"),
            _ => format!("{s}.zfill({})", self.0.i64(0..8)),
        }
    }

    fn boolean(&mut self, depth: u32) -> String {
        if depth == 0 || self.0.u8(..3) == 0 {
            return self
                .pick(&["flag", "True", "False", "none is None", "'tags' in record"])
                .into();
        }
        match self.0.u8(..8) {
            0 => format!(
                "({} {} {})",
                self.int(depth - 1),
                self.pick(&["<", "<=", "==", "!=", ">", ">="]),
                self.float(depth - 1)
            ),
            1 => format!("({} in {})", self.string(0), self.string(depth - 1)),
            2 => format!(
                "({} and {})",
                self.boolean(depth - 1),
                self.boolean(depth - 1)
            ),
            3 => format!("({} or {})", self.boolean(depth - 1), self.int(depth - 1)),
            4 => format!("not {}", self.boolean(depth - 1)),
            5 => format!("{}.startswith({})", self.string(depth - 1), self.string(0)),
            6 => format!(
                "({} < {} < {})",
                self.int(0),
                self.int(depth - 1),
                self.int(0)
            ),
            _ => format!("bool({})", self.string(depth - 1)),
        }
    }

    fn expression(&mut self) -> String {
        match self.0.u8(..4) {
            0 => self.int(3),
            1 => self.float(3),
            2 => self.string(3),
            _ => self.boolean(3),
        }
    }

    fn record(&mut self) -> Value {
        let names = ["Ann Lee", "bob", "", "Ça va", "x y z"];
        json!({
            "id": self.0.i64(-5..50),
            "n": self.0.i64(0..4),
            "x": (self.0.f64() * 100.0 - 50.0).round() / 4.0,
            "name": names[self.0.usize(..names.len())],
            "email": format!("user{}@example.{}", self.0.u8(..9), self.pick(&["com", "org"])),
            "flag": self.0.bool(),
            "none": null,
            "tags": ["first tag", "b"],
            "nested": {"k": [1, 2.5, "three", null, true]},
        })
    }
}

#[test]
fn expressions_evaluate_as_python_evaluates_them() {
    let mut generate = Gen(fastrand::Rng::with_seed(20261203));
    let config = json!({"salt": "pepper", "k": 3});
    let cases: Vec<(String, Value)> = (0..3000)
        .map(|_| (generate.expression(), generate.record()))
        .collect();
    let mut python = Command::new("python3")
        .args(["-c", PYTHON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut input = String::new();
    for (expr, record) in &cases {
        input.push_str(&json!({"expr": expr, "record": record, "config": config}).to_string());
        input.push('\n');
    }
    let mut stdin = python.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = python.wait_with_output().expect("python output");
    writer.join().expect("writer").expect("write to python");
    assert!(output.status.success(), "python3 failed");
    let answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("python's answer"))
        .collect();
    assert_eq!(answers.len(), cases.len());
    let mut agreed_values = 0;
    for ((expr, record), answer) in cases.iter().zip(&answers) {
        let parsed = Expression::parse(expr).unwrap_or_else(|p| panic!("{expr}: {p}"));
        let record: Map<String, Value> = record.as_object().cloned().expect("object");
        let ours = parsed.eval(&Scope {
            record: &record,
            config: &config,
            stream: "s",
            original_stream: "s",
            this: None,
        });
        match (answer.get("ok"), answer.get("error"), &ours) {
            (Some(want), _, Ok(got)) => {
                assert_eq!(got, want, "{expr} over {record:?}");
                agreed_values += 1;
            }
            (_, Some(kind), Err(e)) => assert_eq!(kind, e.kind, "{expr} over {record:?}: {e}"),
            _ => panic!("{expr} over {record:?}: python {answer}, ours {ours:?}"),
        }
    }
    // The generator must mostly make expressions that succeed, or the test says little.
    assert!(
        agreed_values > cases.len() / 2,
        "{agreed_values} values agreed"
    );
}
