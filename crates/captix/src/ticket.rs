//! Tickets: the text encoding, parsing within limits, signature verification (spec §5, §6).

use std::fmt;

use biscuit_auth::format::schema;
use prost::Message;

use crate::block::{Description, Identity};
use crate::decoded::{decode_all, Decoded};
use crate::error::{Code, Denial};
use crate::keys::{KeyId, KeySet};
use crate::limits::{MAX_BLOCKS, MAX_TICKET_BYTES};

/// The prefix of a ticket's text form (spec §6.1): it makes leaked tickets easy for secret
/// scanners to find and tells a reader what the string is.
pub const PREFIX: &str = "captix1_";

/// A block's revocation id: its signature bytes (spec §4.8). Revoking it denies every ticket
/// that contains the block, i.e. the block's ticket and all its descendants.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevocationId(pub Vec<u8>);

impl RevocationId {
    /// From the hex form.
    pub fn from_hex(s: &str) -> Result<Self, crate::Error> {
        let b = hex::decode(s.trim()).map_err(|_| {
            crate::Error::InvalidRestriction(format!("{s:?} is not a hex revocation id"))
        })?;
        if b.is_empty() || b.len() > 128 {
            return Err(crate::Error::InvalidRestriction(
                "a revocation id is 1 to 128 bytes".into(),
            ));
        }
        Ok(RevocationId(b))
    }

    /// The hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for RevocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RevocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RevocationId({})", self.to_hex())
    }
}

/// What a block says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A captix block whose Datalog matches its description.
    Described(Box<Description>),
    /// A block written by another Biscuit tool: its Datalog is enforced by the reference path,
    /// but captix reads no budget or row filter from it.
    Foreign,
    /// A captix description that does not match the block's Datalog (the ticket is refused).
    Invalid(String),
}

/// One block of a ticket.
#[derive(Clone, Debug)]
pub struct BlockView {
    /// Position in the chain; 0 is the authority block.
    pub index: usize,
    /// What the block says about itself.
    pub content: Content,
    /// The block's revocation id.
    pub revocation_id: RevocationId,
    /// True for a third-party block (signed by an external key).
    pub third_party: bool,
    /// The block's Datalog decoded from its signed bytes: what descriptions are compared
    /// with and the work bound is computed from.
    pub(crate) decoded: std::sync::Arc<Decoded>,
}

impl BlockView {
    /// The block's Datalog source, printed from its decoded terms in Biscuit's notation: for
    /// people to read only. Biscuit's notation does not escape strings, so nothing is decided
    /// on this text (spec §6.2).
    pub fn datalog(&self) -> String {
        self.decoded.source()
    }

    /// The description, when the block is a valid captix block.
    pub fn description(&self) -> Option<&Description> {
        match &self.content {
            Content::Described(d) => Some(d),
            _ => None,
        }
    }
}

/// What a decoded ticket is, whether or not its signatures were checked: its blocks as read,
/// the root key id it names and its text form. [`Ticket`] and [`UnverifiedTicket`] share it.
#[derive(Clone)]
pub(crate) struct Chain {
    pub(crate) blocks: Vec<BlockView>,
    pub(crate) key_id: Option<u32>,
    pub(crate) text: String,
}

/// A ticket that was decoded but whose signatures were not checked against a root key.
/// It can be inspected and attenuated (attenuation needs no key; the result is unverified
/// too), never trusted.
#[derive(Clone)]
pub struct UnverifiedTicket {
    pub(crate) inner: biscuit_auth::UnverifiedBiscuit,
    pub(crate) chain: Chain,
}

/// A ticket whose every signature verified under a known root key, and whose every captix
/// block matches its description. Holding one means the ticket is authentic; whether a given
/// call is allowed is a separate question ([`Ticket::authorize`]).
#[derive(Clone)]
pub struct Ticket {
    pub(crate) inner: biscuit_auth::Biscuit,
    pub(crate) chain: Chain,
}

/// The size limit (spec §6.3 step 1), checked before any other work on the bytes.
pub(crate) fn check_size(bytes: &[u8]) -> Result<(), Denial> {
    if bytes.len() > MAX_TICKET_BYTES {
        return Err(Denial::new(
            Code::TicketTooLarge,
            format!("the ticket is longer than the limit of {MAX_TICKET_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Decodes the text form within the limits (spec §6.1, §7) and returns the bytes and the
/// outer structure.
fn decode(text: &str) -> Result<(Vec<u8>, schema::Biscuit), Denial> {
    check_size(text.as_bytes())?;
    let body = text.strip_prefix(PREFIX).ok_or_else(|| {
        Denial::new(
            Code::Malformed,
            format!("not a captix ticket: it does not start with `{PREFIX}`"),
        )
    })?;
    // Spec §6.1: unpadded base64url, nothing else (one text form per token).
    if body.contains('=') {
        return Err(Denial::new(
            Code::Malformed,
            "not a captix ticket: base64url padding (`=`) is not part of the text form",
        ));
    }
    let bytes = base64::decode_config(body, base64::URL_SAFE_NO_PAD).map_err(|_| {
        Denial::new(
            Code::Malformed,
            "not a captix ticket: the text after the prefix is not base64url",
        )
    })?;
    // Count the blocks on the wire first: decoding thousands of tiny crafted entries would
    // hold ~300 bytes of structure each (spec §7.1: limits before any other work).
    let count = count_blocks(&bytes)
        .ok_or_else(|| Denial::new(Code::Malformed, "not a captix ticket: not a Biscuit token"))?;
    if count > MAX_BLOCKS {
        return Err(too_many_blocks(count));
    }
    let outer = schema::Biscuit::decode(bytes.as_slice())
        .map_err(|_| Denial::new(Code::Malformed, "not a captix ticket: not a Biscuit token"))?;
    // Spec §6.1: one text form per token. The signatures cover the blocks, not the outer
    // message, so unknown fields, repeated scalars or reordering would make other strings
    // that verify: the bytes must be the outer message's own encoding.
    if outer.encode_to_vec() != bytes {
        return Err(Denial::new(
            Code::Malformed,
            "not a captix ticket: the token is not in its canonical encoding",
        ));
    }
    debug_assert_eq!(outer.blocks.len() + 1, count);
    Ok((bytes, outer))
}

fn too_many_blocks(count: usize) -> Denial {
    Denial::new(
        Code::TooManyBlocks,
        format!("ticket has {count} blocks, over the limit of {MAX_BLOCKS}"),
    )
}

/// Blocks in an encoded Biscuit (the authority block and each `blocks` entry, field 3), read
/// from the top-level protobuf fields without decoding them. `None` when the fields do not
/// parse.
fn count_blocks(mut buf: &[u8]) -> Option<usize> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut count = 1;
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                buf = buf.get(len..)?;
                if key >> 3 == 3 {
                    count += 1;
                }
            }
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            _ => return None,
        }
    }
    Some(count)
}

fn map_format_error(e: biscuit_auth::error::Token) -> Denial {
    use biscuit_auth::error::{Format, Token};
    match e {
        Token::Format(Format::Signature(_) | Format::SealedSignature) => Denial::new(
            Code::BadSignature,
            "a block signature does not verify under the root key",
        ),
        other => Denial::new(
            Code::Malformed,
            format!("not a valid Biscuit token: {other}"),
        ),
    }
}

/// Reads every block: its description (checked against its decoded Datalog), source and id.
fn views(outer: &schema::Biscuit, ids: Vec<Vec<u8>>) -> Result<Vec<BlockView>, Denial> {
    let decoded = decode_all(outer)
        .map_err(|e| Denial::new(Code::Malformed, format!("not a valid Biscuit token: {e}")))?;
    let signed = std::iter::once(&outer.authority).chain(outer.blocks.iter());
    let mut out = Vec::with_capacity(decoded.len());
    for (index, ((id, decoded), sb)) in ids.into_iter().zip(decoded).zip(signed).enumerate() {
        let third_party = sb.external_signature.is_some();
        let content = if third_party {
            Content::Foreign
        } else {
            match Description::read(decoded.context.as_deref(), &decoded, index) {
                Ok(Some(d)) => Content::Described(Box::new(d)),
                Ok(None) => Content::Foreign,
                Err(reason) => Content::Invalid(reason),
            }
        };
        out.push(BlockView {
            index,
            content,
            revocation_id: RevocationId(id),
            third_party,
            decoded: std::sync::Arc::new(decoded),
        });
    }
    Ok(out)
}

/// Refuses a chain with an invalid description, or whose authority block is not captix's.
fn require_valid(blocks: &[BlockView]) -> Result<(), Denial> {
    for b in blocks {
        if let Content::Invalid(reason) = &b.content {
            return Err(
                Denial::new(Code::Malformed, format!("block {}: {reason}", b.index))
                    .at(b.index, "description"),
            );
        }
    }
    match blocks.first().map(|b| &b.content) {
        Some(Content::Described(_)) => Ok(()),
        _ => Err(Denial::new(
            Code::Malformed,
            "not a captix ticket: the authority block carries no captix description",
        )
        .at(0, "description")),
    }
}

/// Appends the view of the block just added: its id is the last of the token's ids, and its
/// decoded Datalog is what it was built from (the description's generated Datalog), with the
/// symbols it added to the token's table (`symbols`: count and bytes).
fn push_added(
    blocks: &mut Vec<BlockView>,
    mut ids: Vec<Vec<u8>>,
    added: Description,
    symbols: (usize, usize),
) -> Result<(), crate::Error> {
    let id = ids
        .pop()
        .ok_or_else(|| crate::Error::Build("a token without blocks".into()))?;
    let mut decoded = Decoded::of_builder(added.datalog()?);
    (decoded.symbols, decoded.symbol_bytes) = symbols;
    blocks.push(BlockView {
        index: blocks.len(),
        content: Content::Described(Box::new(added)),
        revocation_id: RevocationId(id),
        third_party: false,
        decoded: std::sync::Arc::new(decoded),
    });
    Ok(())
}

/// The text of a ticket just built, within the limits of spec §7.1.
fn built_text(bytes: &[u8], blocks: usize) -> Result<String, crate::Error> {
    if blocks > MAX_BLOCKS {
        return Err(Denial::new(
            Code::TooManyBlocks,
            format!("the ticket would have more than {MAX_BLOCKS} blocks"),
        )
        .into());
    }
    let text = encode(bytes);
    if text.len() > MAX_TICKET_BYTES {
        return Err(Denial::new(
            Code::TicketTooLarge,
            format!(
                "the ticket would be {} bytes, over the limit of {MAX_TICKET_BYTES}",
                text.len()
            ),
        )
        .into());
    }
    Ok(text)
}

impl UnverifiedTicket {
    /// An attenuation just built on an unverified ticket (see [`Ticket::from_built`]).
    pub(crate) fn from_built(
        inner: biscuit_auth::UnverifiedBiscuit,
        mut blocks: Vec<BlockView>,
        added: Description,
    ) -> Result<Self, crate::Error> {
        let bytes = inner
            .to_vec()
            .map_err(|e| crate::Error::Build(e.to_string()))?;
        let text = built_text(&bytes, inner.block_count())?;
        // An unverified ticket is never authorized as it is (verifying parses it anew), so the
        // symbols it added do not matter to the work bound.
        push_added(&mut blocks, inner.revocation_identifiers(), added, (0, 0))?;
        Ok(UnverifiedTicket {
            chain: Chain {
                key_id: inner.root_key_id(),
                blocks,
                text,
            },
            inner,
        })
    }

    /// Decodes a ticket's text form without checking signatures.
    pub fn parse(text: &str) -> Result<Self, Denial> {
        let text = text.trim_ascii();
        let (bytes, outer) = decode(text)?;
        let inner = biscuit_auth::UnverifiedBiscuit::from(&bytes).map_err(map_format_error)?;
        let blocks = views(&outer, inner.revocation_identifiers())?;
        Ok(UnverifiedTicket {
            chain: Chain {
                key_id: inner.root_key_id(),
                blocks,
                text: text.to_string(),
            },
            inner,
        })
    }

    /// Checks every signature against the root key the ticket names, giving a [`Ticket`].
    pub fn verify(&self, keys: &KeySet) -> Result<Ticket, Denial> {
        Ticket::parse(&self.chain.text, keys)
    }

    /// The blocks.
    pub fn blocks(&self) -> &[BlockView] {
        &self.chain.blocks
    }

    /// The root key id the ticket names, if any.
    pub fn key_id(&self) -> Option<KeyId> {
        self.chain.key_id.map(KeyId)
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.chain.text
    }
}

impl Ticket {
    /// Decodes a ticket and verifies every signature under the root key it names (spec §6.3
    /// steps 1–4).
    pub fn parse(text: &str, keys: &KeySet) -> Result<Self, Denial> {
        let text = text.trim_ascii();
        let (bytes, outer) = decode(text)?;
        let key = keys
            .select(outer.root_key_id)
            .ok_or_else(|| match outer.root_key_id {
                Some(id) => Denial::new(
                    Code::UnknownKey,
                    format!(
                        "ticket is signed by root key {}, which this verifier does not know",
                        KeyId(id)
                    ),
                ),
                None => Denial::new(
                    Code::UnknownKey,
                    "ticket names no root key id and this verifier holds several keys",
                ),
            })?;
        let inner = biscuit_auth::Biscuit::from(&bytes, key.0).map_err(map_format_error)?;
        let blocks = views(&outer, inner.revocation_identifiers())?;
        require_valid(&blocks)?;
        Ok(Ticket {
            chain: Chain {
                key_id: inner.root_key_id(),
                blocks,
                text: text.to_string(),
            },
            inner,
        })
    }

    /// A ticket just built by captix: the views of the blocks it was built on (already read),
    /// and the description and Datalog of the block just added (generated from each other, so
    /// not read back).
    pub(crate) fn from_built(
        inner: biscuit_auth::Biscuit,
        mut blocks: Vec<BlockView>,
        added: Description,
    ) -> Result<Self, crate::Error> {
        let bytes = inner
            .to_vec()
            .map_err(|e| crate::Error::Build(e.to_string()))?;
        let text = built_text(&bytes, inner.block_count())?;
        let added_symbols = inner
            .block_symbols(inner.block_count().saturating_sub(1))
            .map(|s| (s.len(), s.iter().map(String::len).sum()))
            .unwrap_or((0, 0));
        push_added(
            &mut blocks,
            inner.revocation_identifiers(),
            added,
            added_symbols,
        )?;
        Ok(Ticket {
            chain: Chain {
                key_id: inner.root_key_id(),
                blocks,
                text,
            },
            inner,
        })
    }

    /// The blocks, authority first.
    pub fn blocks(&self) -> &[BlockView] {
        &self.chain.blocks
    }

    /// Every described block's restrictions, in (block, check) order (spec §4.7): the list the
    /// precedence walk (§6.3) runs over.
    pub(crate) fn restrictions(&self) -> Vec<(usize, crate::restriction::Restriction)> {
        self.chain
            .blocks
            .iter()
            .filter_map(|b| b.description().map(|d| (b.index, d)))
            .flat_map(|(i, d)| d.restrictions().into_iter().map(move |r| (i, r)))
            .collect()
    }

    /// The root key id the ticket names.
    pub fn key_id(&self) -> Option<KeyId> {
        self.chain.key_id.map(KeyId)
    }

    /// Who the ticket is for.
    pub fn identity(&self) -> &Identity {
        static NONE: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
        self.chain
            .blocks
            .first()
            .and_then(BlockView::description)
            .and_then(|d| d.identity.as_ref())
            .unwrap_or_else(|| {
                NONE.get_or_init(|| Identity {
                    issuer: None,
                    agent: String::new(),
                    user: String::new(),
                    scopes: vec![],
                })
            })
    }

    /// The tools the authority block grants (before attenuation).
    pub fn grants(&self) -> &[String] {
        self.chain
            .blocks
            .first()
            .and_then(BlockView::description)
            .map(|d| d.grants.as_slice())
            .unwrap_or(&[])
    }

    /// The revocation ids of the chain, authority first.
    pub fn revocation_ids(&self) -> impl Iterator<Item = &RevocationId> {
        self.chain.blocks.iter().map(|b| &b.revocation_id)
    }

    /// The earliest expiry of any block, if one sets it.
    pub fn expires(&self) -> Option<u64> {
        self.chain
            .blocks
            .iter()
            .filter_map(|b| b.description().and_then(|d| d.expires))
            .min()
    }

    /// The text form (`captix1_…`).
    pub fn as_str(&self) -> &str {
        &self.chain.text
    }

    /// The Biscuit token underneath, for interoperation.
    pub fn biscuit(&self) -> &biscuit_auth::Biscuit {
        &self.inner
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain.text)
    }
}

impl fmt::Display for UnverifiedTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain.text)
    }
}

/// Tickets are bearer secrets: `Debug` shows their structure, never the text.
impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("key_id", &self.key_id())
            .field("blocks", &self.chain.blocks.len())
            .field("agent", &self.identity().agent)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for UnverifiedTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedTicket")
            .field("key_id", &self.key_id())
            .field("blocks", &self.chain.blocks.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(PREFIX.len() + bytes.len() * 4 / 3 + 4);
    s.push_str(PREFIX);
    s.push_str(&base64::encode_config(bytes, base64::URL_SAFE_NO_PAD));
    s
}
