//! Telling replayed input from new input after a crash (see the [module docs](super)).
//!
//! The input is cut into *segments*: the RECORD lines between two STATE messages. Each
//! commit stores a marker of the input range it covers: the fingerprint (count and hash of
//! the records, hash of the closing state) of its first segment, how many STATEs it holds,
//! and, when it went past its last STATE (end of input, or the byte budget), the *tail*: the
//! records of the unfinished segment since that STATE. Segment hashes run from one STATE to
//! the next, across commits.
//!
//! An orchestrator that restarts resumes from the last state it saw, which is either the
//! state before the last commit (the echo of the last commit was lost) or the last state
//! inside it (the tail then follows). So a restarted target compares:
//!
//! * the input before its first STATE with the marker's first segment: a match means the
//!   whole range replays; its records are dropped up to the committed state, then the tail
//!   is checked;
//! * the first records of the input with the marker's tail: a match means the input resumes
//!   right after the last committed state; those records are dropped.
//!
//! Anything else is new input and is loaded.

use serde_json::Value;

use crate::sink::{CommitMarker, Segment, Tail};

/// Mixes per-line hashes into an order-dependent segment hash.
fn mix(acc: u64, line_hash: u64) -> u64 {
    (acc ^ line_hash)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

/// Tracks the input range since the last commit.
pub(super) struct RangeTracker {
    segment_records: u64,
    segment_hash: u64,
    first_segment: Option<Segment>,
    states: u64,
}

impl RangeTracker {
    pub(super) fn new() -> Self {
        RangeTracker {
            segment_records: 0,
            segment_hash: 0,
            first_segment: None,
            states: 0,
        }
    }

    /// Whether nothing was read since the last commit.
    pub(super) fn is_empty(&self) -> bool {
        self.states == 0 && self.segment_records == 0
    }

    /// A RECORD line with this hash was read.
    pub(super) fn record(&mut self, line_hash: u64) {
        self.segment_records += 1;
        self.segment_hash = mix(self.segment_hash, line_hash);
    }

    /// A STATE ends the current segment; returns its fingerprint.
    pub(super) fn state(&mut self, state_hash: u64) -> Segment {
        let segment = Segment {
            records: self.segment_records,
            records_hash: self.segment_hash,
            state_hash,
        };
        self.segment_records = 0;
        self.segment_hash = 0;
        self.first_segment.get_or_insert(segment);
        self.states += 1;
        segment
    }

    /// The marker of a commit of everything read so far (`with_tail`) or up to the last
    /// STATE; the next range starts after it.
    pub(super) fn marker(&mut self, state: Option<&Value>, with_tail: bool) -> CommitMarker {
        let tail = (with_tail && self.segment_records > 0).then_some(Tail {
            records: self.segment_records,
            records_hash: self.segment_hash,
        });
        let marker = CommitMarker {
            state: state.cloned(),
            state_hash: state.map(state_hash).unwrap_or(0),
            first_segment: self.first_segment,
            states: self.states,
            tail,
            complete: false,
        };
        self.first_segment = None;
        self.states = 0;
        marker
    }
}

/// The hash a STATE value is compared by.
pub(super) fn state_hash(value: &Value) -> u64 {
    xxhash_rust::xxh3::xxh3_64(value.to_string().as_bytes())
}

/// Where the runtime is in recognising a replay.
pub(super) enum Replay {
    /// Input is new.
    Off,
    /// Comparing the start of the input with the last commit.
    Detecting {
        marker: CommitMarker,
        records: u64,
        hash: u64,
    },
    /// Input replays a committed range: drop records until this many more STATEs pass.
    Skipping {
        states_left: u64,
        final_state_hash: u64,
        tail: Option<Tail>,
    },
    /// The replayed range is past its last STATE: compare the next records with the tail.
    Tail { tail: Tail, records: u64, hash: u64 },
}

/// What to do with a STATE.
pub(super) enum StateDecision {
    /// Process it normally.
    Normal,
    /// The input before it replays the last commit: drop what is buffered and skip on.
    StartSkipping,
    /// Still inside the replayed range.
    Skip,
    /// This STATE ends the replayed range.
    CaughtUp,
}

/// What to do with a RECORD.
pub(super) enum RecordDecision {
    /// Load it.
    Keep,
    /// Drop it: inside a replayed range.
    Skip,
    /// Load it, then drop everything buffered: it completed a committed tail.
    DropBuffered,
}

impl Replay {
    pub(super) fn from_marker(marker: Option<CommitMarker>) -> Self {
        match marker {
            Some(m)
                if !m.complete
                    && ((m.first_segment.is_some() && m.states > 0) || m.tail.is_some()) =>
            {
                Replay::Detecting {
                    marker: m,
                    records: 0,
                    hash: 0,
                }
            }
            _ => Replay::Off,
        }
    }

    pub(super) fn is_skipping(&self) -> bool {
        matches!(self, Replay::Skipping { .. })
    }

    /// Whether buffered records may still turn out to be a replay.
    pub(super) fn is_undecided(&self) -> bool {
        matches!(self, Replay::Detecting { .. } | Replay::Tail { .. })
    }

    fn after_catching_up(tail: Option<Tail>) -> Self {
        match tail {
            Some(tail) => Replay::Tail {
                tail,
                records: 0,
                hash: 0,
            },
            None => Replay::Off,
        }
    }

    pub(super) fn on_record(&mut self, line_hash: u64) -> RecordDecision {
        match self {
            Replay::Off => RecordDecision::Keep,
            Replay::Skipping { .. } => RecordDecision::Skip,
            Replay::Detecting {
                marker,
                records,
                hash,
            } => {
                *records += 1;
                *hash = mix(*hash, line_hash);
                if let Some(t) = marker.tail
                    && t.records == *records
                    && t.records_hash == *hash
                {
                    *self = Replay::Off;
                    return RecordDecision::DropBuffered;
                }
                RecordDecision::Keep
            }
            Replay::Tail {
                tail,
                records,
                hash,
            } => {
                *records += 1;
                *hash = mix(*hash, line_hash);
                if *records == tail.records {
                    let matched = *hash == tail.records_hash;
                    *self = Replay::Off;
                    if matched {
                        return RecordDecision::DropBuffered;
                    }
                }
                RecordDecision::Keep
            }
        }
    }

    pub(super) fn on_state(&mut self, segment: &Segment) -> StateDecision {
        match std::mem::replace(self, Replay::Off) {
            Replay::Off | Replay::Tail { .. } => StateDecision::Normal,
            Replay::Detecting { marker, .. } => {
                if marker.states > 0 && marker.first_segment.as_ref() == Some(segment) {
                    *self = if marker.states > 1 {
                        Replay::Skipping {
                            states_left: marker.states - 1,
                            final_state_hash: marker.state_hash,
                            tail: marker.tail,
                        }
                    } else {
                        Self::after_catching_up(marker.tail)
                    };
                    StateDecision::StartSkipping
                } else {
                    StateDecision::Normal
                }
            }
            Replay::Skipping {
                states_left,
                final_state_hash,
                tail,
            } => {
                if states_left <= 1 {
                    if segment.state_hash != final_state_hash {
                        tracing::warn!(
                            "the replayed input's state differs from the committed one at the same position; the tap may not be deterministic"
                        );
                    }
                    *self = Self::after_catching_up(tail);
                    StateDecision::CaughtUp
                } else {
                    *self = Replay::Skipping {
                        states_left: states_left - 1,
                        final_state_hash,
                        tail,
                    };
                    StateDecision::Skip
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feed(t: &mut RangeTracker, lines: &[(&str, u64)]) -> Vec<Segment> {
        let mut segs = Vec::new();
        for (kind, h) in lines {
            match *kind {
                "R" => t.record(*h),
                _ => segs.push(t.state(*h)),
            }
        }
        segs
    }

    fn segments(lines: &[(&str, u64)]) -> Vec<Segment> {
        feed(&mut RangeTracker::new(), lines)
    }

    #[test]
    fn segments_depend_on_records_and_their_order() {
        let a = segments(&[("R", 1), ("R", 2), ("S", 9)]);
        let b = segments(&[("R", 2), ("R", 1), ("S", 9)]);
        let c = segments(&[("R", 1), ("R", 2), ("S", 8)]);
        assert_ne!(a[0], b[0]);
        assert_ne!(a[0], c[0]);
        assert_eq!(a[0].records, 2);
    }

    #[test]
    fn replay_of_the_last_commit_is_skipped_up_to_its_state() {
        let input = [
            ("R", 1),
            ("S", 10),
            ("R", 2),
            ("S", 11),
            ("R", 3),
            ("S", 12),
        ];
        let mut t = RangeTracker::new();
        let segs = feed(&mut t, &input);
        let marker = t.marker(Some(&json!({"s": 12})), false);
        assert_eq!(marker.states, 3);
        let mut replay = Replay::from_marker(Some(marker));
        assert!(matches!(replay.on_record(1), RecordDecision::Keep));
        assert!(matches!(
            replay.on_state(&segs[0]),
            StateDecision::StartSkipping
        ));
        assert!(matches!(replay.on_record(2), RecordDecision::Skip));
        assert!(matches!(replay.on_state(&segs[1]), StateDecision::Skip));
        assert!(matches!(replay.on_state(&segs[2]), StateDecision::CaughtUp));
        assert!(matches!(replay, Replay::Off));
    }

    #[test]
    fn a_committed_tail_is_recognised_from_either_resume_point() {
        // Commit: R1 S10 R2 R3 (end of input after S10, tap died).
        let mut t = RangeTracker::new();
        feed(&mut t, &[("R", 1), ("S", 10), ("R", 2), ("R", 3)]);
        let marker = t.marker(Some(&json!({"s": 10})), true);
        assert_eq!(marker.tail.map(|t| t.records), Some(2));
        // Resumed after S10: R2 R3 R4 ...
        let mut replay = Replay::from_marker(Some(marker.clone()));
        assert!(matches!(replay.on_record(2), RecordDecision::Keep));
        assert!(matches!(replay.on_record(3), RecordDecision::DropBuffered));
        assert!(matches!(replay.on_record(4), RecordDecision::Keep));
        // Resumed before S10 (its echo was lost): R1 S10 R2 R3 R4.
        let mut replay = Replay::from_marker(Some(marker));
        let segs = segments(&[("R", 1), ("S", 10)]);
        assert!(matches!(replay.on_record(1), RecordDecision::Keep));
        assert!(matches!(
            replay.on_state(&segs[0]),
            StateDecision::StartSkipping
        ));
        assert!(matches!(replay.on_record(2), RecordDecision::Keep));
        assert!(matches!(replay.on_record(3), RecordDecision::DropBuffered));
        assert!(matches!(replay, Replay::Off));
    }

    #[test]
    fn new_input_is_not_mistaken_for_a_replay() {
        let mut t = RangeTracker::new();
        feed(&mut t, &[("R", 1), ("S", 10)]);
        let mut replay = Replay::from_marker(Some(t.marker(Some(&json!({})), false)));
        let segs = segments(&[("R", 5), ("S", 13)]);
        assert!(matches!(replay.on_state(&segs[0]), StateDecision::Normal));
        assert!(matches!(replay, Replay::Off));
        // Same state but different records: new input too.
        let mut t = RangeTracker::new();
        feed(&mut t, &[("R", 1), ("S", 10)]);
        let mut replay = Replay::from_marker(Some(t.marker(Some(&json!({})), false)));
        let segs = segments(&[("R", 2), ("S", 10)]);
        assert!(matches!(replay.on_state(&segs[0]), StateDecision::Normal));
        // A tail that does not match.
        let mut t = RangeTracker::new();
        feed(&mut t, &[("R", 1), ("R", 2)]);
        let mut replay = Replay::from_marker(Some(t.marker(None, true)));
        assert!(matches!(replay.on_record(1), RecordDecision::Keep));
        assert!(matches!(replay.on_record(9), RecordDecision::Keep));
        assert!(matches!(replay.on_record(2), RecordDecision::Keep));
        assert!(matches!(Replay::from_marker(None), Replay::Off));
    }

    #[test]
    fn segment_hashes_run_across_commits() {
        // A forced commit in the middle of a segment, then the segment ends.
        let mut t = RangeTracker::new();
        feed(&mut t, &[("R", 1), ("R", 2)]);
        let forced = t.marker(None, true);
        feed(&mut t, &[("R", 3), ("S", 10)]);
        let next = t.marker(Some(&json!({})), false);
        let whole = segments(&[("R", 1), ("R", 2), ("R", 3), ("S", 10)]);
        assert_eq!(
            next.first_segment,
            Some(whole[0]),
            "the first segment counts the forced commit's records too"
        );
        assert_eq!(forced.tail.map(|t| t.records), Some(2));
    }
}
