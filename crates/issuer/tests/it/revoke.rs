//! RFC 7009 revocation: the ticket's revocation id reaches the servers' revocation source.

use axum::http::StatusCode;

use crate::{basic, env};

const CC: (&str, &str) = ("grant_type", "client_credentials");
const RES: (&str, &str) = ("resource", crate::RESOURCE);

fn revoked(e: &crate::Env) -> Vec<String> {
    std::fs::read_to_string(e.dir.join("revoked.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_client_revokes_its_ticket_and_the_servers_see_it() {
    let e = env();
    let ticket = e.ticket(&[CC, RES]).await;
    let rid = captix::UnverifiedTicket::parse(&ticket)
        .expect("parse")
        .blocks()[0]
        .revocation_id
        .to_hex();
    let auth = basic("billing-bot", &e.secret);
    e.records();
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", &ticket), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(revoked(&e), std::slice::from_ref(&rid));
    // A server reading that file denies the ticket.
    let source = captix::revocation::FileRevocations::open(
        e.dir.join("revoked.txt"),
        std::time::Duration::from_secs(1),
    )
    .expect("source");
    assert_eq!(
        crate::server_says(&e, source, &ticket),
        Err(captix::Code::Revoked)
    );
    let r = e.records();
    let rec = r
        .iter()
        .find(|r| r["kind"] == "revocation")
        .expect("audited");
    assert_eq!(rec["agent"], "billing-bot");
    assert_eq!(rec["chain"], serde_json::json!([rid]));
}

#[tokio::test]
async fn a_sub_agents_ticket_is_revoked_without_its_parent() {
    let e = env();
    let ticket = e.ticket(&[CC, RES]).await;
    let parent = captix::UnverifiedTicket::parse(&ticket).expect("parse");
    let child = parent
        .attenuate()
        .tool("list_invoices")
        .sign_unverified()
        .expect("child");
    let auth = basic("billing-bot", &e.secret);
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", child.as_str())],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(revoked(&e), [child.blocks()[1].revocation_id.to_hex()]);
}

#[tokio::test]
async fn only_the_client_it_was_issued_to_may_revoke() {
    let e = env();
    let ticket = e.ticket(&[CC, RES]).await;
    let other = basic("other-bot", &e.other_secret);
    let a = e
        .post(
            "/revoke",
            &[("authorization", &other)],
            &[("token", &ticket)],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"], "unauthorized_client");
    let wrong = basic("billing-bot", "cxs_wrong");
    let a = e
        .post(
            "/revoke",
            &[("authorization", &wrong)],
            &[("token", &ticket)],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["error"], "invalid_client");
    let none = e.post("/revoke", &[], &[("token", &ticket)]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(revoked(&e).is_empty(), "nothing was revoked");
}

#[tokio::test]
async fn invalid_or_foreign_tokens_are_not_errors_and_not_written() {
    let e = env();
    let auth = basic("billing-bot", &e.secret);
    // RFC 7009 §2.2: an invalid token answers 200.
    for token in ["garbage", "captix1_AAAA"] {
        let a = e
            .post("/revoke", &[("authorization", &auth)], &[("token", token)])
            .await;
        assert_eq!(a.status, StatusCode::OK, "{token}");
    }
    // A ticket signed by another key is not this issuer's: nothing reaches the servers.
    let stranger = captix::SigningKey::from_seed(&[99; 32]);
    let foreign = captix::Ticket::mint(&stranger, "billing-bot", "x")
        .tool("list_invoices")
        .sign()
        .expect("mint");
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", foreign.as_str())],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    // Signed with the issuer's key but never issued (minted at a shell): refused.
    let by_hand = captix::Ticket::mint(&e.key, "billing-bot", "x")
        .tool("list_invoices")
        .sign()
        .expect("mint");
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", by_hand.as_str())],
        )
        .await;
    assert_eq!(a.body["error"], "unauthorized_client");
    assert!(revoked(&e).is_empty());
    let missing = e.post("/revoke", &[("authorization", &auth)], &[]).await;
    assert_eq!(missing.body["error"], "invalid_request");
}

#[tokio::test]
async fn a_revocation_is_written_once_and_descendants_are_bounded() {
    let e = env();
    let ticket = e.ticket(&[CC, RES]).await;
    let auth = basic("billing-bot", &e.secret);
    let parent = captix::UnverifiedTicket::parse(&ticket).expect("parse");
    // A sub-agent's tickets: each revocable once, at most 64 under one issued ticket.
    for n in 0..64 {
        let child = parent
            .attenuate()
            .budget(format!("{}", n + 1).parse().expect("budget"))
            .sign_unverified()
            .expect("child");
        for _ in 0..2 {
            let a = e
                .post(
                    "/revoke",
                    &[("authorization", &auth)],
                    &[("token", child.as_str())],
                )
                .await;
            assert_eq!(a.status, StatusCode::OK);
        }
    }
    assert_eq!(revoked(&e).len(), 64, "each child once");
    let one_more = parent
        .attenuate()
        .tool("get_invoice")
        .sign_unverified()
        .expect("child");
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", one_more.as_str())],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["error_description"]
        .as_str()
        .unwrap_or("")
        .contains("revoke the ticket itself"));
    // The ticket itself: written once; after it, its descendants need nothing more.
    for _ in 0..3 {
        let a = e
            .post(
                "/revoke",
                &[("authorization", &auth)],
                &[("token", &ticket)],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", one_more.as_str())],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(revoked(&e).len(), 65);
    // An expired ticket is not written: no server accepts it anyway.
    let short = parent
        .attenuate()
        .expires_at(crate::now() - 1)
        .sign_unverified()
        .expect("child");
    let a = e
        .post(
            "/revoke",
            &[("authorization", &auth)],
            &[("token", short.as_str())],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(revoked(&e).len(), 65);
}
