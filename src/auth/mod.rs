//! Authentication: from a presented token to a [`Caller`].
//!
//! Tokens arrive as `Authorization: Bearer <token>` on every route, and in the path for MCP.
//! Each request looks its token up by hash (on SQLite the store may answer from memory, and
//! forgets on every revocation), so a revoked key or a deleted agent is refused on the very next
//! request. "Last used" is written at most once a minute per credential, off the
//! request path.

mod caller;
mod token;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub use caller::{Caller, Callers};
pub use token::{MalformedToken, PresentedToken, Secret, TokenKind};

use crate::error::ApiError;
use crate::store::{Credential, Store};

/// How often "last used" is written for one credential.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The bearer token of a request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer "));
    match value {
        Some(token) => Ok(Some(token.trim())),
        None => Err(ApiError::unauthorized("the Authorization header must be `Bearer <token>`")),
    }
}

/// Resolves tokens to callers and throttles "last used" writes.
#[derive(Debug, Default)]
pub struct Authenticator {
    touched: Mutex<HashMap<Uuid, Instant>>,
}

impl Authenticator {
    /// The caller behind `token`: anonymous without one, 401 for a malformed or unknown one.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let Some(token) = token else {
            return Ok(Caller::Anonymous);
        };
        let presented = PresentedToken::parse(token)
            .map_err(|reason| ApiError::unauthorized(format!("malformed token: {reason}")))?;
        let hash = presented.hash();

        let found = match presented.kind {
            TokenKind::App => store.find_app_token(&hash).await?,
            TokenKind::Agent => store.find_agent_key(&hash).await?,
            TokenKind::Participant => store.find_participant(&hash).await?,
            TokenKind::Channel => store.find_channel(&hash).await?.map(
                |(channel_id, org_id, mailbox_id, kind, hash)| Credential::Channel {
                    org_id,
                    channel_id,
                    mailbox_id,
                    email: kind == "email",
                    hash,
                },
            ),
            TokenKind::Invite => {
                return Err(ApiError::unauthorized(
                    "an invite token is not a credential; redeem it with `join_room`",
                ));
            }
            TokenKind::Ticket => {
                return Err(ApiError::unauthorized(
                    "a stream ticket works only as `?ticket=` on a stream URL",
                ));
            }
        };
        let credential = found
            .filter(|credential| stored_hash(credential).ct_eq(&hash).into())
            .ok_or_else(|| {
                ApiError::unauthorized("the token is unknown, revoked, or its agent was deleted")
            })?;

        self.touch(store, &credential);
        Ok(caller_of(credential))
    }

    /// The caller a stream ticket stands for, using the ticket up; 401 when it is unknown,
    /// used or expired.
    pub async fn redeem_ticket(&self, store: &Store, ticket: &str) -> Result<Caller, ApiError> {
        let refused =
            || ApiError::unauthorized("the ticket is unknown, used or expired; get a new one");
        let presented = PresentedToken::parse(ticket).map_err(|_| refused())?;
        if presented.kind != TokenKind::Ticket {
            return Err(refused());
        }
        let row = store.redeem_ticket(&presented.hash()).await?.ok_or_else(refused)?;
        match row.kind.as_str() {
            "org" => Ok(Caller::Org { org_id: row.org_id, token_id: row.credential }),
            "agent" => {
                let agent =
                    store.get_agent(row.org_id, row.subject_id).await?.ok_or_else(refused)?;
                Ok(Caller::Agent {
                    org_id: row.org_id,
                    agent_id: row.subject_id,
                    agent_name: agent.name().to_owned(),
                    key_id: row.credential,
                })
            }
            "participant" => Ok(Caller::Participant {
                org_id: row.org_id,
                room_id: row.room_id.ok_or_else(refused)?,
                member_id: row.subject_id,
            }),
            _ => Err(refused()),
        }
    }

    /// Records the use in the background if this credential was not recorded in the last minute.
    fn touch(&self, store: &Store, credential: &Credential) {
        let id = match credential {
            Credential::App { token_id, .. } => *token_id,
            Credential::Agent { key_id, .. } => *key_id,
            // Participant tokens and channel secrets: their use is not recorded.
            Credential::Participant { .. } | Credential::Channel { .. } => return,
        };
        let now = Instant::now();
        {
            // The lock is held only for the map update; no await happens under it.
            let mut touched =
                self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match touched.get(&id) {
                Some(at) if now.duration_since(*at) < TOUCH_INTERVAL => return,
                _ => touched.insert(id, now),
            };
        }
        let store = store.clone();
        let credential = credential.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_credential(&credential).await {
                tracing::warn!(error = %error, "recording a credential's last use failed");
            }
        });
    }
}

fn stored_hash(credential: &Credential) -> &[u8] {
    match credential {
        Credential::App { hash, .. }
        | Credential::Agent { hash, .. }
        | Credential::Participant { hash, .. }
        | Credential::Channel { hash, .. } => hash,
    }
}

fn caller_of(credential: Credential) -> Caller {
    match credential {
        Credential::App { token_id, org_id, .. } => Caller::Org { org_id, token_id },
        Credential::Agent { key_id, org_id, agent_id, agent_name, .. } => {
            Caller::Agent { org_id, agent_id, agent_name, key_id }
        }
        Credential::Participant { org_id, room_id, member_id, .. } => {
            Caller::Participant { org_id, room_id, member_id }
        }
        Credential::Channel { org_id, channel_id, mailbox_id, email, .. } => {
            Caller::Channel { org_id, channel_id, mailbox_id, email }
        }
    }
}
