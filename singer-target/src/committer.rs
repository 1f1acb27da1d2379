//! The sink on a thread of its own, so a commit is made durable while the runtime goes on
//! taking decoded rows for the next one.
//!
//! Requests run one at a time, in the order they were sent. At most one commit is in
//! flight: the runtime collects its outcome before it plans the next one. A sink may group
//! commits ([`Sink::pending`]); the thread then makes the group durable when no request
//! has come for [`QUIET`], and reports it, so a STATE never waits on input that is not
//! coming. A failed commit ends the run: later commits would store a ledger that counts
//! the failed one as durable, so [`Committer`] refuses them.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sink::{Commit, LoadStats, Sink, TargetStream};

/// How long the sink thread waits for the next request before it makes a pending group
/// durable.
pub(crate) const QUIET: Duration = Duration::from_secs(1);

enum Request {
    Commit(Commit),
    CheckSchema(TargetStream),
    Flush,
    Close,
}

type Stats = Vec<(String, LoadStats)>;

enum Reply {
    /// A commit's outcome, and whether everything committed so far is durable.
    Committed(Result<Stats>, bool),
    /// Everything committed so far is durable (or making it so failed).
    Durable(Result<()>),
    /// The check's outcome, and whether everything committed so far is durable.
    Checked(Result<()>, bool),
    Closed(Result<()>),
}

/// What the sink thread reported.
pub(crate) enum Outcome {
    /// The commit in flight returned; `durable`: with every commit before it.
    Committed { stats: Stats, durable: bool },
    /// The pending group became durable.
    Durable,
}

/// The handle the runtime holds.
pub(crate) struct Committer<'scope> {
    requests: Sender<Request>,
    replies: Receiver<Reply>,
    /// A commit was sent and its outcome not yet collected.
    in_flight: bool,
    /// A commit failed: nothing more may be committed in this run.
    failed: bool,
    _thread: ScopedJoinHandle<'scope, ()>,
}

/// The sink thread: requests in order, a pending group made durable when they pause.
/// After a failed commit or flush it refuses every later one: a commit sent before the
/// runtime heard of the failure stores a ledger that counts the lost commits as durable.
fn serve<S: Sink>(mut sink: S, incoming: Receiver<Request>, outgoing: Sender<Reply>) {
    let mut failed = false;
    loop {
        let request = if sink.pending() {
            match incoming.recv_timeout(QUIET) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => Request::Flush,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match incoming.recv() {
                Ok(request) => request,
                Err(_) => return,
            }
        };
        let reply = match request {
            Request::Commit(_) if failed => Reply::Committed(Err(refused()), true),
            Request::Flush if failed => Reply::Durable(Err(refused())),
            Request::Commit(commit) => {
                let outcome = sink.commit(commit);
                failed = outcome.is_err();
                Reply::Committed(outcome, !sink.pending())
            }
            Request::CheckSchema(stream) => {
                let was_pending = sink.pending();
                let outcome = sink.check_schema(&stream);
                // A refusal that took the pending group with it lost those commits.
                if was_pending && !sink.pending() && outcome.is_err() {
                    failed = true;
                }
                Reply::Checked(outcome, !sink.pending())
            }
            Request::Flush => {
                let outcome = sink.flush();
                failed = outcome.is_err();
                Reply::Durable(outcome)
            }
            Request::Close if failed => Reply::Closed(Err(refused())),
            Request::Close => Reply::Closed(sink.flush().and_then(|()| sink.close())),
        };
        if outgoing.send(reply).is_err() {
            return;
        }
    }
}

impl<'scope> Committer<'scope> {
    /// Moves `sink` to a new thread of `scope`.
    pub(crate) fn spawn<'env, S: Sink + Send + 'scope>(
        scope: &'scope Scope<'scope, 'env>,
        sink: S,
    ) -> Result<Self> {
        let (requests, incoming) = channel::<Request>();
        let (outgoing, replies) = channel();
        let thread = std::thread::Builder::new()
            .name("singer-sink".into())
            .spawn_scoped(scope, move || serve(sink, incoming, outgoing))
            .map_err(|e| Error::Destination(format!("cannot start the sink thread: {e}").into()))?;
        Ok(Committer {
            requests,
            replies,
            in_flight: false,
            failed: false,
            _thread: thread,
        })
    }

    /// Whether a commit's outcome is still to be collected.
    pub(crate) fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Hands a commit to the sink thread. The previous one must have been collected.
    pub(crate) fn send(&mut self, commit: Commit) -> Result<()> {
        if self.failed {
            return Err(refused());
        }
        debug_assert!(!self.in_flight, "one commit in flight at most");
        self.request(Request::Commit(commit))?;
        self.in_flight = true;
        Ok(())
    }

    /// The next report of the sink thread: with `block`, waits for one; otherwise `None`
    /// if there is none yet.
    pub(crate) fn next(&mut self, block: bool) -> Result<Option<Outcome>> {
        let reply = if block {
            self.replies.recv().ok()
        } else {
            match self.replies.try_recv() {
                Ok(reply) => Some(reply),
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => None,
            }
        };
        match reply {
            Some(Reply::Committed(outcome, durable)) => {
                self.in_flight = false;
                match outcome {
                    Ok(stats) => Ok(Some(Outcome::Committed { stats, durable })),
                    Err(e) => Err(self.fail(e)),
                }
            }
            Some(Reply::Durable(Ok(()))) => Ok(Some(Outcome::Durable)),
            Some(Reply::Durable(Err(e))) => Err(self.fail(e)),
            Some(Reply::Checked(..) | Reply::Closed(_)) | None => Err(self.fail(stopped())),
        }
    }

    /// Asks the sink to make a pending group durable; its report comes through
    /// [`Committer::next`].
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.failed {
            return Err(refused());
        }
        self.request(Request::Flush)
    }

    /// Runs [`Sink::check_schema`] after everything sent before it; `Ok(true)` if
    /// everything committed so far is durable. Reports must have been collected first.
    pub(crate) fn check_schema(&mut self, stream: &TargetStream) -> Result<bool> {
        match self.ask(Request::CheckSchema(stream.clone()))? {
            Reply::Checked(result, durable) => result.map(|()| durable),
            _ => Err(self.fail(stopped())),
        }
    }

    /// Makes everything durable and runs [`Sink::close`]. Reports must have been
    /// collected first.
    pub(crate) fn close(&mut self) -> Result<()> {
        match self.ask(Request::Close)? {
            Reply::Closed(result) => result,
            _ => Err(self.fail(stopped())),
        }
    }

    /// Sends a request and waits for its answer. A group made durable meanwhile (a quiet
    /// flush) needs no report of its own: the answer says what is durable too.
    fn ask(&mut self, request: Request) -> Result<Reply> {
        self.request(request)?;
        loop {
            match self.replies.recv() {
                Ok(Reply::Durable(Ok(()))) => {}
                Ok(Reply::Durable(Err(e))) => return Err(self.fail(e)),
                Ok(reply) => return Ok(reply),
                Err(_) => return Err(self.fail(stopped())),
            }
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = true;
        e
    }

    fn request(&self, request: Request) -> Result<()> {
        self.requests.send(request).map_err(|_| stopped())
    }
}

fn refused() -> Error {
    Error::Destination("an earlier commit failed in this run; nothing more is committed".into())
}

fn stopped() -> Error {
    Error::Destination("the sink thread stopped unexpectedly".into())
}
