//! Choosing the envelope for a message (`docs/envelope-v2.md`): v2, sealed
//! to the recipient's current published key, when a fresh enough bundle
//! of it is at hand; else v1 (no forward secrecy), which the history
//! marks.

use allium_common::content::Content;
use allium_common::keys::{KeyBundle, PublishedKey, UnverifiedKeyBundle};
use allium_common::{AccountId, envelope, envelope_v2, sodium};

use crate::error::Result;
use crate::messenger::Messenger;
use crate::now_ms;

/// A cached bundle younger than this is used without asking again.
pub const FRESH_MS: u64 = 24 * 3_600_000;
/// A cached bundle up to this old is used when a refresh fails; an older
/// one is not used at all (the recipient may have deleted its keys).
pub const STALE_MS: u64 = 48 * 3_600_000;
/// That an account has no bundle is remembered this long, so writing to
/// it does not cost a fetch per message; an account that just published
/// keys gets v1 from this sender for up to this long.
pub const NO_BUNDLE_FOR_MS: u64 = 3_600_000;

/// Whether a bundle fetched `age_ms` ago is used as it is, used if a
/// refresh fails, or not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than [`FRESH_MS`].
    Fresh,
    /// Between [`FRESH_MS`] and [`STALE_MS`]: refresh, else use it.
    Stale,
    /// Older: refresh, else seal v1.
    Expired,
}

/// How a bundle fetched `age_ms` ago may be used.
pub const fn freshness(age_ms: u64) -> Freshness {
    if age_ms < FRESH_MS {
        Freshness::Fresh
    } else if age_ms < STALE_MS {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

impl Messenger {
    /// The bundle of `to` to seal with: the cached one if fresh; else,
    /// with `fetch`, one fetched now (cached), falling back to a stale
    /// cached one if that fails; `None` if there is none to use. That `to`
    /// published none is remembered for [`NO_BUNDLE_FOR_MS`] (measured: a
    /// fetch per message to such an account cost 1.8 ms of 1.9 on a
    /// devnet, a whole onion round trip on a real network).
    pub async fn bundle_for(&mut self, to: &AccountId, fetch: bool) -> Result<Option<KeyBundle>> {
        let now = self.network_now();
        let row = self.home.cached_bundle(to)?;
        // An empty entry records that there was no bundle.
        if let Some((bytes, fetched)) = &row
            && bytes.is_empty()
            && now_ms().saturating_sub(*fetched) < NO_BUNDLE_FOR_MS
        {
            return Ok(None);
        }
        let cached = row.and_then(|(bytes, fetched)| {
            let bundle = UnverifiedKeyBundle::decode(&bytes).ok()?.verify(to, now).ok()?;
            Some((bundle, freshness(now_ms().saturating_sub(fetched))))
        });
        let stale = match cached {
            Some((bundle, Freshness::Fresh)) => return Ok(Some(bundle)),
            Some((bundle, Freshness::Stale)) => Some(bundle),
            _ => None,
        };
        if !fetch {
            return Ok(stale);
        }
        match self.fetch_bundle(to).await {
            Ok(Some(bundle)) => {
                self.home.cache_bundle(to, &bundle.encode(), now_ms())?;
                Ok(Some(bundle))
            }
            Ok(None) => {
                if stale.is_none() {
                    self.home.cache_bundle(to, &[], now_ms())?;
                }
                Ok(stale)
            }
            Err(e) => {
                // A node of protocol 4 does not know retrieve_public; the
                // network may be down: v1, or the stale bundle, either way.
                tracing::debug!(error = %e, "no key bundle fetched");
                Ok(stale)
            }
        }
    }

    /// Seals `content` to `to`: v2 if a usable bundle is at hand (fetched
    /// now if `fetch`), else v1. Returns the envelope and its version.
    ///
    /// To this account itself (copies of sent messages, notices to its
    /// other devices) it is v2 to the current key this device holds, which
    /// every linked device holds too; v1 when it holds none.
    pub async fn seal_for(&mut self, to: &AccountId, content: &Content, fetch: bool) -> Result<(Vec<u8>, u8)> {
        let now = self.network_now();
        if *to == self.home.account_id() {
            if self.forward_secrecy
                && let Some(key) = self.own_current_key(now)?
            {
                let data = envelope_v2::seal(self.home.identity(), to, &key, content, &sodium::random_array())
                    .map_err(allium_common::Error::from)?;
                return Ok((data, envelope_v2::ENVELOPE_V2));
            }
        } else if let Some(bundle) = self.bundle_for(to, fetch).await?
            && let Some(key) = bundle.current_key(now)
        {
            let data = envelope_v2::seal(self.home.identity(), to, key, content, &sodium::random_array())
                .map_err(allium_common::Error::from)?;
            return Ok((data, envelope_v2::ENVELOPE_V2));
        }
        let data = envelope::seal(self.home.identity(), to, content, &sodium::random_array())
            .map_err(allium_common::Error::from)?;
        Ok((data, envelope::ENVELOPE_V1))
    }
}

impl Messenger {
    /// The current key of the keys this device holds, as a sender would
    /// find it in the account's bundle.
    fn own_current_key(&self, now: u64) -> Result<Option<PublishedKey>> {
        let held = self.home.account_keys()?;
        let Some(current) = held
            .iter()
            .rev()
            .find(|k| k.valid_from_ms <= now && now < k.valid_until_ms)
        else {
            return Ok(None);
        };
        Ok(self
            .home
            .account_key(&current.key_id)?
            .map(|pair| pair.publish(current.valid_from_ms, current.valid_until_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_fresh_for_a_day_usable_for_two_and_then_not() {
        assert_eq!(freshness(0), Freshness::Fresh);
        assert_eq!(freshness(FRESH_MS - 1), Freshness::Fresh);
        assert_eq!(freshness(FRESH_MS), Freshness::Stale);
        assert_eq!(freshness(STALE_MS - 1), Freshness::Stale);
        assert_eq!(freshness(STALE_MS), Freshness::Expired);
    }
}
