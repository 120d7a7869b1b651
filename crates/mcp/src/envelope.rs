//! The JSON-RPC request the guard reads, in one pass over the body (docs §14.1): whether
//! `jsonrpc` is `"2.0"`, the `id`, the `method`, and of `params` what the guard needs (`name`,
//! `uri`, `arguments`).
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
//!
//! Two readers give that one answer: [`Scan`] walks the text of a common request once, without
//! serde, and leaves anything out of the ordinary (an escaped member name, a repeated member,
//! text that is not JSON) to serde_json. The scan answers only what serde_json answers
//! (`the_scan_reads_what_serde_reads`, on bodies built to hit every member and then edited at
//! random), so the guard reads no request differently from rmcp than before.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A request's envelope.
#[derive(Debug, PartialEq)]
pub(crate) struct Envelope<'a> {
    /// `jsonrpc` is the string `"2.0"`, once (the npm adapters refuse any other request, and
    /// rmcp does).
    pub(crate) version: bool,
    /// The id's JSON text.
    pub(crate) id: Option<&'a str>,
    pub(crate) method: Option<Cow<'a, str>>,
    pub(crate) params: Params<'a>,
}

/// What `params` holds, for the guard.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Params<'a> {
    /// `params` is a JSON object (anything else counts as no params).
    object: bool,
    /// `name` or `uri` was repeated, or neither a string nor null.
    bad: bool,
    /// `arguments` was repeated.
    repeated_arguments: bool,
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    /// The arguments' JSON text.
    arguments: Option<&'a str>,
}

/// The params of a checked call: the member that names its target and the tool's arguments.
pub(crate) struct CallParams<'p> {
    pub(crate) name: Option<&'p str>,
    pub(crate) uri: Option<&'p str>,
    /// The arguments' JSON text.
    pub(crate) arguments: Option<&'p str>,
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
///
/// A request is read by [`Scan`] when it can, which answers only what serde_json answers,
/// else by serde_json (`the_scan_reads_what_serde_reads`).
pub(crate) fn read(body: &[u8]) -> Result<Envelope<'_>, serde_json::Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| <serde_json::Error as de::Error>::custom("the body is not UTF-8"))?;
    match Scan::envelope(text) {
        Some(e) => Ok(e),
        None => by_serde(text),
    }
}

/// The request read by serde_json: any request, and the error for a body that is not one.
fn by_serde(text: &str) -> Result<Envelope<'_>, serde_json::Error> {
    serde_json::from_str::<Envelope<'_>>(text)
}

/// The request read in one walk over its text, without serde (issue 18: serde_json's generic
/// reading was a third of the guard's work on a tool call, and much of its code).
///
/// It reads the JSON that serde_json reads (whitespace, strings and their escapes, numbers,
/// literals, arrays and objects, nothing after the request) and the members serde reads, with
/// the same meaning. Where it could read differently it does not read at all: it answers `None`
/// and serde_json reads the body. That is the case for text that is not JSON (so the error
/// answered is serde_json's), an escape in a member name at the request's or `params`'s level
/// or in `jsonrpc`, `method`, `name` or `uri`, a member of those levels repeated, a `jsonrpc`,
/// `method`, `name` or `uri` that is neither a string nor null, `params` that is neither an
/// object nor null, and nesting deeper than 64 inside a member (serde_json skips any depth;
/// this walk keeps one bit per level).
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    /// The request, or `None` for serde_json to read it.
    fn envelope(text: &'a str) -> Option<Envelope<'a>> {
        let mut s = Scan { text, at: 0 };
        let (mut version, mut id, mut method, mut params) = (None, None, None, None);
        s.object(|s, name| {
            match name {
                "jsonrpc" if version.is_none() => version = Some(s.version()?),
                "id" if id.is_none() => id = Some(s.raw_or_null()?),
                "method" if method.is_none() => method = Some(s.text_or_null()?),
                "params" if params.is_none() => params = Some(s.params()?),
                "jsonrpc" | "id" | "method" | "params" => return None,
                _ => s.value()?,
            }
            Some(())
        })?;
        s.ws();
        (s.at == text.len()).then(|| Envelope {
            version: version.unwrap_or(false),
            id: id.flatten(),
            method: method.flatten().map(Cow::Borrowed),
            params: params.unwrap_or_default(),
        })
    }

    /// Whether `jsonrpc` is the string `"2.0"`. A string with escapes and a value of another
    /// type than a string or null are left to serde_json (which reads a number as a value, and
    /// refuses one it cannot hold).
    fn version(&mut self) -> Option<bool> {
        self.text_or_null().map(|v| v == Some("2.0"))
    }

    /// `params`: null, or an object.
    fn params(&mut self) -> Option<Params<'a>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(Params::default());
        }
        let (mut name, mut uri, mut arguments) = (None, None, None);
        self.object(|s, member| {
            match member {
                "name" if name.is_none() => name = Some(s.text_or_null()?),
                "uri" if uri.is_none() => uri = Some(s.text_or_null()?),
                "arguments" if arguments.is_none() => arguments = Some(s.raw_or_null()?),
                "name" | "uri" | "arguments" => return None,
                _ => s.value()?,
            }
            Some(())
        })?;
        Some(Params {
            object: true,
            name: name.flatten().map(Cow::Borrowed),
            uri: uri.flatten().map(Cow::Borrowed),
            arguments: arguments.flatten(),
            ..Params::default()
        })
    }

    /// An object whose member names have no escapes, each member's value read by `member`
    /// (called with the scan at the value).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let name = self.plain()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, name)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `null` (`Some(None)`), or a value's JSON text.
    fn raw_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            return self.literal("null").map(|()| None);
        }
        let start = self.at;
        self.value()?;
        self.text.get(start..self.at).map(Some)
    }

    /// `null`, or a string without escapes.
    fn text_or_null(&mut self) -> Option<Option<&'a str>> {
        match self.peek()? {
            b'n' => self.literal("null").map(|()| None),
            _ => self.plain().map(Some),
        }
    }

    /// A value, skipped: what serde_json's `ignore_value` accepts.
    fn value(&mut self) -> Option<()> {
        // The arrays and objects open inside this value, one bit each (set: an object),
        // the innermost lowest.
        let (mut open, mut depth) = (0u64, 0u32);
        loop {
            self.ws();
            match self.peek()? {
                b'n' => self.literal("null")?,
                b't' => self.literal("true")?,
                b'f' => self.literal("false")?,
                b'-' | b'0'..=b'9' => self.number()?,
                b'"' => self.string()?,
                b @ (b'[' | b'{') => {
                    self.at += 1;
                    self.ws();
                    let close = if b == b'[' { b']' } else { b'}' };
                    if self.eat(close).is_none() {
                        if depth == 64 {
                            return None;
                        }
                        open = open << 1 | u64::from(b == b'{');
                        depth += 1;
                        if b == b'{' {
                            self.name()?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // A value ended: close what ends after it, up to a comma.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let object = open & 1 == 1;
                match self.next()? {
                    b',' if object => {
                        self.ws();
                        self.name()?;
                        break;
                    }
                    b',' => break,
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// A member's name (any string) and its colon, in a value skipped.
    fn name(&mut self) -> Option<()> {
        self.string()?;
        self.ws();
        self.eat(b':')
    }

    /// A string, skipped: escapes are checked as serde_json checks those it skips (`\u` and
    /// four hex digits, surrogates unchecked); a control character ends the scan.
    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let rest = self.bytes().get(self.at..)?;
            let i = special(rest)?;
            self.at += i + 1;
            match rest[i] {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hex = self.bytes().get(self.at..self.at + 4)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.at += 4;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters: its text.
    fn plain(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let len = special(self.bytes().get(start..)?)?;
        self.at = start + len + 1;
        // Cut at ASCII quotes, in text that is UTF-8: always a boundary.
        (self.bytes()[start + len] == b'"').then(|| self.text.get(start..start + len))?
    }

    /// A number as serde_json's `ignore_integer` reads one: `-`, no leading zero, a fraction
    /// and an exponent with digits.
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.next()? {
            b'0' if !matches!(self.peek(), Some(b'0'..=b'9')) => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let n = self
            .bytes()
            .get(self.at..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.at += n;
        n
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let here = self.bytes().get(self.at..)?;
        here.starts_with(word.as_bytes())
            .then(|| self.at += word.len())
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.at += 1)
    }

    /// JSON's whitespace (serde_json's: space, tab, line feed, carriage return).
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }
}

/// Where the first byte that ends a run of plain string text is: a quote, a backslash, a
/// control character. Eight bytes at a time: in each word, a byte's high bit is set where the
/// byte is zero after `^` with the quote or the backslash, or below 0x20 (the lowest set bit is
/// exact, the bits above it may not be, and only the lowest is used).
fn special(bytes: &[u8]) -> Option<usize> {
    const LOW: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |w: u64, n: u8| w.wrapping_sub(LOW * u64::from(n)) & !w & HIGH;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let found = below(w ^ (LOW * u64::from(b'"')), 1)
            | below(w ^ (LOW * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
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
        let (mut version, mut id, mut method, mut params) = (None, None, None, None);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "jsonrpc" => {
                    let v = map.next_value::<Lenient<'de>>()?;
                    version = Some(version.is_none() && v.text.as_deref() == Some("2.0"));
                }
                "id" => {
                    if id.is_some() {
                        return Err(de::Error::duplicate_field("id"));
                    }
                    id = Some(
                        map.next_value::<Option<&'de RawValue>>()?
                            .map(RawValue::get),
                    );
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
            version: version.unwrap_or(false),
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
                    p.arguments = map
                        .next_value::<Option<&'de RawValue>>()?
                        .map(RawValue::get);
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
                c.arguments.map(str::to_string),
            )
        });
        Ok((
            e.id.map(str::to_string),
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

    /// Bytes an edit puts in a body: JSON's punctuation and whitespace, what else serde_json
    /// reads (escapes, number parts, literals' letters), what it refuses (form feed, a control
    /// character) and text beyond ASCII.
    const EDITS: &[&str] = &[
        " ", "\t", "\n", "\r", "\x0c", "\x01", ",", ":", "\"", "\\", "{", "}", "[", "]", "0", "1",
        "-", "+", ".", "e", "E", "u", "n", "t", "f", "a", "é", "null", "\\u0061", "\\ud800", "{}",
        "[]",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The scan answers only what serde_json answers: for bodies built to hit every
        /// member, and for those bodies edited anywhere (bytes inserted, removed, replaced),
        /// which makes most of them something serde_json refuses or reads otherwise.
        #[test]
        fn the_scan_reads_what_serde_reads(
            b in body(),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0..3u8, prop::sample::select(EDITS)),
                0..4,
            ),
        ) {
            let mut text = b.clone();
            for (at, kind, with) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                let end = text[i..].chars().next().map_or(i, |c| i + c.len_utf8());
                match kind {
                    0 => text.insert_str(i, with),
                    1 => text.replace_range(i..end, ""),
                    _ => text.replace_range(i..end, with),
                }
            }
            for t in [&b, &text] {
                if let Some(scanned) = Scan::envelope(t) {
                    prop_assert_eq!(Ok(scanned), by_serde(t).map_err(|e| e.to_string()), "{}", t);
                }
                // The reader's answer is serde_json's, whichever read it.
                prop_assert_eq!(
                    read(t.as_bytes()).map_err(|e| e.to_string()),
                    by_serde(t).map_err(|e| e.to_string()),
                    "{}", t
                );
            }
        }

        /// Short runs of JSON's characters as a member skipped and as the arguments: numbers
        /// (signs, leading zeros, fractions, exponents), escapes, literals, nesting, commas.
        #[test]
        fn the_scan_reads_fragments_as_serde_reads_them(
            v in "[-+0-9.eE]{1,6}|[\\[\\]{}\",:0-9a-z\\\\ \\x01]{1,10}",
        ) {
            for text in [
                format!(r#"{{"jsonrpc":{v},"method":"m"}}"#),
                format!(r#"{{"method":"m","_meta":{v}}}"#),
                format!(r#"{{"params":{{"name":"n","arguments":{v}}}}}"#),
            ] {
                if let Some(scanned) = Scan::envelope(&text) {
                    prop_assert_eq!(Ok(scanned), by_serde(&text).map_err(|e| e.to_string()), "{}", text);
                }
            }
        }

        /// Values of any shape the grammar allows (escapes included) in the members the guard
        /// does not look into, with whitespace anywhere: the scan reads them (it must not leave
        /// the common case to serde) and reads what serde reads.
        #[test]
        fn the_scan_reads_plain_requests(
            id in value(),
            arguments in value(),
            meta in value(),
            space in prop::collection::vec(prop::sample::select(vec!["", " ", "\n", "\t", "\r", "  "]), 24),
        ) {
            let w = |i: usize| space[i % space.len()];
            let text = format!(
                "{}{{{}\"jsonrpc\"{}:{}\"2.0\"{},{}\"id\"{}:{}{id}{},\"method\":{}\"tools/call\"{},\
                 \"params\"{}:{}{{{}\"name\"{}:{}\"list_invoices\"{},\"arguments\":{}{arguments}{},\
                 \"_meta\":{meta}{}}}{}}}{}",
                w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7), w(8), w(9), w(10), w(11),
                w(12), w(13), w(14), w(15), w(16), w(17), w(18), w(19), w(20), w(21),
            );
            let scanned = Scan::envelope(&text);
            prop_assert!(scanned.is_some(), "{}", text);
            prop_assert_eq!(scanned, by_serde(&text).ok(), "{}", text);
        }
    }

    proptest! {
        /// The word-at-a-time search finds what a byte-at-a-time one finds.
        #[test]
        fn special_finds_the_first_quote_backslash_or_control(
            bytes in prop::collection::vec(
                prop_oneof![4 => any::<u8>(), 1 => prop::sample::select(vec![b'"', b'\\', 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x80, 0xff, 0])],
                0..40,
            ),
        ) {
            let slow = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(special(&bytes), slow);
        }
    }

    #[test]
    fn the_scan_leaves_to_serde_what_it_does_not_read_alike() {
        let deep = format!(
            r#"{{"method":"tools/call","_meta":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let shallow = format!(
            r#"{{"method":"m","_meta":{}{}}}"#,
            "[".repeat(64),
            "]".repeat(64)
        );
        // Read as serde_json reads it, but by serde_json: member names escaped, strings of
        // the guard's escaped, repeated members, other types, deep nesting (no recursion).
        for text in [
            r#"{"meth\u006fd":"tools/call"}"#,
            r#"{"method":"tools\/call"}"#,
            r#"{"params":{"name":"list\u005finvoices"}}"#,
            r#"{"params":{"name":5}}"#,
            r#"{"params":{"name":"a","name":"a"}}"#,
            r#"{"params":{"name":"a","arguments":{},"arguments":{}}}"#,
            r#"{"params":["list_invoices"]}"#,
            &deep,
        ] {
            assert_eq!(Scan::envelope(text), None, "{text}");
            assert!(read(text.as_bytes()).is_ok(), "{text}");
        }
        assert!(Scan::envelope(&shallow).is_some());
        // A number serde_json reads as a value (params, jsonrpc) but cannot hold; skipped, it
        // is fine.
        for text in [r#"{"params":1e400}"#, r#"{"jsonrpc":1e400,"method":"m"}"#] {
            assert_eq!(Scan::envelope(text), None, "{text}");
            assert!(read(text.as_bytes()).is_err(), "{text}");
        }
        assert!(Scan::envelope(r#"{"_meta":1e400}"#).is_some());
        assert!(by_serde(r#"{"_meta":1e400}"#).is_ok());
        // Refused, by serde_json, with its error: not JSON as serde_json reads it.
        for text in [
            r#"{"method":"m",}"#,
            r#"{"method":"m"} x"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"\u{1}\"}",
            "{\"a\":1\x0c}",
            r#"{"a":nul}"#,
            r#"{"method":"m""#,
        ] {
            assert_eq!(Scan::envelope(text), None, "{text}");
            assert!(read(text.as_bytes()).is_err(), "{text}");
        }
        // What serde_json skips unchecked, the scan skips too: a lone surrogate escape.
        let lone = r#"{"method":"m","_meta":"\ud800"}"#;
        assert_eq!(Scan::envelope(lone), by_serde(lone).ok());
        assert!(Scan::envelope(lone).is_some());
    }

    #[test]
    fn what_the_guard_relies_on() {
        // `jsonrpc` must be the string "2.0", once, escaped or not.
        let version = |b: &str| {
            read(b.as_bytes())
                .map(|e| e.version)
                .map_err(|e| e.to_string())
        };
        for (body, two) in [
            (r#"{"jsonrpc":"2.0","method":"m"}"#, true),
            (r#"{"jsonrpc":"2\u002e0","method":"m"}"#, true),
            (r#"{"method":"m"}"#, false),
            (r#"{"jsonrpc":"1.0"}"#, false),
            (r#"{"jsonrpc":2.0}"#, false),
            (r#"{"jsonrpc":null}"#, false),
            (r#"{"jsonrpc":["2.0"]}"#, false),
            (r#"{"jsonrpc":"2.0","jsonrpc":"2.0"}"#, false),
        ] {
            assert_eq!(version(body), Ok(two), "{body}");
        }
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
