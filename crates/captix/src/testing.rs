//! Helpers for captix's own tests and vector generator (feature `test-util`): not the stable
//! API.

use crate::block::Description;
use crate::decoded::{json, Decoded};
use crate::error::Error;

/// The decoded terms of the block a description generates at `index` (spec §4.7), as the JSON
/// of `spec/schema/datalog-vector.json`. Validates the description first.
pub fn generated_terms(d: &Description, index: usize) -> Result<serde_json::Value, Error> {
    d.validate(index)?;
    Ok(json::block(&Decoded::of_builder(d.datalog()?)))
}

/// The decoded terms of each block of a ticket, as read from its bytes (authority first).
pub fn decoded_terms(ticket: &crate::Ticket) -> Vec<serde_json::Value> {
    ticket
        .blocks()
        .iter()
        .map(|b| json::block(&b.decoded))
        .collect()
}
