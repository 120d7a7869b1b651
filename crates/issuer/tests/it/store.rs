//! The stores keep the same laws: SQLite (the default) and Redis (many issuer replicas), the
//! latter against a real redis-server on loopback, started here.

use captix_issuer::store::{IssueLimit, Issued, Recorded, RedisStore, Revoked, SqliteStore, Store};

#[path = "../../../redis/tests/support/server.rs"]
mod server;

fn issued(id: &str, at: u64) -> Issued {
    Issued {
        revocation_id: id.into(),
        client: "bot".into(),
        user: "svc".into(),
        scopes: "read write".into(),
        resource: "https://mcp.example/mcp".into(),
        issued: at,
        expires: at + 600,
        revoked: None,
    }
}

fn laws(s: &dyn Store, replica: &dyn Store) {
    assert_eq!(s.secret_hash("bot").expect("read"), None);
    s.set_secret_hash("bot", &[1; 32]).expect("set");
    s.set_secret_hash("bot", &[2; 32]).expect("replace");
    assert_eq!(replica.secret_hash("bot").expect("read"), Some([2; 32]));
    let exp = crate::now() + 60;
    assert!(s.use_assertion("bot", "j1", exp).expect("first"));
    assert!(!s.use_assertion("bot", "j1", exp).expect("replay"));
    assert!(!replica
        .use_assertion("bot", "j1", exp)
        .expect("replay elsewhere"));
    assert!(s.use_assertion("bot2", "j1", exp).expect("another client"));
    assert!(s.use_assertion("bot", "j1\0x", exp).expect("another id"));

    // Issuance: at most 3 tickets a minute per client, counted over every replica.
    let now = crate::now();
    let three = IssueLimit { max: 3, window: 60 };
    let ids: Vec<String> = (0..5).map(|i| format!("{i:02x}").repeat(32)).collect();
    let yes = Recorded::Yes;
    assert_eq!(
        s.record(&issued(&ids[0], now - 61), three).expect("old"),
        yes
    );
    assert_eq!(s.record(&issued(&ids[1], now - 10), three).expect("1"), yes);
    assert_eq!(
        replica.record(&issued(&ids[2], now - 5), three).expect("2"),
        yes
    );
    assert_eq!(s.record(&issued(&ids[3], now), three).expect("3"), yes);
    // Full: the oldest in the window (issued 10 s ago) leaves it in 50 s; `room` says so
    // beforehand, on every replica, and nothing else changes.
    let full = Recorded::Full { retry_after: 50 };
    assert_eq!(s.room("bot", now, three).expect("room"), full);
    assert_eq!(replica.room("bot", now, three).expect("room"), full);
    assert_eq!(s.room("bot2", now, three).expect("room"), yes);
    assert_eq!(
        replica.record(&issued(&ids[4], now), three).expect("4th"),
        Recorded::Full { retry_after: 50 }
    );
    assert_eq!(
        s.issued("bot", &ids[4]).expect("read"),
        None,
        "a refused one is not kept"
    );
    let mut other = issued(&ids[4], now);
    other.client = "bot2".into();
    assert_eq!(
        s.record(&other, three)
            .expect("another client has its own count"),
        yes
    );

    // A week's limit counts tickets long expired (records outlive their tickets that long).
    let week = IssueLimit {
        max: 1,
        window: 7 * 86_400,
    };
    let mut long_ago = issued(&"ee".repeat(32), now - 3 * 86_400);
    long_ago.client = "weekly".into();
    assert_eq!(s.record(&long_ago, week).expect("then"), yes);
    let mut today = issued(&"ef".repeat(32), now);
    today.client = "weekly".into();
    assert!(matches!(
        replica.record(&today, week).expect("now"),
        Recorded::Full { .. }
    ));

    // Records are per client.
    let t = issued(&ids[1], now - 10);
    assert_eq!(
        replica.issued("bot", &t.revocation_id).expect("read"),
        Some(t.clone())
    );
    assert_eq!(
        replica.issued("bot2", &t.revocation_id).expect("read"),
        None
    );

    // Revocation: written once, recorded after the write, at most 2 descendants here.
    let mut writes = 0;
    let mut ok = || {
        writes += 1;
        Ok(())
    };
    let root = &t.revocation_id;
    let child = |n: u8| format!("{n:02x}").repeat(64);
    assert_eq!(
        s.revoke("bot", root, &child(1), 20, 2, &mut ok)
            .expect("child"),
        Revoked::New
    );
    assert_eq!(
        replica
            .revoke("bot", root, &child(1), 21, 2, &mut ok)
            .expect("again"),
        Revoked::Already
    );
    let mut failing = || Err(captix_issuer::Error::Io("disk full".into()));
    assert!(s
        .revoke("bot", root, &child(2), 22, 2, &mut failing)
        .is_err());
    assert_eq!(
        s.revoke("bot", root, &child(2), 23, 2, &mut ok)
            .expect("a failed write is retried"),
        Revoked::New
    );
    assert_eq!(
        s.revoke("bot", root, &child(3), 24, 2, &mut ok)
            .expect("third"),
        Revoked::TooMany
    );
    assert_eq!(
        s.revoke("bot", root, root, 25, 2, &mut ok)
            .expect("the root"),
        Revoked::New
    );
    assert_eq!(
        replica
            .revoke("bot", root, root, 26, 2, &mut ok)
            .expect("root again"),
        Revoked::Already
    );
    assert_eq!(
        s.issued("bot", root).expect("read").and_then(|r| r.revoked),
        Some(25),
        "the root's record is marked once"
    );
    assert!(
        s.revoke("bot2", root, root, 27, 2, &mut ok).is_err(),
        "not bot2's ticket"
    );
    assert_eq!(writes, 3, "each new id written once, nothing else");
}

#[test]
fn memory_keeps_the_laws() {
    let m = captix_issuer::store::MemoryStore::new();
    laws(&m, &m);
}

#[test]
fn sqlite_keeps_the_laws_across_connections() {
    let dir = std::env::temp_dir().join(format!("captix-issuer-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("issuer.db");
    let _ = std::fs::remove_file(&path);
    let a = SqliteStore::open(&path).expect("open");
    let b = SqliteStore::open(&path).expect("open");
    laws(&a, &b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_keeps_the_laws_across_replicas_and_fails_closed() {
    let mut r = server::Redis::start();
    let a = RedisStore::new(&r.url()).expect("store");
    let b = RedisStore::new(&r.url()).expect("store");
    laws(&a, &b);
    r.down();
    let e = a.secret_hash("bot").expect_err("redis is down");
    assert_eq!(e.code(), "store_unavailable");
    assert!(
        a.use_assertion("bot", "j9", crate::now() + 60).is_err(),
        "no replay check, no pass"
    );
}

/// Two issuer replicas on one Redis: a secret made on one works on the other, an assertion
/// used on one is refused on the other, a revocation on one reaches a server's Redis
/// revocation source.
#[tokio::test]
async fn two_issuer_replicas_share_one_redis() {
    let r = server::Redis::start();
    let url = r.url();
    let edit = |t: String| {
        t.replace(
            r#"revocations = "revoked.txt""#,
            &format!("revocations = \"{url}\"\nstore = \"{url}\""),
        )
    };
    let store = || -> Box<dyn Store> { Box::new(RedisStore::new(&url).expect("store")) };
    let one = crate::env_with("https://as.example", edit, store);
    let two = crate::env_with("https://as.example", edit, store);
    // `two` made billing-bot's secret last: it works on both replicas, the first one does not.
    let cc = [
        ("grant_type", "client_credentials"),
        ("resource", crate::RESOURCE),
    ];
    let b = crate::basic("billing-bot", &two.secret);
    let ticket = one.post("/token", &[("authorization", &b)], &cc).await;
    assert_eq!(ticket.status, axum::http::StatusCode::OK, "{}", ticket.body);
    let stale = crate::basic("billing-bot", &one.secret);
    assert_eq!(
        two.post("/token", &[("authorization", &stale)], &cc)
            .await
            .status,
        401
    );
    // One assertion, two replicas: the second use is a replay.
    let jwt = one.assertion("shared-jti", "https://as.example");
    let kind = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let params = [
        cc[0],
        cc[1],
        ("client_assertion_type", kind),
        ("client_assertion", jwt.as_str()),
    ];
    assert_eq!(one.post("/token", &[], &params).await.status, 200);
    assert_eq!(two.post("/token", &[], &params).await.status, 401);
    // Revoked through replica two (the ticket was issued by one): a server sees it.
    let text = ticket.body["access_token"]
        .as_str()
        .expect("ticket")
        .to_string();
    let a = two
        .post("/revoke", &[("authorization", &b)], &[("token", &text)])
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let source = captix_redis::RedisRevocations::new(
        &url,
        captix_redis::Options::default(),
        std::time::Duration::from_secs(1),
    )
    .expect("revocations");
    assert_eq!(
        crate::server_says(&one, source, &text),
        Err(captix::Code::Revoked)
    );
}
