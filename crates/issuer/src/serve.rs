//! Serving: until a signal (`captix issuer serve`), or from a thread (embedding, the demo).

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::{router, Error, Issuer};

/// What one client can hold of the server: connections and time (docs §17.3).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at once; past it, new ones are closed at once.
    pub max_connections: usize,
    /// Open connections at once from one address (behind a TLS proxy every connection comes
    /// from the proxy: then [`Limits::max_connections`], and the proxy's limits apply).
    pub per_peer: usize,
    /// Time to send the request line and headers.
    pub header_timeout: Duration,
    /// Time for a whole connection: one request (no keep-alive), body and answer included.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            per_peer: 32,
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `stop` completes. One request per
/// connection: a token endpoint needs no keep-alive, and an idle connection is one that a
/// slow client holds.
pub async fn serve_within(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let peers = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of file descriptors, say: let it pass rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some(peer_slot) = PeerSlot::take(&peers, peer.ip(), limits.per_peer) else {
            drop(stream);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(false);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
            drop((slot, peer_slot));
        });
    }
}

type Peers = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One of an address's connections; given back when dropped.
struct PeerSlot {
    peers: Peers,
    ip: std::net::IpAddr,
}

impl PeerSlot {
    fn take(peers: &Peers, ip: std::net::IpAddr, max: usize) -> Option<PeerSlot> {
        let mut map = peers.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: peers.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves the issuer of the configuration file at `path` until Ctrl-C (or SIGTERM); SIGHUP
/// re-reads the keys and the policy (docs §17.5).
pub fn run(path: &Path) -> Result<(), Error> {
    let issuer = Arc::new(Issuer::open(path)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("could not start the runtime: {e}")))?;
    rt.block_on(async move {
        let addr = issuer.state().config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Io(format!("could not listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?;
        let state = issuer.state();
        // A closed stdout (a supervisor that went away) is not an error.
        let origin = state.config.issuer.split('/').take(3).collect::<Vec<_>>().join("/");
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "captix issuer {} listening on {local}\nmetadata: {origin}/.well-known/oauth-authorization-server{}",
            state.config.issuer,
            issuer.path()
        );
        let _ = out.flush();
        #[cfg(unix)]
        {
            let again = issuer.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hup.recv().await.is_some() {
                    match again.reload() {
                        Ok(()) => eprintln!("captix issuer: configuration reloaded"),
                        Err(e) => eprintln!("captix issuer: reload refused, keeping the old configuration: {e}"),
                    }
                }
            });
        }
        let mut limits = Limits::default();
        if state.config.behind_tls_proxy {
            limits.per_peer = limits.max_connections;
        }
        serve_within(listener, router(issuer), limits, shutdown()).await;
        Ok(())
    })
}

/// An issuer serving on its own thread (embedding, `captix demo`); it stops when dropped.
pub struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `issuer` on `listener` from a new thread with its own runtime.
pub fn spawn(issuer: Arc<Issuer>, listener: std::net::TcpListener) -> Result<Running, Error> {
    spawn_within(issuer, listener, Limits::default())
}

/// [`spawn`] with other limits.
pub fn spawn_within(
    issuer: Arc<Issuer>,
    listener: std::net::TcpListener,
    limits: Limits,
) -> Result<Running, Error> {
    let io = |e: std::io::Error| Error::Io(format!("could not start the issuer: {e}"));
    let addr = listener.local_addr().map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("captix-issuer".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let stop = async {
                    let _ = stopped.await;
                };
                serve_within(listener, router(issuer), limits, stop).await;
            });
        })
        .map_err(io)?;
    Ok(Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
