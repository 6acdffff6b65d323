//! One `chat.completion.chunk` of a stream, as the caller gets it: the
//! upstream event's JSON text, unchanged, when the stream needs no
//! translation (an OpenAI-compatible provider), or a value the router built
//! (a translated stream).
//!
//! A front door writes an unchanged chunk as the bytes that came in (only
//! the SSE framing is the router's, see [`Chunk::write_event`]), and never
//! builds a `serde_json::Value` for it; a host that hands out values (the
//! Python `ChatStream`) decodes it with [`Chunk::value`].

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

/// One chunk of a committed stream. Compare with [`Chunk::value`]: two
/// chunks with equal values are equal whatever their text's formatting.
#[derive(Clone, Debug)]
pub struct Chunk(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// An upstream event's `data`, checked to be a JSON object when it was
    /// decoded (so [`Chunk::value`] never fails on it).
    Raw(String),
    /// A chunk the router built.
    Built(Value),
}

impl Chunk {
    /// An upstream event's `data`, already checked to be a chunk object
    /// (see `codec::stream`): it goes out as it came.
    pub(crate) fn raw(data: String) -> Self {
        Chunk(Repr::Raw(data))
    }

    /// The chunk as JSON. An unchanged chunk is parsed here (for a host
    /// that hands out values), not when it arrived.
    pub fn value(&self) -> Cow<'_, Value> {
        match &self.0 {
            Repr::Built(v) => Cow::Borrowed(v),
            // The text was checked to parse (by the same parser) when the
            // chunk was decoded; `Null` is for the impossible.
            Repr::Raw(text) => Cow::Owned(serde_json::from_str(text).unwrap_or(Value::Null)),
        }
    }

    /// The chunk as JSON, owned.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Built(v) => v,
            Repr::Raw(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// The same chunk as JSON text: what it sends is unchanged (a built
    /// value is serialized as [`Chunk::write_event`] would), and it is
    /// several times smaller than a value.
    pub(crate) fn into_text(self) -> Self {
        match self.0 {
            Repr::Raw(_) => self,
            // A JSON value always serializes.
            Repr::Built(v) => Chunk(Repr::Raw(serde_json::to_string(&v).unwrap_or_default())),
        }
    }

    /// The upstream's JSON text, when the chunk is passed on unchanged.
    pub fn raw_text(&self) -> Option<&str> {
        match &self.0 {
            Repr::Raw(text) => Some(text),
            Repr::Built(_) => None,
        }
    }

    /// Append the chunk as one server-sent event to `out`: `data: ` and its
    /// JSON, then a blank line. An unchanged chunk's text goes out byte for
    /// byte; a text that spanned several `data:` lines upstream (joined
    /// with `\n`) goes out as as many lines, which a client joins back to
    /// the same text.
    pub fn write_event(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Repr::Built(v) => {
                out.extend_from_slice(b"data: ");
                // A JSON value always serializes.
                serde_json::to_writer(&mut *out, v).unwrap_or_default();
                out.extend_from_slice(b"\n\n");
            }
            Repr::Raw(text) => {
                out.reserve(text.len() + 8);
                for line in text.split('\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
                out.push(b'\n');
            }
        }
    }

    /// The first choice's `delta.content` (empty when there is none): the
    /// text a stream's answer is checked on at its end.
    pub(crate) fn content(&self) -> Cow<'_, str> {
        match &self.0 {
            Repr::Built(v) => match &v["choices"][0]["delta"]["content"] {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                _ => Cow::Borrowed(""),
            },
            Repr::Raw(text) => first_content(text),
        }
    }
}

impl From<Value> for Chunk {
    fn from(v: Value) -> Self {
        Chunk(Repr::Built(v))
    }
}

impl PartialEq for Chunk {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Raw(a), Repr::Raw(b)) if a == b => true,
            _ => self.value() == other.value(),
        }
    }
}

/// The first choice's `delta.content` of a chunk's JSON text, read without
/// building a value (the text was checked when the chunk was decoded; on
/// anything unexpected, the value's reading is the fallback).
fn first_content(text: &str) -> Cow<'_, str> {
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(borrow, default)]
        choices: Option<Vec<Choice<'a>>>,
    }
    #[derive(Deserialize)]
    struct Choice<'a> {
        #[serde(borrow, default)]
        delta: Option<Delta<'a>>,
    }
    #[derive(Deserialize)]
    struct Delta<'a> {
        #[serde(borrow, default)]
        content: Option<Cow<'a, str>>,
    }
    match serde_json::from_str::<Top<'_>>(text) {
        Ok(top) => top
            .choices
            .and_then(|c| c.into_iter().next())
            .and_then(|c| c.delta)
            .and_then(|d| d.content)
            .unwrap_or_default(),
        Err(_) => match &serde_json::from_str::<Value>(text).unwrap_or(Value::Null)["choices"][0]
            ["delta"]["content"]
        {
            Value::String(s) => Cow::Owned(s.clone()),
            _ => Cow::Borrowed(""),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unchanged_chunk_goes_out_as_it_came() {
        let text = "{\"z\": 1,  \"choices\":[{\"delta\":{\"content\":\"caf\\u00e9\"}}], \"x\":{}}";
        let mut out = Vec::new();
        Chunk::raw(text.to_owned()).write_event(&mut out);
        assert_eq!(out, format!("data: {text}\n\n").into_bytes());
        assert_eq!(Chunk::raw(text.to_owned()).content(), "café");
        // A text of several lines is framed line by line.
        let mut out = Vec::new();
        Chunk::raw("{\"a\":\n1}".to_owned()).write_event(&mut out);
        assert_eq!(out, b"data: {\"a\":\ndata: 1}\n\n");
    }

    #[test]
    fn a_built_chunk_is_serialized_and_compares_by_value() {
        let v = json!({"choices": [{"delta": {"content": "hi"}}]});
        let mut out = Vec::new();
        Chunk::from(v.clone()).write_event(&mut out);
        assert_eq!(
            out,
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
        );
        let raw = Chunk::raw("{\"choices\": [{\"delta\": {\"content\": \"hi\"}}]}".into());
        assert_eq!(raw, Chunk::from(v.clone()));
        assert_eq!(raw.content(), "hi");
        assert_eq!(raw.into_value(), v);
        assert_ne!(Chunk::raw("{}".into()), Chunk::from(v));
    }

    #[test]
    fn content_is_empty_when_there_is_none() {
        for text in [
            "{\"choices\":[]}",
            "{\"choices\":[{\"delta\":{\"content\":null}}]}",
            "{\"choices\":[{\"delta\":{}}],\"usage\":{}}",
            "{\"choices\":[1]}",
            "{\"choices\":[{\"delta\":{\"content\":7}}]}",
        ] {
            assert_eq!(Chunk::raw(text.into()).content(), "", "{text}");
        }
    }
}
