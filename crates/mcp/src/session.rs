//! Sessions bound to the ticket chain that created them (docs §14.4).
//!
//! A Streamable HTTP session id is a bearer value: whoever sends it acts in the session. The
//! layer binds each session id the server hands out to the exact chain of the ticket whose
//! request created it (the revocation id of its last block, which commits to every block), and
//! answers 404 to any other ticket that names it, as if the session did not exist. Ids are kept
//! as their SHA-256, so lookups take no time that depends on how much of a guess matched.
//!
//! The table is bounded: at most `max` bindings, at most `per_root` for the tickets of one
//! issuance (one authority block: a holder can attenuate any number of children offline, but
//! not mint new roots), and a binding lapses when its ticket expires or after `idle` seconds
//! without use.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A session's owner: the chain's last revocation id, its root, when the binding lapses.
struct Binding {
    chain: String,
    root: String,
    /// The endpoint (request path) that created the session: only an answer there (a
    /// DELETE's success, or a 404 that is not a JSON-RPC message) says the server ended it.
    endpoint: Endpoint,
    expires: u64,
    last_used: u64,
    /// JSON-RPC ids of the session's requests in flight (canonical text).
    in_flight: HashSet<String>,
}

/// Most requests one session may have in flight.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// Why a request may not start now in its session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// A request with this id is in flight: the server would answer both on one stream.
    Duplicate,
    /// [`MAX_IN_FLIGHT`] requests are in flight.
    Busy,
}

#[derive(Default)]
struct Table {
    bindings: HashMap<[u8; 32], Binding>,
    /// Per issuance: bindings plus reservations (sessions being created).
    per_root: HashMap<String, usize>,
    /// Reservations not yet bound or released, in all.
    pending: usize,
}

impl Table {
    fn remove(&mut self, k: &[u8; 32]) {
        if let Some(b) = self.bindings.remove(k) {
            self.uncount(&b.root);
        }
    }

    fn uncount(&mut self, root: &str) {
        if let Some(n) = self.per_root.get_mut(root) {
            *n -= 1;
            if *n == 0 {
                self.per_root.remove(root);
            }
        }
    }

    fn held(&self) -> usize {
        self.bindings.len() + self.pending
    }

    /// Drops the bindings that lapsed by `now`.
    fn sweep(&mut self, now: u64, idle: u64) {
        let dead: Vec<[u8; 32]> = self
            .bindings
            .iter()
            .filter(|(_, b)| !live(b, now, idle))
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            self.remove(&k);
        }
    }
}

fn live(b: &Binding, now: u64, idle: u64) -> bool {
    now <= b.expires && now.saturating_sub(b.last_used) <= idle
}

pub(crate) struct Sessions {
    max: usize,
    per_root: usize,
    idle: u64,
    table: Mutex<Table>,
}

/// Why a new session may not be created now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// The table holds `max` live bindings and reservations.
    Full,
    /// The tickets of this issuance hold `per_root` live bindings.
    RootFull,
}

fn key(id: &[u8]) -> [u8; 32] {
    Sha256::digest(id).into()
}

/// A request's path, hashed: where a session lives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint([u8; 32]);

impl Endpoint {
    pub(crate) fn of(path: &str) -> Self {
        Endpoint(key(path.as_bytes()))
    }
}

/// The chain a ticket presents: `(last block's revocation id, authority block's)`.
pub(crate) struct Owner<'a> {
    pub(crate) chain: &'a str,
    pub(crate) root: &'a str,
}

impl Sessions {
    pub(crate) fn new(max: usize, per_root: usize, idle: u64) -> Self {
        Sessions {
            max,
            per_root,
            idle,
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether session `id` is bound to this chain and live at `now` (a use keeps it live).
    pub(crate) fn belongs(&self, id: &[u8], owner: &Owner<'_>, now: u64) -> bool {
        let mut t = self.lock();
        let k = key(id);
        let Some(b) = t.bindings.get_mut(&k) else {
            return false;
        };
        if !live(b, now, self.idle) {
            t.remove(&k);
            return false;
        }
        if b.chain != owner.chain {
            return false;
        }
        b.last_used = now;
        true
    }

    /// Reserves room for a session this owner is about to create (before the server sees the
    /// request), under the same lock that counts bindings: concurrent creations cannot
    /// overshoot either bound. Every `Ok` must end in [`Sessions::bind`] or
    /// [`Sessions::release`].
    pub(crate) fn reserve(&self, owner: &Owner<'_>, now: u64) -> Result<(), Room> {
        let mut t = self.lock();
        let root_full = |t: &Table| t.per_root.get(owner.root) >= Some(&self.per_root);
        if t.held() >= self.max || root_full(&t) {
            t.sweep(now, self.idle);
        }
        if t.held() >= self.max {
            return Err(Room::Full);
        }
        if root_full(&t) {
            return Err(Room::RootFull);
        }
        t.pending += 1;
        *t.per_root.entry(owner.root.to_string()).or_default() += 1;
        Ok(())
    }

    /// Gives back a reservation whose request created no session.
    pub(crate) fn release(&self, owner: &Owner<'_>) {
        let mut t = self.lock();
        t.pending = t.pending.saturating_sub(1);
        t.uncount(owner.root);
    }

    /// Binds a session the server just created, under its owner's reservation, until
    /// `expires` (the ticket's). An id already bound keeps its owner (and the reservation is
    /// given back).
    pub(crate) fn bind(
        &self,
        id: &[u8],
        owner: &Owner<'_>,
        endpoint: Endpoint,
        expires: u64,
        now: u64,
    ) {
        let mut t = self.lock();
        let k = key(id);
        t.pending = t.pending.saturating_sub(1);
        if t.bindings.contains_key(&k) {
            t.uncount(owner.root);
            return;
        }
        t.bindings.insert(
            k,
            Binding {
                chain: owner.chain.to_string(),
                root: owner.root.to_string(),
                endpoint,
                expires,
                last_used: now,
                in_flight: HashSet::new(),
            },
        );
    }

    /// Marks request `rpc_id` in flight in session `id` (docs §14.4). A server answers a
    /// request on the stream of the last request that used its id: a second request with
    /// the id of one in flight would receive the first one's answer (a list the layer
    /// filters, say) on a stream the layer does not filter. Every `Ok` must end in
    /// [`Sessions::finish`]. A session the table does not hold is not tracked (`Ok`).
    pub(crate) fn start(&self, id: &[u8], rpc_id: &str) -> Result<(), Start> {
        let mut t = self.lock();
        let Some(b) = t.bindings.get_mut(&key(id)) else {
            return Ok(());
        };
        if b.in_flight.contains(rpc_id) {
            return Err(Start::Duplicate);
        }
        if b.in_flight.len() >= MAX_IN_FLIGHT {
            return Err(Start::Busy);
        }
        b.in_flight.insert(rpc_id.to_string());
        Ok(())
    }

    /// Ends request `rpc_id` of session `id` (its response ended or was dropped).
    pub(crate) fn finish(&self, id: &[u8], rpc_id: &str) {
        if let Some(b) = self.lock().bindings.get_mut(&key(id)) {
            b.in_flight.remove(rpc_id);
        }
    }

    /// Forgets a session after the server ended it, told by an answer from the endpoint
    /// that created it (the caller judges the answer: a DELETE's success, or a 404 that is not
    /// a JSON-RPC message). An answer from another path (a route the application added, or
    /// none: axum's 404) says nothing of the session, and freeing its slot there would let a
    /// holder open sessions past its share (found by review).
    pub(crate) fn forget(&self, id: &[u8], at: Endpoint) {
        let mut t = self.lock();
        let k = key(id);
        if t.bindings.get(&k).is_some_and(|b| b.endpoint == at) {
            t.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, Owner, Room, Sessions};

    fn mcp() -> Endpoint {
        Endpoint::of("/mcp")
    }

    const A: Owner<'static> = Owner {
        chain: "chainA",
        root: "root1",
    };
    const B: Owner<'static> = Owner {
        chain: "chainB",
        root: "root1",
    };
    const C: Owner<'static> = Owner {
        chain: "chainC",
        root: "root2",
    };

    #[test]
    fn a_session_belongs_to_one_chain_until_its_ticket_expires() {
        let s = Sessions::new(3, 2, 1000);
        s.reserve(&A, 10).expect("room");
        s.bind(b"s1", &A, mcp(), 100, 10);
        assert!(s.belongs(b"s1", &A, 100));
        assert!(!s.belongs(b"s1", &B, 50), "another chain of the same root");
        assert!(!s.belongs(b"s2", &A, 50), "unknown id");
        s.reserve(&B, 10).expect("room");
        s.bind(b"s1", &B, mcp(), 100, 10);
        assert!(s.belongs(b"s1", &A, 50), "no rebinding");
        assert!(!s.belongs(b"s1", &A, 101), "after the ticket expired");
        assert!(!s.belongs(b"s1", &A, 50), "and it is gone");
        s.reserve(&C, 10).expect("room");
        s.bind(b"s3", &C, mcp(), 100, 10);
        s.forget(b"s3", Endpoint::of("/other"));
        assert!(
            s.belongs(b"s3", &C, 50),
            "an answer from another path ends nothing"
        );
        s.forget(b"s3", mcp());
        assert!(!s.belongs(b"s3", &C, 50));
    }

    #[test]
    fn the_table_is_bounded_per_issuance_and_in_all_reservations_included() {
        let s = Sessions::new(3, 2, 1000);
        // Two creations in flight for root1 already fill its share: no overshoot by racing.
        s.reserve(&A, 10).expect("room");
        s.reserve(&B, 10).expect("room");
        assert_eq!(s.reserve(&A, 10), Err(Room::RootFull));
        s.release(&B);
        s.reserve(&B, 10)
            .expect("a released reservation is room again");
        s.bind(b"a1", &A, mcp(), 100, 10);
        s.bind(b"a2", &B, mcp(), 100, 10);
        assert_eq!(
            s.reserve(&A, 10),
            Err(Room::RootFull),
            "two of root1's tickets"
        );
        s.reserve(&C, 10).expect("another issuance still may");
        assert_eq!(
            s.reserve(&C, 10),
            Err(Room::Full),
            "in flight counts toward the table"
        );
        s.bind(b"c1", &C, mcp(), 20, 10);
        // once c1's ticket expired its slot is reclaimed
        s.reserve(&C, 21).expect("reclaimed");
        s.release(&C);
        s.forget(b"a1", mcp());
        s.reserve(&A, 21).expect("forgotten");
    }

    #[test]
    fn one_id_is_in_flight_once_per_session() {
        use super::{Start, MAX_IN_FLIGHT};
        let s = Sessions::new(10, 10, 60);
        s.reserve(&A, 0).expect("room");
        s.bind(b"s", &A, mcp(), 10_000, 0);
        s.start(b"s", "n:1").expect("first");
        assert_eq!(s.start(b"s", "n:1"), Err(Start::Duplicate));
        s.start(b"s", "s:1")
            .expect("the string \"1\" is another id");
        s.finish(b"s", "n:1");
        s.start(b"s", "n:1").expect("after the first ended");
        for i in 0..MAX_IN_FLIGHT - 2 {
            s.start(b"s", &format!("n:{}", i + 2)).expect("room");
        }
        assert_eq!(s.start(b"s", "n:x"), Err(Start::Busy));
        s.start(b"other", "n:1")
            .expect("an unknown session is not tracked");
    }

    #[test]
    fn an_idle_binding_lapses() {
        let s = Sessions::new(10, 10, 60);
        s.reserve(&A, 0).expect("room");
        s.bind(b"s", &A, mcp(), 10_000, 0);
        assert!(s.belongs(b"s", &A, 50));
        assert!(s.belongs(b"s", &A, 110), "each use keeps it live");
        assert!(!s.belongs(b"s", &A, 171), "61 s idle");
    }
}
