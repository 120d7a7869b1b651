//! What a slow or greedy client can hold: connections are capped, a request's headers and the
//! whole connection have deadlines, so idle sockets cannot lock others out.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use captix_issuer::Limits;

use crate::env;

/// Reads until the server closes the connection (bounded, so a failure cannot hang the
/// suite); returns what it sent.
fn until_closed(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // A close with unread data in the server's buffer is a reset: closed all the same.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get_metadata(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    until_closed(&mut s)
}

#[test]
fn slow_and_idle_clients_cannot_lock_others_out() {
    let e = env();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let limits = Limits {
        max_connections: 2,
        header_timeout: Duration::from_millis(300),
        connection_timeout: Duration::from_secs(2),
    };
    let running = captix_issuer::spawn_within(e.issuer.clone(), listener, limits).expect("spawn");
    let addr = running.addr();
    assert!(
        get_metadata(addr).starts_with("HTTP/1.1 200"),
        "served, one request per connection"
    );

    // Two half-sent requests fill the server; a third connection is closed at once.
    let mut slow_headers = TcpStream::connect(addr).expect("connect");
    slow_headers
        .write_all(b"POST /token HTTP/1.1\r\nhost: x\r\n")
        .expect("write");
    let mut slow_body = TcpStream::connect(addr).expect("connect");
    slow_body
        .write_all(b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\ngrant_type")
        .expect("write");
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(addr).expect("connect");
    let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(until_closed(&mut third), "", "closed without an answer");

    // The header deadline closes the first, the connection deadline the second...
    until_closed(&mut slow_headers);
    until_closed(&mut slow_body);
    // ...and the server answers again.
    assert!(get_metadata(addr).starts_with("HTTP/1.1 200"));
    drop(running);
}
