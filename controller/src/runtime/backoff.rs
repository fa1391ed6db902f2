//! Exponential backoff with jitter, reset on success.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
            | 1;
        Self {
            base,
            max,
            failures: 0,
            seed,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt after one more failure: base·2ⁿ capped
    /// at max, then scaled into [50%, 100%] so restarted controllers spread out.
    pub fn next_delay(&mut self) -> Duration {
        let exponent = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let raw = self.base.saturating_mul(1u32 << exponent).min(self.max);
        // xorshift64: jitter needs spread, not cryptographic randomness.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        raw.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        for (n, delay) in delays.iter().enumerate() {
            let raw = Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60));
            assert!(
                *delay >= raw / 2 && *delay <= raw,
                "attempt {n}: {delay:?} outside [{:?}, {raw:?}]",
                raw / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }
}
