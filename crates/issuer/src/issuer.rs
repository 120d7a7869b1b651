//! A running issuer: its policy and keys (replaced on reload), store, audit log and
//! revocation target (docs §17.5–§17.7).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use captix::audit::{AuditSink, Durability, FileAudit, Record};
use captix::{KeySet, RevocationId, SigningKey};
use zeroize::Zeroizing;

use crate::{client_auth, config, store, Config, Error, Store};

/// What a reload replaces: the policy and the keys (docs §17.5).
pub struct State {
    /// The configuration.
    pub config: Config,
    /// The signing key (the first of `keys`).
    pub(crate) key: SigningKey,
    /// Every configured key's public half: tickets presented for revocation are checked
    /// against them.
    pub(crate) keys: KeySet,
}

/// A running issuer: its state, store, audit log and revocation target.
pub struct Issuer {
    state: RwLock<Arc<State>>,
    config_path: Option<PathBuf>,
    pub(crate) store: Box<dyn Store>,
    audit: Option<Arc<dyn AuditSink>>,
    pub(crate) revocations: Revocations,
    /// Refusal gates, per client and one for every unauthenticated caller: (second, recorded
    /// in it, left out since the last recorded).
    pub(crate) refusal_gates: Mutex<std::collections::HashMap<Option<String>, (u64, u32, u64)>>,
}

/// Where revocations go (the servers' revocation source).
pub(crate) enum Revocations {
    File(PathBuf),
    Redis(Box<captix_redis::RedisRevocations>),
}

impl Revocations {
    fn open(at: &config::RevocationsAt) -> Result<Self, Error> {
        Ok(match at {
            config::RevocationsAt::File(p) => Revocations::File(p.clone()),
            config::RevocationsAt::Redis(url) => Revocations::Redis(Box::new(
                captix_redis::RedisRevocations::new(
                    url,
                    captix_redis::Options::default(),
                    std::time::Duration::from_secs(1),
                )
                .map_err(|e| Error::Io(format!("revocations in redis: {e}")))?,
            )),
        })
    }

    pub(crate) fn revoke(&self, id: &RevocationId) -> Result<(), String> {
        match self {
            Revocations::File(path) => {
                captix::revocation::append_to_file(path, std::slice::from_ref(id))
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Revocations::Redis(r) => r.revoke(id).map_err(|d| d.reason),
        }
    }
}

impl State {
    /// The id of the key that signs new tickets.
    pub fn key_id(&self) -> captix::KeyId {
        self.key.key_id()
    }
}

fn load_state(config: Config) -> Result<State, Error> {
    let mut keys = KeySet::new();
    let mut signing = None;
    for path in &config.keys {
        let key = SigningKey::load(path).map_err(|e| Error::Key {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        keys.insert(key.public());
        signing.get_or_insert(key);
    }
    let key = signing.ok_or_else(|| Error::Key {
        path: String::new(),
        reason: "no signing key configured".into(),
    })?;
    Ok(State { config, key, keys })
}

impl Issuer {
    /// Reads the configuration file and opens what it names.
    pub fn open(path: &Path) -> Result<Issuer, Error> {
        let config = Config::load(path)?;
        let store = store::open(&config.store)?;
        let mut issuer = Issuer::with_store(config, store)?;
        issuer.config_path = Some(path.to_path_buf());
        Ok(issuer)
    }

    /// An issuer over a read configuration and a given store (tests, embedding).
    pub fn with_store(config: Config, store: Box<dyn Store>) -> Result<Issuer, Error> {
        let audit: Option<Arc<dyn AuditSink>> = match &config.audit {
            Some(p) => Some(Arc::new(
                FileAudit::open(p, Durability::Flush)
                    .map_err(|e| Error::Io(format!("audit log {}: {e}", p.display())))?,
            )),
            None => None,
        };
        let revocations = Revocations::open(&config.revocations)?;
        Ok(Issuer {
            state: RwLock::new(Arc::new(load_state(config)?)),
            config_path: None,
            store,
            audit,
            revocations,
            refusal_gates: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Replaces the audit sink (tests: a memory sink).
    pub fn audit_to(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The current state.
    pub fn state(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the configuration file: new keys and policy apply to the next request; a
    /// request in flight finishes with the old. A file that does not read changes nothing.
    /// The issuer URL, listen address, store, audit log and revocation target apply at the
    /// next start (a changed one is refused here, not silently ignored).
    pub fn reload(&self) -> Result<(), Error> {
        let Some(path) = &self.config_path else {
            return Err(Error::Io("this issuer was not opened from a file".into()));
        };
        self.replace(Config::load(path)?)
    }

    /// Replaces the keys and policy with those of `config` (see [`Issuer::reload`]).
    pub fn replace(&self, config: Config) -> Result<(), Error> {
        let old = self.state();
        let o = &old.config;
        if (
            &o.issuer,
            o.listen,
            o.behind_tls_proxy,
            &o.store,
            &o.audit,
            &o.revocations,
        ) != (
            &config.issuer,
            config.listen,
            config.behind_tls_proxy,
            &config.store,
            &config.audit,
            &config.revocations,
        ) {
            return Err(Error::Io(
                "issuer, listen, store, audit and revocations change only at a restart".into(),
            ));
        }
        let next = Arc::new(load_state(config)?);
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Gives a client a new secret (replacing any old one) and returns it: it is shown once
    /// and only its hash is kept.
    pub fn new_client_secret(&self, client: &str) -> Result<Zeroizing<String>, Error> {
        let state = self.state();
        match state.config.policy.clients.get(client) {
            None => {
                return Err(Error::Io(format!(
                    "client {client:?} is not in the configuration ([clients.\"{client}\"])"
                )))
            }
            Some(c) if c.public_key.is_some() => {
                return Err(Error::Io(format!(
                    "client {client:?} authenticates with its key (public_key), not a secret"
                )))
            }
            Some(_) => {}
        }
        let secret = client_auth::new_secret()?;
        // Who can authenticate as whom changes: audited first (never the secret), so a log
        // that cannot be written leaves the old secret in place.
        let record = Record::issuer("client_secret", now(), Some(client), None, None, None);
        self.audit(record).map_err(Error::Io)?;
        self.store
            .set_secret_hash(client, &client_auth::secret_hash(&secret))?;
        Ok(secret)
    }

    /// The path part of the issuer URL (`""` or `/tenant`).
    pub(crate) fn path(&self) -> String {
        let issuer = self.state().config.issuer.clone();
        let after_scheme = issuer.split_once("://").map_or("", |(_, r)| r);
        after_scheme
            .find('/')
            .map_or(String::new(), |i| after_scheme[i..].to_string())
    }

    pub(crate) fn audit(&self, record: Record) -> Result<(), String> {
        match &self.audit {
            Some(sink) => sink.append(record).map(|_| ()).map_err(|d| d.reason),
            None => Ok(()),
        }
    }
}

pub(crate) fn now() -> u64 {
    crate::config::unix_now()
}
