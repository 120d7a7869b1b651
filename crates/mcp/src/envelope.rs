//! The JSON-RPC request the guard reads, in one pass over the body (docs §14.1): the `id`,
//! the `method`, and of `params` what the guard needs (`name`, `uri`, `arguments`).
//!
//! The guard used to read the envelope, then `params` again, then `arguments` a third time.
//! This reader decides exactly what those three reads decided (a property test holds it to
//! them, `one_pass_reads_what_three_passes_read`), in one pass:
//! - the envelope is refused (JSON-RPC -32700) for bad JSON, a repeated `id`, `method` or
//!   `params`, or a `method` that is neither a string nor null;
//! - `params` counts only when it is an object (serde would read a struct from an array by
//!   position); a `name` or `uri` that is repeated or neither a string nor null makes it
//!   unreadable, and so does a repeated `arguments` for a checked call (not for the audit
//!   log's target, which never read `arguments`);
//! - members are matched after unescaping, as serde (and rmcp, which reads the body again)
//!   match them; other members are skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A request's envelope.
pub(crate) struct Envelope<'a> {
    pub(crate) id: Option<&'a RawValue>,
    pub(crate) method: Option<Cow<'a, str>>,
    pub(crate) params: Params<'a>,
}

/// What `params` holds, for the guard.
#[derive(Default)]
pub(crate) struct Params<'a> {
    /// `params` is a JSON object (anything else counts as no params).
    object: bool,
    /// `name` or `uri` was repeated, or neither a string nor null.
    bad: bool,
    /// `arguments` was repeated.
    repeated_arguments: bool,
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    arguments: Option<&'a RawValue>,
}

/// The params of a checked call: the member that names its target and the tool's arguments.
pub(crate) struct CallParams<'p> {
    pub(crate) name: Option<&'p str>,
    pub(crate) uri: Option<&'p str>,
    pub(crate) arguments: Option<&'p RawValue>,
}

impl<'a> Params<'a> {
    /// The params of a checked call (`tools/call`, `resources/read`, `prompts/get`), when
    /// readable.
    pub(crate) fn call(&self) -> Option<CallParams<'_>> {
        (self.object && !self.bad && !self.repeated_arguments).then_some(CallParams {
            name: self.name.as_deref(),
            uri: self.uri.as_deref(),
            arguments: self.arguments,
        })
    }

    /// What a request other than a call names, for the audit log: `params.uri`, else
    /// `params.name` (the audit record keeps at most 1 KiB of it).
    pub(crate) fn target(&self) -> Option<&str> {
        if !self.object || self.bad {
            return None;
        }
        self.uri.as_deref().or(self.name.as_deref())
    }
}

/// Reads a body that starts (after whitespace) with `{`.
///
/// The body must be UTF-8 as a whole (RFC 8259 §8.1), checked once up front: read from bytes,
/// serde_json would check each string it reads on its own (and none it skips), which cost more
/// than the one check of the body.
pub(crate) fn read(body: &[u8]) -> Result<Envelope<'_>, serde_json::Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| <serde_json::Error as de::Error>::custom("the body is not UTF-8"))?;
    serde_json::from_str::<Envelope<'_>>(text)
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut method, mut params) = (None, None, None);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "id" => {
                    if id.is_some() {
                        return Err(de::Error::duplicate_field("id"));
                    }
                    id = Some(map.next_value::<Option<&'de RawValue>>()?);
                }
                "method" => {
                    if method.is_some() {
                        return Err(de::Error::duplicate_field("method"));
                    }
                    method = Some(map.next_value::<Option<Text<'de>>>()?.map(|t| t.0));
                }
                "params" => {
                    if params.is_some() {
                        return Err(de::Error::duplicate_field("params"));
                    }
                    params = Some(map.next_value::<Params<'de>>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            id: id.flatten(),
            method: method.flatten(),
            params: params.unwrap_or_default(),
        })
    }
}

impl<'de> Deserialize<'de> for Params<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamsVisitor)
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut p = Params {
            object: true,
            ..Params::default()
        };
        let (mut name, mut uri, mut arguments) = (false, false, false);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "name" => {
                    p.bad |= std::mem::replace(&mut name, true);
                    let v = map.next_value::<Lenient<'de>>()?;
                    p.bad |= v.bad;
                    p.name = v.text;
                }
                "uri" => {
                    p.bad |= std::mem::replace(&mut uri, true);
                    let v = map.next_value::<Lenient<'de>>()?;
                    p.bad |= v.bad;
                    p.uri = v.text;
                }
                "arguments" => {
                    p.repeated_arguments |= std::mem::replace(&mut arguments, true);
                    p.arguments = map.next_value::<Option<&'de RawValue>>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Params::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Params::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Params::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Params::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Params::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Params::default())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Params::default())
    }
}

/// A JSON string, borrowed from the body when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_string())))
    }
}

/// A member that must be a string or null to be read; anything else marks it bad (and is
/// skipped) instead of failing the whole envelope.
struct Lenient<'a> {
    text: Option<Cow<'a, str>>,
    bad: bool,
}

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

const BAD: Lenient<'static> = Lenient {
    text: None,
    bad: true,
};

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient {
            text: Some(Cow::Borrowed(v)),
            bad: false,
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient {
            text: Some(Cow::Owned(v.to_string())),
            bad: false,
        })
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Lenient {
            text: None,
            bad: false,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(BAD)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(BAD)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(BAD)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(BAD)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(BAD)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(BAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The three reads the guard made before this module, kept as the reference.
    mod three_passes {
        use serde::Deserialize;
        use serde_json::value::RawValue;

        #[derive(Deserialize)]
        pub struct Envelope<'a> {
            #[serde(borrow, default)]
            pub id: Option<&'a RawValue>,
            #[serde(default)]
            pub method: Option<String>,
            #[serde(borrow, default)]
            pub params: Option<&'a RawValue>,
        }

        #[derive(Deserialize)]
        pub struct CallParams<'a> {
            #[serde(default)]
            pub name: Option<String>,
            #[serde(default)]
            pub uri: Option<String>,
            #[serde(borrow, default)]
            pub arguments: Option<&'a RawValue>,
        }

        #[derive(Deserialize)]
        struct Target {
            #[serde(default)]
            uri: Option<String>,
            #[serde(default)]
            name: Option<String>,
        }

        fn object(params: Option<&RawValue>) -> Option<&RawValue> {
            params.filter(|p| p.get().trim_start().starts_with('{'))
        }

        pub fn call(params: Option<&RawValue>) -> Option<CallParams<'_>> {
            object(params).and_then(|p| serde_json::from_str(p.get()).ok())
        }

        /// (The guard cut it to 1 KiB; the audit record now does, for every target.)
        pub fn target(params: Option<&RawValue>) -> Option<String> {
            let t: Target = serde_json::from_str(object(params)?.get()).ok()?;
            t.uri.or(t.name)
        }
    }

    type Read = (
        Option<String>,
        Option<String>,
        Option<(Option<String>, Option<String>, Option<String>)>,
        Option<String>,
    );

    fn one_pass(body: &str) -> Result<Read, String> {
        let e = read(body.as_bytes()).map_err(|e| e.to_string())?;
        let call = e.params.call().map(|c| {
            (
                c.name.map(str::to_string),
                c.uri.map(str::to_string),
                c.arguments.map(|a| a.get().to_string()),
            )
        });
        Ok((
            e.id.map(|i| i.get().to_string()),
            e.method.map(Cow::into_owned),
            call,
            e.params.target().map(str::to_string),
        ))
    }

    fn reference(body: &str) -> Result<Read, String> {
        let e: three_passes::Envelope<'_> =
            serde_json::from_str(body).map_err(|e| e.to_string())?;
        let call = three_passes::call(e.params)
            .map(|c| (c.name, c.uri, c.arguments.map(|a| a.get().to_string())));
        Ok((
            e.id.map(|i| i.get().to_string()),
            e.method,
            call,
            three_passes::target(e.params),
        ))
    }

    /// A JSON value of the kinds a member can hold, `"` and `\` escapes included.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("5".to_string()),
            Just("-1.5e3".to_string()),
            Just("18446744073709551616".to_string()),
            Just(r#""list_invoices""#.to_string()),
            Just(r#""invoices://acme/summary""#.to_string()),
            Just(r#""li\u0073t_\"in\\voices""#.to_string()),
            Just(format!("\"{}é\"", "x".repeat(1023))),
            Just(r#""""#.to_string()),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key(), inner), 0..4).prop_map(|m| object(&m)),
            ]
        })
    }

    /// Member names: those the reader looks for (also escaped) and others.
    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "id",
            "method",
            "params",
            "name",
            "uri",
            "arguments",
            "jsonrpc",
            "_meta",
            "n\\u0061me",
            "meth\\u006fd",
            "Name",
            "params ",
        ])
        .prop_map(|k| format!("\"{k}\""))
    }

    fn object(members: &[(String, String)]) -> String {
        let m: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", m.join(","))
    }

    /// `params` as the guard may meet it: an object of the members it reads, or any value.
    fn params() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::collection::vec((key(), value()), 0..5).prop_map(|m| object(&m)),
            1 => value(),
        ]
    }

    /// A request body: members of the envelope in any order, repeated or not.
    fn body() -> impl Strategy<Value = String> {
        let member = prop_oneof![
            (Just("\"params\"".to_string()), params()),
            (key(), value()),
            (Just("\"method\"".to_string()), value()),
        ];
        prop::collection::vec(member, 0..5).prop_map(|m| object(&m))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The law: one pass reads what the three reads read, and refuses what they
        /// refused, for bodies built to hit every member, and for those bodies cut short.
        /// (An error's wording may differ: "EOF while parsing a value" where the reference,
        /// skipping `params` whole, said "an object".)
        #[test]
        fn one_pass_reads_what_three_passes_read(b in body(), cut in any::<prop::sample::Index>()) {
            let mut end = cut.index(b.len() + 1);
            while !b.is_char_boundary(end) {
                end -= 1;
            }
            for b in [&b[..], &b[..end]] {
                match (one_pass(b), reference(b)) {
                    (Ok(one), Ok(three)) => prop_assert_eq!(one, three, "{}", b),
                    (Err(_), Err(_)) => {}
                    (one, three) => prop_assert!(false, "{b}: {one:?} against {three:?}"),
                }
            }
        }
    }

    #[test]
    fn what_the_guard_relies_on() {
        let call = |b: &str| one_pass(b).map(|r| r.2);
        // A batch-shaped params, or params that is not an object, names nothing.
        assert_eq!(
            call(r#"{"method":"tools/call","params":["list_invoices"]}"#),
            Ok(None)
        );
        assert_eq!(call(r#"{"method":"tools/call","params":"x"}"#), Ok(None));
        // A name of another type, or repeated, makes the params unreadable; so does a
        // repeated `arguments` (the audit target never read `arguments`).
        assert_eq!(call(r#"{"params":{"name":5}}"#), Ok(None));
        assert_eq!(call(r#"{"params":{"name":"a","name":"a"}}"#), Ok(None));
        assert_eq!(
            call(r#"{"params":{"name":"a","arguments":{},"arguments":{}}}"#),
            Ok(None)
        );
        let target = one_pass(r#"{"params":{"uri":"u","arguments":1,"arguments":2}}"#);
        assert_eq!(target.map(|r| r.3), Ok(Some("u".to_string())));
        // Escaped member names are the same members.
        let r =
            one_pass(r#"{"meth\u006fd":"tools/call","params":{"n\u0061me":"list\u005finvoices"}}"#);
        assert_eq!(r.as_ref().map(|r| r.1.as_deref()), Ok(Some("tools/call")));
        assert_eq!(
            r.map(|r| r.2.and_then(|c| c.0)),
            Ok(Some("list_invoices".to_string()))
        );
        // A body that is not UTF-8 is refused, also where the bytes are in a member skipped.
        for bad in [
            &b"{\"method\":\"tools/call\",\"_meta\":\"\xff\"}"[..],
            b"{\"method\":\"tools/c\xc3\"}",
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        assert!(read("{\"method\":\"tools/call\",\"_meta\":\"é\"}".as_bytes()).is_ok());
        // A repeated envelope member, or a method that is not a string, is refused.
        for bad in [
            r#"{"method":"a","method":"a"}"#,
            r#"{"params":{},"params":{}}"#,
            r#"{"id":1,"id":1}"#,
            r#"{"method":5}"#,
        ] {
            assert!(one_pass(bad).is_err(), "{bad}");
        }
    }
}
