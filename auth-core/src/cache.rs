//! The size of the library's bounded caches (the verified-token cache here, the session and user
//! caches of `auth-storage`). All three are [`quick_cache`] caches: sharded locks, and an
//! eviction policy close to S3-FIFO (scan-resistant, hit rates comparable to W-TinyLFU), which
//! `auth-bench --scale` compares with the random eviction the library used before (key
//! prefix `eviction_`). A full cache evicts what its policy judges coldest; it never empties.

/// The default capacity of every cache of the library (verified tokens, live sessions, users):
/// 131 072 entries, room for 100 000 clients with live tokens and their users plus a margin, so
/// that such a working set fits whole.
pub const DEFAULT_CACHE_CAPACITY: usize = 1 << 17;
