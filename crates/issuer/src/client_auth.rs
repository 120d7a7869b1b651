//! Client authentication at the token and revocation endpoints (docs §17.4): a client secret
//! (RFC 6749 §2.3.1, `client_secret_basic` or `client_secret_post`) or a signed assertion
//! (`private_key_jwt`, RFC 7523 §2.2 and §3, EdDSA only).
//!
//! The JWT check is written here rather than taken from a JWT crate: it accepts exactly one
//! algorithm (EdDSA over Ed25519, with the `ed25519-dalek` the core already uses), so it needs
//! no algorithm negotiation (the source of `alg: none` and key-confusion bugs) and adds no
//! second crypto stack to the build. The tests of this file and `tests/it/token.rs` pin it to
//! RFC 7523 §3: iss = sub = client id, aud = the issuer or its token endpoint, exp required,
//! jti required and used once.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{quote, OAuthError};
use crate::store::Store;

/// RFC 7523 §2.2 `client_assertion_type`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// At most this many bytes of assertion.
const MAX_ASSERTION: usize = 4096;
/// An assertion may not live longer than this (seconds): a replayed one is refused by its
/// `jti` for as long as the store keeps it, which is until it expires.
const MAX_ASSERTION_LIFE: u64 = 3600;
/// Clock skew allowed on `exp` and `nbf`, seconds.
const SKEW: u64 = 60;

/// How a request authenticates its client.
pub enum Presented {
    /// A client id and secret (Basic header or form).
    Secret {
        /// The client id.
        id: String,
        /// The secret, zeroized on drop.
        secret: Zeroizing<String>,
        /// Sent in the Authorization header (a failure then answers `WWW-Authenticate`).
        basic: bool,
    },
    /// A signed JWT (`client_assertion`).
    Assertion {
        /// `client_id`, if the form also names it.
        id: Option<String>,
        /// The compact JWT.
        jwt: String,
    },
}

/// A new client secret: `cxs_` and 32 random bytes in base64url (256 bits: a fast hash at
/// rest is enough, no password hash needed).
pub fn new_secret() -> Result<Zeroizing<String>, crate::Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut *bytes)
        .map_err(|e| crate::Error::Io(format!("no randomness: {e}")))?;
    let b64 = base64::encode_config(&bytes[..], base64::URL_SAFE_NO_PAD);
    Ok(Zeroizing::new(format!("cxs_{b64}")))
}

/// What the store keeps of a secret: SHA-256 over a domain tag and the secret.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"captix-issuer client secret v1\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Authenticates the client; returns its id. Every failure is `invalid_client` with a reason
/// that does not say whether the client exists.
pub fn authenticate(
    presented: &Presented,
    policy: &crate::config::Mapping,
    issuer: &str,
    store: &dyn Store,
    now: u64,
) -> Result<String, OAuthError> {
    match presented {
        Presented::Secret { id, secret, .. } => {
            // The same work whatever the id names (a secret client, a key client, nothing):
            // one store lookup, one hash, one constant-time comparison, one answer.
            let lookup = if id.len() <= 128 { id.as_str() } else { "" };
            let stored = store
                .secret_hash(lookup)
                .map_err(|e| OAuthError::unavailable(e.to_string()))?;
            let usable = matches!(policy.clients.get(id), Some(c) if c.public_key.is_none());
            let presented = secret_hash(secret);
            let known = stored.unwrap_or([0xA5; 32]);
            let equal: bool = presented.ct_eq(&known).into();
            if equal && stored.is_some() && usable {
                Ok(id.clone())
            } else {
                Err(OAuthError::invalid_client(
                    "client authentication failed (unknown client, wrong secret, or a client that authenticates with a key)",
                ))
            }
        }
        Presented::Assertion { id, jwt } => {
            let claims = check_assertion(jwt, id.as_deref(), policy, issuer, now)?;
            let fresh = store
                .use_assertion(&claims.sub, &claims.jti, claims.exp)
                .map_err(|e| OAuthError::unavailable(e.to_string()))?;
            if !fresh {
                return Err(OAuthError::invalid_client(
                    "client assertion replayed (its jti was used before)",
                ));
            }
            Ok(claims.sub)
        }
    }
}

/// The public half of a key whose secret half is thrown away at once.
fn nobodys_key() -> ed25519_dalek::VerifyingKey {
    static KEY: std::sync::OnceLock<ed25519_dalek::VerifyingKey> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        // Without randomness the seed stays zero: a known key, but still not a client's.
        let _ = getrandom::getrandom(&mut *seed);
        ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key()
    })
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    jti: String,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// RFC 7523 §3 and RFC 7515: the assertion's signature and claims. Replay is the caller's.
fn check_assertion(
    jwt: &str,
    form_id: Option<&str>,
    policy: &crate::config::Mapping,
    issuer: &str,
    now: u64,
) -> Result<Claims, OAuthError> {
    let bad = |why: &str| OAuthError::invalid_client(format!("client assertion: {why}"));
    if jwt.len() > MAX_ASSERTION {
        return Err(bad("longer than 4096 bytes"));
    }
    // RFC 7515 §2: base64url without padding; a padded form is another encoding of the same
    // bytes, refused rather than normalized.
    if jwt.contains('=') {
        return Err(bad("padding in a JWS part"));
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWS of three parts"));
    };
    let b64 = |s: &str| base64::decode_config(s, base64::URL_SAFE_NO_PAD).ok();
    let header: Header = b64(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("the header is not base64url JSON"))?;
    if header.alg != "EdDSA" {
        return Err(bad("alg must be EdDSA"));
    }
    if header.crit.is_some() {
        return Err(bad("no critical header parameters are understood"));
    }
    let claims: Claims = b64(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("the claims are not base64url JSON with iss, sub, aud, exp and jti"))?;
    if claims.iss != claims.sub {
        return Err(bad("iss and sub must both be the client id"));
    }
    if form_id.is_some_and(|id| id != claims.sub) {
        return Err(bad("client_id is not the assertion's subject"));
    }
    let sig = b64(s)
        .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
        .ok_or_else(|| bad("the signature is not 64 bytes of base64url"))?;
    // One answer for an unknown subject, a subject without a key and a wrong signature: the
    // answer does not tell which client ids exist.
    // A subject without a key is checked against a key nobody holds: the same work and the
    // same answer, so neither the message nor the time tells which ids exist.
    let not_signed = || bad("not signed with the key registered for its subject");
    let registered = policy
        .clients
        .get(&claims.sub)
        .and_then(|c| c.public_key.as_ref())
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k.to_bytes()).ok());
    let vk = registered.unwrap_or_else(nobodys_key);
    let signed = &jwt.as_bytes()[..h.len() + 1 + p.len()];
    let verified = vk.verify_strict(signed, &sig).is_ok();
    if !(verified && registered.is_some()) {
        return Err(not_signed());
    }
    let token_endpoint = format!("{issuer}/token");
    let names_us = |a: &str| a == issuer || a == token_endpoint;
    let aud_ok = match &claims.aud {
        Audience::One(a) => names_us(a.as_str()),
        Audience::Many(list) => list.iter().any(|a| names_us(a)),
    };
    if !aud_ok {
        return Err(bad("aud must name this issuer or its token endpoint"));
    }
    if claims.exp.saturating_add(SKEW) <= now {
        return Err(bad("expired"));
    }
    if claims.exp > now.saturating_add(MAX_ASSERTION_LIFE) {
        return Err(bad("exp is more than an hour away"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(SKEW)) {
        return Err(bad("not yet valid (nbf)"));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(bad(&format!(
            "jti {} must be 1 to 256 bytes",
            quote(&claims.jti, 20)
        )));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    #[test]
    fn secrets_are_long_random_and_hashed_with_a_domain_tag() {
        let a = new_secret().expect("secret");
        let b = new_secret().expect("secret");
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(secret_hash(&a), secret_hash(&b));
        let plain: [u8; 32] = Sha256::digest(a.as_bytes()).into();
        assert_ne!(secret_hash(&a), plain);
    }

    fn policy(key: &ed25519_dalek::SigningKey) -> crate::config::Mapping {
        let public = captix::PublicKey::from_bytes(key.verifying_key().as_bytes()).expect("key");
        let mut m = crate::config::Mapping::default();
        m.clients.insert(
            "bot".into(),
            crate::config::Client {
                public_key: Some(public),
                ..Default::default()
            },
        );
        m
    }

    pub(crate) fn jwt(key: &ed25519_dalek::SigningKey, header: &str, claims: &str) -> String {
        let b64 = |b: &[u8]| base64::encode_config(b, base64::URL_SAFE_NO_PAD);
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let sig = key.sign(signed.as_bytes());
        format!("{signed}.{}", b64(&sig.to_bytes()))
    }

    #[test]
    fn assertions_follow_rfc_7523() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let m = policy(&key);
        let iss = "https://as.example";
        let now = 1_800_000_000u64;
        let h = r#"{"alg":"EdDSA","typ":"JWT"}"#;
        let claims = |iss_: &str, sub: &str, aud: &str, exp: u64| {
            format!(r#"{{"iss":"{iss_}","sub":"{sub}","aud":{aud},"exp":{exp},"jti":"j1"}}"#)
        };
        let good = claims("bot", "bot", "\"https://as.example/token\"", now + 60);
        assert_eq!(
            check_assertion(&jwt(&key, h, &good), None, &m, iss, now)
                .expect("ok")
                .sub,
            "bot"
        );
        let list_aud = claims("bot", "bot", "[\"x\",\"https://as.example\"]", now + 60);
        assert!(check_assertion(&jwt(&key, h, &list_aud), Some("bot"), &m, iss, now).is_ok());
        let cases = [
            (jwt(&other, h, &good), "not signed with the key"),
            (jwt(&key, r#"{"alg":"none"}"#, &good), "alg must be EdDSA"),
            (jwt(&key, r#"{"alg":"HS256"}"#, &good), "alg must be EdDSA"),
            (
                jwt(&key, r#"{"alg":"EdDSA","crit":["x"]}"#, &good),
                "critical",
            ),
            (
                jwt(
                    &key,
                    h,
                    &claims("bot", "eve", "\"https://as.example\"", now + 60),
                ),
                "iss and sub",
            ),
            (
                jwt(
                    &key,
                    h,
                    &claims("eve", "eve", "\"https://as.example\"", now + 60),
                ),
                "not signed with the key",
            ),
            (format!("{}=", jwt(&key, h, &good)), "padding"),
            (
                jwt(
                    &key,
                    h,
                    &claims("bot", "bot", "\"https://rs.example\"", now + 60),
                ),
                "aud",
            ),
            (
                jwt(
                    &key,
                    h,
                    &claims("bot", "bot", "\"https://as.example\"", now - 61),
                ),
                "expired",
            ),
            (
                jwt(
                    &key,
                    h,
                    &claims("bot", "bot", "\"https://as.example\"", now + 7200),
                ),
                "an hour",
            ),
            (
                jwt(
                    &key,
                    h,
                    r#"{"iss":"bot","sub":"bot","aud":"https://as.example","exp":1}"#,
                ),
                "jti",
            ),
            ("a.b".to_string(), "three parts"),
        ];
        for (token, says) in cases {
            let e = check_assertion(&token, None, &m, iss, now)
                .err()
                .expect(says);
            assert_eq!(e.code, "invalid_client");
            assert!(e.description.contains(says), "{says}: {}", e.description);
        }
        // The signature covers the exact bytes: a re-encoded header fails.
        let t = jwt(&key, h, &good);
        let tampered = t.replacen('e', "f", 1);
        assert!(check_assertion(&tampered, None, &m, iss, now).is_err());
        let e = check_assertion(&jwt(&key, h, &good), Some("eve"), &m, iss, now).err();
        assert!(e.expect("form id").description.contains("client_id"));
    }
}
