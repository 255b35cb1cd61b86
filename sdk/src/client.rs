//! The HTTP client: one `reqwest::Client`, a base URL and a bearer token.

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::comms::Comms;
use crate::error::{Error, ErrorEnvelope};

/// A client for one gateway, acting with one token (`kap_...`, `ak_...` or `pt_...`).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl Client {
    /// A client for the gateway at `base_url` (such as `http://127.0.0.1:8787`) using `token`.
    /// An empty token makes an anonymous client, which may only join rooms by invite.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base_url, token)
    }

    /// Like [`Client::new`], with a `reqwest::Client` configured by the caller.
    pub fn with_http(
        http: reqwest::Client,
        base_url: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self { http, base_url, token: token.into() }
    }

    /// The gateway's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A client for the same gateway, sharing this one's connections, acting with `token`:
    /// an agent's key just minted, or a participant token from a join.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self { http: self.http.clone(), base_url: self.base_url.clone(), token: token.into() }
    }

    /// The communication operations: agents, keys, mailboxes, rooms and streams.
    pub fn comms(&self) -> Comms<'_> {
        Comms::new(self)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base_url));
        if self.token.is_empty() { request } else { request.bearer_auth(&self.token) }
    }

    pub(crate) async fn get<Q, O>(&self, path: &str, query: &Q) -> Result<O, Error>
    where
        Q: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let response = self.request(Method::GET, path).query(query).send().await?;
        Ok(check(response).await?.json().await?)
    }

    pub(crate) async fn send<B, O>(&self, method: Method, path: &str, body: &B) -> Result<O, Error>
    where
        B: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let response = self.request(method, path).json(body).send().await?;
        Ok(check(response).await?.json().await?)
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), Error> {
        let response = self.request(Method::DELETE, path).send().await?;
        check(response).await?;
        Ok(())
    }

    /// Opens the SSE stream at `path`, resuming after `last_event_id`.
    pub(crate) async fn open_stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<Response, Error> {
        let mut request =
            self.request(Method::GET, path).header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        check(request.send().await?).await
    }

    /// A POST of a non-JSON body of `content_type`.
    pub(crate) async fn send_raw<O: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<O, Error> {
        let request = self.request(Method::POST, path);
        let request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        Ok(check(request.send().await?).await?.json().await?)
    }

    /// A POST whose success has no body (a revoke).
    pub(crate) async fn post_empty(&self, path: &str) -> Result<(), Error> {
        let response = self.request(Method::POST, path).json(&serde_json::json!({})).send().await?;
        check(response).await?;
        Ok(())
    }
}

/// Turns an error status into [`Error::Api`], keeping the envelope and `Retry-After`.
async fn check(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await?;
    let body = match serde_json::from_str::<ErrorEnvelope>(&text) {
        Ok(envelope) => envelope.error,
        Err(_) => crate::error::ApiErrorBody {
            code: "unexpected_response".into(),
            message: format!("the gateway answered {status} without an error envelope"),
            details: serde_json::Value::String(text),
        },
    };
    Err(Error::Api { status: status.as_u16(), body, retry_after })
}
