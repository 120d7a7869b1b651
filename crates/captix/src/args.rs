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
        if bytes.len() > MAX_ARGS_BYTES {
            return Err(Denial::new(
                Code::ArgsTooLarge,
                format!("the arguments are longer than the limit of {MAX_ARGS_BYTES} bytes"),
            ));
        }
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
        let mut seen = Seen::new();
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

/// The keys of one object seen so far: up to [`Seen::FEW`] in place, scanned (most objects have
/// a few keys; neither a set nor an allocation would pay), then a set (a large object stays
/// linear; the set's hasher is keyed, so keys cannot be chosen to collide).
struct Seen<'de> {
    few: [Cow<'de, str>; Seen::FEW],
    len: usize,
    many: Option<HashSet<Cow<'de, str>, foldhash::quality::RandomState>>,
}

impl<'de> Seen<'de> {
    const FEW: usize = 16;

    fn new() -> Self {
        Seen {
            few: std::array::from_fn(|_| Cow::Borrowed("")),
            len: 0,
            many: None,
        }
    }

    /// Adds a key; false if it was there already.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(key);
        }
        if self.few[..self.len].contains(&key) {
            return false;
        }
        if self.len < Self::FEW {
            self.few[self.len] = key;
            self.len += 1;
            return true;
        }
        let mut set: HashSet<_, _> = self.few.iter_mut().map(std::mem::take).collect();
        set.insert(key);
        self.many = Some(set);
        true
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

    fn leaves(s: &str) -> Vec<(String, Scalar)> {
        Args::from_json(s).expect("valid").leaves
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
