//! The guard-replacement budget: how often a path may get a new guard.
//!
//! A client that picks a new guard whenever something on a path fails can
//! be made to pick guards by whoever makes it fail: a hostile middle, exit
//! or destination only has to break requests until the client lands on a
//! guard the attacker runs (the start of a guard-discovery attack). So a
//! path keeps its guard through every failure of its later hops, and gets a
//! new one only when the guard itself fails (see [`crate::paths`]), and
//! then at most [`MAX_REPLACEMENTS`] times per path in any
//! [`WINDOW_MS`]. The replacement times are saved in the home, so separate
//! `allium` runs share one budget: restarting the program does not refill
//! it.
//!
//! Times are the local clock in Unix ms, passed in.

use serde::{Deserialize, Serialize};

/// Guard replacements allowed per path in any [`WINDOW_MS`].
pub const MAX_REPLACEMENTS: usize = 2;
/// The window of the budget: 24 hours.
pub const WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// Where the budget is saved in the home's settings.
pub const META_KEY: &str = "guard_replacements";

/// One replacement: which path slot got a new guard, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Replacement {
    path: usize,
    at_ms: u64,
}

/// The replacements made in the last [`WINDOW_MS`] (at most
/// [`MAX_REPLACEMENTS`] per path are kept: older ones no longer matter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardBudget {
    replaced: Vec<Replacement>,
}

impl GuardBudget {
    /// The budget saved as [`GuardBudget::to_text`]. Text that does not
    /// parse (an older or damaged setting) counts as a spent budget until
    /// one window has passed since `now_ms`: a damaged setting must not
    /// hand out fresh guards.
    pub fn parse(text: &str, paths: usize, now_ms: u64) -> Self {
        match serde_json::from_str::<Vec<Replacement>>(text) {
            Ok(replaced) => {
                let mut budget = Self { replaced };
                budget.prune(now_ms);
                budget
            }
            Err(_) => {
                tracing::warn!("the saved guard-replacement budget is unreadable; treating it as spent for a day");
                let replaced = (0..paths)
                    .flat_map(|path| std::iter::repeat_n(Replacement { path, at_ms: now_ms }, MAX_REPLACEMENTS))
                    .collect();
                Self { replaced }
            }
        }
    }

    /// The form saved in the home.
    pub fn to_text(&self) -> String {
        serde_json::to_string(&self.replaced).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Drops replacements outside the window. One that lies more than a
    /// window in the future (the clock was set back) is dropped too: it
    /// tells nothing about the last day.
    fn prune(&mut self, now_ms: u64) {
        self.replaced
            .retain(|r| r.at_ms.saturating_add(WINDOW_MS) > now_ms && r.at_ms <= now_ms.saturating_add(WINDOW_MS));
        // Keep the newest MAX_REPLACEMENTS per path.
        self.replaced.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
        let mut seen: Vec<(usize, usize)> = Vec::new();
        self.replaced
            .retain(|r| match seen.iter_mut().find(|(p, _)| *p == r.path) {
                Some((_, n)) if *n >= MAX_REPLACEMENTS => false,
                Some((_, n)) => {
                    *n += 1;
                    true
                }
                None => {
                    seen.push((r.path, 1));
                    true
                }
            });
        self.replaced.sort_by_key(|r| r.at_ms);
    }

    fn used(&self, path: usize, now_ms: u64) -> impl Iterator<Item = &Replacement> {
        self.replaced
            .iter()
            .filter(move |r| r.path == path && r.at_ms.saturating_add(WINDOW_MS) > now_ms)
    }

    /// Whether path `path` may get a new guard at `now_ms`.
    pub fn allows(&self, path: usize, now_ms: u64) -> bool {
        self.used(path, now_ms).count() < MAX_REPLACEMENTS
    }

    /// Records that path `path` got a new guard at `now_ms`.
    pub fn record(&mut self, path: usize, now_ms: u64) {
        self.replaced.push(Replacement { path, at_ms: now_ms });
        self.prune(now_ms);
    }

    /// When path `path` may next get a new guard (`now_ms` if it may now).
    pub fn next_allowed(&self, path: usize, now_ms: u64) -> u64 {
        if self.allows(path, now_ms) {
            return now_ms;
        }
        // The oldest replacement in the window frees a place when it leaves.
        self.used(path, now_ms)
            .map(|r| r.at_ms.saturating_add(WINDOW_MS))
            .min()
            .unwrap_or(now_ms)
    }

    /// The replacements in the window: (path, Unix ms), oldest first (for
    /// `allium nodes`).
    pub fn replacements(&self) -> Vec<(usize, u64)> {
        self.replaced.iter().map(|r| (r.path, r.at_ms)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 60 * 60 * 1000;

    #[test]
    fn two_replacements_per_path_per_day() {
        let t = 1_000 * H;
        let mut b = GuardBudget::default();
        assert!(b.allows(0, t) && b.allows(1, t));
        b.record(0, t);
        assert!(b.allows(0, t + 1));
        b.record(0, t + H);
        assert!(!b.allows(0, t + 2 * H), "two in a day is the limit");
        assert!(b.allows(1, t + 2 * H), "the other path has its own budget");
        assert_eq!(b.next_allowed(0, t + 2 * H), t + WINDOW_MS);
        assert!(!b.allows(0, t + WINDOW_MS - 1));
        assert!(b.allows(0, t + WINDOW_MS), "the oldest left the window");
        assert_eq!(b.next_allowed(1, t), t);
    }

    #[test]
    fn the_budget_survives_saving_and_ignores_old_and_absurd_entries() {
        let t = 1_000 * H;
        let mut b = GuardBudget::default();
        b.record(1, t);
        b.record(1, t + 1);
        let text = b.to_text();
        let loaded = GuardBudget::parse(&text, 2, t + 2);
        assert_eq!(loaded, b);
        assert!(!loaded.allows(1, t + 2));
        // A day later the saved entries no longer count, and are dropped.
        let later = GuardBudget::parse(&text, 2, t + 1 + WINDOW_MS);
        assert!(later.allows(1, t + 1 + WINDOW_MS));
        assert!(later.replacements().is_empty());
        // An entry far in the future (the clock was set back) is dropped
        // rather than blocking replacements for longer than a window.
        let future = format!(
            r#"[{{"path":0,"at_ms":{}}},{{"path":0,"at_ms":{}}}]"#,
            t + 3 * WINDOW_MS,
            t
        );
        let b = GuardBudget::parse(&future, 2, t);
        assert!(b.allows(0, t));
        assert_eq!(b.replacements(), vec![(0, t)]);
    }

    #[test]
    fn an_unreadable_budget_counts_as_spent_for_a_day() {
        let t = 1_000 * H;
        for junk in ["", "{", "[1,2]", r#"{"path":0}"#] {
            let b = GuardBudget::parse(junk, 2, t);
            assert!(!b.allows(0, t) && !b.allows(1, t), "{junk:?}");
            assert!(b.allows(0, t + WINDOW_MS), "{junk:?}");
        }
    }

    #[test]
    fn only_the_newest_entries_per_path_are_kept() {
        let t = 1_000 * H;
        let mut b = GuardBudget::default();
        for i in 0..10 {
            b.record(0, t + i);
        }
        assert_eq!(b.replacements(), vec![(0, t + 8), (0, t + 9)]);
    }
}
