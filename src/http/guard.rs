//! What every request passes before it reaches a route: the URL's length, a deadline for the
//! body, and a throttle on failed authentication per client address.
//!
//! The client address is the connection's peer, or, behind a proxy, the last value of the
//! header `--client-ip-header` names (the one the proxy itself appended).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::json;

use crate::error::ApiError;
use crate::state::Ctx;

/// The longest request target (path and query) served; longer ones answer 414.
pub const MAX_URL_BYTES: usize = 4 * 1024;

/// The window failed authentications are counted over.
const THROTTLE_WINDOW: Duration = Duration::from_secs(60);

/// Addresses the throttle tracks before it forgets those whose window has passed.
const THROTTLE_TRACKED: usize = 10_000;

/// The peer of the connection a request came on, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Refuses what no route should see, and counts failed authentications. It runs inside the
/// middleware that counts requests for `/metrics`, so its refusals are counted too.
pub(super) async fn guard(ctx: &Ctx, request: Request, next: Next) -> Response {
    let length = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if length > MAX_URL_BYTES {
        let message = format!(
            "the URL is {length} bytes, over the limit of {MAX_URL_BYTES}; send long input in \
             the body"
        );
        return ApiError::new(StatusCode::URI_TOO_LONG, "uri_too_long", message).into_response();
    }

    // A request without a token is no guess at one: it gets its 401 whatever the address did.
    let client = client_address(ctx, &request);
    let presents_credential = presents_credential(&request);
    if presents_credential
        && let Some(client) = client
        && let Some(retry_after) = ctx.throttle.refusal(client)
    {
        return too_many_failures(retry_after);
    }

    // Most requests (every GET) have no body to wait for.
    let timed_out = (!request.body().is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
    let request = match &timed_out {
        None => request,
        Some(flag) => {
            let deadline = Duration::from_secs(ctx.settings.limits.body_timeout_secs.into());
            request.map(|body| {
                Body::new(Deadline {
                    inner: body,
                    deadline: tokio::time::Instant::now() + deadline,
                    sleep: None,
                    timed_out: flag.clone(),
                })
            })
        }
    };
    let response = next.run(request).await;

    if timed_out.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
        let message = format!(
            "the request body did not arrive within {} s (BODY_TIMEOUT_SECS)",
            ctx.settings.limits.body_timeout_secs
        );
        let mut response =
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message).into_response();
        response.headers_mut().insert(header::CONNECTION, "close".parse().unwrap());
        return response;
    }
    if response.status() == StatusCode::UNAUTHORIZED
        && presents_credential
        && let Some(client) = client
    {
        ctx.throttle.failed(client);
    }
    response
}

/// The client's address: the peer, or the last value of the proxy's header.
fn client_address(ctx: &Ctx, request: &Request) -> Option<IpAddr> {
    if let Some(name) = &ctx.settings.limits.client_ip_header {
        return forwarded(request.headers(), name);
    }
    request.extensions().get::<Peer>().map(|peer| peer.0.ip())
}

fn forwarded(headers: &HeaderMap, name: &str) -> Option<IpAddr> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

/// Whether the request carries a token: a bearer, one in the MCP path, or a stream ticket.
fn presents_credential(request: &Request) -> bool {
    let path = request.uri().path();
    request.headers().contains_key(header::AUTHORIZATION)
        || path.strip_prefix("/v1/mcp/").is_some_and(|token| !token.is_empty())
        || request.uri().query().is_some_and(|query| query.contains("ticket="))
}

fn too_many_failures(retry_after: u64) -> Response {
    let message = format!(
        "too many failed authentications from this address; retry in {retry_after} s with a \
         valid token"
    );
    let details = json!({ "retry_after": retry_after });
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        .with_details(details)
        .into_response()
}

/// Counts failed authentications per client address in fixed one-minute windows; an address
/// past `--auth-failures-per-minute` is refused until its window ends. Per instance.
#[derive(Debug)]
pub struct Throttle {
    most: u32,
    /// Whether any address has failed lately: most never do, and then no lock is taken.
    any: AtomicBool,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl Throttle {
    /// A throttle that lets `most` failures a minute through from each address.
    pub fn new(most: u32) -> Self {
        Self { most, any: AtomicBool::new(false), windows: Mutex::default() }
    }

    /// Seconds until `client` may try again, if it is past its failures for this window.
    fn refusal(&self, client: IpAddr) -> Option<u64> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let windows = self.windows.lock().unwrap();
        let window = windows.get(&client)?;
        let left = THROTTLE_WINDOW.checked_sub(window.started.elapsed())?;
        (window.failures >= self.most).then(|| left.as_secs().max(1))
    }

    fn failed(&self, client: IpAddr) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap();
        if windows.len() >= THROTTLE_TRACKED {
            windows.retain(|_, window| now - window.started < THROTTLE_WINDOW);
        }
        self.any.store(true, Ordering::Relaxed);
        let window = windows.entry(client).or_insert(Window { started: now, failures: 0 });
        if now - window.started >= THROTTLE_WINDOW {
            *window = Window { started: now, failures: 0 };
        }
        window.failures += 1;
        if window.failures == self.most {
            tracing::warn!(%client, "failed authentications past the limit; refusing for a while");
        }
    }
}

/// A request body that fails once its deadline passes, however slowly its bytes still come.
/// The timer starts only when the body first has to wait: most bodies arrive with their head.
struct Deadline {
    inner: Body,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a body past its deadline ends with.
#[derive(Debug)]
struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for TooSlow {}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        self.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(TooSlow))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
