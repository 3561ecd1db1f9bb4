//! The load generator of `parent-connection-bench api`: prepared HTTP/1.1 requests sent over keep-alive
//! connections, paced open-loop or closed-loop.
//!
//! - **Open loop** ([`Pace::Open`]): request `i` is due at `t0 + i / rate`, whatever happened
//!   to the requests before it. A connection that is free takes the next request, waits until
//!   it is due and sends it; when every connection is busy (a slow or stalled server) the due
//!   requests wait in the client. The latency of a request is measured from its *due* time
//!   (or from when it was actually sent, if the timer let it go a little early), so time spent
//!   queueing behind a stalled server counts: "coordinated omission" is corrected, as in wrk2.
//! - **Closed loop** ([`Pace::Closed`]): each connection sends its next request as soon as the
//!   previous answer is read, for a fixed time; latency is from the send. With enough
//!   connections this finds the highest rate the server sustains.
//!
//! Requests are prepared before the run (method, path, token, body), so the run only builds
//! the request head. Each connection's worker records its own samples; they are merged when
//! the run ends. A latency covers sending the request and reading the whole response body.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How early a worker wakes for an open-loop request: tokio's timer has millisecond
/// resolution and never fires early, so waking one millisecond before the due time keeps
/// sends from lagging the schedule by the timer's rounding.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Bytes of an error response kept as an example for the report.
const EXAMPLE_BYTES: usize = 240;

/// One prepared request.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Index of its kind (the report groups by kind).
    pub kind: u8,
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/api/v1/classes?limit=50`.
    pub path: Box<str>,
    /// Index of its bearer token in [`Workload::tokens`] (none: no `Authorization`).
    pub token: Option<u32>,
    /// A JSON body.
    pub body: Option<Bytes>,
}

/// What a run sends.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// `Authorization` header values (`Bearer …`).
    pub tokens: Vec<HeaderValue>,
    /// The requests, in the order they are due.
    pub requests: Vec<Prepared>,
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// `rate` requests per second, request `i` due at `t0 + i / rate`; every prepared
    /// request is sent once.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// Each connection sends its next request as soon as it has the previous answer, for
    /// `duration`; the prepared requests are used in a cycle.
    Closed {
        /// How long to send.
        duration: Duration,
    },
}

/// How a run is carried out.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Pacing.
    pub pace: Pace,
    /// Keep-alive connections (each carries one request at a time).
    pub connections: usize,
    /// Samples are tagged with the window of this length their due time falls in (for
    /// per-minute figures of a long run).
    pub window: Duration,
    /// Open loop: a request not sent by this long after its due time is not sent at all
    /// (the server fell too far behind); the run ends instead of queueing without bound.
    pub give_up_after: Duration,
    /// Longest wait for one answer; past it the request counts as a `timeout` failure.
    pub request_timeout: Duration,
}

/// Counters a progress display reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    /// Answers read (any status).
    pub answered: AtomicU64,
    /// Answers with a status of 400 or more, and requests that got no answer.
    pub failed: AtomicU64,
}

/// One answered request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Latency in microseconds.
    pub micros: u32,
    /// Its kind.
    pub kind: u8,
    /// The window ([`RunOptions::window`]) its due time fell in.
    pub window: u16,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every answered request.
    pub samples: Vec<Sample>,
    /// Answers per `(kind, status)`.
    pub statuses: BTreeMap<(u8, u16), u64>,
    /// Requests that got no answer, per `(kind, reason)`.
    pub failures: BTreeMap<(u8, String), u64>,
    /// The start of the body of the first answer of each `(kind, status)` with a status of
    /// 400 or more.
    pub examples: BTreeMap<(u8, u16), String>,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// Open loop: requests that were due; closed loop: requests sent.
    pub due: u64,
    /// Open loop: requests never sent because the server fell behind by more than
    /// [`RunOptions::give_up_after`].
    pub not_sent: u64,
}

impl Outcome {
    /// Answers per second over the run.
    pub fn achieved_rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.samples.len() as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latencies of the samples `keep` selects, summarised.
    pub fn latency(&self, keep: impl Fn(&Sample) -> bool) -> Latency {
        let mut micros: Vec<u32> = self
            .samples
            .iter()
            .filter(|s| keep(s))
            .map(|s| s.micros)
            .collect();
        Latency::of(&mut micros)
    }
}

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
    /// 99.9th percentile.
    pub p999: u32,
    /// Largest.
    pub max: u32,
}

impl Latency {
    /// Summarises `micros` (sorted in place).
    pub fn of(micros: &mut [u32]) -> Self {
        micros.sort_unstable();
        Self {
            count: micros.len() as u64,
            p50: percentile(micros, 50.0),
            p90: percentile(micros, 90.0),
            p99: percentile(micros, 99.0),
            p999: percentile(micros, 99.9),
            max: micros.last().copied().unwrap_or(0),
        }
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending): the smallest value with at
/// least `p`% of the samples at or below it; 0 for no samples.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    // In parts per million and integers, so 99.9% of 1,000 is exactly rank 999.
    let ppm = (p.clamp(0.0, 100.0) * 10_000.0).round() as u128;
    let rank = (ppm * sorted.len() as u128).div_ceil(1_000_000) as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// When request `index` is due in an open-loop run at `rate` requests per second, from t0.
pub fn due_offset(index: u64, rate: f64) -> Duration {
    if rate <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(index as f64 / rate)
}

/// The latency of a request due at `due`, sent at `sent` and answered at `done`: from the
/// earlier of the due time and the send, so a request that waited for a free connection
/// counts the wait, and one the timer let go early is not credited with negative time.
pub fn latency(due: Instant, sent: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(due.min(sent))
}

/// Shared by the workers of one run.
struct Shared {
    target: SocketAddr,
    host: HeaderValue,
    workload: Arc<Workload>,
    options: RunOptions,
    next: AtomicU64,
    t0: Instant,
    live: Arc<Live>,
}

/// What one worker recorded.
#[derive(Default)]
struct Recorded {
    samples: Vec<Sample>,
    statuses: BTreeMap<(u8, u16), u64>,
    failures: BTreeMap<(u8, String), u64>,
    examples: BTreeMap<(u8, u16), String>,
    sent: u64,
    last_done: Option<Instant>,
}

/// Runs `workload` against the server at `target` and returns what it measured. `live` is
/// updated as answers arrive.
pub async fn run(
    target: SocketAddr,
    workload: Arc<Workload>,
    options: RunOptions,
    live: Arc<Live>,
) -> Outcome {
    let host = HeaderValue::from_str(&target.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
    let shared = Arc::new(Shared {
        target,
        host,
        workload,
        options,
        next: AtomicU64::new(0),
        t0: Instant::now(),
        live,
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.connections.max(1) {
        workers.spawn(worker(shared.clone()));
    }
    let mut outcome = Outcome::default();
    let mut sent = 0;
    let mut last_done = shared.t0;
    while let Some(done) = workers.join_next().await {
        // A worker cannot panic on a response; a join error would be a bug in this file.
        let Ok(recorded) = done else { continue };
        sent += recorded.sent;
        if let Some(at) = recorded.last_done {
            last_done = last_done.max(at);
        }
        outcome.samples.extend(recorded.samples);
        for (key, n) in recorded.statuses {
            *outcome.statuses.entry(key).or_default() += n;
        }
        for (key, n) in recorded.failures {
            *outcome.failures.entry(key).or_default() += n;
        }
        for (key, text) in recorded.examples {
            outcome.examples.entry(key).or_insert(text);
        }
    }
    outcome.elapsed = last_done.saturating_duration_since(shared.t0);
    match options.pace {
        Pace::Open { .. } => {
            outcome.due = shared.workload.requests.len() as u64;
            outcome.not_sent = outcome.due.saturating_sub(sent);
        }
        Pace::Closed { .. } => outcome.due = sent,
    }
    outcome
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn worker(shared: Arc<Shared>) -> Recorded {
    let mut recorded = Recorded::default();
    let requests = &shared.workload.requests;
    if requests.is_empty() {
        return recorded;
    }
    let options = shared.options;
    let window = options.window.max(Duration::from_millis(1));
    let mut connection: Option<Sender> = None;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let (index, due) = match options.pace {
            Pace::Open { rate } => {
                if i >= requests.len() as u64 {
                    break;
                }
                let due = shared.t0 + due_offset(i, rate);
                let now = Instant::now();
                if now > due + options.give_up_after {
                    break;
                }
                if due > now + TIMER_SLACK {
                    tokio::time::sleep_until((due - TIMER_SLACK).into()).await;
                }
                (i as usize, due)
            }
            Pace::Closed { duration } => {
                let now = Instant::now();
                if now >= shared.t0 + duration {
                    break;
                }
                ((i % requests.len() as u64) as usize, now)
            }
        };
        let request = &requests[index];
        let window_index = (due.saturating_duration_since(shared.t0).as_nanos() / window.as_nanos())
            .min(u128::from(u16::MAX)) as u16;
        let sent = Instant::now();
        recorded.sent += 1;
        let answer = tokio::time::timeout(
            options.request_timeout,
            send(&shared, &mut connection, request),
        )
        .await;
        let done = Instant::now();
        recorded.last_done = Some(done);
        match answer {
            Ok(Ok((status, example))) => {
                let micros = latency(due, sent, done)
                    .as_micros()
                    .min(u128::from(u32::MAX)) as u32;
                recorded.samples.push(Sample {
                    micros,
                    kind: request.kind,
                    window: window_index,
                });
                *recorded.statuses.entry((request.kind, status)).or_default() += 1;
                if let Some(text) = example {
                    recorded
                        .examples
                        .entry((request.kind, status))
                        .or_insert(text);
                }
                shared.live.answered.fetch_add(1, Ordering::Relaxed);
                if status >= 400 {
                    shared.live.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Err(reason)) => {
                connection = None;
                *recorded.failures.entry((request.kind, reason)).or_default() += 1;
                shared.live.failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                connection = None;
                *recorded
                    .failures
                    .entry((request.kind, "timeout".into()))
                    .or_default() += 1;
                shared.live.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    recorded
}

/// The status of one `GET path` on a fresh connection to `target` (a readiness probe).
pub async fn status_of(target: SocketAddr, path: &str) -> Result<u16, String> {
    let mut sender = connect(target).await?;
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let request = Request::builder()
        .uri(path)
        .header(header::HOST, target.to_string())
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("request: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| format!("send: {e}"))?;
    Ok(response.status().as_u16())
}

/// Opens a keep-alive connection to `target`.
async fn connect(target: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends `request` on `connection` (opening one when there is none or the server closed
/// it) and reads the whole answer: its status, and the start of its body when the status
/// is 400 or more.
async fn send(
    shared: &Shared,
    connection: &mut Option<Sender>,
    request: &Prepared,
) -> Result<(u16, Option<String>), String> {
    let mut sender = match connection.take() {
        Some(sender) if !sender.is_closed() => sender,
        _ => connect(shared.target).await?,
    };
    if sender.ready().await.is_err() {
        // The server closed an idle connection: one fresh attempt.
        sender = connect(shared.target).await?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
    }
    let mut head = Request::builder()
        .method(request.method.clone())
        .uri(&*request.path)
        .header(header::HOST, shared.host.clone());
    if let Some(token) = request
        .token
        .and_then(|t| shared.workload.tokens.get(t as usize))
    {
        head = head.header(header::AUTHORIZATION, token.clone());
    }
    let body = match &request.body {
        Some(body) => {
            head = head.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Full::new(body.clone())
        }
        None => Full::new(Bytes::new()),
    };
    let http_request = head.body(body).map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(http_request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    let mut example = (status >= 400).then(Vec::new);
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        if let (Some(kept), Some(data)) = (example.as_mut(), frame.data_ref())
            && kept.len() < EXAMPLE_BYTES
        {
            kept.extend_from_slice(&data[..data.len().min(EXAMPLE_BYTES - kept.len())]);
        }
    }
    *connection = Some(sender);
    Ok((
        status,
        example.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut micros: Vec<u32> = (1..=1000).rev().collect();
        let latency = Latency::of(&mut micros);
        assert_eq!(latency.count, 1000);
        assert_eq!(latency.p50, 500);
        assert_eq!(latency.p90, 900);
        assert_eq!(latency.p99, 990);
        assert_eq!(latency.p999, 999);
        assert_eq!(latency.max, 1000);
        // One slow request in a hundred is the 99th percentile's edge: not above it.
        let mut micros = vec![100; 99];
        micros.push(50_000);
        let latency = Latency::of(&mut micros);
        assert_eq!((latency.p99, latency.max), (100, 50_000));
        // Two in a hundred are.
        micros[0] = 50_000;
        assert_eq!(Latency::of(&mut micros).p99, 50_000);
        assert_eq!(Latency::of(&mut []), Latency::default());
        assert_eq!(percentile(&[7], 99.9), 7);
    }

    #[test]
    fn open_loop_requests_are_due_on_a_fixed_schedule() {
        assert_eq!(due_offset(0, 5000.0), Duration::ZERO);
        assert_eq!(due_offset(5000, 5000.0), Duration::from_secs(1));
        assert_eq!(due_offset(1, 4000.0), Duration::from_micros(250));
        assert_eq!(due_offset(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn latency_counts_the_wait_for_a_late_send() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Sent 40 ms after it was due (the server held every connection), answered 2 ms
        // later: 42 ms, not 2.
        assert_eq!(latency(t0, t0 + ms(40), t0 + ms(42)), ms(42));
        // Sent 1 ms early by the timer: only the time it was really out.
        assert_eq!(latency(t0 + ms(1), t0, t0 + ms(3)), ms(3));
        // Clock oddities never give a negative latency.
        assert_eq!(latency(t0 + ms(5), t0 + ms(5), t0), Duration::ZERO);
    }

    async fn server() -> SocketAddr {
        use axum::Router;
        use axum::http::StatusCode;
        use axum::routing::{get, post};
        let app = Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route(
                "/bad",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"busy\"}") }),
            )
            .route(
                "/echo",
                post(|headers: axum::http::HeaderMap, body: String| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    if auth == "Bearer t1" && body == "{\"a\":1}" {
                        StatusCode::CREATED
                    } else {
                        StatusCode::BAD_REQUEST
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    fn workload(n: usize) -> Workload {
        let requests = (0..n)
            .map(|i| match i % 4 {
                0 | 1 => Prepared {
                    kind: 0,
                    method: Method::GET,
                    path: "/ok".into(),
                    token: None,
                    body: None,
                },
                2 => Prepared {
                    kind: 1,
                    method: Method::GET,
                    path: "/bad".into(),
                    token: Some(0),
                    body: None,
                },
                _ => Prepared {
                    kind: 2,
                    method: Method::POST,
                    path: "/echo".into(),
                    token: Some(1),
                    body: Some(Bytes::from_static(b"{\"a\":1}")),
                },
            })
            .collect();
        Workload {
            tokens: vec![
                HeaderValue::from_static("Bearer t0"),
                HeaderValue::from_static("Bearer t1"),
            ],
            requests,
        }
    }

    fn options(pace: Pace) -> RunOptions {
        RunOptions {
            pace,
            connections: 4,
            window: Duration::from_secs(60),
            give_up_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_loop_run_sends_every_request_once() {
        let address = server().await;
        let live = Arc::new(Live::default());
        let outcome = run(
            address,
            Arc::new(workload(200)),
            options(Pace::Open { rate: 400.0 }),
            live.clone(),
        )
        .await;
        assert_eq!(outcome.due, 200);
        assert_eq!(outcome.not_sent, 0);
        assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
        assert_eq!(outcome.samples.len(), 200);
        assert_eq!(outcome.statuses.get(&(0, 200)), Some(&100));
        assert_eq!(outcome.statuses.get(&(1, 503)), Some(&50));
        // The token and the body reached the server.
        assert_eq!(outcome.statuses.get(&(2, 201)), Some(&50));
        assert_eq!(outcome.statuses.len(), 3);
        assert_eq!(
            outcome.examples.get(&(1, 503)).map(String::as_str),
            Some("{\"error\":\"busy\"}")
        );
        assert!(!outcome.examples.contains_key(&(0, 200)));
        assert_eq!(live.answered.load(Ordering::Relaxed), 200);
        assert_eq!(live.failed.load(Ordering::Relaxed), 50);
        // 200 requests due over half a second cannot all be answered sooner.
        assert!(
            outcome.elapsed >= due_offset(199, 400.0) - TIMER_SLACK,
            "{:?}",
            outcome.elapsed
        );
        assert_eq!(outcome.latency(|s| s.kind == 0).count, 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_loop_run_cycles_through_the_requests() {
        let address = server().await;
        let outcome = run(
            address,
            Arc::new(workload(3)),
            options(Pace::Closed {
                duration: Duration::from_millis(300),
            }),
            Arc::new(Live::default()),
        )
        .await;
        assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
        assert_eq!(outcome.due, outcome.samples.len() as u64);
        // Requests 0 and 1 are kind 0, request 2 is kind 1: the cycle keeps that ratio.
        let ok = outcome.statuses.get(&(0, 200)).copied().unwrap_or(0);
        let bad = outcome.statuses.get(&(1, 503)).copied().unwrap_or(0);
        assert!(ok >= 2 && bad >= 1, "{:?}", outcome.statuses);
        assert!(ok.abs_diff(2 * bad) <= 4, "{:?}", outcome.statuses);
        assert_eq!(ok + bad, outcome.due);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_connection_is_a_failure_not_a_sample() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let outcome = run(
            address,
            Arc::new(workload(8)),
            options(Pace::Open { rate: 1000.0 }),
            Arc::new(Live::default()),
        )
        .await;
        assert!(outcome.samples.is_empty());
        assert_eq!(outcome.failures.values().sum::<u64>(), 8);
        assert_eq!(outcome.not_sent, 0);
    }
}
