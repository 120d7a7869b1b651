//! A structured, serialisable view of a ticket's blocks (spec §6.4).

use crate::block::Description;
use crate::ticket::{BlockView, Content, Ticket, UnverifiedTicket};

/// Whether the signatures were checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signatures {
    /// Verified under a root key.
    Verified,
    /// Not checked (no public key given).
    NotChecked,
}

/// One block, for people and programs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlockReport {
    /// Position; 0 is the authority block.
    pub index: usize,
    /// `authority`, `attenuation`, `foreign` (another Biscuit tool's block) or `invalid`.
    pub kind: &'static str,
    /// The block's revocation id (hex).
    pub revocation_id: String,
    /// The description, for captix blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
    /// The restrictions in plain words, in check order.
    pub restrictions: Vec<String>,
    /// Why the block is invalid, for `invalid` blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The block's Datalog source.
    pub datalog: String,
}

/// A whole ticket.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The root key id the ticket names (hex), if any.
    pub key_id: Option<String>,
    /// Whether the signatures were checked.
    pub signatures: Signatures,
    /// Size of the text form in bytes.
    pub bytes: usize,
    /// The blocks, authority first.
    pub blocks: Vec<BlockReport>,
}

fn report(blocks: &[BlockView], key_id: Option<String>, sig: Signatures, bytes: usize) -> Report {
    Report {
        key_id,
        signatures: sig,
        bytes,
        blocks: blocks
            .iter()
            .map(|b| {
                let (kind, description, problem) = match &b.content {
                    Content::Described(d) if b.index == 0 => {
                        ("authority", Some((**d).clone()), None)
                    }
                    Content::Described(d) => ("attenuation", Some((**d).clone()), None),
                    Content::Foreign => ("foreign", None, None),
                    Content::Invalid(p) => ("invalid", None, Some(p.clone())),
                };
                BlockReport {
                    index: b.index,
                    kind,
                    revocation_id: b.revocation_id.to_hex(),
                    restrictions: description
                        .as_ref()
                        .map(|d| d.restrictions().iter().map(ToString::to_string).collect())
                        .unwrap_or_default(),
                    description,
                    problem,
                    datalog: b.datalog(),
                }
            })
            .collect(),
    }
}

impl Ticket {
    /// Every block, with its signatures reported as verified.
    pub fn inspect(&self) -> Report {
        report(
            self.blocks(),
            self.key_id().map(|k| k.to_string()),
            Signatures::Verified,
            self.as_str().len(),
        )
    }
}

impl UnverifiedTicket {
    /// Every block, with its signatures reported as not checked.
    pub fn inspect(&self) -> Report {
        report(
            self.blocks(),
            self.key_id().map(|k| k.to_string()),
            Signatures::NotChecked,
            self.as_str().len(),
        )
    }
}
