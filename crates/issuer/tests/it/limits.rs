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

/// A connection to `addr` from the loopback address `from` (127.0.0.x).
fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from((from, 0)))
            .expect("bind");
        let stream = socket.connect(addr).await.expect("connect");
        let std = stream.into_std().expect("std");
        std.set_nonblocking(false).expect("blocking");
        std
    })
}

fn get_metadata(from: [u8; 4], addr: std::net::SocketAddr) -> String {
    let mut s = connect_from(from, addr);
    s.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    until_closed(&mut s)
}

/// A request that stops halfway through its headers.
fn half_sent(from: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
    let mut s = connect_from(from, addr);
    s.write_all(b"POST /token HTTP/1.1\r\nhost: x\r\n")
        .expect("write");
    s
}

#[test]
fn slow_and_idle_clients_cannot_lock_others_out() {
    let e = env();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let limits = Limits {
        max_connections: 3,
        per_peer: 2,
        // Long enough that the steps below happen well inside it on a busy machine.
        header_timeout: Duration::from_secs(2),
        connection_timeout: Duration::from_secs(4),
    };
    let running = captix_issuer::spawn_within(e.issuer.clone(), listener, limits).expect("spawn");
    let addr = running.addr();
    let (a, b, c, d) = (
        [127, 0, 0, 1],
        [127, 0, 0, 2],
        [127, 0, 0, 3],
        [127, 0, 0, 4],
    );
    assert!(
        get_metadata(a, addr).starts_with("HTTP/1.1 200"),
        "served, one request per connection"
    );

    // One address holds two half-sent requests: its third connection is closed at once...
    let mut slow_headers = half_sent(a, addr);
    let mut slow_body = connect_from(a, addr);
    slow_body
        .write_all(b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\ngrant_type")
        .expect("write");
    std::thread::sleep(Duration::from_millis(100));
    let mut third = connect_from(a, addr);
    let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(until_closed(&mut third), "", "closed without an answer");
    // ...while another address is served.
    assert!(get_metadata(b, addr).starts_with("HTTP/1.1 200"));
    // The server's own cap: a third address fills it; a fourth is closed at once.
    let mut slow_other = half_sent(c, addr);
    std::thread::sleep(Duration::from_millis(100));
    let mut fourth = connect_from(d, addr);
    let _ = fourth.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(until_closed(&mut fourth), "", "closed without an answer");

    // The header deadline closes the half-sent ones, the connection deadline the slow body...
    until_closed(&mut slow_headers);
    until_closed(&mut slow_other);
    until_closed(&mut slow_body);
    // ...and the server answers everyone again.
    assert!(get_metadata(a, addr).starts_with("HTTP/1.1 200"));
    assert!(get_metadata(d, addr).starts_with("HTTP/1.1 200"));
    drop(running);
}
