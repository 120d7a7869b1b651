//! The token endpoint: RFC 6749 §4.4 (client_credentials), §2.3 and RFC 7523 (client
//! authentication), §5.1–5.2 (responses), RFC 8707 (resource), RFC 9396 (details).

use axum::http::StatusCode;
use captix::{Call, Code, KeySet, Ticket};

use crate::{basic, env, now, RESOURCE};

const CC: (&str, &str) = ("grant_type", "client_credentials");
const RES: (&str, &str) = ("resource", RESOURCE);

#[tokio::test]
async fn a_machine_agent_gets_a_ticket_of_its_scopes() {
    let e = env();
    let a = e.token(&[CC, RES, ("scope", "invoices:read")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // RFC 6749 §5.1: no caching of tokens.
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(a.headers["pragma"], "no-cache");
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.body["expires_in"], 600);
    assert_eq!(a.body["scope"], "invoices:read");
    let text = a.body["access_token"].as_str().expect("token");
    let t = Ticket::parse(text, &KeySet::from(e.key.public())).expect("signed by the issuer");
    assert_eq!(t.identity().agent, "billing-bot");
    assert_eq!(t.identity().user, "svc-billing");
    assert_eq!(t.identity().issuer.as_deref(), Some("https://as.example"));
    assert_eq!(t.identity().scopes, ["invoices:read"]);
    let exp = t.expires().expect("expiry");
    assert!(exp > now() + 590 && exp <= now() + 600, "{exp}");
    let keys = KeySet::from(e.key.public());
    let call = |tool: &str, args: &str, resource: &str| {
        Call::new(tool, args)
            .expect("call")
            .at(now())
            .resource(resource)
    };
    let acme = r#"{"org":"acme"}"#;
    assert!(captix::verify(text, &call("list_invoices", acme, RESOURCE), &keys).is_ok());
    let code = |c: Call| captix::verify(text, &c, &keys).expect_err("denied").code;
    assert_eq!(
        code(call("list_invoices", r#"{"org":"globex"}"#, RESOURCE)),
        Code::ArgDenied
    );
    assert_eq!(
        code(call("create_refund", acme, RESOURCE)),
        Code::ToolNotGranted
    );
    assert_eq!(
        code(call("list_invoices", acme, "https://other.example/mcp")),
        Code::WrongResource,
        "the RFC 8707 resource is the ticket's audience"
    );
    // Audited: client, subject, scopes asked and granted, the ticket's revocation id.
    let r = e.records();
    let grant = r
        .iter()
        .find(|r| r["kind"] == "grant")
        .expect("grant record");
    assert_eq!(grant["agent"], "billing-bot");
    assert_eq!(grant["user"], "svc-billing");
    assert_eq!(grant["scope_requested"], "invoices:read");
    assert_eq!(grant["scope_granted"], "invoices:read");
    assert_eq!(grant["resource"], RESOURCE);
    let rid = t.revocation_ids().next().expect("id").to_hex();
    assert_eq!(grant["chain"], serde_json::json!([rid]));
}

#[tokio::test]
async fn scopes_are_dropped_or_refused_per_rfc_6749() {
    let e = env();
    // Without scope: every scope the client may have for that resource.
    let all = e.token(&[CC, RES]).await;
    assert_eq!(all.body["scope"], "invoices:read invoices:write");
    // A known scope the client may not have is dropped; the response says what was granted.
    let some = e.token(&[CC, RES, ("scope", "invoices:read admin")]).await;
    assert_eq!(some.status, StatusCode::OK);
    assert_eq!(some.body["scope"], "invoices:read");
    for (scope, says) in [
        ("admin", "none of the requested scopes"),
        ("invoices:read root", "unknown scope"),
        ("invoices:read\u{7f}", "scope-token"),
        ("", "scope-token"),
    ] {
        let a = e.token(&[CC, RES, ("scope", scope)]).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{scope:?}");
        assert_eq!(a.body["error"], "invalid_scope", "{scope:?}");
        let d = a.body["error_description"].as_str().expect("description");
        assert!(d.contains(says), "{scope:?}: {d}");
        assert!(d
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
    }
    // The other resource understands only invoices:read.
    let other = e
        .token(&[
            CC,
            ("resource", "https://other.example/mcp"),
            ("scope", "invoices:write"),
        ])
        .await;
    assert_eq!(other.body["error"], "invalid_scope");
}

#[tokio::test]
async fn resources_are_checked_per_rfc_8707() {
    let e = env();
    for (params, code) in [
        (
            vec![CC, ("resource", "https://evil.example/mcp")],
            "invalid_target",
        ),
        (vec![CC], "invalid_target"), // two resources configured: name one
        (
            vec![CC, RES, ("resource", "https://other.example/mcp")],
            "invalid_target",
        ),
    ] {
        let a = e.token(&params).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["error"], code, "{params:?}");
    }
}

#[tokio::test]
async fn clients_authenticate_or_get_401() {
    let e = env();
    let form = crate::form(&[CC, RES]);
    let ok = e.token(&[CC, RES]).await;
    assert_eq!(ok.status, StatusCode::OK);
    // client_secret_post.
    let post = e
        .post(
            "/token",
            &[],
            &[
                CC,
                RES,
                ("client_id", "billing-bot"),
                ("client_secret", &e.secret),
            ],
        )
        .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.body);
    let wrong = basic("billing-bot", "cxs_not-the-secret");
    let unknown = basic("nobody", &e.secret);
    let key_client = basic("key-bot", &e.secret);
    let other_secret = basic("billing-bot", &e.other_secret);
    let mut descriptions = Vec::new();
    for auth in [&wrong, &unknown, &key_client, &other_secret] {
        let a = e
            .call(
                "POST",
                "/token",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", auth),
                ],
                &form,
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body["error"], "invalid_client");
        // RFC 6749 §5.2: a 401 names the scheme; the value is fixed, never request data.
        assert_eq!(
            a.headers["www-authenticate"],
            "Basic realm=\"captix-issuer\", charset=\"UTF-8\""
        );
        descriptions.push(a.body["error_description"].clone());
    }
    assert!(
        descriptions.windows(2).all(|w| w[0] == w[1]),
        "the answer does not tell an unknown client from a wrong secret: {descriptions:?}"
    );
    // No authentication at all.
    let none = e
        .post("/token", &[], &[CC, RES, ("client_id", "billing-bot")])
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    // The secret is never echoed, in answers or in the audit log.
    let log = e.audit.lines().join("\n");
    assert!(!log.contains(&e.secret) && !log.contains("cxs_not-the-secret"));
    assert!(log.contains("\"refusal\""));
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let e = env();
    let auth = basic("billing-bot", &e.secret);
    let h = [("authorization", auth.as_str())];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![RES], "invalid_request"),
        (
            vec![("grant_type", "authorization_code"), RES],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "password"), RES],
            "unsupported_grant_type",
        ),
        (vec![CC, CC, RES], "invalid_request"),
        (
            vec![
                CC,
                RES,
                ("client_secret", "x"),
                ("client_id", "billing-bot"),
            ],
            "invalid_request",
        ),
        (vec![CC, RES, ("client_id", "other-bot")], "invalid_request"),
    ];
    for (params, code) in cases {
        let a = e.post("/token", &h, &params).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{params:?}: {}", a.body);
        assert_eq!(a.body["error"], code, "{params:?}");
    }
    let json = e
        .call(
            "POST",
            "/token",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            "{}",
        )
        .await;
    assert_eq!(json.body["error"], "invalid_request");
    let big = "a".repeat(70_000);
    let huge = e.post("/token", &h, &[CC, ("scope", &big)]).await;
    assert_eq!(huge.body["error"], "invalid_request");
    let get = e.call("GET", "/token", &[], "").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn authorization_details_ask_for_less() {
    let e = env();
    let details = r#"[{"type":"captix","locations":["https://mcp.example/mcp"],"tools":["list_invoices"],"rows":["list_invoices:status=paid"],"budgets":["list_invoices:10/min"]}]"#;
    let a = e
        .token(&[
            CC,
            RES,
            ("scope", "invoices:read"),
            ("authorization_details", details),
        ])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // RFC 9396 §7: the granted details come back.
    let granted = &a.body["authorization_details"][0];
    assert_eq!(granted["type"], "captix");
    assert_eq!(granted["tools"], serde_json::json!(["list_invoices"]));
    assert_eq!(granted["rows"].as_array().map(Vec::len), Some(2));
    let text = a.body["access_token"].as_str().expect("token");
    let keys = KeySet::from(e.key.public());
    let call = |tool: &str, args: &str| {
        Call::new(tool, args)
            .expect("call")
            .at(now())
            .resource(RESOURCE)
    };
    assert!(captix::verify(
        text,
        &call("list_invoices", r#"{"org":"acme","status":"paid"}"#),
        &keys
    )
    .is_ok());
    let denied = |c: Call| captix::verify(text, &c, &keys).expect_err("denied").code;
    assert_eq!(
        denied(call("list_invoices", r#"{"org":"acme","status":"open"}"#)),
        Code::ArgDenied
    );
    assert_eq!(
        denied(call("get_invoice", r#"{"org":"acme","id":1}"#)),
        Code::ToolNotGranted
    );
    for bad in [
        r#"[{"type":"captix","tools":["create_refund"]}]"#,
        r#"[{"type":"captix","tools":["delete_everything"]}]"#,
        r#"[{"type":"captix","locations":["https://other.example/mcp"]}]"#,
        r#"[{"type":"captix","budgets":["list_invoices:ten/s"]}]"#,
        r#"[{"type":"captix","rows":["list_invoices"]}]"#,
        r#"[{"type":"payment_initiation"}]"#,
        r#"[{"type":"captix","tools":"list_invoices"}]"#,
        "not json",
    ] {
        let a = e
            .token(&[
                CC,
                RES,
                ("scope", "invoices:read"),
                ("authorization_details", bad),
            ])
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.body["error"], "invalid_authorization_details", "{bad}");
    }
}

#[tokio::test]
async fn private_key_jwt_authenticates_once_per_assertion() {
    let e = env();
    let jwt_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let assertion = e.assertion("jti-1", "https://as.example/token");
    let params = [
        CC,
        RES,
        ("client_assertion_type", jwt_type),
        ("client_assertion", assertion.as_str()),
    ];
    let a = e.post("/token", &[], &params).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let t = Ticket::parse(
        a.body["access_token"].as_str().expect("token"),
        &KeySet::from(e.key.public()),
    )
    .expect("ticket");
    assert_eq!(t.identity().agent, "key-bot");
    // RFC 7523 §3: a jti is used once.
    let replay = e.post("/token", &[], &params).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(replay.body["error_description"]
        .as_str()
        .unwrap_or("")
        .contains("replayed"));
    // Another audience is refused; so is a key client presenting a secret.
    let elsewhere = e.assertion("jti-2", "https://rs.example/token");
    let a = e
        .post(
            "/token",
            &[],
            &[
                CC,
                RES,
                ("client_assertion_type", jwt_type),
                ("client_assertion", &elsewhere),
            ],
        )
        .await;
    assert_eq!(a.body["error"], "invalid_client");
    let wrong_type = e.assertion("jti-3", "https://as.example");
    let a = e
        .post(
            "/token",
            &[],
            &[
                CC,
                RES,
                ("client_assertion_type", "urn:x"),
                ("client_assertion", &wrong_type),
            ],
        )
        .await;
    assert_eq!(a.body["error"], "invalid_client");
}

#[tokio::test]
async fn a_reload_rotates_the_signing_key_without_a_restart() {
    let e = env();
    let before = e.ticket(&[CC, RES]).await;
    let new_key = captix::SigningKey::from_seed(&[43; 32]);
    new_key.save(&e.dir.join("new.key")).expect("key");
    let text = crate::config_text("https://as.example", &e.agent_key).replace(
        r#"keys = ["issuer.key"]"#,
        r#"keys = ["new.key", "issuer.key"]"#,
    );
    let config = captix_issuer::Config::parse(&text, &e.dir).expect("config");
    e.issuer.replace(config).expect("reload");
    let after = e.ticket(&[CC, RES]).await;
    let old = captix::UnverifiedTicket::parse(&before).expect("parse");
    let new = captix::UnverifiedTicket::parse(&after).expect("parse");
    assert_eq!(old.key_id(), Some(e.key.key_id()));
    assert_eq!(new.key_id(), Some(new_key.key_id()), "the first key signs");
    // A change that needs a restart is refused, and the running state is kept.
    let moved = captix_issuer::Config::parse(&text.replace("revoked.txt", "elsewhere.txt"), &e.dir)
        .expect("config");
    assert!(e.issuer.replace(moved).is_err());
    let still = e.ticket(&[CC, RES]).await;
    let still = captix::UnverifiedTicket::parse(&still).expect("parse");
    assert_eq!(still.key_id(), Some(new_key.key_id()));
    // Secrets survive a reload (they are in the store, not the file).
    let b = basic("billing-bot", &e.secret);
    assert_eq!(
        e.post("/token", &[("authorization", &b)], &[CC, RES])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_reload_reads_the_file_again_and_a_bad_file_changes_nothing() {
    let e = env();
    let path = e.dir.join("issuer.toml");
    let text = crate::config_text("https://as.example", &e.agent_key);
    std::fs::write(&path, &text).expect("config");
    let issuer = captix_issuer::Issuer::open(&path).expect("open");
    let new_key = captix::SigningKey::from_seed(&[44; 32]);
    new_key.save(&e.dir.join("new.key")).expect("key");
    std::fs::write(
        &path,
        text.replace(
            r#"keys = ["issuer.key"]"#,
            r#"keys = ["new.key", "issuer.key"]"#,
        ),
    )
    .expect("rotate");
    issuer.reload().expect("reload");
    let signing = |i: &captix_issuer::Issuer| i.state().key_id();
    assert_eq!(signing(&issuer), new_key.key_id());
    std::fs::write(&path, "issuer = ").expect("break");
    let err = issuer.reload().expect_err("a broken file");
    assert!(err.to_string().contains("line 1"), "{err}");
    assert_eq!(
        signing(&issuer),
        new_key.key_id(),
        "the running state is kept"
    );
}

#[tokio::test]
async fn a_client_gets_a_bounded_number_of_tickets() {
    // Budgets count per ticket chain: a new ticket starts them afresh, so the issuer caps
    // how many tickets a client gets (`tickets`, default 60 an hour).
    let e = crate::env_with(
        "https://as.example",
        |t| {
            t.replace(
                "user = \"svc-billing\"",
                "user = \"svc-billing\"\ntickets = \"3/hour\"",
            )
        },
        || Box::new(captix_issuer::store::SqliteStore::memory().expect("db")),
    );
    for _ in 0..3 {
        e.ticket(&[CC, RES]).await;
    }
    let a = e.token(&[CC, RES]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"], "temporarily_unavailable");
    // Until the first of the three leaves the hour.
    let retry: u64 = a.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((3000..=3600).contains(&retry), "{retry}");
    // Another client is not affected.
    let other = basic("other-bot", &e.other_secret);
    let b = e
        .post("/token", &[("authorization", &other)], &[CC, RES])
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
}

#[tokio::test]
async fn an_unauthenticated_client_id_is_never_an_identity_in_the_log() {
    let e = env();
    e.records();
    let forged = "billing-bot\n#99 GRANT refund-bot\u{1b}[2K";
    let a = e
        .post(
            "/token",
            &[],
            &[CC, RES, ("client_id", forged), ("client_secret", "nope")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let r = e.records();
    let refusal = r.iter().find(|r| r["kind"] == "refusal").expect("refusal");
    assert!(refusal.get("agent").is_none(), "{refusal}");
    assert_eq!(refusal["claimed"], forged);
    assert_eq!(refusal["code"], "invalid_client");
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside() {
    let e = env();
    let raw = |s: &str| format!("Basic {}", base64::encode(s));
    let h = |v: String| vec![("authorization".to_string(), v)];
    let call = |headers: Vec<(String, String)>| {
        let e = &e;
        async move {
            let hs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            e.post("/token", &hs, &[CC, RES]).await
        }
    };
    // RFC 6749 §2.3.1: the id and secret are decoded after base64.
    let encoded = raw(&format!("billing%2Dbot:{}", e.secret));
    assert_eq!(call(h(encoded)).await.status, StatusCode::OK);
    // Bytes that are not UTF-8 once decoded, or a secret that only matches undecoded: 401.
    for bad in [
        raw("billing-bot:%FF%FE"),
        raw(&format!("billing-bot:{}%", e.secret)),
    ] {
        let a = call(h(bad)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.body["error"], "invalid_client");
    }
}
