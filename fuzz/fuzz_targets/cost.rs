//! The Datalog work bound (spec §7.2) against the constructs that made one call run for
//! minutes: closures nested over large literals, string concatenation, set operations,
//! joins over many facts. Input: bytes that steer a small generator of hand-written checks
//! and foreign blocks, so that sizes in the hundreds are one byte away (free text, as in the
//! `datalog` target, rarely writes a 300-element array). Oracle: every call answers (libFuzzer's
//! `-timeout` turns a run that the bound admitted but that runs for seconds into a crash),
//! a block only narrows, and both verification paths agree.
#![no_main]

use std::sync::OnceLock;

use biscuit_auth::{builder::Algorithm, BlockBuilder, KeyPair};
use captix::PREFIX;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

struct Gen<'a> {
    data: &'a [u8],
    vars: usize,
}

impl Gen<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A size from 0 to about 1,000, most often small.
    fn size(&mut self) -> usize {
        let b = self.byte() as usize;
        if b < 200 {
            b % 16
        } else {
            (b - 200) * 18
        }
    }

    fn list(&mut self, item: impl Fn(usize) -> String) -> String {
        let n = self.size();
        (0..n).map(item).collect::<Vec<_>>().join(",")
    }

    /// A value: a literal or a bound variable.
    fn value(&mut self, depth: usize) -> String {
        match self.byte() % 9 {
            0 => format!("[{}]", self.list(|i| i.to_string())),
            1 => format!("{{{}}}", self.list(|i| i.to_string())),
            2 => {
                let n = self.size() * 8;
                format!("\"{}\"", "x".repeat(n))
            }
            3 => format!("[{}]", self.list(|i| format!("\"s{i:0>20}\""))),
            4 if self.vars > 0 => format!("$v{}", self.byte() as usize % self.vars),
            5 if depth < 3 => {
                let (a, b) = (self.value(depth + 1), self.value(depth + 1));
                format!("({a} + {b})")
            }
            6 if depth < 3 => {
                let (a, b) = (self.value(depth + 1), self.value(depth + 1));
                format!("{a}.union({b})")
            }
            7 if depth < 3 => {
                let (a, b) = (self.value(depth + 1), self.value(depth + 1));
                format!("{a}.intersection({b})")
            }
            _ => (self.byte() as i64 - 100).to_string(),
        }
    }

    /// A boolean expression, closures nested up to four deep.
    fn test(&mut self, depth: usize) -> String {
        match self.byte() % 7 {
            0 | 1 if depth < 4 => {
                let coll = self.value(depth);
                let v = self.vars;
                self.vars += 1;
                let body = self.test(depth + 1);
                self.vars -= 1;
                let which = if self.byte() % 2 == 0 { "all" } else { "any" };
                format!("{coll}.{which}($v{v} -> {body})")
            }
            2 => {
                let (a, b) = (self.value(depth), self.value(depth));
                format!("{a}.contains({b})")
            }
            3 => format!("{}.type() == \"string\"", self.value(depth)),
            4 => format!("{}.length() > {}", self.value(depth), self.byte()),
            5 if depth < 4 => {
                let (a, b) = (self.test(depth + 1), self.test(depth + 1));
                if self.byte() % 2 == 0 {
                    format!("({a} || {b})")
                } else {
                    // the closure on the left of its operator
                    format!("({a}).try_or({b})")
                }
            }
            _ => {
                let (a, b) = (self.value(depth), self.value(depth));
                format!("{a} == {b}")
            }
        }
    }

    /// Either a hand-written check, or a foreign block with facts and a join.
    fn block(&mut self) -> Result<String, String> {
        if self.byte() % 4 != 0 {
            return Ok(format!("check if {}", self.test(0)));
        }
        let facts: String = (0..self.size()).map(|i| format!("a({i});")).collect();
        let preds = 1 + self.byte() as usize % 5;
        let body = (0..preds).map(|i| format!("a($j{i})")).collect::<Vec<_>>();
        let wide = if self.byte() % 2 == 0 {
            ", arg($p, $w)"
        } else {
            ""
        };
        Err(format!(
            "{facts} check if {}{wide}, $j0 < 0;",
            body.join(", ")
        ))
    }
}

fn next_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| KeyPair::new_with_algorithm(Algorithm::Ed25519))
}

fuzz_target!(|data: &[u8]| {
    let s = common::setup();
    let mut g = Gen { data, vars: 0 };
    let text = match g.block() {
        Ok(check) => match s.parent.attenuate().datalog(check).sign() {
            Ok(t) => t.as_str().to_string(),
            Err(_) => return, // over the size limit, or not a check: refused, fine
        },
        Err(code) => {
            let Ok(block) = BlockBuilder::new().code(code) else {
                return;
            };
            let Ok(b) = s.parent.biscuit().append_with_keypair(next_key(), block) else {
                return;
            };
            let Ok(bytes) = b.to_vec() else {
                return;
            };
            format!(
                "{PREFIX}{}",
                base64::encode_config(bytes, base64::URL_SAFE_NO_PAD)
            )
        }
    };
    // One call the parent allows and one it denies, each on the reference path and the
    // cached verifier (a costly ticket is costly on every path: fewer runs, more inputs).
    for call in [&s.calls[0], &s.calls[3]] {
        let child = captix::verify(&text, call, &s.keys);
        let cached = s.verifier.check(&text, call);
        if call.target.tool() == Some("delete_invoice") {
            assert!(child.is_err(), "a block widened {call:?}");
        }
        match (&child, &cached) {
            (Err(a), Err(b)) => assert_eq!((a.code, a.block), (b.code, b.block)),
            (Ok(_), Ok(_)) => {}
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => assert!(
                e.code == captix::Code::CheckFailed && e.block.is_none(),
                "one path allows, the other denies: {e:?}"
            ),
        }
    }
});
