//! The eviction rule of the library's bounded caches (the verified-token cache here, the
//! session and user caches of `auth-storage`): one rule in one place, and their one default size.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// The default capacity of every cache of the library (verified tokens, live sessions, users):
/// 131 072 entries, room for 100 000 clients with live tokens and their users plus a margin, so
/// that such a working set fits whole instead of evicting an eighth at a time.
pub const DEFAULT_CACHE_CAPACITY: usize = 1 << 17;

/// Makes room in `map` before an insert when it holds `capacity` entries or more: first drops
/// the entries `usable` rejects (expired, stale), then, if it is still full, an arbitrary eighth
/// of it (at least one). Never everything: a working set somewhat over the capacity keeps most
/// of its hits instead of starting from nothing each time the cache fills.
///
/// "Arbitrary" is the map's iteration order, which under a randomly keyed hasher (`RandomState`)
/// is unrelated to use or to what a client sends: random eviction. The scan is O(n) and runs
/// at most once per `capacity / 8` inserts, so it costs O(1) per insert on average.
pub fn make_room<K: Eq + Hash, V, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    capacity: usize,
    usable: impl Fn(&V) -> bool,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, value| usable(value));
    if map.len() >= capacity {
        let mut to_drop = (capacity / 8).max(1).max(map.len() + 1 - capacity);
        map.retain(|_, _| {
            let keep = to_drop == 0;
            to_drop = to_drop.saturating_sub(1);
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_unusable_entries_first_then_an_eighth_never_all() {
        let mut map: HashMap<u32, u32> = (0..64).map(|i| (i, i)).collect();
        make_room(&mut map, 100, |_| false);
        assert_eq!(map.len(), 64, "not full: untouched");
        make_room(&mut map, 64, |v| v % 2 == 0);
        assert_eq!(map.len(), 32, "the unusable half went, nothing else");
        let mut map: HashMap<u32, u32> = (0..64).map(|i| (i, i)).collect();
        make_room(&mut map, 64, |_| true);
        assert_eq!(map.len(), 56, "an eighth went");
        let mut tiny: HashMap<u32, u32> = [(1, 1)].into();
        make_room(&mut tiny, 1, |_| true);
        assert!(tiny.is_empty(), "room for one");
        let mut over: HashMap<u32, u32> = (0..20).map(|i| (i, i)).collect();
        make_room(&mut over, 10, |_| true);
        assert_eq!(over.len(), 9, "over capacity (capacity lowered): down to one below it");
    }
}
