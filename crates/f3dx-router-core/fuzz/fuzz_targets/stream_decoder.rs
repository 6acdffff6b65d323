//! The stream decoders (OpenAI pass-through, Anthropic translation): any
//! sequence of events never panics, and every chunk they give is a
//! `chat.completion.chunk` object with a `choices` list.
#![no_main]

use arbitrary::Arbitrary;
use f3dx_router_core::internals::codec::stream::{StreamDecoder, StreamItem};
use f3dx_router_core::internals::sse::SseEvent;
use f3dx_router_core::ProviderKind;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Script {
    anthropic: bool,
    include_usage: bool,
    events: Vec<(String, String)>,
}

fuzz_target!(|script: Script| {
    let kind = if script.anthropic {
        ProviderKind::Anthropic
    } else {
        ProviderKind::OpenAi
    };
    let mut decoder = StreamDecoder::new(kind, script.include_usage, 1_700_000_000);
    let mut items = Vec::new();
    for (event, data) in script.events.into_iter().take(64) {
        let event = SseEvent {
            event,
            data,
            id: None,
        };
        // An undecodable event is an Err, never a panic.
        let _ = decoder.decode(event, &mut items);
    }
    for item in items {
        if let StreamItem::Chunk { chunk, .. } = item {
            let chunk = chunk.value();
            assert!(
                chunk.get("choices").is_some_and(|c| c.is_array()),
                "{chunk}"
            );
            if script.anthropic {
                assert_eq!(chunk["object"], "chat.completion.chunk");
            }
        }
    }
});
