//! Hand-written Datalog in an attenuation block (`captix attenuate --datalog`). Whatever the
//! check, a block can only narrow: a call the parent denies stays denied with the parent's
//! code, both verification paths agree, and the run limits stop hostile rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(check) = std::str::from_utf8(data) else {
        return;
    };
    let s = common::setup();
    let Ok(child) = s.parent.attenuate().datalog(check).sign() else {
        return; // not a check the builder accepts: refused with an error, fine
    };
    for call in &s.calls {
        let parent = captix::verify(s.parent.as_str(), call, &s.keys);
        let child_d = captix::verify(child.as_str(), call, &s.keys);
        if let Err(p) = &parent {
            let c = child_d.as_ref().expect_err("a block widened a denied call");
            // The parent's own denial, whatever the check does (spec §6.3).
            assert_eq!(
                (c.code, c.block),
                (p.code, p.block),
                "{check:?}: {c:?} vs {p:?}"
            );
        }
        common::check_paths(&s.verifier, child.as_str().as_bytes(), call, &s.keys);
    }
});
