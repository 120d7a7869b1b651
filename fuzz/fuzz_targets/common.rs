// Shared by the fuzz targets: the vector generator's root key and the two verification paths.

use captix::{Call, Decision, KeySet, SigningKey, Verifier};

/// Fixed call time: the test vectors' clock (1_800_000_000), so their tickets are in date.
pub const NOW: u64 = 1_800_000_000;

/// The vector generator's root key (`SigningKey::from_seed(&[1; 32])`), so seeds taken from
/// `test-vectors/` carry valid signatures and reach the authorizer.
pub fn root() -> SigningKey {
    SigningKey::from_seed(&[1u8; 32])
}

pub fn keys() -> KeySet {
    KeySet::from(root().public())
}

/// The stable code of a decision, or "allow".
pub fn outcome(d: &Decision) -> &'static str {
    match d {
        Ok(_) => "allow",
        Err(denial) => denial.code.as_str(),
    }
}

/// Checks one ticket on the reference path and twice on the cached path (a miss, then a
/// hit); all three must agree on the outcome and the denying block.
pub fn check_paths(verifier: &Verifier, ticket: &[u8], call: &Call, keys: &KeySet) {
    let cold = verifier.check_bytes(ticket, call);
    let warm = verifier.check_bytes(ticket, call);
    assert_eq!(
        outcome(&cold),
        outcome(&warm),
        "cache miss and hit disagree"
    );
    if let Ok(text) = std::str::from_utf8(ticket) {
        let reference = captix::verify(text, call, keys);
        assert_eq!(
            outcome(&cold),
            outcome(&reference),
            "cached path and reference disagree"
        );
        if let (Err(a), Err(b)) = (&cold, &reference) {
            assert_eq!(
                a.block, b.block,
                "paths blame different blocks: {a:?} vs {b:?}"
            );
        }
    }
}
