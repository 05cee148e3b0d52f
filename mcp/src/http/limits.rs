//! Limits: the per-tenant request rate (a token bucket refilled every minute) and, at accept,
//! the connection caps and header-read timeout (hyper served directly: axum's own `serve` has
//! neither, which a slow client would exploit), with optional TLS termination.

use axum::body::Body;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Requests per minute per tenant, counted in one bucket each.
pub(super) struct RateLimiter {
    pub(super) per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(super) fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take `n` requests from the tenant's bucket; `Err(ms)` = retry after.
    pub(super) fn take(&self, key: &str, n: usize) -> Result<(), u64> {
        let n = n as f64;
        let per_min = self.per_minute.max(1) as f64;
        let per_sec = per_min / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: per_min,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec).min(per_min);
        b.last = now;
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            Err((((n - b.tokens) / per_sec) * 1000.0).ceil() as u64)
        }
    }
}

/// Connection limits enforced at accept, before a byte is read.
#[derive(Clone, Copy)]
pub(super) struct ConnLimits {
    pub(super) max: usize,
    pub(super) per_address: usize,
    pub(super) header_timeout: Duration,
}

/// One open connection counted against the limits until it is dropped.
struct ConnSlot {
    open: Arc<Mutex<(usize, HashMap<std::net::IpAddr, usize>)>>,
    ip: std::net::IpAddr,
}

impl ConnSlot {
    fn take(
        open: &Arc<Mutex<(usize, HashMap<std::net::IpAddr, usize>)>>,
        ip: std::net::IpAddr,
        limits: ConnLimits,
    ) -> Option<ConnSlot> {
        let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
        let here = o.1.get(&ip).copied().unwrap_or(0);
        if o.0 >= limits.max || here >= limits.per_address {
            return None;
        }
        o.0 += 1;
        *o.1.entry(ip).or_insert(0) += 1;
        Some(ConnSlot {
            open: open.clone(),
            ip,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|p| p.into_inner());
        o.0 = o.0.saturating_sub(1);
        if let Some(n) = o.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.1.remove(&self.ip);
            }
        }
    }
}

/// Accept connections within the limits and serve each with hyper directly: axum's own
/// `serve` has no header-read timeout or connection caps, which a slow client (one byte a
/// minute, or a thousand half-open sockets) would otherwise exploit.
pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    tls: Option<tls::Acceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new((0usize, HashMap::new())));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(slot) = ConnSlot::take(&open, peer.ip(), limits) else {
            drop(stream);
            continue;
        };
        let app = app.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, app, limits).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        serve_connection(stream, app, limits).await;
                    }
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    // Finish what is in flight for a moment, then close the rest.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    Ok(())
}

async fn serve_connection<S>(stream: S, app: axum::Router, limits: ConnLimits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::Service;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        async move { app.call(req.map(Body::new)).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// TLS termination (rustls with the ring provider), built with the `tls` feature.
#[cfg(feature = "tls")]
pub(super) mod tls {
    use std::path::Path;
    pub type Acceptor = tokio_rustls::TlsAcceptor;

    pub fn acceptor(cert: &Path, key: &Path) -> std::io::Result<Acceptor> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad("--tls-cert", &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad("--tls-cert", &e))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--tls-key", &e))?;
        // ring, not aws-lc-rs: it builds with a C compiler alone (no cmake); it lacks the
        // post-quantum key exchange, hence the deprecation this allows.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", &e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad("--tls-cert/--tls-key", &e))?;
        Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
    }
}

/// Without the `tls` feature a TLS option is refused at start.
#[cfg(not(feature = "tls"))]
pub(super) mod tls {
    use std::path::Path;
    #[derive(Clone)]
    pub enum Acceptor {}

    impl Acceptor {
        pub async fn accept(
            &self,
            _stream: tokio::net::TcpStream,
        ) -> std::io::Result<tokio::net::TcpStream> {
            match *self {}
        }
    }

    pub fn acceptor(_cert: &Path, _key: &Path) -> std::io::Result<Acceptor> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this build has no TLS support (build synapsor-runner-mcp with the `tls` feature)",
        ))
    }
}
