//! What nearly every request reads and almost nothing changes, kept in memory: credentials by
//! hash, rooms, and memberships.
//!
//! On SQLite each query is a round trip to a connection's own thread, and authenticating a
//! request and checking its room took three of them before it did any work. The store
//! remembers what it found, and forgets all of it whenever a credential or a membership
//! changes: a revoked key, a deleted agent, a changed role, an ended membership or a revoked
//! bridge. It never remembers an absence, so a key or a member added a moment ago is found.
//!
//! Only the SQLite store remembers credentials and memberships: that database belongs to one
//! process, which sees every change. Several instances share a Postgres database and none
//! sees another's revocations, so there those lookups go to the database. Rooms are
//! remembered on both: a room's row never changes once it exists.
//!
//! A lookup notes the generation before it reads the database and keeps the answer only if no
//! change came in between, and a change clears the maps after bumping the generation. So an
//! answer read before a revocation committed is never kept past it, and the request that
//! follows a revocation's response reads the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use super::{Credential, MemberRow, RoomRow, StoreError};

/// The most entries one map holds; past it, the map starts over empty.
const MOST_ENTRIES: usize = 50_000;

/// The remembered lookups of one store.
#[derive(Debug, Default)]
pub(super) struct Recall {
    /// Whether credentials and memberships are remembered (rooms always are).
    access: bool,
    generation: AtomicU64,
    credentials: Memo<[u8; 32], Credential>,
    rooms: Memo<(Uuid, Uuid), RoomRow>,
    members: Memo<MemberKey, MemberRow>,
}

/// How a membership is looked up: in a room, by its agent or by its participant id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum MemberKey {
    Agent { room_id: Uuid, agent_id: Uuid },
    Id { room_id: Uuid, member_id: Uuid },
}

impl Recall {
    /// A recall of rooms, and of credentials and memberships too when `access`.
    pub(super) fn new(access: bool) -> Recall {
        Recall { access, ..Recall::default() }
    }

    /// Forgets every credential and membership; call it after a change to either commits.
    /// Rooms are kept: a room's row never changes once created.
    pub(super) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.credentials.clear();
        self.members.clear();
    }

    /// The credential with this hash that `read` finds, or that it found before if nothing
    /// changed since; `of_kind` says whether a remembered one is of the kind asked for.
    pub(super) async fn credential(
        &self,
        hash: [u8; 32],
        of_kind: fn(&Credential) -> bool,
        read: impl Future<Output = Result<Option<Credential>, StoreError>>,
    ) -> Result<Option<Credential>, StoreError> {
        self.remembered(&self.credentials, hash, of_kind, read).await
    }

    /// The membership that `read` finds by `key`, or that it found before if nothing changed
    /// since.
    pub(super) async fn member(
        &self,
        key: MemberKey,
        read: impl Future<Output = Result<Option<MemberRow>, StoreError>>,
    ) -> Result<Option<MemberRow>, StoreError> {
        self.remembered(&self.members, key, |_| true, read).await
    }

    pub(super) fn room(&self, org_id: Uuid, room_id: Uuid) -> Option<RoomRow> {
        self.rooms.get(&(org_id, room_id))
    }

    pub(super) fn keep_room(&self, found: &RoomRow) {
        self.rooms.keep(|| true, (found.org_id, found.id), found);
    }

    /// What `read` finds under `key`, or what `memo` holds for it when this recall remembers
    /// access. The future does nothing until awaited, so the generation is taken before the
    /// read runs, and an answer that a change overtook is not kept.
    async fn remembered<K: Eq + Hash, V: Clone>(
        &self,
        memo: &Memo<K, V>,
        key: K,
        usable: fn(&V) -> bool,
        read: impl Future<Output = Result<Option<V>, StoreError>>,
    ) -> Result<Option<V>, StoreError> {
        if !self.access {
            return read.await;
        }
        if let Some(found) = memo.get(&key).filter(usable) {
            return Ok(Some(found));
        }
        let since = self.generation.load(Ordering::SeqCst);
        let found = read.await?;
        if let Some(found) = &found {
            memo.keep(|| self.generation.load(Ordering::SeqCst) == since, key, found);
        }
        Ok(found)
    }
}

/// One map of remembered answers.
#[derive(Debug)]
struct Memo<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// Keeps `value` if `still_valid`, checked under the lock that [`Memo::clear`] takes, holds:
    /// a clear either comes after the insert and removes it, or before and fails the check.
    fn keep(&self, still_valid: impl Fn() -> bool, key: K, value: &V) {
        let mut map = self.lock();
        if !still_valid() {
            return;
        }
        if map.len() >= MOST_ENTRIES {
            map.clear();
        }
        map.insert(key, value.clone());
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(org_id: Uuid) -> Credential {
        Credential::App { token_id: Uuid::now_v7(), org_id, hash: vec![7; 32] }
    }

    #[tokio::test]
    async fn an_answer_read_before_a_change_is_not_kept() {
        let recall = Recall::new(true);
        let any = |_: &Credential| true;
        let overtaken = async {
            recall.forget();
            Ok(Some(app(Uuid::now_v7())))
        };
        assert!(recall.credential([1; 32], any, overtaken).await.unwrap().is_some());
        let unread = async { Ok(None) };
        assert!(recall.credential([1; 32], any, unread).await.unwrap().is_none());

        let first = async { Ok(Some(app(Uuid::now_v7()))) };
        recall.credential([1; 32], any, first).await.unwrap();
        let unread = async { Ok(None) };
        assert!(recall.credential([1; 32], any, unread).await.unwrap().is_some());
        recall.forget();
        let unread = async { Ok(None) };
        assert!(recall.credential([1; 32], any, unread).await.unwrap().is_none());
    }

    #[test]
    fn a_full_map_starts_over() {
        let memo = Memo::<usize, usize>::default();
        for n in 0..=MOST_ENTRIES {
            memo.keep(|| true, n, &n);
        }
        assert_eq!(memo.lock().len(), 1);
        assert_eq!(memo.get(&MOST_ENTRIES), Some(MOST_ENTRIES));
    }
}
