//! A closed-loop load generator: C workers, each on its own kept-alive connection, send one
//! request after another until the time is up. A request in flight at the deadline is
//! finished and counted, so every acknowledged write is in the totals.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio::time::Instant;

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one request came to: `Ok` when it succeeded, else why not.
pub type Outcome = Result<(), String>;

/// The totals of a closed-loop run.
#[derive(Debug)]
pub struct LoadResult {
    /// Successful requests.
    pub ok: u64,
    /// Failed requests: non-2xx, transport errors, or an error the caller saw in the body.
    pub errors: u64,
    /// Successful requests of each worker, by worker index.
    pub ok_per_worker: Vec<u64>,
    /// From the start to the end of the last request.
    pub elapsed: Duration,
    /// The latency of every successful request.
    pub latencies: Vec<Duration>,
    /// The first error seen, to show what went wrong.
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// An HTTP client for setup and low-rate calls: no proxy, short timeouts.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// The request a closed loop sends: built per call by `(worker, n)`, its answer judged by
/// `judge` (the body of a 2xx answer; `Ok` when the call did what it should).
pub type Request = hyper::Request<Full<Bytes>>;

/// Where the closed loop's workers connect and what every request carries.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`, for the socket and the `Host` header.
    authority: String,
    /// `Bearer <token>`.
    authorization: String,
}

impl Target {
    /// The target of a gateway at `url` (`http://host:port`) with `token`.
    pub fn new(url: &str, token: &str) -> anyhow::Result<Target> {
        let authority =
            url.strip_prefix("http://").context("the load loop speaks plain http://")?;
        let authorization = format!("Bearer {token}");
        Ok(Target { authority: authority.trim_end_matches('/').to_owned(), authorization })
    }

    /// A `GET path` without a body.
    pub fn get(&self, path: &str) -> Request {
        self.builder(hyper::Method::GET, path).body(Full::default()).expect("a valid request")
    }

    /// A `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Request {
        self.builder(hyper::Method::POST, path)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json, text/event-stream")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid request")
    }

    fn builder(&self, method: hyper::Method, path: &str) -> hyper::http::request::Builder {
        hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, &self.authorization)
    }
}

/// Runs `make(worker, n)` from `clients` workers for `duration`, each worker on its own
/// kept-alive HTTP/1.1 connection (made anew after a transport error). The client is a bare
/// hyper connection so that the load generator takes as little of the machine as it can.
pub async fn closed_loop<F>(
    target: &Target,
    clients: usize,
    duration: Duration,
    make: F,
    judge: fn(&[u8]) -> Outcome,
) -> anyhow::Result<LoadResult>
where
    F: Fn(usize, u64) -> Request + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(clients);
    for worker in 0..clients {
        let (target, make) = (target.clone(), Arc::clone(&make));
        workers.push(tokio::spawn(async move {
            run_worker(&target, worker, deadline, &*make, judge).await
        }));
    }
    let mut total = LoadResult {
        ok: 0,
        errors: 0,
        ok_per_worker: Vec::with_capacity(clients),
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        first_error: None,
    };
    for worker in workers {
        let done = worker.await?;
        total.ok += done.ok;
        total.errors += done.errors;
        total.ok_per_worker.push(done.ok);
        total.latencies.extend(done.latencies);
        total.first_error = total.first_error.or(done.first_error);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// What one worker counted.
struct WorkerResult {
    ok: u64,
    errors: u64,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

async fn run_worker<F>(
    target: &Target,
    worker: usize,
    deadline: Instant,
    make: &F,
    judge: fn(&[u8]) -> Outcome,
) -> WorkerResult
where
    F: Fn(usize, u64) -> Request,
{
    let mut done = WorkerResult { ok: 0, errors: 0, latencies: Vec::new(), first_error: None };
    let mut connection = None;
    let mut n = 0;
    while Instant::now() < deadline {
        let request = make(worker, n);
        n += 1;
        let sent = Instant::now();
        let outcome = match &mut connection {
            Some(sender) => send(sender, request, judge).await,
            None => match connect(target).await {
                Ok(sender) => send(connection.insert(sender), request, judge).await,
                Err(error) => Err(format!("connecting: {error}")),
            },
        };
        match outcome {
            Ok(()) => {
                done.ok += 1;
                done.latencies.push(sent.elapsed());
            }
            Err(error) => {
                done.errors += 1;
                done.first_error.get_or_insert(error);
                if connection.as_ref().is_some_and(Sender::is_closed) {
                    connection = None;
                }
            }
        }
    }
    done
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A new HTTP/1.1 connection to the target, its driver running on its own task.
pub async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request and judges the answer: a non-2xx status is an error with the body's start.
async fn send(sender: &mut Sender, request: Request, judge: fn(&[u8]) -> Outcome) -> Outcome {
    let transport = |e: hyper::Error| format!("transport: {e}");
    sender.ready().await.map_err(transport)?;
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
        .map_err(transport)?;
    let status = answer.status();
    let body = answer.into_body().collect().await.map_err(transport)?.to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("{status}: {text}"));
    }
    judge(&body)
}

/// Accepts any 2xx answer.
pub fn any_success(_: &[u8]) -> Outcome {
    Ok(())
}

/// Sends `request`; `Ok` with the body on a 2xx, else the status and the body's start.
pub async fn expect_success(request: reqwest::RequestBuilder) -> Result<bytes::Bytes, String> {
    let response = request.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("reading the body: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err(format!("{status}: {text}"))
    }
}
