//! What a call checks its answer against (its `response_format`), and for
//! whom.

use crate::quality::QualityConfig;
use crate::schema::Expect;

/// What a call checks its answer against, and for whom.
#[derive(Debug)]
pub(super) struct QualityCheck {
    pub(super) expect: Expect,
    /// The call's group's quality settings.
    pub(super) config: QualityConfig,
    pub(super) tenant: String,
    pub(super) model: String,
    /// A streamed answer's text so far.
    pub(super) text: String,
    /// Most text kept for the check: the committed provider's
    /// `max_body_bytes`, as for an answer that is not streamed.
    pub(super) text_cap: usize,
    /// The text passed the cap: the answer fails its check, and no more
    /// text is kept.
    pub(super) text_over: bool,
}

impl QualityCheck {
    /// Keep a streamed answer's `text` for the check at its end.
    pub(super) fn keep(&mut self, text: &str) {
        if self.text_over {
            return;
        }
        if self.text.len().saturating_add(text.len()) > self.text_cap {
            self.text_over = true;
            self.text = String::new();
            return;
        }
        self.text.push_str(text);
    }

    /// Whether the streamed answer passes its check (`None`: the
    /// validator cannot judge it). Text past the cap fails.
    pub(super) fn check_text(&self) -> Option<bool> {
        if self.text_over {
            return Some(false);
        }
        self.expect.check(&self.text)
    }
}
