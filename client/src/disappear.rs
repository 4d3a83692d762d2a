//! Disappearing messages (`docs/account-sync.md`): how long they may be
//! set to, and durations as people write them.

use allium_common::rpc;

/// The shortest time a message may be set to disappear after: the
/// shortest TTL a node stores a message for.
pub const MIN_MS: u64 = rpc::MIN_TTL_MS;
/// The longest: the longest TTL a node stores a message for.
pub const MAX_MS: u64 = rpc::MAX_TTL_MS;

/// Whether `ms` is a time a message may be set to disappear after.
pub fn in_bounds(ms: u64) -> bool {
    (MIN_MS..=MAX_MS).contains(&ms)
}

/// Parses a duration such as `30s`, `10m`, `12h`, `1d` or `2w` (one
/// number and one unit) into ms, within [`MIN_MS`]..=[`MAX_MS`].
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (a number and a unit: 30s, 10m, 12h, 1d, 2w)"))?;
    let unit_ms: u64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{text:?}: the unit must be s, m, h, d or w")),
    };
    let ms = n.saturating_mul(unit_ms);
    if !in_bounds(ms) {
        return Err(format!(
            "{text:?} is out of bounds: messages can disappear after {} s to {} days",
            MIN_MS / 1000,
            MAX_MS / 86_400_000
        ));
    }
    Ok(ms)
}

/// A duration in ms as people read it (the largest unit that divides it).
pub fn format_duration(ms: u64) -> String {
    for (unit, size) in [
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_within_bounds_and_print_back() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("10m"), Ok(600_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("2w"), Ok(MAX_MS));
        for bad in ["5s", "3w", "", "m", "10", "1y", "-1d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for text in ["30s", "10m", "12h", "1d", "2w", "90s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
