//! A token bucket in thousandths of a token, refilled by the clock the host gives: the password
//! budget (`methods/throttle.rs`) and the fleet store's write budget (`store/fleet.rs`).

/// One bucket. `Default` is a bucket never used: full at its first use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bucket {
    /// Thousandths of a check available.
    milli: u64,
    /// When it was last filled, milliseconds since the epoch (0: never used: full).
    at_ms: u64,
}

impl Bucket {
    /// Refills at `per_ms_milli` thousandths per millisecond up to `burst` checks, then takes
    /// one check if there is one.
    pub fn take(&mut self, now_ms: u64, milli_per_ms: u64, per_ms_div: u64, burst: u64) -> bool {
        let cap = burst.saturating_mul(1000);
        if self.at_ms == 0 {
            self.milli = cap;
        } else {
            let elapsed = now_ms.saturating_sub(self.at_ms);
            let gained = elapsed.saturating_mul(milli_per_ms) / per_ms_div.max(1);
            self.milli = self.milli.saturating_add(gained).min(cap);
        }
        self.at_ms = now_ms.max(1);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    pub fn is_full(&self, now_ms: u64, milli_per_ms: u64, per_ms_div: u64, burst: u64) -> bool {
        let mut probe = *self;
        probe.take(now_ms, milli_per_ms, per_ms_div, burst) && probe.milli + 1000 >= burst * 1000
    }
}
