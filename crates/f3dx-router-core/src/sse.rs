//! Server-sent events: bytes in, events out, as the HTML standard parses
//! an `text/event-stream` (§9.2.6).
//!
//! Pure and incremental: [`SseParser::feed`] takes the body in whatever
//! pieces the network delivers (a line, an event or a UTF-8 character may
//! be split anywhere) and gives the same events for any split of the same
//! bytes. Lines end with CRLF, LF or CR; `:` starts a comment; `data:`
//! lines of one event are joined with `\n`; an empty line dispatches.

use std::fmt;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the event had none (the standard's
    /// default type is `message`).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` seen, if any (the stream's, not only this event's).
    pub id: Option<String>,
}

/// The stream broke a limit: a line or event longer than the parser's cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseTooLarge {
    /// The cap that was passed, in bytes.
    pub limit: usize,
}

impl fmt::Display for SseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an event-stream line or event over {} bytes", self.limit)
    }
}

impl std::error::Error for SseTooLarge {}

/// An incremental event-stream parser.
#[derive(Clone, Debug)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The last byte fed was a CR: a LF right after it ends nothing more.
    after_cr: bool,
    /// Nothing has been fed yet: a leading BOM is dropped.
    at_start: bool,
    event: String,
    /// The pending event's `data` lines, joined, as bytes: checked as
    /// UTF-8 once, when the event is dispatched (a `\n` ends any broken
    /// sequence, so this replaces exactly what a check per line would).
    data: Vec<u8>,
    /// Whether any `data` field was seen for the pending event.
    has_data: bool,
    last_id: Option<String>,
    /// Most bytes a line, or an event's data, may hold.
    limit: usize,
    failed: bool,
}

impl SseParser {
    /// A parser whose lines and events may hold at most `limit` bytes each.
    pub fn new(limit: usize) -> Self {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: String::new(),
            data: Vec::new(),
            has_data: false,
            last_id: None,
            limit,
            failed: false,
        }
    }

    /// Parse `bytes`, appending every event they complete to `out`. After an
    /// error the parser is spent: later calls return the same error.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        self.parse(bytes, out, false).map(|_| ())
    }

    /// Parse `bytes` up to the end of the first event they complete (or all
    /// of them); return how many were consumed. The rest can be fed later:
    /// the events are the same as [`SseParser::feed`]'s.
    pub fn feed_until_event(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<usize, SseTooLarge> {
        self.parse(bytes, out, true)
    }

    fn parse(
        &mut self,
        all: &[u8],
        out: &mut Vec<SseEvent>,
        one: bool,
    ) -> Result<usize, SseTooLarge> {
        if self.failed {
            return Err(SseTooLarge { limit: self.limit });
        }
        let mut bytes = all;
        let before = out.len();
        let consumed = |rest: &[u8]| all.len() - rest.len();
        if self.at_start && !bytes.is_empty() {
            // The BOM may itself arrive split; hold back a partial one.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let have = self.line.len();
            let need = BOM.len() - have;
            let take = need.min(bytes.len());
            if BOM[have..have + take] == bytes[..take] {
                self.line.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.line.len() < BOM.len() {
                    return Ok(all.len());
                }
                self.line.clear();
            } else {
                // Not a BOM after all: what was held back is line text.
            }
            self.at_start = false;
        }
        // A line at a time, not a byte at a time: a read of a whole stream
        // is mostly scanning for line ends.
        while let Some(&first) = bytes.first() {
            if first == b'\n' && self.after_cr {
                self.after_cr = false;
                bytes = &bytes[1..];
                continue;
            }
            let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.line.len() + bytes.len() > self.limit {
                    return self.fail();
                }
                self.line.extend_from_slice(bytes);
                self.after_cr = false;
                break;
            };
            if self.line.len() + end > self.limit {
                return self.fail();
            }
            self.after_cr = bytes[end] == b'\r';
            if self.line.is_empty() {
                // The whole line is in this read: no copy.
                self.line_done(&bytes[..end], out)?;
            } else {
                self.line.extend_from_slice(&bytes[..end]);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, out)?;
                // Reuse the buffer's allocation.
                self.line = line;
                self.line.clear();
            }
            bytes = &bytes[end + 1..];
            if one && out.len() > before {
                return Ok(consumed(bytes));
            }
        }
        Ok(all.len())
    }

    /// Bytes the parser holds for a line or an event not finished yet: a
    /// caller that holds the events as well counts both against its cap.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.event.len() + self.data.len()
    }

    /// The stream ended. An unterminated last line is processed as a line;
    /// an event not yet dispatched by an empty line is discarded, as the
    /// standard says (a stream cut mid-event loses that event).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if self.failed {
            return Err(SseTooLarge { limit: self.limit });
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.event.clear();
        self.data.clear();
        self.has_data = false;
        Ok(())
    }

    fn fail<T>(&mut self) -> Result<T, SseTooLarge> {
        self.failed = true;
        Err(SseTooLarge { limit: self.limit })
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if line.is_empty() {
            if self.has_data {
                let data = std::mem::take(&mut self.data);
                // Invalid UTF-8 is replaced, as a browser decodes the stream.
                let data = String::from_utf8(data)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data,
                    id: self.last_id.clone(),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // a comment (keep-alive)
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if name == b"data" {
            if self.data.len() + value.len() + 1 > self.limit {
                return self.fail();
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
            return Ok(());
        }
        // Invalid UTF-8 is replaced, as a browser decodes the stream.
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event = value.into_owned(),
            // An id with a NUL is ignored, per the standard.
            b"id" if !value.contains('\0') => self.last_id = Some(value.into_owned()),
            _ => {} // `retry` and unknown fields mean nothing to a router
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: None,
        }
    }

    #[test]
    fn fields_comments_and_line_endings() {
        let text = b"\xEF\xBB\xBF: keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n\
                     data:x\rdata: y\r\rdata\n\nretry: 10\nunknown: z\n\ndata:  two spaces\n\n";
        assert_eq!(
            parse_in(&[text]),
            [
                ev("message_start", "{\"a\":1}"),
                ev("", "x\ny"),
                ev("", ""),
                ev("", " two spaces")
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_line_by_line() {
        let text: &[u8] = b"data: a\xE2\x82\ndata: \x80b\xF0\n\n";
        let want = [ev("", "a\u{FFFD}\n\u{FFFD}b\u{FFFD}")];
        for i in 0..=text.len() {
            assert_eq!(parse_in(&[&text[..i], &text[i..]]), want, "{i}");
        }
    }

    #[test]
    fn an_event_cut_before_its_blank_line_is_dropped() {
        assert_eq!(parse_in(&[b"data: a\n\ndata: b"]), [ev("", "a")]);
        assert_eq!(parse_in(&[b"data: a\n\ndata: b\n"]), [ev("", "a")]);
    }

    #[test]
    fn ids_carry_over() {
        let out = parse_in(&[b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"]);
        assert_eq!(out[0].id.as_deref(), Some("7"));
        assert_eq!(out[1].id.as_deref(), Some("7"));
        assert_eq!(out[2].id.as_deref(), Some(""));
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let text: &[u8] =
            "\u{feff}event: e\r\ndata: héllo\r\n\r\n: c\rdata: x\r\rdata: [DONE]\n\n".as_bytes();
        let whole = parse_in(&[text]);
        assert_eq!(whole.len(), 3);
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(
                    parse_in(&[&text[..i], &text[i..j], &text[j..]]),
                    whole,
                    "{i} {j}"
                );
            }
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_in(&bytes), whole);
    }

    #[test]
    fn one_event_at_a_time_gives_the_same_events() {
        let text: &[u8] =
            "\u{feff}event: e\r\ndata: héllo\r\n\r\n: c\rdata: x\r\rdata: [DONE]\n\n".as_bytes();
        let whole = parse_in(&[text]);
        for split in 0..=text.len() {
            let mut p = SseParser::new(1 << 20);
            let mut out = Vec::new();
            for piece in [&text[..split], &text[split..]] {
                let mut rest = piece;
                while !rest.is_empty() {
                    let before = out.len();
                    let n = p.feed_until_event(rest, &mut out).unwrap();
                    assert!(out.len() <= before + 1, "at most one event a call");
                    assert!(n > 0 || rest.is_empty());
                    rest = &rest[n..];
                }
            }
            assert_eq!(out, whole, "{split}");
        }
    }

    #[test]
    fn buffered_counts_the_unfinished_line_and_event() {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        p.feed(b"event: e\ndata: 0123", &mut out).unwrap();
        assert_eq!(p.buffered(), 1 + "data: 0123".len());
        p.feed(b"\ndata: 45\n", &mut out).unwrap();
        assert_eq!(p.buffered(), 1 + "0123\n45".len());
        p.feed(b"\n", &mut out).unwrap();
        assert_eq!((p.buffered(), out.len()), (0, 1));
    }

    #[test]
    fn lines_and_events_are_bounded() {
        let mut p = SseParser::new(16);
        let mut out = Vec::new();
        assert!(p.feed(&[b'a'; 17], &mut out).is_err());
        assert!(p.feed(b"\n", &mut out).is_err(), "an error is sticky");
        let mut p = SseParser::new(16);
        let err = p.feed(b"data: 0123456789\ndata: 0123456789\n", &mut out);
        assert_eq!(err, Err(SseTooLarge { limit: 16 }));
    }
}
