//! When periods start, and when seeds vote and sign.
//!
//! Period `p` is valid from `valid_after = p · period_ms` (Unix ms), fresh
//! until the next one starts, and valid for [`VALID_PERIODS`] periods, so
//! at any time three consensuses are valid and a late seed or a slow
//! network stops nobody. Seeds make their votes for `p` half a period
//! before it starts and compute and sign a quarter of a period before it
//! starts; a vote that arrives after that is not counted (dir-spec §1.4).

/// Periods a consensus stays valid.
pub const VALID_PERIODS: u64 = 3;
/// Shortest period the schedule accepts (a devnet runs at one a second).
pub const MIN_PERIOD_MS: u64 = 200;

/// The period length every seed of a network uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    period_ms: u64,
}

impl Schedule {
    /// A schedule of `period_ms` periods (at least [`MIN_PERIOD_MS`]).
    pub fn new(period_ms: u64) -> Self {
        Self {
            period_ms: period_ms.max(MIN_PERIOD_MS),
        }
    }

    /// The period length.
    pub const fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// The period in force at `now`.
    pub const fn period_at(&self, now: u64) -> u64 {
        now / self.period_ms
    }

    /// When period `p` starts.
    pub const fn valid_after(&self, p: u64) -> u64 {
        p.saturating_mul(self.period_ms)
    }

    /// When the period after `p` starts.
    pub const fn fresh_until(&self, p: u64) -> u64 {
        self.valid_after(p.saturating_add(1))
    }

    /// When a consensus for `p` stops being valid.
    pub const fn valid_until(&self, p: u64) -> u64 {
        self.valid_after(p.saturating_add(VALID_PERIODS))
    }

    /// When seeds make and publish their votes for `p`.
    pub const fn vote_at(&self, p: u64) -> u64 {
        self.valid_after(p).saturating_sub(self.period_ms / 2)
    }

    /// When seeds stop taking votes for `p`, compute and sign.
    pub const fn sign_at(&self, p: u64) -> u64 {
        self.valid_after(p).saturating_sub(self.period_ms / 4)
    }

    /// The next period to vote for at `now`: the one after the current.
    pub const fn next_period(&self, now: u64) -> u64 {
        self.period_at(now).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_of_a_period() {
        let s = Schedule::new(1000);
        assert_eq!(s.period_at(12_999), 12);
        assert_eq!(s.valid_after(13), 13_000);
        assert_eq!(s.fresh_until(13), 14_000);
        assert_eq!(s.valid_until(13), 16_000);
        assert_eq!((s.vote_at(13), s.sign_at(13)), (12_500, 12_750));
        assert_eq!(s.next_period(12_400), 13);
        assert_eq!(Schedule::new(0).period_ms(), MIN_PERIOD_MS);
        assert_eq!(Schedule::new(1000).valid_until(u64::MAX), u64::MAX);
    }
}
