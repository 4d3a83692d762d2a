//! The client's idea of the network's time.
//!
//! Nodes refuse a signed timestamp more than 60 s from their own clock
//! with `406 clock_skew` and `details.skew_ms` = request − node
//! (docs/protocol.md §5.1). A client with a wrong clock would then be
//! locked out of its mailbox and could not send. So it keeps an offset:
//! network time = local clock + offset, used for every timestamp it signs
//! or sends (retrieve signatures, store timestamps, message timestamps).
//! On a `clock_skew` answer the messenger corrects the offset by the skew
//! the node reported and retries once, on another swarm member when it
//! can, and saves the new offset in the home only when that retry is
//! accepted: one lying node cannot move the client's clock for long. The
//! offset is bounded by [`MAX_OFFSET_MS`]: a clock further off than a day
//! is the user's to fix, and the error says so.
//!
//! Local times (the outbox's expiry and retry times, the node-list cache,
//! the guard budget) stay on the local clock: they are compared only with
//! each other.

use serde_json::Value;

use crate::error::{Error, Result};

/// The largest offset the client applies by itself: ±24 hours.
pub const MAX_OFFSET_MS: i64 = 24 * 60 * 60 * 1000;
/// Where the offset is saved in the home's settings (decimal ms).
pub const META_KEY: &str = "clock_offset_ms";

/// Network time = local time + offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// A clock `offset_ms` ahead of the local one, if within
    /// [`MAX_OFFSET_MS`].
    pub fn with_offset(offset_ms: i64) -> Option<Self> {
        (offset_ms.unsigned_abs() <= MAX_OFFSET_MS.unsigned_abs()).then_some(Self { offset_ms })
    }

    /// The saved offset ([`Clock::to_text`]); anything else (missing,
    /// damaged, out of bounds) is no offset.
    pub fn parse(text: &str) -> Self {
        text.trim()
            .parse::<i64>()
            .ok()
            .and_then(Self::with_offset)
            .unwrap_or_default()
    }

    /// The offset saved in `home` (none if unset or unreadable: the first
    /// signed request corrects it).
    pub fn saved(home: &crate::home::Home) -> Self {
        home.meta(META_KEY)
            .ok()
            .flatten()
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// The form saved in the home.
    pub fn to_text(self) -> String {
        self.offset_ms.to_string()
    }

    /// The offset, ms.
    pub fn offset_ms(self) -> i64 {
        self.offset_ms
    }

    /// The network's time when the local clock says `local_ms`.
    pub fn network_ms(self, local_ms: u64) -> u64 {
        local_ms.saturating_add_signed(self.offset_ms)
    }

    /// The clock corrected by a node's report that a request was `skew_ms`
    /// ahead of it (negative: behind). Refuses a correction past
    /// [`MAX_OFFSET_MS`].
    pub fn corrected(self, skew_ms: i64) -> Result<Self> {
        self.offset_ms
            .checked_sub(skew_ms)
            .and_then(Self::with_offset)
            .ok_or_else(|| {
                Error::Clock(format!(
                    "this computer's clock is {} from the network's (a swarm node says so); allium corrects \
                     at most 24 hours by itself: set the system clock",
                    describe(self.offset_ms.saturating_sub(skew_ms).saturating_neg())
                ))
            })
    }
}

/// "3.5 s ahead" / "2.0 h behind" for an offset of the local clock.
fn describe(local_minus_network_ms: i64) -> String {
    let abs = local_minus_network_ms.unsigned_abs() as f64;
    let way = if local_minus_network_ms > 0 { "ahead" } else { "behind" };
    if abs >= 3_600_000.0 {
        format!("{:.1} h {way}", abs / 3_600_000.0)
    } else {
        format!("{:.1} s {way}", abs / 1000.0)
    }
}

/// The skew a node reported, if `status` and `body` are a `clock_skew`
/// refusal with a non-zero `details.skew_ms`.
pub fn reported_skew(status: u16, body: &Value) -> Option<i64> {
    if status != 406 || body["error"].as_str() != Some("clock_skew") {
        return None;
    }
    body["details"]["skew_ms"].as_i64().filter(|&s| s != 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_reported_skew_moves_the_clock_the_other_way() {
        let clock = Clock::default();
        assert_eq!(clock.network_ms(1_000_000), 1_000_000);
        // Our request was 5 minutes ahead of the node: we are fast.
        let fixed = clock.corrected(300_000).unwrap();
        assert_eq!(fixed.offset_ms(), -300_000);
        assert_eq!(fixed.network_ms(1_000_000), 700_000);
        // A later, smaller report refines it.
        let refined = fixed.corrected(-2_000).unwrap();
        assert_eq!(refined.offset_ms(), -298_000);
        assert_eq!(Clock::parse(&refined.to_text()), refined);
        // Never below zero.
        assert_eq!(Clock::with_offset(-10).unwrap().network_ms(5), 0);
    }

    #[test]
    fn the_offset_is_bounded() {
        let day = MAX_OFFSET_MS;
        assert!(Clock::with_offset(day).is_some() && Clock::with_offset(-day).is_some());
        assert!(Clock::with_offset(day + 1).is_none() && Clock::with_offset(-day - 1).is_none());
        let e = Clock::default().corrected(-(day + 1)).unwrap_err();
        assert!(matches!(e, Error::Clock(_)), "{e}");
        assert!(e.to_string().contains("behind"), "{e}");
        assert!(e.to_string().contains("set the system clock"), "{e}");
        let e = Clock::with_offset(-day).unwrap().corrected(1).unwrap_err();
        assert!(e.to_string().contains("ahead"), "{e}");
        assert!(Clock::default().corrected(i64::MIN).is_err(), "no overflow");
        // A saved offset out of bounds, or damaged, is no offset.
        for text in ["", "x", "86400001", "-86400001", "1.5", "99999999999999999999"] {
            assert_eq!(Clock::parse(text), Clock::default(), "{text:?}");
        }
        assert_eq!(Clock::parse(" -86400000\n").offset_ms(), -day);
    }

    #[test]
    fn only_a_clock_skew_refusal_reports_a_skew() {
        let body = json!({"error": "clock_skew", "message": "…", "details": {"skew_ms": -75_500}});
        assert_eq!(reported_skew(406, &body), Some(-75_500));
        assert_eq!(reported_skew(400, &body), None);
        assert_eq!(
            reported_skew(406, &json!({"error": "bad_request", "details": {"skew_ms": 5}})),
            None
        );
        assert_eq!(
            reported_skew(406, &json!({"error": "clock_skew", "details": {"skew_ms": "5"}})),
            None
        );
        assert_eq!(
            reported_skew(406, &json!({"error": "clock_skew", "details": {"skew_ms": 0}})),
            None
        );
        assert_eq!(reported_skew(406, &json!({"error": "clock_skew"})), None);
    }
}
