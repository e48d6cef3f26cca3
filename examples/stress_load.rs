//! The load driver of `scripts/stress`: raw HTTP/1.1 on tokio, one connection per request, fast enough to
//! offer ten times the server's capacity for product photo compares from the same two cores.
//!
//! Phases (each bounded in time and count), one JSON line each; exits 1 when a check fails:
//! - `capacity`: a closed loop of `--concurrency` clients for `--capacity-seconds`; the answers/s it gets
//!   is the measured capacity.
//! - `burst`: an open loop at `--burst-factor` x capacity for `--burst-seconds` (at most `--burst-max`
//!   requests): every answer a 200, or a 503 with `Retry-After`; no connection errors; sent == answered;
//!   p99 of the 200s within the deadline; the server's peak RSS bounded; and the rate actually offered at
//!   least 90% of the target, so that a driver that fell behind cannot pass for a full burst.
//! - `sigterm`: the closed loop again, SIGTERM to the server in the middle: every request written before
//!   the signal is answered with a 200, later connections are refused (not reset or left hanging; at least
//!   one must be tried), and the server exits within the drain timeout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Parser)]
struct Args {
    #[arg(long, env = "STRESS_PORT")]
    port: u16,
    /// The server's process id: signalled in the last phase, its peak RSS read from /proc.
    #[arg(long, env = "STRESS_PID")]
    pid: u32,
    #[arg(long, env = "STRESS_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    #[arg(long, env = "STRESS_CAPACITY_SECONDS", default_value_t = 5.0)]
    capacity_seconds: f64,
    #[arg(long, env = "STRESS_BURST_FACTOR", default_value_t = 10.0)]
    burst_factor: f64,
    #[arg(long, env = "STRESS_BURST_SECONDS", default_value_t = 5.0)]
    burst_seconds: f64,
    #[arg(long, env = "STRESS_BURST_MAX", default_value_t = 50_000)]
    burst_max: usize,
    /// The driver's own bound on open connections, below the server's `--max-connections`.
    #[arg(long, env = "STRESS_MAX_OPEN", default_value_t = 900)]
    max_open: usize,
    /// The server's `--request-deadline-ms`.
    #[arg(long, env = "STRESS_DEADLINE_MS")]
    deadline_ms: u64,
    #[arg(long, env = "STRESS_DRAIN_TIMEOUT_S")]
    drain_timeout_s: f64,
    #[arg(long, env = "STRESS_SIGTERM_AFTER_SECONDS", default_value_t = 2.0)]
    sigterm_after_seconds: f64,
    #[arg(long, env = "STRESS_MAX_RSS_MIB", default_value_t = 2048.0)]
    max_rss_mib: f64,
    /// `mnist` compares two 28x28 PNG digits; any other model compares the two 640x480 product JPEGs of
    /// examples/images (about 60 KB of JSON a request).
    #[arg(long, env = "STRESS_MODEL", default_value = "product")]
    model: String,
}

impl Args {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// How long any one step of a request (connect, write, read the answer) may take: the server's
    /// deadline and a margin, so that only a request the server lost times out.
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.deadline_ms) + Duration::from_secs(5)
    }
}

/// One request: its status (`None` when no answer came), whether a 503 carried `Retry-After`, its latency,
/// when it was fully written, and why it failed.
#[derive(Default)]
struct Outcome {
    status: Option<u16>,
    retry_after: bool,
    latency: Duration,
    written_at: Option<Instant>,
    error: Option<&'static str>,
}

/// What every request sends: `/compare` on two images for `model`, closing the connection after the answer.
fn request(model: &str) -> std::io::Result<Vec<u8>> {
    let encode = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let png = |seed: u32| {
        let image = image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * seed + y * 7) % 256) as u8]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut bytes, image::ImageFormat::Png)
            .expect("a PNG encodes");
        encode(bytes.into_inner())
    };
    let body = if model == "mnist" {
        json!({"image_a": {"base64": png(3)}, "image_b": {"base64": png(5)}})
    } else {
        let photo = |name: &str| std::fs::read(format!("examples/images/{name}")).map(encode);
        json!({
            "image_a": {"base64": photo("product-indycar.jpg")?},
            "image_b": {"base64": photo("product-toolbox.jpg")?},
            "model": model,
        })
    }
    .to_string();
    Ok(format!(
        "POST /compare HTTP/1.1\r\nHost: simverify\r\nContent-Type: application/json\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes())
}

fn error_name(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionRefused => "connection_refused",
        ConnectionReset => "connection_reset",
        BrokenPipe => "broken_pipe",
        UnexpectedEof => "no_answer",
        _ => "io_error",
    }
}

async fn one_request(addr: SocketAddr, request: &[u8], timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome::default();
    let result: Result<(), &'static str> = async {
        let mut stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| "timeout")?
            .map_err(|e| error_name(&e))?;
        tokio::time::timeout(timeout, stream.write_all(request))
            .await
            .map_err(|_| "timeout")?
            .map_err(|e| error_name(&e))?;
        out.written_at = Some(Instant::now());
        let mut answer = Vec::with_capacity(1024);
        tokio::time::timeout(timeout, stream.read_to_end(&mut answer))
            .await
            .map_err(|_| "timeout")?
            .map_err(|e| error_name(&e))?;
        let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(answer.len());
        let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
        let status = head
            .strip_prefix("http/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or("no_answer")?;
        out.status = Some(status);
        out.retry_after = head.contains("\r\nretry-after:");
        out.latency = started.elapsed();
        Ok(())
    }
    .await;
    out.error = result.err();
    out
}

/// The value at quantile `q` of `values`, in milliseconds, or null when there are none.
fn percentile_ms(values: &mut [Duration], q: f64) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort();
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    json!((values[index].as_secs_f64() * 10_000.0).round() / 10.0)
}

/// The figures every phase reports: counts by status (or error), answers/s, and p50/p99 of the 200s.
fn summary(phase: &str, outcomes: &[Outcome], seconds: f64) -> serde_json::Map<String, Value> {
    let mut counts = BTreeMap::<String, usize>::new();
    for o in outcomes {
        let key = o
            .status
            .map_or_else(|| format!("error:{}", o.error.unwrap_or("?")), |s| s.to_string());
        *counts.entry(key).or_default() += 1;
    }
    let mut ok: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == Some(200))
        .map(|o| o.latency)
        .collect();
    let value = json!({
        "phase": phase,
        "seconds": (seconds * 100.0).round() / 100.0,
        "sent": outcomes.len(),
        "answered": outcomes.iter().filter(|o| o.status.is_some()).count(),
        "status": counts,
        "ok_per_s": (ok.len() as f64 / seconds * 10.0).round() / 10.0,
        "p50_ms": percentile_ms(&mut ok, 0.5),
        "p99_ms": percentile_ms(&mut ok, 0.99),
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// `concurrency` clients, each sending its next request when the last is answered, until `stop` is set.
async fn closed_loop(args: &Args, request: Arc<[u8]>, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let (addr, timeout) = (args.addr(), args.request_timeout());
    let clients = (0..args.concurrency).map(|_| {
        let (request, stop) = (request.clone(), stop.clone());
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                outcomes.push(one_request(addr, &request, timeout).await);
            }
            outcomes
        })
    });
    let mut all = Vec::new();
    for client in futures::future::join_all(clients).await {
        all.extend(client.expect("a client task does not panic"));
    }
    all
}

fn stop_after(seconds: f64) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// Sends `count` requests at `rate` per second, each on its own task, whatever the answers; returns the
/// outcomes and the rate actually offered (the driver's open-connection bound can hold sends back).
async fn open_loop(args: &Args, request: Arc<[u8]>, rate: f64, count: usize) -> (Vec<Outcome>, f64) {
    let (addr, timeout) = (args.addr(), args.request_timeout());
    let open = Arc::new(Semaphore::new(args.max_open));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
        let permit = open
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = one_request(addr, &request, timeout).await;
            drop(permit);
            outcome
        }));
    }
    let offered = count as f64 / started.elapsed().as_secs_f64();
    let mut outcomes = Vec::with_capacity(count);
    for task in futures::future::join_all(tasks).await {
        outcomes.push(task.expect("a request task does not panic"));
    }
    (outcomes, offered)
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// Whether the process is gone or a zombie (the server is not our child, so it is watched through /proc).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()) == Some("Z")
    })
}

async fn burst_phase(args: &Args, request: Arc<[u8]>, capacity: f64, failures: &mut Vec<String>) {
    let rate = capacity * args.burst_factor;
    let count = args.burst_max.min((rate * args.burst_seconds) as usize);
    let started = Instant::now();
    let (outcomes, offered) = open_loop(args, request, rate, count).await;
    let mut result = summary("burst", &outcomes, started.elapsed().as_secs_f64());
    let missing = outcomes
        .iter()
        .filter(|o| o.status == Some(503) && !o.retry_after)
        .count();
    let rss = peak_rss_mib(args.pid);
    result.insert("target_rate".into(), json!(rate.round()));
    result.insert("offered_rate".into(), json!(offered.round()));
    result.insert(
        "offered_factor".into(),
        json!((offered / capacity * 10.0).round() / 10.0),
    );
    result.insert("retry_after_missing".into(), json!(missing));
    result.insert("peak_rss_mib".into(), json!(rss));
    println!("{}", Value::Object(result.clone()));
    let bad: Vec<_> = result["status"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "200" && *k != "503")
                .map(|(k, v)| format!("{k}: {v}"))
                .collect()
        })
        .unwrap_or_default();
    if !bad.is_empty() {
        failures.push(format!(
            "burst: answers other than 200/503 or connection errors: {}",
            bad.join(", ")
        ));
    }
    if missing > 0 {
        failures.push(format!("burst: {missing} 503s without Retry-After"));
    }
    if result["sent"] != result["answered"] {
        failures.push(format!(
            "burst: sent {} != answered {}",
            result["sent"], result["answered"]
        ));
    }
    if rss.is_none_or(|mib| mib > args.max_rss_mib) {
        failures.push(format!("burst: peak RSS {rss:?} MiB over {} MiB", args.max_rss_mib));
    }
    if result["p99_ms"]
        .as_f64()
        .is_some_and(|p99| p99 > args.deadline_ms as f64)
    {
        failures.push(format!("burst: p99 {} ms over the deadline", result["p99_ms"]));
    }
}

async fn sigterm_phase(args: &Args, request: Arc<[u8]>, failures: &mut Vec<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let signalled = Arc::new(Mutex::new(None::<(Instant, f64)>));
    let (pid, after, limit) = (args.pid, args.sigterm_after_seconds, args.drain_timeout_s);
    let terminate = {
        let (stop, signalled) = (stop.clone(), signalled.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(after)).await;
            let at = Instant::now();
            // SAFETY: kill(2) takes a pid and a signal number; no memory is shared.
            let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } == 0;
            while sent && !exited(pid) && at.elapsed().as_secs_f64() < limit + 5.0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            *signalled.lock().expect("not poisoned") = sent.then(|| (at, at.elapsed().as_secs_f64()));
            // Clients now meet the closed port.
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    let outcomes = closed_loop(args, request, stop).await;
    terminate.await.expect("the signalling task does not panic");
    let (at, exit_seconds) = signalled
        .lock()
        .expect("not poisoned")
        .expect("set before the clients stop");
    let (in_flight, after): (Vec<&Outcome>, Vec<&Outcome>) =
        outcomes.iter().partition(|o| o.written_at.is_some_and(|w| w < at));
    let failed_in_flight = in_flight.iter().filter(|o| o.status != Some(200)).count();
    let refused = after.iter().filter(|o| o.error == Some("connection_refused")).count();
    let unclean: Vec<&&Outcome> = after
        .iter()
        .filter(|o| o.status.is_none() && o.error != Some("connection_refused"))
        .collect();
    let unclean_errors: std::collections::BTreeSet<&str> = unclean.iter().filter_map(|o| o.error).collect();
    let mut result = summary("sigterm", &outcomes, started.elapsed().as_secs_f64());
    result.insert("in_flight_at_signal".into(), json!(in_flight.len()));
    result.insert("failed_in_flight".into(), json!(failed_in_flight));
    result.insert("after_signal".into(), json!(after.len()));
    result.insert("refused_after".into(), json!(refused));
    result.insert("unclean_after".into(), json!(unclean.len()));
    result.insert("unclean_errors".into(), json!(unclean_errors));
    result.insert("exit_seconds".into(), json!((exit_seconds * 100.0).round() / 100.0));
    result.insert("drain_timeout_s".into(), json!(limit));
    println!("{}", Value::Object(result));
    if failed_in_flight > 0 {
        failures.push(format!("sigterm: {failed_in_flight} in-flight requests failed"));
    }
    if refused == 0 {
        failures.push("sigterm: no connection was refused after the server stopped".into());
    }
    if !unclean.is_empty() {
        failures.push(format!(
            "sigterm: {} unclean failures after the signal: {unclean_errors:?}",
            unclean.len()
        ));
    }
    if exit_seconds > limit {
        failures.push(format!("sigterm: exit after {exit_seconds:.2} s, over {limit} s"));
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let request: Arc<[u8]> = match request(&args.model) {
        Ok(bytes) => bytes.into(),
        Err(e) => {
            eprintln!("stress: cannot read the example images: {e}");
            std::process::exit(1);
        }
    };
    let mut failures = Vec::new();

    let started = Instant::now();
    let outcomes = closed_loop(&args, request.clone(), stop_after(args.capacity_seconds)).await;
    let capacity = summary("capacity", &outcomes, started.elapsed().as_secs_f64());
    println!("{}", Value::Object(capacity.clone()));
    let capacity = capacity["ok_per_s"].as_f64().unwrap_or(0.0);
    if capacity <= 0.0 {
        eprintln!("stress: the server answered nothing in the capacity phase");
        std::process::exit(1);
    }
    burst_phase(&args, request.clone(), capacity, &mut failures).await;
    sigterm_phase(&args, request, &mut failures).await;
    for failure in &failures {
        eprintln!("stress: FAIL {failure}");
    }
    std::process::exit(i32::from(!failures.is_empty()));
}
