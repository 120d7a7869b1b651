//! An appended block with any signed context and any Datalog: what a holder can write into a
//! ticket with its own key. Input: `CONTEXT \0 DATALOG`. The description reader (JSON, then
//! the regenerated Datalog compared byte for byte) must never panic, and whatever the block
//! says, it can only narrow: a call the parent denies stays denied, and both verification
//! paths agree.
#![no_main]

use std::sync::OnceLock;

use biscuit_auth::BlockBuilder;
use biscuit_auth::{builder::Algorithm, KeyPair};
use captix::PREFIX;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// The key of the appended block (any key: attenuation needs none from the issuer).
fn next_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| KeyPair::new_with_algorithm(Algorithm::Ed25519))
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(context), Some(code)) = (parts.next(), parts.next()) else {
        return;
    };
    let (Ok(context), Ok(code)) = (std::str::from_utf8(context), std::str::from_utf8(code)) else {
        return;
    };
    let s = common::setup();
    let Ok(block) = BlockBuilder::new().code(code) else {
        return;
    };
    let Ok(child) = s
        .parent
        .biscuit()
        .append_with_keypair(next_key(), block.context(context.to_string()))
    else {
        return;
    };
    let Ok(bytes) = child.to_vec() else {
        return;
    };
    let text = format!(
        "{PREFIX}{}",
        base64::encode_config(bytes, base64::URL_SAFE_NO_PAD)
    );
    for call in &s.calls {
        let parent = captix::verify(s.parent.as_str(), call, &s.keys);
        let child_d = captix::verify(&text, call, &s.keys);
        if parent.is_err() {
            assert!(
                child_d.is_err(),
                "a block widened {call:?}: {context:?} {code:?}"
            );
        }
        common::check_paths(&s.verifier, text.as_bytes(), call, &s.keys);
    }
});
