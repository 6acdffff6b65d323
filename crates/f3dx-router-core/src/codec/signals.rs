//! What an OpenAI stream chunk signals to the commit point (whether it
//! carries output, whether it finishes), read from its JSON text without
//! building a `serde_json::Value`: the chunk goes out as the text it came
//! as, so nothing else needs the value.
//!
//! The reading is exactly as strict as parsing into a `Value` (every
//! string unescaped and checked, every number parsed, through the same
//! `deserialize_any`), so a chunk it takes is one a host can still decode.
//! It answers only the usual case; anything else (an `error` key, a key
//! given twice, `choices` that is not a list, a `delta.content` that is
//! not text, text that is not JSON) gives `None`, and the caller reads the
//! chunk as a value, which decides and gives the reason.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// `(output, finish)` of the chunk `data`, or `None` when the quick reading
/// does not decide (see the module docs).
pub(crate) fn chunk_signals(data: &str) -> Option<(bool, bool)> {
    // A struct is also read from a JSON list: only an object is taken.
    if !data.trim_start().starts_with('{') {
        return None;
    }
    let top: Top = serde_json::from_str(data).ok()?;
    if top.undecided {
        return None;
    }
    let choices = top.choices?;
    Some(
        choices
            .iter()
            .fold((false, false), |(o, f), c| (o || c.output, f || c.finish)),
    )
}

/// What a JSON value was, consumed as strictly as a `Value` would be.
enum Shape {
    Null,
    Scalar,
    /// A string; whether it is non-empty.
    Text(bool),
    /// A list; whether it is non-empty.
    List(bool),
    Object,
}

impl Shape {
    /// Whether a delta field of this shape carries output (as the value
    /// reading: a non-empty string or list, any other non-null value).
    fn carries(&self) -> bool {
        match self {
            Shape::Null => false,
            Shape::Text(b) | Shape::List(b) => *b,
            Shape::Scalar | Shape::Object => true,
        }
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }
    fn visit_str<E>(self, s: &str) -> Result<Shape, E> {
        Ok(Shape::Text(!s.is_empty()))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut any = false;
        while seq.next_element::<Shape>()?.is_some() {
            any = true;
        }
        Ok(Shape::List(any))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<Shape, Shape>()?.is_some() {}
        Ok(Shape::Object)
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A repeated key the reading cares about: the value reading decides.
fn repeated<E: de::Error>(seen: &mut bool) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::custom("a key given twice"));
    }
    Ok(())
}

/// The chunk object: its choices' signals, and whether the value reading
/// must decide (an `error` key).
struct Top {
    choices: Option<Vec<Choice>>,
    undecided: bool,
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chunk object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut top = Top {
                    choices: None,
                    undecided: false,
                };
                let mut seen = false;
                while let Some(Key(key)) = map.next_key()? {
                    match key.as_ref() {
                        "choices" => {
                            repeated(&mut seen)?;
                            top.choices = map.next_value()?;
                        }
                        "error" => {
                            top.undecided = true;
                            map.next_value::<Shape>()?;
                        }
                        _ => {
                            map.next_value::<Shape>()?;
                        }
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(TopVisitor)
    }
}

/// One choice's signals. A choice that is no object signals nothing, as
/// the value reading says.
#[derive(Default)]
struct Choice {
    output: bool,
    finish: bool,
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ChoiceVisitor)
    }
}

struct ChoiceVisitor;

impl<'de> Visitor<'de> for ChoiceVisitor {
    type Value = Choice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a choice")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice, A::Error> {
        let (mut finish, mut delta) = (false, None);
        let (mut seen_finish, mut seen_delta) = (false, false);
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "finish_reason" => {
                    repeated(&mut seen_finish)?;
                    finish = !matches!(map.next_value()?, Shape::Null);
                }
                "delta" => {
                    repeated(&mut seen_delta)?;
                    delta = map.next_value::<Delta>()?.output;
                }
                _ => {
                    map.next_value::<Shape>()?;
                }
            }
        }
        Ok(Choice {
            output: finish || delta.unwrap_or(false),
            finish,
        })
    }
    // Anything else is no object: consumed, signalling nothing.
    fn visit_bool<E>(self, _: bool) -> Result<Choice, E> {
        Ok(Choice::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Choice, E> {
        Ok(Choice::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Choice, E> {
        Ok(Choice::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Choice, E> {
        Ok(Choice::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Choice, E> {
        Ok(Choice::default())
    }
    fn visit_unit<E>(self) -> Result<Choice, E> {
        Ok(Choice::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Choice, A::Error> {
        ShapeVisitor.visit_seq(seq).map(|_| Choice::default())
    }
}

/// A choice's `delta`: whether it carries output; `None` when it is no
/// object (the value reading then looks at the finish reason alone).
struct Delta {
    output: Option<bool>,
}

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DeltaVisitor)
            .map(|output| Delta { output })
    }
}

struct DeltaVisitor;

impl<'de> Visitor<'de> for DeltaVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a delta")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<bool>, A::Error> {
        // content, tool_calls, refusal, function_call
        let mut seen = [false; 4];
        let mut output = false;
        while let Some(Key(key)) = map.next_key()? {
            let i = match key.as_ref() {
                "content" => 0,
                "tool_calls" => 1,
                "refusal" => 2,
                "function_call" => 3,
                _ => {
                    map.next_value::<Shape>()?;
                    continue;
                }
            };
            repeated(&mut seen[i])?;
            let shape: Shape = map.next_value()?;
            output |= match (i, shape) {
                (0, Shape::Text(b)) => b,
                (0, Shape::Null) => false,
                // Content that is no text: the value reading says why.
                (0, _) => return Err(de::Error::custom("content is not text")),
                (_, shape) => shape.carries(),
            };
        }
        Ok(Some(output))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<bool>, A::Error> {
        ShapeVisitor.visit_seq(seq).map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::stream::signals_of_value;

    const AZURE_PROMPT_FILTER: &str = r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false}}}]}"#;

    /// The quick reading, where it decides, agrees with the value reading.
    #[test]
    fn agrees_with_the_value_reading() {
        let decided = [
            r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[]}}]}"#,
            r#"{"choices":[{"delta":{"refusal":"no"}}]}"#,
            r#"{"choices":[{"delta":{"refusal":""}}]}"#,
            r#"{"choices":[{"delta":{"function_call":{"name":"f"}}}]}"#,
            r#"{"choices":[{"delta":{"function_call":7}}]}"#,
            r#"{"choices":[{"delta":{"content":null}}]}"#,
            r#"{"choices":[],"usage":{"total_tokens":3}}"#,
            r#"{"choices":[1, "x", null, [1], {"delta":"text"}]}"#,
            r#"{"choices":[{"delta":[{"content":"x"}],"finish_reason":1}]}"#,
            r#"{"choices":[{"delta":{"content":"caf\u00e9 \ud83d\ude00"}}],"x":[{"y":1e5}]}"#,
            r#"  { "z" : 1 , "choices" : [ { "delta" : { "content" : "a" } } ] }  "#,
            r#"{"\u0063hoices":[{"delta":{"content":"escaped key"}}]}"#,
            r#"{"choices":[{"delta":{"content":"x","content2":1}}],"choices2":{}}"#,
            // Azure OpenAI: the prompt's filter results first, in a chunk
            // without choices; each choice's own results; a last chunk of
            // results after the finish reason, without a delta.
            AZURE_PROMPT_FILTER,
            r#"{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hi"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"c","model":"gpt-4o","object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":2},"content_filter_results":{},"finish_reason":null,"index":0}],"created":1,"id":"c","model":"gpt-4o","object":"chat.completion.chunk"}"#,
        ];
        // Azure's prompt-filter chunk neither commits nor finishes.
        assert_eq!(chunk_signals(AZURE_PROMPT_FILTER), Some((false, false)));
        for text in decided {
            let quick = chunk_signals(text);
            assert!(quick.is_some(), "{text}");
            assert_eq!(quick, signals_of_value(text).unwrap().ok(), "{text}");
        }
        let undecided = [
            r#"{"error":{"message":"overloaded"}}"#,
            r#"{"error":null,"choices":[]}"#,
            r#"{"choices":[{"delta":{"content":1}}]}"#,
            r#"{"choices":[{"delta":{"content":["a"]}}]}"#,
            r#"{"choices":{}}"#,
            r#"{"choices":null}"#,
            r#"{"id":1}"#,
            r#"{"choices":[],"choices":[{"delta":{"content":"x"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a","content":""}}]}"#,
            r#"{"choices":[{"finish_reason":null,"finish_reason":"stop"}]}"#,
            // Exactly as strict as a value: a lone surrogate, a number out
            // of range, a control character, trailing text.
            r#"{"choices":[],"x":"\ud800"}"#,
            "{\"choices\":[],\"x\":\"a\u{1}\"}",
            r#"{"choices":[]} x"#,
            r#"[{"choices":[]}]"#,
            "not json",
            "",
        ];
        for text in undecided {
            assert_eq!(chunk_signals(text), None, "{text}");
        }
        // A number out of f64's range is refused, unless serde_json keeps
        // numbers as text (`arbitrary_precision`, as the Python build has
        // it): taken exactly when a value takes it.
        let huge = r#"{"choices":[],"x":1e999}"#;
        let as_value = serde_json::from_str::<serde_json::Value>(huge).is_ok();
        assert_eq!(chunk_signals(huge).is_some(), as_value);
    }
}
