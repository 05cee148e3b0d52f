//! MCP transport benchmark driver (run by `scripts/bench-mcp`).
//!
//! `bench_mcp stdio <bin> <config> <store> <n>`: spawn `mcp serve`, initialize, then `n`
//! sequential `tools/call billing.inspect_invoice` over stdio.
//! `bench_mcp http <url> <token> <server pid> <clients> <n per client>`: each client opens its own
//! Streamable HTTP session and makes `n` sequential calls; all clients run at once.
//! Prints calls/s, p50, p95 and the server's peak RSS (VmHWM).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CALL: &str = r#"{"name":"billing.inspect_invoice","arguments":{"invoice_id":"INV-3001"}}"#;

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn report(label: &str, mut lat: Vec<Duration>, wall: Duration, rss: f64) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "{label}: {} calls in {:.2} s = {:.0} calls/s; p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms; server peak RSS {:.1} MiB",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        rss
    );
}

fn stdio(args: &[String]) {
    let (bin, config, store, n) = (
        &args[0],
        &args[1],
        &args[2],
        args[3].parse::<usize>().unwrap(),
    );
    // `-`: no --store, the ledger the config names (a PostgreSQL ledger, say).
    let store_args: &[&str] = if store == "-" {
        &[]
    } else {
        &["--store", store]
    };
    let mut child = Command::new(bin)
        .args(["--config", config])
        .args(store_args)
        .args(["mcp", "serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut send = |s: &str| {
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    send(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
    );
    out.read_line(&mut line).unwrap();
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    // BENCH_TOOL=propose: propose a late-fee waiver on invoice BW-<BENCH_OFFSET + i> per call
    // (a new proposal each time; the invoices must exist); otherwise inspect INV-3001.
    let offset: usize = std::env::var("BENCH_OFFSET")
        .ok()
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let propose = std::env::var("BENCH_TOOL").as_deref() == Ok("propose");
    let params = |i: usize| {
        if propose {
            format!(
                r#"{{"name":"billing.propose_late_fee_waiver","arguments":{{"invoice_id":"BW-{}","reason":"bench"}}}}"#,
                offset + i
            )
        } else {
            CALL.to_string()
        }
    };
    // Warm-up: pools, catalog cache.
    for i in 0..20 {
        send(&format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{}}}"#,
            100_000 + i,
            params(n + 1 + i)
        ));
        line.clear();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("\"ok\":true"), "{line}");
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        send(&format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{}}}"#,
            i + 1,
            params(i + 1)
        ));
        line.clear();
        out.read_line(&mut line).unwrap();
        lat.push(t.elapsed());
        assert!(line.contains("\"ok\":true"), "{line}");
    }
    let wall = start.elapsed();
    let rss = peak_rss_mib(child.id());
    drop(stdin);
    let _ = child.wait();
    report(
        if propose {
            "stdio propose, 1 client, sequential"
        } else {
            "stdio, 1 client, sequential"
        },
        lat,
        wall,
        rss,
    );
}

/// Minimal HTTP/1.1 keep-alive client: enough for a benchmark, no extra dependencies.
struct Conn {
    stream: BufReader<std::net::TcpStream>,
    host: String,
    path: String,
    token: String,
    session: Option<String>,
}

impl Conn {
    fn new(url: &str, token: &str) -> Conn {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let s = std::net::TcpStream::connect(host).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            stream: BufReader::new(s),
            host: host.into(),
            path: path.into(),
            token: token.into(),
            session: None,
        }
    }

    fn post(&mut self, body: &str) -> String {
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.path,
            self.host,
            self.token,
            body.len()
        );
        if let Some(s) = &self.session {
            req.push_str(&format!("Mcp-Session-Id: {s}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.get_mut().write_all(req.as_bytes()).unwrap();
        let mut len = 0usize;
        let mut status = String::new();
        self.stream.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 2"), "{status}");
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "mcp-session-id" => self.session = Some(v.trim().into()),
                _ => {}
            }
        }
        let mut buf = vec![0u8; len];
        std::io::Read::read_exact(&mut self.stream, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }
}

fn http(args: &[String]) {
    let (url, token, pid) = (&args[0], &args[1], args[2].parse::<u32>().unwrap());
    let (clients, n) = (
        args[3].parse::<usize>().unwrap(),
        args[4].parse::<usize>().unwrap(),
    );
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (url, token, barrier) = (url.clone(), token.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = Conn::new(&url, &token);
                c.post(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#);
                c.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
                for i in 0..10 {
                    let r = c.post(&format!(r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{CALL}}}"#, 100_000 + i));
                    assert!(r.contains("\"ok\":true"), "{r}");
                }
                barrier.wait();
                let mut lat = Vec::with_capacity(n);
                for i in 0..n {
                    let t = Instant::now();
                    let r = c.post(&format!(r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{CALL}}}"#, i + 1));
                    lat.push(t.elapsed());
                    assert!(r.contains("\"ok\":true"), "{r}");
                }
                lat
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    let wall = start.elapsed();
    report(
        &format!("Streamable HTTP, {clients} concurrent clients"),
        all,
        wall,
        peak_rss_mib(pid),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stdio") => stdio(&args[1..]),
        Some("http") => http(&args[1..]),
        _ => {
            eprintln!(
                "usage: bench_mcp stdio <bin> <config> <store> <n> | http <url> <token> <pid> <clients> <n>"
            );
            std::process::exit(2);
        }
    }
}
