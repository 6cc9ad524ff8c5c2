//! The random eviction our caches used until they moved to `quick_cache` ([`make_room`] below:
//! a map behind a lock that, when full, drops an arbitrary eighth) against `quick_cache`
//! (S3-FIFO-like, sharded locks: what the verified-token, session and user caches now use),
//! on the access patterns a session cache meets when clients outnumber its capacity: skewed
//! (Zipf, s = 1: some clients far more active than others) and a cycle through every client
//! (each client once per period, the worst case of LRU). Hit rate and time per access, one
//! thread, the same keys and capacity for both.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

/// Entries the caches hold: the default capacity.
const CAPACITY: usize = auth_core::cache::DEFAULT_CACHE_CAPACITY;

/// The former rule (`auth_core::cache::make_room`, kept here as the baseline): when `map` holds
/// `capacity` entries, drop an arbitrary eighth of it (the iteration order of a randomly keyed
/// hasher: random eviction).
fn make_room<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, capacity: usize) {
    if map.len() >= capacity {
        let mut to_drop = (capacity / 8).max(1).max(map.len() + 1 - capacity);
        map.retain(|_, _| {
            let keep = to_drop == 0;
            to_drop = to_drop.saturating_sub(1);
            keep
        });
    }
}

/// A small deterministic generator (xorshift64*), so both caches see the same sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` accesses over `keys` keys: Zipf with exponent 1 (inverse CDF over a precomputed table).
fn zipf(keys: usize, n: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(keys);
    let mut sum = 0.0;
    for k in 1..=keys {
        sum += 1.0 / k as f64;
        cdf.push(sum);
    }
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let u = rng.unit() * sum;
            cdf.partition_point(|&c| c < u) as u64
        })
        .collect()
}

/// `n` accesses cycling through `keys` keys in order.
fn cycle(keys: usize, n: usize) -> Vec<u64> {
    (0..n).map(|i| (i % keys) as u64).collect()
}

/// (hit rate, ns per access) of the former eviction on `accesses`: a map behind a lock, as
/// `auth_storage::cache` kept it.
fn ours(accesses: &[u64]) -> (f64, f64) {
    let map: std::sync::RwLock<HashMap<u64, [u8; 64]>> = std::sync::RwLock::new(HashMap::new());
    let mut hits = 0usize;
    let start = Instant::now();
    for &key in accesses {
        if map.read().expect("lock").get(&key).is_some() {
            hits += 1;
            continue;
        }
        let mut map = map.write().expect("lock");
        make_room(&mut map, CAPACITY);
        map.insert(key, [0; 64]);
    }
    let ns = start.elapsed().as_nanos() as f64 / accesses.len() as f64;
    (hits as f64 / accesses.len() as f64, ns)
}

/// The same with `quick_cache::sync::Cache`.
fn quick(accesses: &[u64]) -> (f64, f64) {
    let cache: quick_cache::sync::Cache<u64, [u8; 64]> = quick_cache::sync::Cache::new(CAPACITY);
    let mut hits = 0usize;
    let start = Instant::now();
    for &key in accesses {
        if cache.get(&key).is_some() {
            hits += 1;
            continue;
        }
        cache.insert(key, [0; 64]);
    }
    let ns = start.elapsed().as_nanos() as f64 / accesses.len() as f64;
    (hits as f64 / accesses.len() as f64, ns)
}

/// Runs the comparison: 2 000 000 accesses per pattern (1 000 000 with `quick`).
pub(crate) fn compare(quick_run: bool) -> Value {
    let n = if quick_run { 1_000_000 } else { 2_000_000 };
    let mut out = json!({});
    for (name, accesses) in [
        // Twice as many clients as entries, some far more active than others.
        ("zipf_2x", zipf(CAPACITY * 2, n, 0x5eed)),
        // 10 % more clients than entries, each once per cycle.
        ("cycle_1_1x", cycle(CAPACITY + CAPACITY / 10, n)),
        // Everyone fits: the benchmark's 100 000 sessions.
        ("zipf_fits", zipf(100_000, n, 0x5eed)),
    ] {
        let (ours_hits, ours_ns) = ours(&accesses);
        let (quick_hits, quick_ns) = quick(&accesses);
        eprintln!(
            "eviction {name}: ours {:.1}% hits {ours_ns:.0} ns/access, quick_cache {:.1}% hits {quick_ns:.0} ns/access",
            ours_hits * 100.0,
            quick_hits * 100.0
        );
        out[format!("eviction_{name}_hit_rate_ours")] = json!(crate::round3(ours_hits));
        out[format!("eviction_{name}_hit_rate_quick_cache")] = json!(crate::round3(quick_hits));
        out[format!("eviction_{name}_ns_ours")] = json!(ours_ns.round());
        out[format!("eviction_{name}_ns_quick_cache")] = json!(quick_ns.round());
    }
    out
}
