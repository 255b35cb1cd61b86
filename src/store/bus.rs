//! The bus that announces commits to followers.
//!
//! After a transaction that wrote events commits, a [`Wake`] is published in process on a
//! broadcast channel and, on Postgres, to every other gateway instance through `NOTIFY` (sent
//! inside the transaction, so it is delivered at commit). A wake carries no event, only which
//! org, room or agent changed: followers read the events from the log by cursor, so a wake that
//! is lost or late delays an event but never drops one.

use tokio::sync::broadcast;
use uuid::Uuid;

use super::events::{NewEvent, Scope};
use super::{Db, Store};

/// The channel `NOTIFY` uses on Postgres.
pub(super) const CHANNEL: &str = "kapable_events";

/// News that the log has grown for an org, a room or an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Wake {
    /// Events were written for this org, in this room or for this agent.
    Scope {
        /// The org.
        org_id: Uuid,
        /// The room, for room events.
        room_id: Option<Uuid>,
        /// The agent, for agent events.
        agent_id: Option<Uuid>,
    },
    /// Anything may have changed (the bus lost messages): every subscriber re-reads.
    All,
}

impl Wake {
    /// Whether a subscriber of `scope` in `org_id` should re-read the log.
    pub fn concerns(&self, scope: &Scope) -> bool {
        match (self, scope) {
            (Wake::All, _) => true,
            (Wake::Scope { room_id, .. }, Scope::Room(room)) => *room_id == Some(*room),
            (Wake::Scope { org_id, .. }, Scope::Agent { org_id: org, .. }) => org_id == org,
            (Wake::Scope { org_id, room_id: None, agent_id: None }, Scope::Anomalies(org)) => {
                org_id == org
            }
            (Wake::Scope { .. }, Scope::Anomalies(_)) => false,
        }
    }

    /// The `NOTIFY` payload: ids only.
    pub(super) fn payload(&self) -> String {
        let id = |id: Option<Uuid>| id.map_or("-".to_owned(), |id| id.to_string());
        match self {
            Wake::Scope { org_id, room_id, agent_id } => {
                format!("{org_id} {} {}", id(*room_id), id(*agent_id))
            }
            Wake::All => "all".to_owned(),
        }
    }

    /// Reads a `NOTIFY` payload; anything unreadable wakes everyone.
    pub fn from_payload(text: &str) -> Wake {
        let mut parts = text.split(' ');
        let mut next = || parts.next().and_then(|p| Uuid::parse_str(p).ok());
        match next() {
            Some(org_id) => Wake::Scope { org_id, room_id: next(), agent_id: next() },
            None => Wake::All,
        }
    }
}

/// The in-process side of the bus: a broadcast of wakes.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Wake>,
}

impl Default for Bus {
    fn default() -> Self {
        // A lagging receiver loses wakes, not events, and re-reads everything it follows.
        Self { sender: broadcast::channel(1024).0 }
    }
}

impl Bus {
    /// Announces committed events to this process's subscribers.
    pub fn publish(&self, wake: Wake) {
        // No receiver is fine: nobody is following right now.
        let _ = self.sender.send(wake);
    }

    /// A receiver of every wake from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.sender.subscribe()
    }
}

impl Store {
    /// The bus this store announces its commits on.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Announces committed events in process. (On Postgres the transaction's `NOTIFY` tells
    /// the other instances.)
    pub(super) fn announce(&self, events: &[NewEvent]) {
        self.counters.events.fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for wake in super::events::wakes_of(events) {
            self.bus.publish(wake);
        }
    }

    /// Waits for `NOTIFY`s from every gateway instance on this Postgres database and publishes
    /// them on the bus, until the process ends. Does nothing on SQLite, whose one process
    /// publishes its own commits.
    pub async fn listen(&self) {
        let Db::Postgres(pool) = &self.db else {
            return;
        };
        loop {
            if let Err(error) = self.relay_notifications(pool).await {
                tracing::warn!(%error, "lost the Postgres notification connection; reconnecting");
            }
            // Whatever was announced while the connection was down is in the log: re-read it.
            self.bus.publish(Wake::All);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    async fn relay_notifications(&self, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        // Listening now: anything committed before it is read from the log by cursor.
        self.bus.publish(Wake::All);
        loop {
            match listener.try_recv().await? {
                Some(notification) => {
                    self.bus.publish(Wake::from_payload(notification.payload()));
                }
                None => return Err(sqlx::Error::PoolClosed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_survives_its_notify_payload() {
        let wake =
            Wake::Scope { org_id: Uuid::now_v7(), room_id: Some(Uuid::now_v7()), agent_id: None };
        assert_eq!(Wake::from_payload(&wake.payload()), wake);
        assert_eq!(Wake::from_payload("garbage"), Wake::All);
    }

    #[test]
    fn a_room_subscriber_wakes_only_for_its_room() {
        let (org_id, room) = (Uuid::now_v7(), Uuid::now_v7());
        let here = Wake::Scope { org_id, room_id: Some(room), agent_id: None };
        let elsewhere = Wake::Scope { org_id, room_id: Some(Uuid::now_v7()), agent_id: None };
        assert!(here.concerns(&Scope::Room(room)));
        assert!(!elsewhere.concerns(&Scope::Room(room)));
        assert!(Wake::All.concerns(&Scope::Room(room)));
    }
}
