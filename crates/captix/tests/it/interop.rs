//! A captix ticket is a plain Biscuit token: biscuit-auth alone, with the root key, verifies
//! its signatures and can authorize it — no captix code involved.

use biscuit_auth::{Biscuit, PublicKey};

#[test]
fn plain_biscuit_verifies_and_authorizes_a_captix_ticket() {
    // Minted and attenuated by captix...
    let root = captix::SigningKey::from_seed(&[5u8; 32]);
    let t = captix::Ticket::mint(&root, "agent", "user")
        .tool("list_invoices")
        .row("*:org=acme".parse().expect("row"))
        .sign()
        .expect("mint")
        .attenuate()
        .tool("list_invoices")
        .sign()
        .expect("attenuate");
    let text = t.as_str().to_string();
    let public_hex = hex::encode(root.public().to_bytes());

    // ...checked with biscuit-auth only: strip the prefix, decode base64url, verify.
    let body = text.strip_prefix("captix1_").expect("prefix");
    let bytes = base64::decode_config(body, base64::URL_SAFE_NO_PAD).expect("base64url");
    let key = PublicKey::from_bytes_hex(&public_hex, biscuit_auth::builder::Algorithm::Ed25519)
        .expect("key");
    let token = Biscuit::from(&bytes, key).expect("signatures verify");
    assert_eq!(token.block_count(), 2);

    let authorize = |org: &str| {
        let mut a = biscuit_auth::AuthorizerBuilder::new()
            .code(format!(
                r#"tool("list_invoices"); arg("/org", "{org}"); time(2030-01-01T00:00:00Z);
                   allow if tool($t), allow_tool($t);"#
            ))
            .expect("code")
            .build(&token)
            .expect("authorizer");
        a.authorize()
    };
    assert!(authorize("acme").is_ok());
    assert!(authorize("globex").is_err());

    // A different root key is refused by plain Biscuit too.
    let other = captix::SigningKey::from_seed(&[6u8; 32]).public();
    let other = PublicKey::from_bytes(&other.to_bytes(), biscuit_auth::builder::Algorithm::Ed25519)
        .expect("key");
    assert!(Biscuit::from(&bytes, other).is_err());
}
