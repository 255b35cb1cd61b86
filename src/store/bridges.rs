//! Bridges to Telegram chats, their single-use setup tokens, and the per-bot lease and update
//! offset that let exactly one instance poll a bot.

use chrono::{DateTime, Duration, Utc};
use kapable_sdk::comms::types::{Bridge, Participant};
use uuid::Uuid;

use super::events::append_events;
use super::{NewEvent, Position, Store, StoreError, now, on_pool};

/// A bridge as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BridgeRow {
    /// The bridge's id.
    pub id: Uuid,
    /// Its org.
    pub org_id: Uuid,
    /// Its room.
    pub room_id: Uuid,
    /// The Telegram chat.
    pub chat_id: i64,
    /// The forum topic, if only one is relayed.
    pub thread_id: Option<i64>,
    /// The room member that messages from the chat are posted as.
    pub member_id: Uuid,
    /// The room event after which messages are relayed to the chat.
    pub relay_cursor: String,
    created_at: DateTime<Utc>,
}

impl From<BridgeRow> for Bridge {
    fn from(row: BridgeRow) -> Self {
        Bridge {
            id: row.id,
            room_id: row.room_id,
            kind: "telegram".into(),
            chat_id: row.chat_id,
            message_thread_id: row.thread_id,
            participant_id: row.member_id,
            created_at: row.created_at,
        }
    }
}

const COLUMNS: &str =
    "id, org_id, room_id, chat_id, thread_id, member_id, relay_cursor, created_at";

impl Store {
    /// Stores a setup token's hash for the room, valid until `expires_at`.
    pub async fn create_setup_token(
        &self,
        org_id: Uuid,
        room_id: Uuid,
        hash: &[u8; 32],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO bridge_setup_tokens (token_hash, org_id, room_id, expires_at, \
                   created_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&hash[..])
            .bind(org_id)
            .bind(room_id)
            .bind(expires_at)
            .bind(now())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Spends a valid, unused setup token on linking `chat_id` to its room; `None` when the
    /// token is unknown, expired or used. Returns the bridge and the room's name.
    pub async fn link_by_setup_token(
        &self,
        hash: &[u8; 32],
        chat_id: i64,
        thread_id: Option<i64>,
    ) -> Result<Option<(BridgeRow, String)>, StoreError> {
        let spend = "UPDATE bridge_setup_tokens SET used_at = $2 WHERE token_hash = $1 \
                     AND used_at IS NULL AND expires_at > $2 RETURNING org_id, room_id";
        let room = "SELECT name FROM rooms WHERE id = $1";
        let cursor = self.head().await?;
        let mut events = Vec::new();
        let linked = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let spent: Option<(Uuid, Uuid)> =
                sqlx::query_as(spend).bind(&hash[..]).bind(now()).fetch_optional(&mut *tx).await?;
            let Some((org_id, room_id)) = spent else {
                return Ok(None);
            };
            let Some((name,)): Option<(String,)> =
                sqlx::query_as(room).bind(room_id).fetch_optional(&mut *tx).await?
            else {
                return Ok(None);
            };
            let link = Link { org_id, room_id, chat_id, thread_id, cursor };
            let bridge = insert_bridge!(tx, link, events);
            append_events!(self, tx, &events);
            tx.commit().await?;
            Some((bridge, name))
        });
        self.announce(&events);
        Ok(linked)
    }

    /// Links `chat_id` to the room, relaying from now on.
    pub async fn create_bridge(
        &self,
        org_id: Uuid,
        room_id: Uuid,
        chat_id: i64,
        thread_id: Option<i64>,
    ) -> Result<BridgeRow, StoreError> {
        let cursor = self.head().await?;
        let mut events = Vec::new();
        let bridge = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let link = Link { org_id, room_id, chat_id, thread_id, cursor };
            let bridge = insert_bridge!(tx, link, events);
            append_events!(self, tx, &events);
            tx.commit().await?;
            bridge
        });
        self.announce(&events);
        Ok(bridge)
    }

    /// The room's live bridges, oldest first.
    pub async fn room_bridges(&self, room_id: Uuid) -> Result<Vec<BridgeRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM bridges WHERE room_id = $1 AND revoked_at IS NULL ORDER BY id"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(room_id)
            .fetch_all(pool)
            .await)?)
    }

    /// Every live bridge.
    pub async fn live_bridges(&self) -> Result<Vec<BridgeRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM bridges WHERE revoked_at IS NULL ORDER BY id");
        Ok(on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(pool)
            .await)?)
    }

    /// The live bridges of a chat.
    pub async fn chat_bridges(&self, chat_id: i64) -> Result<Vec<BridgeRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM bridges WHERE chat_id = $1 AND revoked_at IS NULL ORDER BY id"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(chat_id)
            .fetch_all(pool)
            .await)?)
    }

    /// Whether the bridge is still live.
    pub async fn bridge_is_live(&self, id: Uuid) -> Result<bool, StoreError> {
        let sql = "SELECT id FROM bridges WHERE id = $1 AND revoked_at IS NULL";
        let found: Option<(Uuid,)> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    /// Revokes the room's bridge and its member; false when there was no such live bridge.
    pub async fn revoke_bridge(&self, room_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let bridge = "UPDATE bridges SET revoked_at = $3 WHERE id = $1 AND room_id = $2 \
                      AND revoked_at IS NULL RETURNING member_id";
        let member = "UPDATE room_members SET revoked_at = $2 WHERE id = $1";
        let revoked = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let revoked: Option<(Uuid,)> = sqlx::query_as(bridge)
                .bind(id)
                .bind(room_id)
                .bind(now())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((member_id,)) = revoked {
                sqlx::query(member).bind(member_id).bind(now()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            revoked.is_some()
        });
        self.access_changed();
        Ok(revoked)
    }

    /// Moves the bridge's relay past `cursor`.
    pub async fn set_relay_cursor(&self, id: Uuid, cursor: Position) -> Result<(), StoreError> {
        let sql = "UPDATE bridges SET relay_cursor = $2 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(cursor.to_string())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Takes or renews the lease on polling bot `bot_id` for `holder` until `lease` from now;
    /// true when `holder` has it. Returns also the next update offset to read.
    pub async fn take_bot_lease(
        &self,
        bot_id: i64,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let ensure =
            "INSERT INTO telegram_bots (bot_id) VALUES ($1) ON CONFLICT (bot_id) DO NOTHING";
        let take = "UPDATE telegram_bots SET holder = $2, lease_until = $3 WHERE bot_id = $1 \
                    AND (holder = $2 OR lease_until IS NULL OR lease_until < $4) \
                    RETURNING update_offset";
        let at = now();
        Ok(on_pool!(self, |pool| {
            sqlx::query(ensure).bind(bot_id).execute(pool).await?;
            let taken: Option<(i64,)> = sqlx::query_as(take)
                .bind(bot_id)
                .bind(holder)
                .bind(at + lease)
                .bind(at)
                .fetch_optional(pool)
                .await?;
            taken.map(|(offset,)| offset)
        }))
    }

    /// Records that updates before `offset` are handled.
    pub async fn set_bot_offset(&self, bot_id: i64, offset: i64) -> Result<(), StoreError> {
        let sql = "UPDATE telegram_bots SET update_offset = $2 WHERE bot_id = $1 \
                   AND update_offset < $2";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(bot_id)
            .bind(offset)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}

/// What a new bridge links.
struct Link {
    org_id: Uuid,
    room_id: Uuid,
    chat_id: i64,
    thread_id: Option<i64>,
    cursor: Position,
}

/// Inserts the bridge's member and the bridge inside the open transaction `$tx`, pushing the
/// `member_joined` event onto `$events`; evaluates to the new bridge.
macro_rules! insert_bridge {
    ($tx:expr, $link:expr, $events:expr) => {{
        let link: Link = $link;
        let at = now();
        let member = Participant {
            id: Uuid::now_v7(),
            kind: "telegram".into(),
            agent_id: None,
            display_name: format!("Telegram chat {}", link.chat_id),
            role: "participant".into(),
            joined_at: at,
        };
        let add_member = "INSERT INTO room_members (id, org_id, room_id, kind, agent_id, \
                          display_name, role, token_hash, joined_at) \
                          VALUES ($1, $2, $3, 'telegram', NULL, $4, 'participant', NULL, $5)";
        sqlx::query(add_member)
            .bind(member.id)
            .bind(link.org_id)
            .bind(link.room_id)
            .bind(&member.display_name)
            .bind(at)
            .execute(&mut *$tx)
            .await?;
        let insert = format!(
            "INSERT INTO bridges (id, org_id, room_id, kind, chat_id, thread_id, member_id, \
             relay_cursor, created_at) VALUES ($1, $2, $3, 'telegram', $4, $5, $6, $7, $8) \
             RETURNING {COLUMNS}"
        );
        let bridge: BridgeRow = sqlx::query_as(sqlx::AssertSqlSafe(insert))
            .bind(Uuid::now_v7())
            .bind(link.org_id)
            .bind(link.room_id)
            .bind(link.chat_id)
            .bind(link.thread_id)
            .bind(member.id)
            .bind(link.cursor.to_string())
            .bind(at)
            .fetch_one(&mut *$tx)
            .await?;
        $events.push(NewEvent::room(link.org_id, link.room_id, "member_joined", &member));
        bridge
    }};
}
use insert_bridge;
