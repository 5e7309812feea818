//! Stable bucketing for rollouts and variants: MurmurHash3 (x86, 32-bit) over
//! `"<groupId>:<id>"`, normalised the way Unleash's SDKs do (`hash % n + 1`), so a flag moved
//! here from Unleash keeps every user in the bucket they had, and a user keeps their bucket
//! as a rollout grows.

/// Unleash's seed for variant selection (a different seed from rollouts, so being in a
/// rollout says nothing about the variant).
pub const VARIANT_SEED: u32 = 86_028_157;

/// MurmurHash3 x86 32-bit of `data` with `seed`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k: u32 = 0;
    for (i, byte) in tail.iter().enumerate() {
        k ^= u32::from(*byte) << (8 * i);
    }
    if !tail.is_empty() {
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    // The length is mixed in modulo 2^32, as every implementation does.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Unleash's `normalizedValue`: `murmur3("<group>:<id>", seed) % normalizer + 1`, in
/// `1..=normalizer`.
pub fn normalized(id: &str, group: &str, normalizer: u32, seed: u32) -> u32 {
    let key = format!("{group}:{id}");
    murmur3_32(key.as_bytes(), seed) % normalizer.max(1) + 1
}

/// Whether `id` falls inside a `percentage` rollout of `group` (0 to 100, with up to two
/// decimals). Whole percentages decide exactly as Unleash does (`normalized(…, 100) <=
/// percentage`); the hundredths come from the next two decimal digits of the same hash, so
/// the users in a 0.25 % rollout are among those of 0.5 %, and those of 1 %.
pub fn in_rollout(id: &str, group: &str, percentage: f64) -> bool {
    if percentage >= 100.0 {
        return true;
    }
    if percentage <= 0.0 || percentage.is_nan() {
        return false;
    }
    let hash = murmur3_32(format!("{group}:{id}").as_bytes(), 0);
    // 0..10_000: the Unleash bucket (hash % 100) in the hundreds, finer digits below.
    let fine = (hash % 100) * 100 + (hash / 100) % 100;
    let threshold = (percentage * 100.0).round() as u32;
    fine < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
        assert_eq!(murmur3_32(b"abc", 0), 0xb3dd_93fa);
    }

    #[test]
    fn whole_percentages_decide_as_unleash_and_finer_ones_nest() {
        for id in 0..2_000 {
            let id = id.to_string();
            for pct in [1u32, 10, 33, 50, 99] {
                let unleash = normalized(&id, "g", 100, 0) <= pct;
                assert_eq!(in_rollout(&id, "g", f64::from(pct)), unleash, "id {id} at {pct} %");
            }
            // Growing a rollout never drops anyone.
            let steps = [0.01, 0.25, 0.5, 1.0, 1.5, 10.0, 10.01, 50.0, 99.99, 100.0];
            let inside: Vec<bool> = steps.iter().map(|p| in_rollout(&id, "g", *p)).collect();
            assert!(inside.windows(2).all(|w| !w[0] || w[1]), "id {id}: {inside:?}");
        }
        let share = (0..10_000).filter(|i| in_rollout(&i.to_string(), "half", 50.0)).count();
        assert!((4_700..=5_300).contains(&share), "50 % rollout took {share} of 10 000");
    }
}
