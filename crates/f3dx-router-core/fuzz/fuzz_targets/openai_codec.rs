//! The OpenAI codec: request encoding for a parsed JSON object, response
//! decoding, and error-message extraction on raw bytes. Never panics.
#![no_main]

mod codec_common;

use f3dx_router_core::ProviderKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| codec_common::run(ProviderKind::OpenAi, data));
