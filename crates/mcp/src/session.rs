//! Sessions bound to the ticket chain that created them (spec §14.4).
//!
//! A Streamable HTTP session id is a bearer value: whoever sends it acts in the session. The
//! layer binds each session id the server hands out to the exact chain of the ticket whose
//! request created it (the revocation id of its last block, which commits to every block), and
//! answers 404 to any other ticket that names it, as if the session did not exist. Ids are kept
//! as their SHA-256, so lookups take no time that depends on how much of a guess matched.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A session's owner: the chain's last revocation id, and when the binding lapses.
struct Binding {
    chain: String,
    expires: u64,
}

pub(crate) struct Sessions {
    max: usize,
    map: Mutex<HashMap<[u8; 32], Binding>>,
}

/// What binding a new session did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Bound to the chain.
    Yes,
    /// The id was already bound (to this chain or another): left as it was.
    Taken,
    /// No room: every binding is live and the table holds `max` of them.
    Full,
}

fn key(id: &[u8]) -> [u8; 32] {
    Sha256::digest(id).into()
}

impl Sessions {
    pub(crate) fn new(max: usize) -> Self {
        Sessions {
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Binding>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether session `id` is bound to `chain` and its binding is live at `now`.
    pub(crate) fn belongs(&self, id: &[u8], chain: &str, now: u64) -> bool {
        self.lock()
            .get(&key(id))
            .is_some_and(|b| b.chain == chain && now <= b.expires)
    }

    /// Binds a session the server just created to `chain` until `expires` (the ticket's).
    pub(crate) fn bind(&self, id: &[u8], chain: &str, expires: u64, now: u64) -> Bound {
        let mut map = self.lock();
        let k = key(id);
        if map.contains_key(&k) {
            return Bound::Taken;
        }
        if map.len() >= self.max {
            map.retain(|_, b| now <= b.expires);
            if map.len() >= self.max {
                return Bound::Full;
            }
        }
        map.insert(
            k,
            Binding {
                chain: chain.to_string(),
                expires,
            },
        );
        Bound::Yes
    }

    /// Forgets a session (after the server deleted it).
    pub(crate) fn forget(&self, id: &[u8]) {
        self.lock().remove(&key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::{Bound, Sessions};

    #[test]
    fn a_session_belongs_to_one_chain_until_its_ticket_expires() {
        let s = Sessions::new(2);
        assert_eq!(s.bind(b"s1", "chainA", 100, 10), Bound::Yes);
        assert!(s.belongs(b"s1", "chainA", 100));
        assert!(!s.belongs(b"s1", "chainB", 50), "another chain");
        assert!(!s.belongs(b"s1", "chainA", 101), "after the ticket expired");
        assert!(!s.belongs(b"s2", "chainA", 50), "unknown id");
        assert_eq!(
            s.bind(b"s1", "chainB", 100, 10),
            Bound::Taken,
            "no rebinding"
        );
        assert!(s.belongs(b"s1", "chainA", 50));
        assert_eq!(s.bind(b"s2", "chainB", 20, 10), Bound::Yes);
        assert_eq!(s.bind(b"s3", "chainC", 100, 10), Bound::Full);
        // once s2's ticket expired its slot is reclaimed
        assert_eq!(s.bind(b"s3", "chainC", 100, 21), Bound::Yes);
        assert!(!s.belongs(b"s2", "chainB", 15), "s2 was swept");
        s.forget(b"s1");
        assert!(!s.belongs(b"s1", "chainA", 50));
    }
}
