//! Where an attempt is in its life, and every move between phases in one
//! table ([`Phase::after`]): every attempt starts in `AwaitingHead`, and its
//! phase is never assigned anywhere else.
//!
//! ```text
//!  AwaitingHead --Head{streamed: false}--> ReadingBody --Settle--> Ended
//!       |      \--Head{streamed: true}---> Streaming --Output--> Committed --Settle--> Ended
//!       |--HeadFailed--> Draining --Drained--> Ended
//!       `--Settle--> Ended          (a fault, a timeout, a body over the cap)
//!  any open phase but Committed --Cancel--> Ended       (another leg won)
//! ```

/// Where an attempt is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Sent; waiting for the response head.
    AwaitingHead,
    /// A 2xx head arrived; the body decides success.
    ReadingBody,
    /// A 2xx head of a streamed attempt arrived; no output yet.
    Streaming,
    /// The streamed attempt committed: its chunks are the caller's.
    Committed,
    /// A failure status arrived and the outcome is decided; the body is read
    /// only for the error message.
    Draining,
    /// Nothing more to hear.
    Ended,
}

/// What moves an attempt from one phase to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// A 2xx head arrived (of a streamed call, or not).
    Head {
        /// The call streams.
        streamed: bool,
    },
    /// A failure head arrived: the outcome is decided, the error body is
    /// still read for its message.
    HeadFailed,
    /// A streamed attempt's first output: the commit point.
    Output,
    /// The outcome is decided and nothing more is read (an answer, a fault,
    /// a timeout, the end of a committed stream).
    Settle,
    /// A failed attempt's error body ended, failed or ran out of time.
    Drained,
    /// The call needs the attempt no more (another leg won, or the call
    /// ended).
    Cancel,
}

impl Phase {
    /// The phase after `step`: the whole table of legal moves. An illegal
    /// move is a bug in the call (every caller checks the phase first): it
    /// asserts in debug builds and leaves the phase as it was otherwise.
    pub(super) fn after(self, step: Step) -> Phase {
        use Phase::*;
        let next = match (self, step) {
            (AwaitingHead, Step::Head { streamed: false }) => Some(ReadingBody),
            (AwaitingHead, Step::Head { streamed: true }) => Some(Streaming),
            (AwaitingHead, Step::HeadFailed) => Some(Draining),
            (Streaming, Step::Output) => Some(Committed),
            (AwaitingHead | ReadingBody | Streaming | Committed, Step::Settle) => Some(Ended),
            (Draining, Step::Drained) => Some(Ended),
            (AwaitingHead | ReadingBody | Streaming | Draining, Step::Cancel) => Some(Ended),
            _ => None,
        };
        debug_assert!(
            next.is_some(),
            "illegal attempt step {step:?} from {self:?}"
        );
        next.unwrap_or(self)
    }

    /// Whether the attempt's outcome is still open: it counts as a leg in
    /// flight.
    pub(super) fn is_open(self) -> bool {
        matches!(
            self,
            Phase::AwaitingHead | Phase::ReadingBody | Phase::Streaming | Phase::Committed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Phase::*;
        let moves = [
            (AwaitingHead, Step::Head { streamed: false }, ReadingBody),
            (AwaitingHead, Step::Head { streamed: true }, Streaming),
            (AwaitingHead, Step::HeadFailed, Draining),
            (Streaming, Step::Output, Committed),
            (AwaitingHead, Step::Settle, Ended),
            (ReadingBody, Step::Settle, Ended),
            (Streaming, Step::Settle, Ended),
            (Committed, Step::Settle, Ended),
            (Draining, Step::Drained, Ended),
            (AwaitingHead, Step::Cancel, Ended),
            (ReadingBody, Step::Cancel, Ended),
            (Streaming, Step::Cancel, Ended),
            (Draining, Step::Cancel, Ended),
        ];
        for (from, step, to) in moves {
            assert_eq!(from.after(step), to, "{from:?} {step:?}");
        }
        let open: Vec<Phase> = [
            AwaitingHead,
            ReadingBody,
            Streaming,
            Committed,
            Draining,
            Ended,
        ]
        .into_iter()
        .filter(|p| p.is_open())
        .collect();
        assert_eq!(open, [AwaitingHead, ReadingBody, Streaming, Committed]);
    }

    /// A committed stream is the caller's: it ends by `Settle`, never as a
    /// losing leg.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "illegal attempt step")]
    fn a_committed_stream_is_not_cancelled() {
        let _ = Phase::Committed.after(Step::Cancel);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "illegal attempt step")]
    fn ended_is_final() {
        let _ = Phase::Ended.after(Step::Settle);
    }
}
