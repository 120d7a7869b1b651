//! Keys: generate, save, load, key ids, and key sets for rotation (spec §5).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use biscuit_auth::builder::Algorithm;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const SECRET_PREFIX: &str = "ed25519-private/";
const PUBLIC_PREFIX: &str = "ed25519/";

/// A key id: the first four bytes of the Ed25519 public key, big-endian (spec §5.2).
///
/// It is carried in the ticket (Biscuit's `root_key_id`) so that a verifier holding several
/// root keys picks the right one without trying each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// An issuer's Ed25519 signing key. Zeroized on drop; never printed.
pub struct SigningKey {
    pair: biscuit_auth::KeyPair,
}

impl SigningKey {
    /// Generates a key from the operating system's random source.
    pub fn generate() -> Self {
        SigningKey {
            pair: biscuit_auth::KeyPair::new_with_algorithm(Algorithm::Ed25519),
        }
    }

    /// Builds a key from a 32-byte Ed25519 seed (deterministic test vectors; feature
    /// `test-util`).
    #[cfg(feature = "test-util")]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::of_seed(seed)
    }

    /// The key of a 32-byte Ed25519 seed.
    fn of_seed(seed: &[u8; 32]) -> Self {
        let private = biscuit_auth::PrivateKey::from_bytes(seed, Algorithm::Ed25519)
            .expect("any 32 bytes are a valid ed25519 seed");
        SigningKey {
            pair: biscuit_auth::KeyPair::from(&private),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.pair.public())
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.public().key_id()
    }

    /// Parses the text form written by [`SigningKey::to_text`] (`ed25519-private/<hex>`);
    /// lines starting with `#` and blank lines are ignored.
    pub fn from_text(text: &str) -> Result<Self> {
        let line = key_line(text).ok_or_else(|| Error::InvalidKey("no key line found".into()))?;
        let hex_part = line.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            Error::InvalidKey(format!(
                "a secret key starts with `{SECRET_PREFIX}` (is this a public key file?)"
            ))
        })?;
        let bytes = Zeroizing::new(
            hex::decode(hex_part).map_err(|_| Error::InvalidKey("key is not hex".into()))?,
        );
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::InvalidKey("an ed25519 secret key is 32 bytes".into()))?,
        );
        Ok(Self::of_seed(&seed))
    }

    /// The text form of the key: a comment line and `ed25519-private/<hex>`. Zeroized on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        let bytes = self.pair.private().to_bytes();
        Zeroizing::new(format!(
            "# captix secret key, key id {}: keep it private\n{SECRET_PREFIX}{}\n",
            self.key_id(),
            Zeroizing::new(hex::encode(bytes.as_slice())).as_str()
        ))
    }

    /// Loads a secret key file. Refuses a public key file, and a secret key file that others
    /// can read (Unix).
    pub fn load(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("could not read key file {}", path.display()),
            source: e,
        })?);
        if key_line(&text).is_some_and(|l| l.starts_with(PUBLIC_PREFIX)) {
            return Err(Error::InvalidKey(format!(
                "{} is a public key file; pass the secret NAME.key",
                path.display()
            )));
        }
        check_private_mode(path)?;
        Self::from_text(&text)
    }

    /// Writes the key to a new file with mode 0600; refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_new(path, self.to_text().as_bytes(), true)
    }

    pub(crate) fn pair(&self) -> &biscuit_auth::KeyPair {
        &self.pair
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, secret redacted)", self.key_id())
    }
}

/// An Ed25519 public (root) key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(pub(crate) biscuit_auth::PublicKey);

impl PublicKey {
    /// The key id (spec §5.2).
    pub fn key_id(&self) -> KeyId {
        let b = self.0.to_bytes();
        KeyId(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// From 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        biscuit_auth::PublicKey::from_bytes(bytes, Algorithm::Ed25519)
            .map(PublicKey)
            .map_err(|e| Error::InvalidKey(format!("not an ed25519 public key: {e}")))
    }

    /// Parses `ed25519/<hex>` (the form written by [`PublicKey::to_text`]), or bare hex;
    /// `#` comment lines and blank lines are ignored.
    pub fn from_text(text: &str) -> Result<Self> {
        let line = key_line(text).ok_or_else(|| Error::InvalidKey("no key line found".into()))?;
        if line.starts_with(SECRET_PREFIX) {
            return Err(Error::InvalidKey(
                "this is a secret key; pass the .pub file".into(),
            ));
        }
        let hex_part = line.strip_prefix(PUBLIC_PREFIX).unwrap_or(line);
        let bytes =
            hex::decode(hex_part).map_err(|_| Error::InvalidKey("key is not hex".into()))?;
        if bytes.len() != 32 {
            return Err(Error::InvalidKey(
                "an ed25519 public key is 32 bytes".into(),
            ));
        }
        Self::from_bytes(&bytes)
    }

    /// The text form: `ed25519/<hex>` (Biscuit's own notation).
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", hex::encode(self.0.to_bytes()))
    }

    /// Loads a public key file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("could not read public key file {}", path.display()),
            source: e,
        })?;
        Self::from_text(&text)
    }

    /// Writes the key to a new file (mode 0644); refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = format!(
            "# captix public key, key id {}\n{}\n",
            self.key_id(),
            self.to_text()
        );
        write_new(path, text.as_bytes(), false)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// The root keys a verifier accepts, by key id (spec §5.3). Several keys allow rotation:
/// add the new key, mint with it, remove the old one once its tickets have expired.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<KeyId, PublicKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key (replacing one with the same id).
    pub fn insert(&mut self, key: PublicKey) -> &mut Self {
        self.keys.insert(key.key_id(), key);
        self
    }

    /// The key with this id.
    pub fn get(&self, id: KeyId) -> Option<&PublicKey> {
        self.keys.get(&id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Picks the key for a ticket: by its key id; a ticket without key id is accepted only
    /// when the set holds exactly one key (tickets from other Biscuit tools).
    pub(crate) fn select(&self, id: Option<u32>) -> Option<&PublicKey> {
        match id {
            Some(id) => self.keys.get(&KeyId(id)),
            None if self.keys.len() == 1 => self.keys.values().next(),
            None => None,
        }
    }
}

impl From<PublicKey> for KeySet {
    fn from(key: PublicKey) -> Self {
        let mut set = KeySet::new();
        set.insert(key);
        set
    }
}

impl FromIterator<PublicKey> for KeySet {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Self {
        let mut set = KeySet::new();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let io = |e| Error::Io {
        context: format!("could not write key file {}", path.display()),
        source: e,
    };
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::Io {
        context: format!("could not read key file {}", path.display()),
        source: e,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InvalidKey(format!(
            "{} is readable by others (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_key_id() {
        let k = SigningKey::of_seed(&[7u8; 32]);
        let again = SigningKey::from_text(&k.to_text()).expect("parse");
        assert_eq!(k.public(), again.public());
        let p = PublicKey::from_text(&k.public().to_text()).expect("parse pub");
        assert_eq!(p, k.public());
        assert_eq!(p.key_id(), k.key_id());
        let b = p.to_bytes();
        assert_eq!(p.key_id().0, u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = SigningKey::of_seed(&[9u8; 32]);
        let secret_hex = hex::encode([9u8; 32]);
        assert!(!format!("{k:?}").contains(&secret_hex));
        assert!(format!("{k:?}").contains("redacted"));
    }

    #[test]
    fn wrong_kind_of_key_file_is_explained() {
        let k = SigningKey::of_seed(&[1u8; 32]);
        let e = PublicKey::from_text(&k.to_text()).expect_err("secret as public");
        assert!(e.to_string().contains("secret key"));
        let e = SigningKey::from_text(&k.public().to_text()).expect_err("public as secret");
        assert!(e.to_string().contains("public key"));
    }

    #[cfg(unix)]
    #[test]
    fn save_writes_0600_and_refuses_overwrite_and_loose_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("captix-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("a.key");
        let _ = std::fs::remove_file(&path);
        let k = SigningKey::generate();
        k.save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(k.save(&path).is_err(), "must not overwrite");
        assert_eq!(SigningKey::load(&path).expect("load").public(), k.public());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = SigningKey::load(&path).expect_err("loose mode");
        assert!(e.to_string().contains("chmod 600"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn key_set_selects_by_id() {
        let a = SigningKey::of_seed(&[1u8; 32]).public();
        let b = SigningKey::of_seed(&[2u8; 32]).public();
        let set: KeySet = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.select(Some(a.key_id().0)), Some(&a));
        assert_eq!(set.select(Some(b.key_id().0)), Some(&b));
        assert_eq!(set.select(None), None, "ambiguous without an id");
        assert_eq!(KeySet::from(a.clone()).select(None), Some(&a));
    }
}
