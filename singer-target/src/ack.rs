//! The ack ledger: the whole exactly-once policy of a target, with no I/O.
//!
//! The runtime tells the ledger what it reads (records, STATEs) and asks it what each commit
//! must do; sinks only make a commit durable. The policy, in four rules:
//!
//! 1. **A STATE is released only after the commit that covers it.** Rows a commit makes
//!    durable *before* their covering STATE is committed (the byte budget forced a commit
//!    past the last STATE, or the input ended after records) are *provisional*: the sink
//!    remembers them per stream, and the commit that covers the next STATE settles them.
//! 2. **Committed input is known by what a resumed tap reproduces, not by bytes.** Each
//!    commit stores the recent *segments* (the records between two STATEs) as the STATE
//!    value's canonical hash plus the count and an order-free hash of the records' canonical
//!    JSON (key order, whitespace and `time_extracted` do not count). After a crash, the
//!    orchestrator resumes from a state the target released, at or before the last committed
//!    one, and the tap re-extracts; a segment whose STATE and records equal a committed
//!    segment is dropped (and its provisional rows, if the byte budget committed part of it,
//!    taken back) until the input catches up with the last committed STATE, which is echoed.
//!    The first segment that differs, and everything after it, is new input and loaded.
//! 3. **Provisional rows of an earlier run are taken back** in the first commit of the next
//!    run: the orchestrator resumes the tap at or before the STATE they followed (the target
//!    released none after it), so the tap sends them again. They were never acknowledged.
//! 4. **A run that ends at an acknowledged STATE is complete**: the next input is new,
//!    whatever it looks like (a full-table tap re-sends the same rows and state every run).
//!
//! What is not guaranteed (logged once when it happens): input with no STATE at all is final
//! at the end of input (a rerun of it loads it again); a resumed tap whose segments differ
//! from the committed ones (other STATE positions, changed source data) is loaded as new,
//! so append-only rows of the differing stretch may repeat; a resume point more than
//! [`WINDOW`] segments behind the last commit is not recognised.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How many committed segments the ledger remembers.
pub const WINDOW: usize = 200;

/// The records between two STATEs, identified by what a resumed tap reproduces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentDigest {
    /// Canonical hash of the STATE value that ends the segment.
    pub state: u64,
    /// RECORD messages in the segment.
    pub records: u64,
    /// Order-free sum of the records' [`record_hash`]es.
    pub digest: u64,
}

/// The canonical hash of a record of `stream`: equal for equal JSON values, whatever their
/// key order, whitespace or number spelling (`1.0` and `1e0` are one float).
pub fn record_hash(stream: &str, record: &Map<String, Value>) -> u64 {
    canon::record(stream, object_hash(record))
}

/// The canonical hash of a STATE value.
pub fn state_hash(value: &Value) -> u64 {
    value_hash(value)
}

/// The canonical hash of any JSON value.
pub(crate) fn value_hash(v: &Value) -> u64 {
    match v {
        Value::Null => canon::NULL,
        Value::Bool(b) => canon::boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), ..) => canon::integer(i.to_le_bytes()),
            (None, Some(u), _) => canon::integer(u.to_le_bytes()),
            (.., Some(f)) => canon::float(f),
            _ => xxh3_64_with_seed(n.to_string().as_bytes(), 4),
        },
        Value::String(s) => canon::string(s),
        Value::Array(items) => items
            .iter()
            .fold(canon::ARRAY, |acc, item| canon::item(acc, value_hash(item))),
        Value::Object(members) => object_hash(members),
    }
}

/// Key order does not count: members are summed.
fn object_hash(members: &Map<String, Value>) -> u64 {
    members.iter().fold(canon::OBJECT, |acc, (k, v)| {
        canon::member(acc, canon::key(k), value_hash(v))
    })
}

/// The building blocks of the canonical hash, shared with the decoder that hashes records
/// while it parses them ([`crate::decoder`]): both must agree bit for bit.
pub(crate) mod canon {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

    /// `null`.
    pub const NULL: u64 = 0x6E75_6C6C;
    /// The start of an array's fold.
    pub const ARRAY: u64 = 6;
    /// The start of an object's sum.
    pub const OBJECT: u64 = 7;

    pub fn boolean(b: bool) -> u64 {
        xxh3_64_with_seed(&[u8::from(b)], 1)
    }

    /// An integer, as the little-endian bytes of its `i64` or `u64` (one spelling for
    /// both when it fits either).
    pub fn integer(le_bytes: [u8; 8]) -> u64 {
        xxh3_64_with_seed(&le_bytes, 2)
    }

    pub fn float(f: f64) -> u64 {
        xxh3_64_with_seed(&f.to_bits().to_le_bytes(), 3)
    }

    pub fn string(s: &str) -> u64 {
        xxh3_64_with_seed(s.as_bytes(), 5)
    }

    /// An array item, in order.
    pub fn item(acc: u64, item: u64) -> u64 {
        mix(acc, item)
    }

    /// A member name's hash (also what the decoder looks columns up by).
    pub fn key(name: &str) -> u64 {
        xxh3_64_with_seed(name.as_bytes(), 8)
    }

    /// An object member, in any order.
    pub fn member(acc: u64, key: u64, value: u64) -> u64 {
        acc.wrapping_add(mix(key, value))
    }

    /// A record of a stream, from its object hash.
    pub fn record(stream: &str, object: u64) -> u64 {
        mix(xxh3_64(stream.as_bytes()), object)
    }

    fn mix(a: u64, b: u64) -> u64 {
        (a ^ b.rotate_left(17))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
    }
}

/// What the ledger stores with each commit, in the same atomic step as its data (inside
/// the [`CommitMarker`](crate::CommitMarker)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stored {
    /// Committed segments, oldest first, at most [`WINDOW`].
    pub segments: Vec<SegmentDigest>,
    /// Streams with provisional rows (committed before their covering STATE) that the sink
    /// still remembers.
    pub provisional: BTreeSet<String>,
    /// The run ended at an acknowledged STATE: the next input is new, whatever it looks
    /// like.
    pub complete: bool,
}

/// What a STATE means for the rows read since the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateVerdict {
    /// New input: the STATE covers its rows once they are committed.
    New,
    /// The segment replays a committed one: drop its buffered rows (its provisional rows are
    /// taken back by the next commit). `caught_up`: this is the last committed STATE; echo
    /// it (the orchestrator may not have seen it), and what follows is new.
    Replayed {
        /// The input reached the last committed STATE.
        caught_up: bool,
    },
}

/// Which commit the runtime is about to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitKind {
    /// Everything up to the last STATE read, which it then releases.
    Covered,
    /// Rows past the last STATE, forced by the byte budget.
    PastState,
    /// Rows past the last STATE at the end of input (the tap died, or sends no final STATE).
    Tail,
    /// The input ended at a STATE and everything is acknowledged: mark the run complete.
    Complete,
}

/// What one commit must do besides writing its rows, and what it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPlan {
    /// The sink remembers this commit's rows as provisional (per stream).
    pub provisional: bool,
    /// Streams whose provisional rows the sink removes, before writing this commit's rows.
    pub retract: Vec<String>,
    /// Streams whose provisional rows are now acknowledged: the sink forgets them.
    pub settle: Vec<String>,
    /// What to store with the commit.
    pub stored: Stored,
}

/// Where the input stands against the committed segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seek {
    /// The input is new.
    Off,
    /// No STATE read yet: the input may resume at any committed segment.
    Unaligned,
    /// The input replays committed segments; the next one expected is at this index.
    Aligned(usize),
}

/// Something the log should say once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The input resumed at a committed STATE and replays committed rows.
    Replaying,
    /// The input caught up with the last commit; loading resumes.
    CaughtUp,
    /// A resumed input differs from the committed one before catching up.
    Diverged,
    /// The input ended with no STATE at all: its rows are final.
    NoState,
}

/// The ledger of one run.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// Committed segments, oldest first.
    history: VecDeque<SegmentDigest>,
    seek: Seek,
    /// The segment being read: records since the last STATE.
    open: (u64, u64),
    /// Segments closed by a STATE that no commit has covered yet.
    closed: Vec<SegmentDigest>,
    /// Streams with provisional rows from earlier runs.
    earlier: BTreeSet<String>,
    /// Streams with provisional rows of this run, not yet settled.
    this_run: BTreeSet<String>,
    /// Streams whose provisional rows the next commit takes back.
    retract_next: BTreeSet<String>,
    /// Whether this run read any STATE.
    seen_state: bool,
    said: Vec<Notice>,
    pending: Vec<Notice>,
}

impl Ledger {
    /// The ledger of a run, from what the last commit stored (`None` on a new destination).
    pub fn new(stored: Option<Stored>) -> Self {
        let stored = stored.unwrap_or_default();
        let seek = if stored.complete || stored.segments.is_empty() {
            Seek::Off
        } else {
            Seek::Unaligned
        };
        Ledger {
            history: if stored.complete {
                VecDeque::new()
            } else {
                stored.segments.into()
            },
            seek,
            open: (0, 0),
            closed: Vec::new(),
            earlier: stored.provisional,
            this_run: BTreeSet::new(),
            retract_next: BTreeSet::new(),
            seen_state: false,
            said: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// A RECORD with this [`record_hash`] was read.
    pub fn record(&mut self, hash: u64) {
        self.records(1, hash);
    }

    /// `count` records were read, their [`record_hash`]es summing (wrapping) to `hash_sum`.
    pub fn records(&mut self, count: u64, hash_sum: u64) {
        self.open.0 += count;
        self.open.1 = self.open.1.wrapping_add(hash_sum);
    }

    /// Whether the input may still replay committed segments.
    pub fn seeking(&self) -> bool {
        self.seek != Seek::Off
    }

    /// Whether this run read any STATE.
    pub fn seen_state(&self) -> bool {
        self.seen_state
    }

    /// Whether the input so far ends at a STATE of new input, with no record after it
    /// (including records a forced commit already made durable): at the end of input, the
    /// run is then complete.
    pub fn at_state(&self) -> bool {
        self.seen_state && self.open.0 == 0 && !self.seeking()
    }

    /// A STATE with this [`state_hash`] was read.
    pub fn state(&mut self, hash: u64) -> StateVerdict {
        let segment = SegmentDigest {
            state: hash,
            records: self.open.0,
            digest: self.open.1,
        };
        self.open = (0, 0);
        self.seen_state = true;
        let matched = match self.seek {
            Seek::Off => None,
            // An empty segment is a tap re-sending the state it started from: it tells
            // nothing until records follow, so the input stays unaligned.
            Seek::Unaligned if segment.records == 0 => {
                return StateVerdict::Replayed { caught_up: false };
            }
            Seek::Unaligned => self.history.iter().position(|c| *c == segment),
            Seek::Aligned(next) => self
                .history
                .get(next)
                .filter(|c| **c == segment)
                .map(|_| next),
        };
        match matched {
            Some(at) => {
                if self.seek == Seek::Unaligned {
                    self.say(Notice::Replaying);
                }
                let caught_up = at + 1 == self.history.len();
                self.seek = if caught_up {
                    self.say(Notice::CaughtUp);
                    Seek::Off
                } else {
                    Seek::Aligned(at + 1)
                };
                // Rows of the replayed segment a forced commit made durable go again.
                let this_run = std::mem::take(&mut self.this_run);
                self.retract_next.extend(this_run);
                StateVerdict::Replayed { caught_up }
            }
            None => {
                if matches!(self.seek, Seek::Aligned(_)) {
                    self.say(Notice::Diverged);
                }
                self.seek = Seek::Off;
                self.closed.push(segment);
                StateVerdict::New
            }
        }
    }

    /// What a commit of `kind` carrying rows of `carried` streams must do. Once the sink
    /// made it durable, tell [`Ledger::committed`] what it stored.
    pub fn plan<'a>(
        &mut self,
        kind: CommitKind,
        carried: impl IntoIterator<Item = &'a str>,
    ) -> CommitPlan {
        let carried: BTreeSet<String> = carried.into_iter().map(str::to_string).collect();
        // Provisional rows of earlier runs go in this run's first commit (rule 3); those of
        // a replayed segment, in the commit after it.
        let retract = self.earlier.union(&self.retract_next).cloned().collect();
        // Input that ends with no STATE at all: nothing to resume from, its rows are final.
        let stateless_end = kind == CommitKind::Tail && !self.seen_state && !self.seeking();
        if stateless_end && !carried.is_empty() {
            self.say(Notice::NoState);
        }
        let provisional =
            matches!(kind, CommitKind::PastState | CommitKind::Tail) && !stateless_end;
        let (settle, still_provisional) = if provisional {
            (
                BTreeSet::new(),
                self.this_run.union(&carried).cloned().collect(),
            )
        } else {
            (self.this_run.clone(), BTreeSet::new())
        };
        let complete = kind == CommitKind::Complete;
        let mut segments = Vec::new();
        if !complete {
            segments.extend(self.history.iter().chain(&self.closed).copied());
            segments.drain(..segments.len().saturating_sub(WINDOW));
        }
        CommitPlan {
            provisional,
            retract,
            settle: settle.into_iter().collect(),
            stored: Stored {
                segments,
                provisional: still_provisional,
                complete,
            },
        }
    }

    /// A commit planned by [`Ledger::plan`], which stores `stored`, went to the sink. The
    /// runtime says so when it hands the commit over: commits are applied in order and none
    /// is sent after one fails, so the durable ones are always a prefix of those told here.
    pub fn committed(&mut self, stored: &Stored) {
        self.earlier.clear();
        self.retract_next.clear();
        self.this_run = stored.provisional.clone();
        self.history = stored.segments.iter().copied().collect();
        self.closed.clear();
    }

    /// Notices not yet taken; each is given once per run.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.pending)
    }

    fn say(&mut self, notice: Notice) {
        if !self.said.contains(&notice) {
            self.said.push(notice.clone());
            self.pending.push(notice);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The ledger driven the way the runtime drives it, against a model sink, over random
    //! inputs, batch sizes, byte budgets, kill points and resume points.

    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn hashes_ignore_key_order_and_spelling_but_not_values() {
        let a: Value =
            serde_json::from_str(r#"{"id": 1, "tags": ["x", "y"], "n": {"a": 1.5, "b": null}}"#)
                .expect("json");
        let b: Value =
            serde_json::from_str(r#"{"n":{"b":null,"a":15e-1},"tags":["x","y"],"id":1}"#)
                .expect("json");
        let c: Value =
            serde_json::from_str(r#"{"id": 1, "tags": ["y", "x"], "n": {"a": 1.5, "b": null}}"#)
                .expect("json");
        let obj = |v: &Value| v.as_object().cloned().expect("object");
        assert_eq!(record_hash("s", &obj(&a)), record_hash("s", &obj(&b)));
        assert_ne!(record_hash("s", &obj(&a)), record_hash("s", &obj(&c)));
        assert_ne!(record_hash("s", &obj(&a)), record_hash("t", &obj(&a)));
        assert_ne!(state_hash(&json!({"a": 1})), state_hash(&json!({"a": 2})));
        assert_ne!(state_hash(&json!("1")), state_hash(&json!(1)));
    }

    /// How the tap in a scenario writes STATE.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum States {
        /// `{"pos": i}` every `every` records and at the end: a resumed tap starts after it.
        Position,
        /// The same value every time: a resumed tap starts from the beginning.
        Constant,
        /// None at all.
        Never,
    }

    #[derive(Debug, Clone)]
    enum Msg {
        Record(String, u64),
        State(Value),
    }

    /// The tap: records 1..=n alternating between streams, from `after` on.
    fn tap(n: u64, every: u64, states: States, after: Option<u64>, restate: bool) -> Vec<Msg> {
        let mut out = Vec::new();
        let start = after.unwrap_or(0);
        if restate && let Some(p) = after {
            out.push(Msg::State(json!({"pos": p})));
        }
        for i in start + 1..=n {
            let stream = if i % 3 == 0 { "b" } else { "a" };
            out.push(Msg::Record(stream.into(), i));
            if i % every == 0 || i == n {
                match states {
                    States::Position => out.push(Msg::State(json!({"pos": i}))),
                    States::Constant => out.push(Msg::State(json!({"c": 1}))),
                    States::Never => {}
                }
            }
        }
        out
    }

    /// A sink as the real ones behave: rows per stream with the commit they came in.
    #[derive(Default)]
    struct ModelSink {
        rows: Vec<(String, u64, usize)>,
        provisional: BTreeMap<String, BTreeSet<usize>>,
        stored: Option<Stored>,
        commits: usize,
    }

    impl ModelSink {
        fn apply(&mut self, plan: &CommitPlan, rows: &[(String, u64)]) {
            self.commits += 1;
            for stream in &plan.retract {
                let gone = self.provisional.remove(stream).unwrap_or_default();
                self.rows
                    .retain(|(s, _, c)| s != stream || !gone.contains(c));
            }
            for (s, id) in rows {
                self.rows.push((s.clone(), *id, self.commits));
                if plan.provisional {
                    self.provisional
                        .entry(s.clone())
                        .or_default()
                        .insert(self.commits);
                }
            }
            for stream in &plan.settle {
                self.provisional.remove(stream);
            }
            self.stored = Some(plan.stored.clone());
        }
    }

    /// How a run ends.
    #[derive(Debug, Clone, Copy)]
    enum End {
        /// Reads everything.
        Complete,
        /// SIGKILL before message `at`: whatever is buffered is lost.
        Killed(usize),
        /// The tap dies before message `at`: the target sees the end of its input.
        TapDied(usize),
    }

    /// The runtime's use of the ledger, step by step (see `runtime.rs`).
    struct Run<'a> {
        sink: &'a mut ModelSink,
        ledger: Ledger,
        buffer: Vec<(String, u64)>,
        covered: usize,
        pending: Option<Value>,
        emitted: Vec<Value>,
        batch_rows: usize,
        budget: usize,
    }

    impl Run<'_> {
        fn commit(&mut self, kind: CommitKind, rows: Vec<(String, u64)>) {
            let carried: BTreeSet<&str> = rows.iter().map(|(s, _)| s.as_str()).collect();
            let plan = self.ledger.plan(kind, carried);
            self.sink.apply(&plan, &rows);
            self.ledger.committed(&plan.stored);
        }

        fn commit_covered(&mut self) {
            if let Some(state) = self.pending.take() {
                let rows: Vec<_> = self.buffer.drain(..self.covered).collect();
                self.covered = 0;
                self.commit(CommitKind::Covered, rows);
                self.emit(state);
            }
        }

        fn emit(&mut self, state: Value) {
            if self.emitted.last() != Some(&state) {
                self.emitted.push(state);
            }
        }

        fn message(&mut self, msg: &Msg) {
            match msg {
                Msg::Record(stream, id) => {
                    let record = json!({"id": id, "v": format!("row {id}")});
                    let record = record.as_object().cloned().unwrap_or_default();
                    self.ledger.record(record_hash(stream, &record));
                    self.buffer.push((stream.clone(), *id));
                    if self.buffer.len() >= self.budget {
                        self.commit_covered();
                        if self.buffer.len() >= self.budget {
                            let rows = std::mem::take(&mut self.buffer);
                            self.commit(CommitKind::PastState, rows);
                        }
                    }
                }
                Msg::State(value) => match self.ledger.state(state_hash(value)) {
                    StateVerdict::Replayed { caught_up } => {
                        self.buffer.clear();
                        self.covered = 0;
                        if caught_up {
                            self.emit(value.clone());
                        }
                    }
                    StateVerdict::New => {
                        self.covered = self.buffer.len();
                        self.pending = Some(value.clone());
                        if self.covered >= self.batch_rows {
                            self.commit_covered();
                        }
                    }
                },
            }
        }

        fn end_of_input(&mut self) {
            if self.ledger.at_state() {
                self.commit_covered();
                self.commit(CommitKind::Complete, Vec::new());
                return;
            }
            self.commit_covered();
            let rows = std::mem::take(&mut self.buffer);
            self.commit(CommitKind::Tail, rows);
        }
    }

    /// One run of the target over `input`; returns the states it released.
    fn run(
        sink: &mut ModelSink,
        input: &[Msg],
        end: End,
        batch_rows: usize,
        budget: usize,
    ) -> Vec<Value> {
        let mut run = Run {
            ledger: Ledger::new(sink.stored.clone()),
            sink,
            buffer: Vec::new(),
            covered: 0,
            pending: None,
            emitted: Vec::new(),
            batch_rows,
            budget,
        };
        let stop = match end {
            End::Complete => input.len(),
            End::Killed(at) | End::TapDied(at) => at.min(input.len()),
        };
        for msg in &input[..stop] {
            run.message(msg);
        }
        if !matches!(end, End::Killed(_)) {
            run.end_of_input();
        }
        run.emitted
    }

    /// Runs `crashes`, each resumed from a state the orchestrator saw (`behind` states
    /// before the newest), then one run to the end; returns how often each id was stored.
    fn scenario(
        n: u64,
        every: u64,
        states: States,
        crashes: &[(f64, bool, usize, bool)],
        batch_rows: usize,
        budget: usize,
    ) -> BTreeMap<u64, usize> {
        let mut sink = ModelSink::default();
        let mut seen: Vec<Value> = Vec::new();
        // The orchestrator may have missed the last few states a target released, but not
        // the final state of a run that completed (the last line the target wrote).
        let mut floor: Option<usize> = None;
        let resume = |floor: Option<usize>, seen: &[Value], behind: usize| -> Option<u64> {
            if states != States::Position {
                return None;
            }
            let at = match seen.len().checked_sub(behind + 1) {
                Some(at) => Some(at.max(floor.unwrap_or(0))),
                None => floor,
            }?;
            seen[at]["pos"].as_u64()
        };
        for &(cut, tap_died, behind, restate) in crashes {
            let input = tap(n, every, states, resume(floor, &seen, behind), restate);
            let mut at = (cut * input.len() as f64) as usize;
            // Input that ends before its first STATE, with nothing committed to resume from,
            // is final by rule (see `without_state_nothing_is_lost`).
            let fresh = sink
                .stored
                .as_ref()
                .is_none_or(|s| s.complete || s.segments.is_empty());
            if tap_died && fresh {
                let first_state = input.iter().position(|m| matches!(m, Msg::State(_)));
                at = at.max(first_state.map_or(0, |p| p + 1));
            }
            // Input that ends right after a STATE is complete by rule: with a constant state
            // the next run is a new full sync, not a resume.
            while states == States::Constant
                && tap_died
                && at > 0
                && at < input.len()
                && matches!(input[at - 1], Msg::State(_))
            {
                at += 1;
            }
            let end = if tap_died {
                End::TapDied(at)
            } else {
                End::Killed(at)
            };
            seen.extend(run(&mut sink, &input, end, batch_rows, budget));
            if sink.stored.as_ref().is_some_and(|s| s.complete) {
                // The "crash" came after the end: a later run is a new sync, not a resume.
                floor = seen.len().checked_sub(1);
                if states == States::Constant {
                    return counts(&sink);
                }
            }
        }
        let behind = crashes.last().map_or(0, |c| c.2);
        let restate = crashes.last().is_some_and(|c| c.3);
        let input = tap(n, every, states, resume(floor, &seen, behind), restate);
        let emitted = run(&mut sink, &input, End::Complete, batch_rows, budget);
        if states == States::Position {
            let last = emitted.last().or(seen.last()).cloned();
            assert_eq!(
                last,
                Some(json!({"pos": n})),
                "the tap's final state is released"
            );
        }
        counts(&sink)
    }

    fn counts(sink: &ModelSink) -> BTreeMap<u64, usize> {
        let mut counts = BTreeMap::new();
        for (_, id, _) in &sink.rows {
            *counts.entry(*id).or_insert(0) += 1;
        }
        counts
    }

    fn crash() -> impl Strategy<Value = (f64, bool, usize, bool)> {
        (0.0..1.0f64, any::<bool>(), 0..4usize, any::<bool>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The invariant: with a tap that sends STATE, every record ends up stored exactly
        /// once, whatever the batch sizes, kill points and resume points.
        #[test]
        fn every_record_exactly_once(
            n in 1..80u64,
            every in 1..12u64,
            constant in any::<bool>(),
            crashes in proptest::collection::vec(crash(), 0..4),
            batch_rows in 1..25usize,
            budget in 1..30usize,
        ) {
            let states = if constant { States::Constant } else { States::Position };
            let counts = scenario(n, every, states, &crashes, batch_rows, budget);
            let want: BTreeMap<u64, usize> = (1..=n).map(|i| (i, 1)).collect();
            prop_assert_eq!(counts, want);
        }

        /// A tap that sends no STATE: nothing is ever lost; killed runs repeat nothing;
        /// only a run that reached the end of its input (the tap died) may repeat, as the
        /// log says.
        #[test]
        fn without_state_nothing_is_lost(
            n in 1..80u64,
            crashes in proptest::collection::vec(crash(), 0..4),
            budget in 1..30usize,
        ) {
            let counts = scenario(n, 5, States::Never, &crashes, 10, budget);
            prop_assert!((1..=n).all(|i| counts.get(&i).copied().unwrap_or(0) >= 1));
            if crashes.iter().all(|c| !c.1) {
                prop_assert!(counts.values().all(|&c| c == 1), "{:?}", counts);
            }
        }
    }

    /// A run that ended at its final STATE is complete: the same input again is new input
    /// (a full-table tap), never dropped as a replay.
    #[test]
    fn a_complete_run_makes_the_next_input_new() {
        for states in [States::Position, States::Constant, States::Never] {
            let mut sink = ModelSink::default();
            let input = tap(30, 4, states, None, false);
            run(&mut sink, &input, End::Complete, 7, 1000);
            run(&mut sink, &input, End::Complete, 7, 1000);
            assert_eq!(sink.rows.len(), 60, "{states:?}");
        }
    }

    /// A resumed tap whose records changed (the source was edited) is loaded as new: the
    /// new versions are stored, nothing is dropped for looking like a replay (rows the
    /// first run committed may repeat instead, as the log says).
    #[test]
    fn changed_records_are_not_taken_for_a_replay() {
        let mut sink = ModelSink::default();
        let input = tap(20, 5, States::Position, None, false);
        let emitted = run(&mut sink, &input, End::Killed(13), 5, 1000);
        assert_eq!(emitted.len(), 2, "two segments committed");
        // The orchestrator saw neither state; the source changed id 1 meanwhile.
        let mut changed = input.clone();
        if let Msg::Record(_, id) = &mut changed[0] {
            *id += 1000;
        }
        let mut ledger = Ledger::new(sink.stored.clone());
        let first_state = changed.iter().position(|m| matches!(m, Msg::State(_)));
        for msg in &changed[..first_state.unwrap_or(0)] {
            if let Msg::Record(stream, id) = msg {
                let record = json!({"id": id, "v": format!("row {id}")});
                ledger.record(record_hash(stream, record.as_object().expect("object")));
            }
        }
        assert_eq!(
            ledger.state(state_hash(&json!({"pos": 5}))),
            StateVerdict::New
        );
        run(&mut sink, &changed, End::Complete, 5, 1000);
        let ids: BTreeSet<u64> = sink.rows.iter().map(|(_, id, _)| *id).collect();
        assert!(ids.contains(&1001));
        assert!((2..=20).all(|i| ids.contains(&i)));
    }

    /// Each commit stores a bounded ledger.
    #[test]
    fn the_stored_ledger_is_bounded() {
        let mut sink = ModelSink::default();
        let input = tap(3000, 1, States::Position, None, false);
        run(&mut sink, &input, End::TapDied(input.len() - 1), 1, 1000);
        let stored = sink.stored.clone().unwrap_or_default();
        assert_eq!(stored.segments.len(), WINDOW);
        assert!(!stored.complete);
    }
}
