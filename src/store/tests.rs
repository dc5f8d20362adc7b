//! The bounded stores: no eviction of live single-use entries, eviction policies, placement.

use super::*;
use crate::cache::MemoryCache;

const ONE: StoreSpec = StoreSpec {
    name: "t",
    slots: 1,
};

#[test]
fn single_use_refuses_a_second_use_and_never_evicts_a_live_entry() {
    let cache = MemoryCache::default();
    let p = Placer::new(b"k");
    assert_eq!(p.use_once(&cache, &ONE, "a", 100, 10), Ok(true));
    assert_eq!(p.use_once(&cache, &ONE, "a", 100, 10), Ok(false));
    for i in 1..PER_SLOT {
        assert_eq!(
            p.use_once(&cache, &ONE, &format!("x{i}"), 100, 10),
            Ok(true)
        );
    }
    // The one slot is full of live entries: the next item is refused, "a" stays used.
    assert_eq!(
        p.use_once(&cache, &ONE, "new", 100, 10),
        Err(StoreError::Full)
    );
    assert_eq!(p.use_once(&cache, &ONE, "a", 100, 10), Ok(false));
    // Once they expire, their places are reused and the key count never grew.
    assert_eq!(p.use_once(&cache, &ONE, "new", 300, 200), Ok(true));
    assert_eq!(p.use_once(&cache, &ONE, "a", 300, 200), Ok(true));
    assert_eq!(cache_keys(&cache), 1);
}

#[test]
fn smallest_count_keeps_the_counter_under_attack() {
    let cache = MemoryCache::default();
    let p = Placer::new(b"k");
    let bump = |item: &str, now: u64| {
        p.update(&cache, &ONE, item, now, Evict::SmallestCount, |v| {
            let n = v.map_or(0, count_of) + 1;
            (Some((n.to_be_bytes().to_vec(), now + 300)), n)
        })
    };
    for _ in 0..5 {
        bump("victim", 10).unwrap();
    }
    for i in 0..1000 {
        bump(&format!("flood{i}"), 11).unwrap();
    }
    let v = p.get(&cache, &ONE, "victim", 12).unwrap();
    assert_eq!(v.as_deref().map(count_of), Some(5));
    assert_eq!(cache_keys(&cache), 1);
}

#[test]
fn soonest_expiry_evicts_the_oldest_and_values_round_trip() {
    let cache = MemoryCache::default();
    let p = Placer::new(b"k");
    for i in 0..=PER_SLOT as u64 {
        p.update(
            &cache,
            &ONE,
            &format!("i{i}"),
            1,
            Evict::SoonestExpiry,
            |_| (Some((vec![7; 40], 100 + i)), ()),
        )
        .unwrap();
    }
    assert_eq!(p.get(&cache, &ONE, "i0", 2).unwrap(), None);
    assert_eq!(
        p.get(&cache, &ONE, "i8", 2).unwrap(),
        Some(vec![7; MAX_VALUE])
    );
}

#[test]
fn used_flows_evict_instead_of_refusing() {
    let cache = MemoryCache::default();
    let limits = Limits {
        used_flow_slots: 16,
        ..Limits::default()
    };
    let mut rng = crate::random::SystemRandom;
    let st = Stores::open(&cache, &mut rng, &limits).unwrap();
    assert_eq!(st.use_flow("victim", 1000, 10), Ok(true));
    assert_eq!(st.use_flow("victim", 1000, 10), Ok(false));
    // A flood of made-up flows never refuses a new one.
    for i in 0..2000 {
        assert_eq!(st.use_flow(&format!("f{i}"), 2000, 11), Ok(true));
    }
    assert_eq!(st.use_flow("late", 2000, 12), Ok(true));
}

#[test]
fn placement_spreads_and_depends_on_the_secret() {
    let spec = StoreSpec {
        name: "s",
        slots: 64,
    };
    let a = Placer::new(b"one");
    let b = Placer::new(b"two");
    let slots: std::collections::HashSet<String> =
        (0..500).map(|i| a.place(&spec, &i.to_string()).0).collect();
    assert!(slots.len() > 50, "{}", slots.len());
    assert_ne!(a.place(&spec, "x"), b.place(&spec, "x"));
    assert!(spec.max_bytes() < 64 * 600);
}

#[test]
fn damaged_slots_read_as_their_good_prefix() {
    let e = Entry {
        fp: [1; FP],
        expires: 9,
        value: vec![1, 2],
    };
    let mut bytes = encode(std::slice::from_ref(&e));
    bytes.extend_from_slice(&[0xff; 5]);
    assert_eq!(decode(&bytes), vec![e]);
    assert!(decode(&[0xff; 3]).is_empty());
}

fn cache_keys(cache: &MemoryCache) -> usize {
    format!("{cache:?}").matches("sso:st:").count()
}
