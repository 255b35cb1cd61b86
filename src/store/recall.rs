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

use super::{Credential, MemberRow, RoomRow};

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

/// A point in the history of changes, taken before a lookup reads the database.
#[derive(Debug, Clone, Copy)]
pub(super) struct Generation(u64);

impl Recall {
    /// A recall of rooms, and of credentials and memberships too when `access`.
    pub(super) fn new(access: bool) -> Recall {
        Recall { access, ..Recall::default() }
    }

    /// Whether credentials and memberships are remembered.
    pub(super) fn remembers_access(&self) -> bool {
        self.access
    }

    /// The generation now, to hand back with what the lookup then reads.
    pub(super) fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    /// Forgets every credential and membership; call it after a change to either commits.
    /// Rooms are kept: a room's row never changes once created.
    pub(super) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.credentials.clear();
        self.members.clear();
    }

    pub(super) fn credential(&self, hash: &[u8; 32]) -> Option<Credential> {
        self.credentials.get(hash)
    }

    pub(super) fn keep_credential(&self, since: Generation, hash: [u8; 32], found: &Credential) {
        self.credentials.keep(self.unchanged(since), hash, found);
    }

    pub(super) fn room(&self, org_id: Uuid, room_id: Uuid) -> Option<RoomRow> {
        self.rooms.get(&(org_id, room_id))
    }

    pub(super) fn keep_room(&self, found: &RoomRow) {
        self.rooms.keep(|| true, (found.org_id, found.id), found);
    }

    pub(super) fn member(&self, key: MemberKey) -> Option<MemberRow> {
        self.members.get(&key)
    }

    pub(super) fn keep_member(&self, since: Generation, key: MemberKey, found: &MemberRow) {
        self.members.keep(self.unchanged(since), key, found);
    }

    /// A check, made under a map's lock, that nothing changed since `since`.
    fn unchanged(&self, since: Generation) -> impl Fn() -> bool + '_ {
        move || self.generation.load(Ordering::SeqCst) == since.0
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

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let recall = Recall::new(true);
        let before = recall.generation();
        recall.forget();
        recall.keep_credential(before, [1; 32], &app(Uuid::now_v7()));
        assert!(recall.credential(&[1; 32]).is_none());

        let after = recall.generation();
        recall.keep_credential(after, [1; 32], &app(Uuid::now_v7()));
        assert!(recall.credential(&[1; 32]).is_some());
        recall.forget();
        assert!(recall.credential(&[1; 32]).is_none());
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
