//! This device's account keys for envelope v2 (`docs/envelope-v2.md`,
//! `crate::keyring`): their secrets, windows and rotation times.

use allium_common::AccountId;
use allium_common::keys::{AccountKeyPair, KeyId};
use allium_common::sodium::Secret32;
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::error::Result;
use super::{Home, to_i64};
use crate::keyring::HeldKey;

impl Home {
    /// Every account key this device holds, oldest first.
    pub fn account_keys(&self) -> Result<Vec<HeldKey>> {
        const OP: &str = "listing the account keys";
        let rows: Vec<(Vec<u8>, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT key_id, valid_from_ms, valid_until_ms, rotate_at_ms FROM account_keys ORDER BY valid_from_ms",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(self.db_err(OP))?;
        rows.into_iter()
            .map(|(id, from, until, rotate)| {
                let num = |v: i64| u64::try_from(v).map_err(|_| self.corrupt("account key", format!("time {v}")));
                Ok(HeldKey {
                    key_id: KeyId::try_from(id.as_slice())
                        .map_err(|_| self.corrupt("account key", "a key id is not 8 bytes".to_owned()))?,
                    valid_from_ms: num(from)?,
                    valid_until_ms: num(until)?,
                    rotate_at_ms: num(rotate)?,
                })
            })
            .collect()
    }

    /// The key pair of `key_id`, if this device still holds it.
    pub fn account_key(&self, key_id: &KeyId) -> Result<Option<AccountKeyPair>> {
        Ok(self
            .account_key_secret(key_id)?
            .map(|seed| AccountKeyPair::from_seed(&seed)))
    }

    /// The secret key of `key_id` (for opening envelopes), if held: read
    /// as it is stored, without deriving the public key (this is on the
    /// path of every v2 message opened).
    pub fn account_key_secret(&self, key_id: &KeyId) -> Result<Option<Secret32>> {
        let secret: Option<Zeroizing<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT secret FROM account_keys WHERE key_id = ?1",
                [key_id.as_slice()],
                |r| r.get::<_, Vec<u8>>(0).map(Zeroizing::new),
            )
            .optional()
            .map_err(self.db_err("reading an account key"))?;
        secret
            .map(|bytes| {
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map(Zeroizing::new)
                    .map_err(|_| self.corrupt("account key", "a secret is not 32 bytes".to_owned()))
            })
            .transpose()
    }

    /// Keeps a new key pair with its window and rotation time.
    pub fn add_account_key(
        &mut self,
        pair: &AccountKeyPair,
        valid_from_ms: u64,
        valid_until_ms: u64,
        rotate_at_ms: u64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO account_keys (key_id, secret, valid_from_ms, valid_until_ms, rotate_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    pair.key_id().as_slice(),
                    pair.secret_key().as_slice(),
                    to_i64("valid from", valid_from_ms)?,
                    to_i64("valid until", valid_until_ms)?,
                    to_i64("rotate at", rotate_at_ms)?
                ],
            )
            .map_err(self.db_err("keeping an account key"))?;
        Ok(())
    }

    /// The cached bundle of `account` (unchecked: verify before use) and
    /// when it was fetched (local clock, Unix ms).
    pub fn cached_bundle(&self, account: &AccountId) -> Result<Option<(Vec<u8>, u64)>> {
        let row: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT bundle, fetched_ms FROM bundle_cache WHERE account = ?1",
                [account.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.db_err("reading a cached key bundle"))?;
        Ok(row.map(|(bytes, at)| (bytes, u64::try_from(at).unwrap_or(0))))
    }

    /// Caches `bundle` (encoded) of `account`, fetched at `fetched_ms`.
    pub fn cache_bundle(&mut self, account: &AccountId, bundle: &[u8], fetched_ms: u64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO bundle_cache (account, bundle, fetched_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account) DO UPDATE SET bundle = excluded.bundle, fetched_ms = excluded.fetched_ms",
                params![account.to_string(), bundle, to_i64("fetch time", fetched_ms)?],
            )
            .map_err(self.db_err("caching a key bundle"))?;
        Ok(())
    }

    /// Forgets that `account` had no bundle (it wrote: it may have
    /// published one since).
    pub fn forget_no_bundle(&mut self, account: &AccountId) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM bundle_cache WHERE account = ?1 AND length(bundle) = 0",
                [account.to_string()],
            )
            .map_err(self.db_err("forgetting that an account had no key bundle"))?;
        Ok(())
    }

    /// Deletes the secrets of `key_ids` (their retention ended).
    pub fn delete_account_keys(&mut self, key_ids: &[KeyId]) -> Result<()> {
        const OP: &str = "deleting account keys";
        let tx = self.immediate_tx(OP)?;
        for id in key_ids {
            tx.execute("DELETE FROM account_keys WHERE key_id = ?1", [id.as_slice()])
                .map_err(self.db_err(OP))?;
        }
        tx.commit().map_err(self.db_err(OP))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_home;
    use super::*;

    #[test]
    fn keys_are_kept_read_back_and_deleted() {
        let (_dir, mut home) = temp_home(1);
        let a = AccountKeyPair::from_seed(&[1; 32]);
        let b = AccountKeyPair::from_seed(&[2; 32]);
        home.add_account_key(&b, 200, 300, 250).unwrap();
        home.add_account_key(&a, 100, 200, 150).unwrap();
        let held = home.account_keys().unwrap();
        assert_eq!(
            held.iter().map(|k| k.key_id).collect::<Vec<_>>(),
            [a.key_id(), b.key_id()]
        );
        assert_eq!(held[0].rotate_at_ms, 150);
        let back = home.account_key(&a.key_id()).unwrap().unwrap();
        assert_eq!(
            back.public_key(),
            a.public_key(),
            "the public key follows from the stored seed"
        );
        home.delete_account_keys(&[a.key_id()]).unwrap();
        assert!(home.account_key(&a.key_id()).unwrap().is_none());
        assert!(home.account_key_secret(&b.key_id()).unwrap().is_some());
        assert_eq!(home.account_keys().unwrap().len(), 1);
    }
}
