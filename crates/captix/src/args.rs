//! Call arguments as JSON-Pointer facts (spec §3.2).
//!
//! > Each scalar leaf of the arguments object yields one fact `arg($pointer, $value)`, where
//! > `$pointer` is the leaf's RFC 6901 JSON Pointer. Strings, integers that fit in 64 bits,
//! > booleans and null are leaves; other numbers yield no fact, so every constraint on them
//! > denies. Empty objects and arrays yield no fact.
//!
//! Duplicate keys, excessive size, depth or leaf count are refused before any Datalog runs.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::{Code, Denial};
use crate::limits::{MAX_ARGS_BYTES, MAX_ARGS_DEPTH, MAX_ARGS_LEAVES};

/// A scalar JSON value: an argument leaf, or a value in a row filter.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(untagged)]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A string.
    Str(String),
    /// JSON `null` (argument leaves only; row filters never name it).
    Null,
}

impl Scalar {
    /// The Datalog type name of the value (`.type()` in Datalog v3.3).
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "bool",
            Scalar::Int(_) => "integer",
            Scalar::Str(_) => "string",
            Scalar::Null => "null",
        }
    }

    pub(crate) fn to_term(&self) -> biscuit_auth::builder::Term {
        use biscuit_auth::builder::{boolean, int, string, Term};
        match self {
            Scalar::Bool(b) => boolean(*b),
            Scalar::Int(i) => int(*i),
            Scalar::Str(s) => string(s),
            Scalar::Null => Term::Null,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Scalar::Null => f.write_str("null"),
        }
    }
}

/// Parsed call arguments: the scalar leaves, sorted by pointer (pointers are unique).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    leaves: Vec<(String, Scalar)>,
}

impl Args {
    /// Parses a JSON object from text, enforcing the limits of spec §7.
    pub fn from_json(text: &str) -> Result<Self, Denial> {
        Self::from_slice(text.as_bytes())
    }

    /// Parses a JSON object from bytes (which must be UTF-8), enforcing the limits of spec §7.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Denial> {
        let mut args = Args {
            leaves: Vec::with_capacity(8),
        };
        args.read(bytes)?;
        Ok(args)
    }

    /// [`Args::from_slice`] into this value, which it replaces whole (on a refusal it is left
    /// empty). The buffers of the leaves it held are reused: a server that checks call after
    /// call with one `Args` allocates nothing for a typical call's arguments (a flat object
    /// whose names are no longer than the last call's).
    pub fn read(&mut self, bytes: &[u8]) -> Result<(), Denial> {
        if bytes.len() > MAX_ARGS_BYTES {
            self.leaves.clear();
            return Err(Denial::new(
                Code::ArgsTooLarge,
                format!("the arguments are longer than the limit of {MAX_ARGS_BYTES} bytes"),
            ));
        }
        if flat(bytes, &mut self.leaves).is_some() {
            return Ok(());
        }
        match Self::from_slice_by_serde(bytes) {
            Ok(args) => {
                *self = args;
                Ok(())
            }
            Err(d) => {
                self.leaves.clear();
                Err(d)
            }
        }
    }

    /// The general reader (every shape of §3.2), which `from_slice` falls back to.
    fn from_slice_by_serde(bytes: &[u8]) -> Result<Self, Denial> {
        // Room for a typical call's leaves, and a pointer buffer that rarely grows.
        let mut leaves = Vec::with_capacity(8);
        let mut pointer = String::with_capacity(64);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let seed = Walk {
            out: &mut leaves,
            pointer: &mut pointer,
            depth: 0,
        };
        let res = seed.deserialize(&mut de).and_then(|()| de.end());
        if let Err(e) = res {
            return Err(classify(&e.to_string()));
        }
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Args { leaves })
    }

    /// From an already parsed JSON value (which cannot hold duplicate keys).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, Denial> {
        Self::from_json(&value.to_string())
    }

    /// No arguments.
    pub fn empty() -> Self {
        Args::default()
    }

    /// The value at a pointer, if that pointer names a scalar leaf.
    pub fn get(&self, pointer: &str) -> Option<&Scalar> {
        self.leaves
            .binary_search_by(|(p, _)| p.as_str().cmp(pointer))
            .ok()
            .map(|i| &self.leaves[i].1)
    }

    /// All leaves, sorted by pointer.
    pub fn leaves(&self) -> &[(String, Scalar)] {
        &self.leaves
    }
}

/// Most members [`flat`] reads.
const FLAT_MAX: usize = 16;

/// The common case read directly: a flat object of at most [`FLAT_MAX`] members whose names and
/// string values hold no escape and no control character, and whose other values are `true`,
/// `false`, `null` or integers of at most 18 digits (`0`, or a first digit 1-9, after an
/// optional `-`: always an `i64`). Anything else — nesting, escapes, other numbers, a repeated
/// name, text after the object — is `None`, and the general reader decides, so this path only
/// ever agrees with it (`tests::the_flat_reader_agrees_with_the_general_one`). The leaves come
/// sorted by pointer, in `out`, whose strings are reused (what it held is replaced; on `None`
/// it holds nothing of use).
fn flat(bytes: &[u8], out: &mut Vec<(String, Scalar)>) -> Option<()> {
    let ws = |at: &mut usize| {
        while matches!(bytes.get(*at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            *at += 1;
        }
    };
    // A string without escapes or control characters: its text (UTF-8 checked).
    let string = |at: &mut usize| -> Option<&str> {
        if bytes.get(*at) != Some(&b'"') {
            return None;
        }
        let start = *at + 1;
        let len = bytes
            .get(start..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if bytes[end] != b'"' {
            return None;
        }
        *at = end + 1;
        std::str::from_utf8(&bytes[start..end]).ok()
    };
    let mut at = 0;
    // Leaves read so far: `out[..n]`; the slots after them are reused or dropped at the end.
    let mut n = 0;
    ws(&mut at);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    ws(&mut at);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if n == FLAT_MAX {
                return None;
            }
            let name = string(&mut at)?;
            if n == out.len() {
                out.push((String::with_capacity(name.len() + 1), Scalar::Null));
            }
            let (done, rest) = out.split_at_mut(n);
            let (pointer, value) = &mut rest[0];
            pointer.clear();
            pointer.push('/');
            escape_token(name, pointer);
            if done.iter().any(|(p, _)| p == pointer) {
                return None;
            }
            ws(&mut at);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at += 1;
            ws(&mut at);
            if bytes.get(at) == Some(&b'"') {
                // A string into the slot's string, if it held one.
                let s = string(&mut at)?;
                match value {
                    Scalar::Str(old) => {
                        old.clear();
                        old.push_str(s);
                    }
                    other => *other = Scalar::Str(s.to_owned()),
                }
            } else {
                *value = match bytes.get(at)? {
                    b't' if bytes[at..].starts_with(b"true") => {
                        at += 4;
                        Scalar::Bool(true)
                    }
                    b'f' if bytes[at..].starts_with(b"false") => {
                        at += 5;
                        Scalar::Bool(false)
                    }
                    b'n' if bytes[at..].starts_with(b"null") => {
                        at += 4;
                        Scalar::Null
                    }
                    b'-' | b'0'..=b'9' => {
                        let start = at;
                        if bytes[at] == b'-' {
                            at += 1;
                        }
                        let digits = bytes[at..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .count();
                        let first = bytes.get(at).copied();
                        // `0` alone (not `-0`), or no leading zero; 18 digits always fit an i64
                        let zero = first == Some(b'0') && digits == 1 && start == at;
                        let plain = matches!(first, Some(b'1'..=b'9')) && digits <= 18;
                        if !(zero || plain) {
                            return None;
                        }
                        at += digits;
                        // a fraction or an exponent: another kind of number
                        if matches!(bytes.get(at), Some(b'.' | b'e' | b'E')) {
                            return None;
                        }
                        let text = std::str::from_utf8(&bytes[start..at]).ok()?;
                        Scalar::Int(text.parse().ok()?)
                    }
                    _ => return None,
                };
            }
            n += 1;
            ws(&mut at);
            match bytes.get(at)? {
                b',' => {
                    at += 1;
                    ws(&mut at);
                }
                b'}' => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    ws(&mut at);
    if at != bytes.len() {
        return None;
    }
    out.truncate(n);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(())
}

/// Maps a serde error to a denial. Our own errors carry a tag so they keep their code.
fn classify(msg: &str) -> Denial {
    for (tag, code) in [
        ("[duplicate]", Code::ArgsDuplicateKey),
        ("[depth]", Code::ArgsTooDeep),
        ("[leaves]", Code::ArgsTooLarge),
        ("[notobject]", Code::ArgsMalformed),
    ] {
        if let Some(rest) = msg.strip_prefix(tag) {
            return Denial::new(code, rest.trim().to_string());
        }
    }
    if msg.contains("recursion limit") {
        return Denial::new(Code::ArgsTooDeep, "arguments nest too deep");
    }
    Denial::new(
        Code::ArgsMalformed,
        format!("arguments are not valid JSON: {msg}"),
    )
}

/// RFC 6901 escaping of one reference token.
pub(crate) fn escape_token(key: &str, out: &mut String) {
    // Most names have nothing to escape: copied at once (a char at a time costs a warm
    // check in WebAssembly about 4%).
    if !key.bytes().any(|b| b == b'~' || b == b'/') {
        out.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// One value of the arguments at `pointer`. The pointer is one buffer for the whole walk: a
/// member or element appends its token and removes it after; a leaf copies it.
struct Walk<'a> {
    out: &'a mut Vec<(String, Scalar)>,
    pointer: &'a mut String,
    depth: usize,
}

impl Walk<'_> {
    fn leaf<E: de::Error>(self, v: Scalar) -> Result<(), E> {
        if self.depth == 0 {
            return Err(E::custom("[notobject] arguments must be a JSON object"));
        }
        if self.out.len() >= MAX_ARGS_LEAVES {
            return Err(E::custom(format!(
                "[leaves] arguments have more than {MAX_ARGS_LEAVES} scalar values"
            )));
        }
        self.out.push((self.pointer.clone(), v));
        Ok(())
    }

    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > MAX_ARGS_DEPTH {
            return Err(E::custom(format!(
                "[depth] arguments nest deeper than {MAX_ARGS_DEPTH} levels at {}",
                self.pointer
            )));
        }
        Ok(depth)
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.leaf(Scalar::Int(i)),
            Err(_) => self.no_fact(),
        }
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.no_fact()
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.leaf(Scalar::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.enter::<A::Error>()?;
        if self.depth == 0 {
            return Err(de::Error::custom(
                "[notobject] arguments must be a JSON object, not an array",
            ));
        }
        let at = self.pointer.len();
        let mut i = 0usize;
        loop {
            use std::fmt::Write as _;
            let _ = write!(self.pointer, "/{i}");
            let child = Walk {
                out: &mut *self.out,
                pointer: &mut *self.pointer,
                depth,
            };
            let more = seq.next_element_seed(child)?.is_some();
            self.pointer.truncate(at);
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.enter::<A::Error>()?;
        let at = self.pointer.len();
        // Keys as read (borrowed unless escaped); std's hasher is keyed, so a caller cannot
        // choose keys that collide.
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            self.pointer.push('/');
            escape_token(&key, self.pointer);
            if !seen.insert(key) {
                return Err(de::Error::custom(format!(
                    "[duplicate] arguments repeat the key at {}",
                    self.pointer
                )));
            }
            map.next_value_seed(Walk {
                out: &mut *self.out,
                pointer: &mut *self.pointer,
                depth,
            })?;
            self.pointer.truncate(at);
        }
        Ok(())
    }
}

/// A member's name, borrowed from the input when it holds no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl Walk<'_> {
    fn no_fact<E: de::Error>(self) -> Result<(), E> {
        if self.depth == 0 {
            return Err(E::custom("[notobject] arguments must be a JSON object"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    fn leaves(s: &str) -> Vec<(String, Scalar)> {
        Args::from_json(s).expect("valid").leaves
    }

    /// The flat reader into a new vector.
    fn flat_new(bytes: &[u8]) -> Option<Vec<(String, Scalar)>> {
        let mut out = Vec::new();
        flat(bytes, &mut out).map(|()| out)
    }

    proptest::proptest! {
        /// The flat reader answers only what the general reader would: the same leaves.
        #[test]
        fn the_flat_reader_agrees_with_the_general_one(
            members in proptest::collection::vec((name(), value()), 0..20),
            space in proptest::collection::vec(proptest::sample::select(vec!["", " ", "\n", "\t", "\r", "  "]), 8),
            tail in proptest::sample::select(vec!["", " ", "x", ",", "}", "{}"]),
        ) {
            let body: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, (k, v))| format!("{}{k}{}:{}{v}{}", space[i % 8], space[(i + 1) % 8], space[(i + 2) % 8], space[(i + 3) % 8]))
                .collect();
            let text = format!("{}{{{}}}{}{tail}", space[0], body.join(","), space[1]);
            let general = Args::from_slice_by_serde(text.as_bytes());
            if let Some(leaves) = flat_new(text.as_bytes()) {
                proptest::prop_assert_eq!(Ok(Args { leaves }), general, "{}", text);
            }
            // the public reader's answer is the general one's, whichever path gave it
            proptest::prop_assert_eq!(Args::from_slice(text.as_bytes()), Args::from_slice_by_serde(text.as_bytes()), "{}", text);
        }

        /// Reading into arguments that held a call's leaves (their buffers reused) reads what
        /// a new reader would: nothing of the earlier call stays, accepted or refused.
        #[test]
        fn reading_into_used_arguments_is_reading_afresh(
            earlier in proptest::collection::btree_map("[a-z/~]{1,3}", plain_value(), 0..18),
            members in proptest::collection::btree_map(
                "[a-z/~]{1,3}",
                proptest::prop_oneof![8 => plain_value(), 1 => value()],
                0..18,
            ),
            tail in proptest::sample::select(vec!["", "", "", " ", "x", "}"]),
        ) {
            let object = |m: &std::collections::BTreeMap<String, String>| {
                let body: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", body.join(","))
            };
            let mut used = Args::from_json(&object(&earlier)).expect("plain values");
            let text = format!("{}{tail}", object(&members));
            let read = used.read(text.as_bytes()).map(|()| used.clone());
            proptest::prop_assert_eq!(read, Args::from_slice(text.as_bytes()), "{}", text);
            if Args::from_slice(text.as_bytes()).is_err() {
                proptest::prop_assert_eq!(used, Args::empty(), "a refusal leaves nothing");
            }
        }

        /// Any bytes at all: the flat reader never answers what the general one refuses.
        #[test]
        fn the_flat_reader_never_accepts_what_the_general_one_refuses(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Some(leaves) = flat_new(&bytes) {
                proptest::prop_assert_eq!(Ok(Args { leaves }), Args::from_slice_by_serde(&bytes));
            }
        }
    }

    /// A member name as JSON: plain, escaped, slashes and tildes, non-ASCII, empty, repeated.
    fn name() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::sample::select(vec![
            r#""a""#,
            r#""org""#,
            r#""a/b""#,
            r#""m~n""#,
            r#""\u0061""#,
            r#""é""#,
            r#""""#,
            r#""a\"b""#,
            r#""\n""#,
            r#""k1""#,
            r#""k2""#,
            r#""k3""#,
            r#""ünï""#,
        ])
        .prop_map(str::to_string)
    }

    /// A value the flat reader reads: strings of a few lengths, integers, literals.
    fn plain_value() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::sample::select(vec![
            r#""""#,
            r#""x""#,
            r#""open""#,
            r#""a longer string value""#,
            "0",
            "-7",
            "42",
            "true",
            "false",
            "null",
        ])
        .prop_map(str::to_string)
    }

    /// A value as JSON: every scalar kind, its edge cases, and shapes only the general reader reads.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::sample::select(vec![
            "0",
            "-0",
            "00",
            "01",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551615",
            "1.5",
            "1e3",
            "-",
            "true",
            "false",
            "null",
            "tru",
            r#""x""#,
            r#""""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            r#""é""#,
            "[1,2]",
            "{}",
            r#"{"a":1}"#,
            "[]",
        ])
        .prop_map(str::to_string)
    }

    #[test]
    fn a_typical_call_takes_the_flat_path_and_others_do_not() {
        let typical = br#" { "org" : "acme", "status":"open", "page": 2, "all": true, "id": -7, "note": null } "#;
        let leaves = flat_new(typical).expect("flat");
        assert_eq!(
            leaves,
            Args::from_slice_by_serde(typical).expect("valid").leaves
        );
        for other in [
            &br#"{"a":{"b":1}}"#[..],
            br#"{"a":"\u0041"}"#,
            br#"{"a":1.5}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"a":-0}"#,
            br#"{"a":1234567890123456789}"#,
            br#"[1]"#,
            br#"{"a":1} x"#,
        ] {
            assert_eq!(flat_new(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn duplicates_are_found_in_small_and_large_objects() {
        for n in [1usize, 15, 16, 17, 40] {
            let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            let distinct = format!("{{{}}}", keys.join(","));
            assert_eq!(leaves(&distinct).len(), n, "{n} distinct keys");
            // the first key again, after all the others (past the switch to a set for n > 16)
            let repeated = format!("{{{},\"k0\":0}}", keys.join(","));
            assert_eq!(
                Args::from_json(&repeated).map_err(|d| d.code),
                Err(Code::ArgsDuplicateKey),
                "{n} keys and a repeat"
            );
        }
    }

    #[test]
    fn pointers_are_collision_free() {
        assert_eq!(
            leaves(r#"{"a.b":1}"#),
            vec![("/a.b".to_string(), Scalar::Int(1))]
        );
        assert_eq!(
            leaves(r#"{"a":{"b":1}}"#),
            vec![("/a/b".to_string(), Scalar::Int(1))]
        );
        assert_eq!(
            leaves(r#"{"a/b":1,"m~n":2}"#),
            vec![
                ("/a~1b".to_string(), Scalar::Int(1)),
                ("/m~0n".to_string(), Scalar::Int(2)),
            ]
        );
    }

    #[test]
    fn leaves_of_every_type() {
        let got = leaves(
            r#"{"s":"x","i":-3,"b":true,"n":null,"f":1.5,"big":18446744073709551615,"ids":[7,8],"e":{},"a":[]}"#,
        );
        assert_eq!(
            got,
            vec![
                ("/b".into(), Scalar::Bool(true)),
                ("/i".into(), Scalar::Int(-3)),
                ("/ids/0".into(), Scalar::Int(7)),
                ("/ids/1".into(), Scalar::Int(8)),
                ("/n".into(), Scalar::Null),
                ("/s".into(), Scalar::Str("x".into())),
            ]
        );
        let a = Args::from_json(r#"{"org":"acme"}"#).expect("valid");
        assert_eq!(a.get("/org"), Some(&Scalar::Str("acme".into())));
        assert_eq!(a.get("/nope"), None);
    }

    #[test]
    fn refusals_have_their_codes() {
        let code = |s: &str| Args::from_json(s).expect_err("refused").code;
        assert_eq!(code(r#"{"a":1,"a":2}"#), Code::ArgsDuplicateKey);
        assert_eq!(code(r#"{"x":{"a":1,"a":1}}"#), Code::ArgsDuplicateKey);
        assert_eq!(code("[1]"), Code::ArgsMalformed);
        assert_eq!(code("3"), Code::ArgsMalformed);
        assert_eq!(code("{"), Code::ArgsMalformed);
        assert_eq!(code(r#"{"a":NaN}"#), Code::ArgsMalformed);
        assert_eq!(code(r#"{} {}"#), Code::ArgsMalformed);
        let deep = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_ARGS_DEPTH + 1),
            "}".repeat(MAX_ARGS_DEPTH + 1)
        );
        assert_eq!(code(&deep), Code::ArgsTooDeep);
        let ok_deep = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_ARGS_DEPTH),
            "}".repeat(MAX_ARGS_DEPTH)
        );
        assert!(Args::from_json(&ok_deep).is_ok());
        let very_deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(matches!(
            code(&format!("{{\"a\":{very_deep}}}")),
            Code::ArgsTooDeep
        ));
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_ARGS_BYTES));
        assert_eq!(code(&big), Code::ArgsTooLarge);
        let many = format!("{{\"a\":[{}]}}", vec!["1"; MAX_ARGS_LEAVES + 1].join(","));
        assert_eq!(code(&many), Code::ArgsTooLarge);
        assert_eq!(
            Args::from_slice(b"{\"a\":\"\xff\"}")
                .expect_err("utf8")
                .code,
            Code::ArgsMalformed
        );
    }
}
