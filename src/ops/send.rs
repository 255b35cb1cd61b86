//! `send_email`: accept a send durably, answer 202, and let the outbox worker deliver it.
//!
//! The message is formatted (its Message-ID fixed) and written with its outbox and audit rows
//! in one transaction before the answer, so an accepted send survives any crash. A repeated
//! `idempotency_key` with the same request returns the first answer; with another request it
//! is a 409.

use axum::http::{Method, StatusCode};
use kapable_sdk::comms::types::{SendEmailRequest, SendEmailResponse};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::mail::readable_mailbox;
use super::validate;
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::mail::compose::{Draft, compose};
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::{Acceptance, Gate, IdempotencyRecord, StoreError};

const KEY_MAX: usize = 200;

/// Send an email from the mailbox `mailbox_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendEmailInput {
    /// The mailbox to send from.
    pub mailbox_id: Uuid,
    #[serde(flatten)]
    body: SendEmailRequest,
}

/// POST /v1/mailboxes/{mailbox_id}/send
pub fn send_email() -> Operation {
    Operation::declare("send_email", Method::POST, "/v1/mailboxes/{mailbox_id}/send")
        .describe(
            "Send an email from a mailbox (your own, for an agent). Answers 202 with the \
             message's id and status `queued` once the send is stored; delivery follows, and \
             `get_message` shows `sent` or `failed`. To reply in a thread, pass the original's \
             Message-ID as `in_reply_to`. Pass an `idempotency_key` when you may retry: the same \
             key returns the first answer instead of sending twice. Over the mailbox's send limits \
             the answer is `rate_limited` with `retry_after` seconds in its details: wait that \
             long, do not retry at once.",
        )
        .callers(Callers::ORG.and(Callers::AGENT))
        .success(StatusCode::ACCEPTED)
        .errors(&[
            (StatusCode::CONFLICT, "conflict"),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ])
        .handle(send)
}

async fn send(
    ctx: Ctx,
    caller: Caller,
    input: SendEmailInput,
) -> ApiResult<Reply<SendEmailResponse>> {
    let mailbox = readable_mailbox(&ctx, &caller, input.mailbox_id).await?;
    let request = input.body;
    let key = request.idempotency_key.as_deref();
    let key = key.map(|k| validate::name("idempotency_key", k, KEY_MAX)).transpose()?;
    let scope = format!("send_email:{}", caller_scope(&caller));
    let hash = request_hash(mailbox.id, &request);
    if let Some(key) = key
        && let Some(answer) = replay(&ctx, &scope, key, &hash).await?
    {
        return Ok(Reply::ok(answer));
    }
    let references = match request.in_reply_to.as_deref() {
        Some(parent) => {
            let parent = parent.trim().trim_start_matches('<').trim_end_matches('>');
            ctx.store.thread_of(mailbox.id, parent).await?.unwrap_or_default()
        }
        None => Vec::new(),
    };

    let mailbox_wire = kapable_sdk::comms::types::Mailbox::from(mailbox.clone());
    let draft = Draft {
        org_id: mailbox.org_id,
        mailbox_id: mailbox.id,
        mailbox_address: &mailbox_wire.address,
        mailbox_name: mailbox_wire.display_name.as_deref(),
        request: &request,
        references,
    };
    let outgoing = match compose(&draft) {
        Ok(outgoing) => outgoing,
        Err(error) => {
            let recipients = requested_recipients(&request);
            ctx.store.record_rejected(&mailbox, &recipients, &error.message).await?;
            return Err(error);
        }
    };
    let mail_id = Uuid::now_v7();
    let answer = SendEmailResponse {
        id: mail_id,
        status: "queued".into(),
        message_id: outgoing.message_id.clone(),
    };
    let record = key.map(|key| IdempotencyRecord {
        scope: scope.clone(),
        key: key.to_owned(),
        request_hash: hash,
        status: StatusCode::ACCEPTED.as_u16(),
        response: serde_json::to_value(&answer).unwrap_or_default(),
    });
    let who = caller_scope(&caller);
    let gate = Gate { caller: &who, policy: &ctx.settings.sending };
    match ctx.store.accept_send(&outgoing, record.as_ref(), mail_id, &gate).await {
        Ok(Acceptance::Accepted) => {}
        Ok(Acceptance::Refused(refusal)) => return Err(ApiError::rate_limited(&refusal)),
        // The same key was accepted concurrently: answer as that request was answered.
        Err(StoreError::Duplicate(_)) if key.is_some() => {
            let key = key.unwrap_or_default();
            let answer = replay(&ctx, &scope, key, &hash).await?;
            return answer.map(Reply::ok).ok_or_else(|| ApiError::conflict("the key is in use"));
        }
        Err(error) => return Err(error.into()),
    }
    ctx.outbox.notify_one();
    Ok(Reply::ok(answer))
}

/// The first answer given under this key, if the request is the same; 409 if it differs.
async fn replay(
    ctx: &Ctx,
    scope: &str,
    key: &str,
    hash: &[u8; 32],
) -> ApiResult<Option<SendEmailResponse>> {
    let Some((stored_hash, _status, response)) = ctx.store.idempotent_answer(scope, key).await?
    else {
        return Ok(None);
    };
    if stored_hash != hash {
        return Err(ApiError::conflict(
            "this idempotency_key was used with a different request in the last 24 hours; use a new key",
        ));
    }
    serde_json::from_value(response.0).map(Some).map_err(ApiError::internal)
}

/// The recipients a request names, as written, for the audit of a refused send.
fn requested_recipients(request: &SendEmailRequest) -> Vec<String> {
    let lists = [Some(&request.to), request.cc.as_ref(), request.bcc.as_ref()];
    lists
        .into_iter()
        .flatten()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Who sends, for idempotency keys and rate-limit hits.
fn caller_scope(caller: &Caller) -> String {
    match caller {
        Caller::Org { token_id, .. } => format!("token:{token_id}"),
        Caller::Agent { agent_id, .. } => format!("agent:{agent_id}"),
        other => format!("{:?}", other.kind()),
    }
}

/// A hash of what a send asks for, the key aside.
fn request_hash(mailbox_id: Uuid, request: &SendEmailRequest) -> [u8; 32] {
    let mut request = request.clone();
    request.idempotency_key = None;
    let text = serde_json::to_string(&(mailbox_id, &request)).unwrap_or_default();
    Sha256::digest(text.as_bytes()).into()
}
