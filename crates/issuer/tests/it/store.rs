//! The stores keep the same laws: SQLite (the default) and Redis (many issuer replicas), the
//! latter against a real redis-server on loopback, started here.

use captix_issuer::store::{Issued, RedisStore, SqliteStore, Store};

#[path = "../../../redis/tests/support/server.rs"]
mod server;

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
    let t = Issued {
        revocation_id: "ab".repeat(32),
        client: "bot".into(),
        user: "svc".into(),
        scopes: "read write".into(),
        resource: "https://mcp.example/mcp".into(),
        issued: 10,
        expires: crate::now() + 600,
        revoked: None,
    };
    s.record(&t).expect("record");
    assert_eq!(
        replica.issued(&t.revocation_id).expect("read"),
        Some(t.clone())
    );
    replica.mark_revoked(&t.revocation_id, 20).expect("revoke");
    s.mark_revoked(&t.revocation_id, 30).expect("again");
    assert_eq!(
        s.issued(&t.revocation_id)
            .expect("read")
            .and_then(|r| r.revoked),
        Some(20),
        "the first revocation time stays"
    );
    assert_eq!(s.issued("cd").expect("read"), None);
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
