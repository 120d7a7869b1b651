//! RFC 8414: the metadata document, at the path-inserted well-known URI.

use axum::http::StatusCode;

use crate::{env, env_at};

#[tokio::test]
async fn metadata_names_the_endpoints_and_what_they_accept() {
    let e = env();
    let a = e
        .call("GET", "/.well-known/oauth-authorization-server", &[], "")
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let m = &a.body;
    // RFC 8414 §3.3: `issuer` is identical to the issuer identifier the URL was built from.
    assert_eq!(m["issuer"], "https://as.example");
    assert_eq!(m["token_endpoint"], "https://as.example/token");
    assert_eq!(m["revocation_endpoint"], "https://as.example/revoke");
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert!(
        m["response_types_supported"].is_array(),
        "required by RFC 8414 §2"
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        m["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["EdDSA"])
    );
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["admin", "invoices:read", "invoices:write"])
    );
    assert_eq!(
        m["authorization_details_types_supported"],
        serde_json::json!(["captix"])
    );
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_metadata_at_the_inserted_path() {
    // RFC 8414 §3.1: https://as.example/tenant/a -> /.well-known/oauth-authorization-server/tenant/a
    let e = env_at("https://as.example/tenant/a");
    let a = e
        .call(
            "GET",
            "/.well-known/oauth-authorization-server/tenant/a",
            &[],
            "",
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["issuer"], "https://as.example/tenant/a");
    assert_eq!(
        a.body["token_endpoint"],
        "https://as.example/tenant/a/token"
    );
    // Not at the root, nor at the appended form (that is OpenID Connect's rule, not 8414's).
    for wrong in [
        "/.well-known/oauth-authorization-server",
        "/tenant/a/.well-known/oauth-authorization-server",
    ] {
        let a = e.call("GET", wrong, &[], "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{wrong}");
    }
    // The endpoints live under the issuer's path.
    let t = e
        .token_at(
            "/tenant/a/token",
            &[
                ("grant_type", "client_credentials"),
                ("resource", crate::RESOURCE),
            ],
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
}
