//! `annotate_message`, and the adding-up of annotations that every message read shows.

use axum::http::Method;
use kapable_sdk::comms::types::{AnnotateMessageRequest, RoomMessage};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::{Actor, Role, access};
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::{MessageRow, NewAnnotation};

const MAX_ANNOTATIONS: usize = 20;
const KEY_MAX: usize = 64;
const VALUE_MAX_BYTES: usize = 4 * 1024;

/// Annotate the message `message_id` of the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnnotateInput {
    /// The room.
    pub room_id: Uuid,
    /// The message to annotate.
    pub message_id: Uuid,
    #[serde(flatten)]
    body: AnnotateMessageRequest,
}

/// POST /v1/rooms/{room_id}/messages/{message_id}/annotations
pub fn annotate_message() -> Operation {
    Operation::declare(
        "annotate_message",
        Method::POST,
        "/v1/rooms/{room_id}/messages/{message_id}/annotations",
    )
    .describe(
        "React to a message or attach metadata to it (role participant or above). Each item is \
         `{kind: reaction, key}` (such as `👍` or `ack`; giving the same reaction again changes \
         nothing) or `{kind: metadata, key, value}` (setting your key again replaces its value). \
         Returns the message with its annotations added up per kind and key.",
    )
    .callers(Callers::ORG.and(Callers::MEMBER))
    .success(axum::http::StatusCode::OK)
    .handle(annotate)
}

async fn annotate(ctx: Ctx, caller: Caller, input: AnnotateInput) -> ApiResult<Reply<RoomMessage>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Participant, "annotate")?;
    let annotations = check(input.body)?;
    let message = ctx
        .store
        .message(input.room_id, input.message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("message in this room"))?;

    let sender_id = match &access.actor {
        Actor::Org(org_id) => *org_id,
        Actor::Member(member) => member.id,
    };
    let annotated =
        ctx.store.annotate(access.room.org_id, &message, sender_id, &annotations).await?;
    Ok(Reply::ok(annotated))
}

fn check(request: AnnotateMessageRequest) -> ApiResult<Vec<NewAnnotation>> {
    let count = request.annotations.len();
    if count == 0 || count > MAX_ANNOTATIONS {
        let message = format!("must hold 1 to {MAX_ANNOTATIONS} annotations, got {count}");
        return Err(ApiError::invalid_field("annotations", message));
    }
    request
        .annotations
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let field = |name: &str| format!("annotations[{i}].{name}");
            let key = a.key.trim();
            if key.is_empty() || key.chars().count() > KEY_MAX {
                let message = format!("must be 1 to {KEY_MAX} characters");
                return Err(ApiError::invalid_field(&field("key"), message));
            }
            match (a.kind.as_str(), &a.value) {
                ("reaction", None) => {}
                ("reaction", Some(_)) => {
                    return Err(ApiError::invalid_field(
                        &field("value"),
                        "a reaction has no value",
                    ));
                }
                ("metadata", Some(value)) if value.to_string().len() <= VALUE_MAX_BYTES => {}
                ("metadata", Some(_)) => {
                    let message = format!("must be at most {VALUE_MAX_BYTES} bytes of JSON");
                    return Err(ApiError::invalid_field(&field("value"), message));
                }
                ("metadata", None) => {
                    return Err(ApiError::invalid_field(&field("value"), "metadata needs a value"));
                }
                (other, _) => {
                    let message = format!("`{other}` is not a kind; use `reaction` or `metadata`");
                    return Err(ApiError::invalid_field(&field("kind"), message));
                }
            }
            Ok(NewAnnotation { kind: a.kind, key: key.to_owned(), value: a.value })
        })
        .collect()
}

/// The messages in wire form, each with its annotations added up per kind and key.
pub(super) async fn with_annotations(
    ctx: &Ctx,
    room_id: Uuid,
    rows: Vec<MessageRow>,
) -> ApiResult<Vec<RoomMessage>> {
    let (Some(low), Some(high)) =
        (rows.iter().map(|r| r.seq).min(), rows.iter().map(|r| r.seq).max())
    else {
        return Ok(Vec::new());
    };
    let rows_of_annotations = ctx.store.annotations(room_id, low, high).await?;
    let mut by_message = crate::store::summarize(rows_of_annotations);
    Ok(rows
        .into_iter()
        .map(|row| {
            let annotations = by_message.remove(&row.id).unwrap_or_default();
            row.into_message(annotations)
        })
        .collect())
}
