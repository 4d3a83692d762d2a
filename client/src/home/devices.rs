//! This device's own keys and the account's devices it trusts
//! (`docs/devices.md`, `crate::devices`).

use allium_common::devices::{DeviceKeys, DeviceSecret};
use allium_common::sodium::XwingPublicKey;
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::error::Result;
use super::{Home, to_i64};

/// A device this one trusts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    /// Its public keys and name.
    pub keys: DeviceKeys,
    /// The device that vouched for it: approved it, or listed it on a list
    /// this one trusted. `None` for this device itself, and for the first
    /// device of an account (it vouches for itself).
    pub vouched_by: Option<[u8; 32]>,
    /// Since when this device trusts it (local clock, Unix ms).
    pub trusted_ms: u64,
}

type DeviceRow = (Vec<u8>, Vec<u8>, String, i64, Option<Vec<u8>>, i64);
/// This device's seeds, name and creation time, as stored.
type SecretRow = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>, String, i64);

impl Home {
    /// This device's own keys, if it made them.
    pub fn device_secret(&self) -> Result<Option<DeviceSecret>> {
        let row: Option<SecretRow> = self
            .conn
            .query_row(
                "SELECT sign_seed, xwing_seed, name, created_ms FROM device WHERE id = 1",
                [],
                |r| {
                    Ok((
                        Zeroizing::new(r.get(0)?),
                        Zeroizing::new(r.get(1)?),
                        r.get(2)?,
                        r.get(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.db_err("reading this device's keys"))?;
        let Some((sign, xwing, name, created)) = row else {
            return Ok(None);
        };
        let seed = |bytes: &[u8]| {
            <[u8; 32]>::try_from(bytes)
                .map(Zeroizing::new)
                .map_err(|_| self.corrupt("device keys", "a seed is not 32 bytes"))
        };
        let (sign, xwing) = (seed(&sign)?, seed(&xwing)?);
        Ok(Some(DeviceSecret::from_seeds(
            &sign,
            &xwing,
            &name,
            u64::try_from(created).unwrap_or(0),
        )))
    }

    /// Keeps this device's keys, unless it has some already; returns the
    /// keys it keeps (another process may have made them first).
    pub fn keep_device_secret(&mut self, device: &DeviceSecret) -> Result<DeviceSecret> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO device (id, sign_seed, xwing_seed, name, created_ms) VALUES (1, ?1, ?2, ?3, ?4)",
                params![
                    device.sign_seed().as_slice(),
                    device.xwing_secret().as_slice(),
                    device.keys().name(),
                    to_i64("device creation time", device.keys().created_ms)?
                ],
            )
            .map_err(self.db_err("keeping this device's keys"))?;
        self.device_secret()?
            .ok_or_else(|| self.corrupt("device keys", "kept but not found"))
    }

    /// The devices this one trusts, oldest trust first.
    pub fn trusted_devices(&self) -> Result<Vec<TrustedDevice>> {
        let rows: Vec<DeviceRow> = self
            .conn
            .prepare_cached(
                "SELECT sign_pk, xwing_pk, name, created_ms, vouched_by, trusted_ms FROM devices ORDER BY trusted_ms, sign_pk",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?
                .collect()
            })
            .map_err(self.db_err("listing the account's devices"))?;
        rows.into_iter()
            .map(|(sign, xwing, name, created, vouched, trusted)| {
                let bad = |what: &str| self.corrupt("device", format!("{what} has the wrong length"));
                let sign_pk = <[u8; 32]>::try_from(sign.as_slice()).map_err(|_| bad("a device key"))?;
                let xwing_pk = XwingPublicKey::try_from(xwing.as_slice()).map_err(|_| bad("an X-Wing key"))?;
                let vouched_by = vouched
                    .map(|v| <[u8; 32]>::try_from(v.as_slice()).map_err(|_| bad("a voucher")))
                    .transpose()?;
                Ok(TrustedDevice {
                    keys: DeviceKeys::new(sign_pk, xwing_pk, &name, u64::try_from(created).unwrap_or(0)),
                    vouched_by,
                    trusted_ms: u64::try_from(trusted).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Trusts `devices` (those not trusted yet, and never removed),
    /// vouched for by `vouched_by`, from `now_ms`; returns how many were
    /// new.
    pub fn trust_devices(
        &mut self,
        devices: &[DeviceKeys],
        vouched_by: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<usize> {
        const OP: &str = "trusting devices";
        let tx = self.immediate_tx(OP)?;
        let mut added = 0;
        for d in devices {
            added += tx
                .execute(
                    "INSERT OR IGNORE INTO devices (sign_pk, xwing_pk, name, created_ms, vouched_by, trusted_ms)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6
                     WHERE NOT EXISTS (SELECT 1 FROM removed_devices WHERE sign_pk = ?1)",
                    params![
                        d.sign_pk.as_slice(),
                        d.xwing_pk.as_slice(),
                        d.name(),
                        to_i64("device creation time", d.created_ms)?,
                        vouched_by.as_ref().map(<[u8; 32]>::as_slice),
                        to_i64("trust time", now_ms)?
                    ],
                )
                .map_err(self.db_err(OP))?;
        }
        tx.commit().map_err(self.db_err(OP))?;
        Ok(added)
    }

    /// Takes `device` off the account for good (removed by `by` at
    /// `now_ms`); returns whether it was trusted until now.
    pub fn remove_device(&mut self, device: &[u8; 32], by: &[u8; 32], now_ms: u64) -> Result<bool> {
        const OP: &str = "removing a device";
        let tx = self.immediate_tx(OP)?;
        tx.execute(
            "INSERT OR IGNORE INTO removed_devices (sign_pk, removed_by, removed_ms) VALUES (?1, ?2, ?3)",
            params![device.as_slice(), by.as_slice(), to_i64("removal time", now_ms)?],
        )
        .map_err(self.db_err(OP))?;
        let was = tx
            .execute("DELETE FROM devices WHERE sign_pk = ?1", [device.as_slice()])
            .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        Ok(was > 0)
    }

    /// Whether `device` was taken off the account.
    pub fn is_removed(&self, device: &[u8; 32]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM removed_devices WHERE sign_pk = ?1",
                [device.as_slice()],
                |_| Ok(()),
            )
            .optional()
            .map_err(self.db_err("reading the removed devices"))?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_home;
    use super::*;

    #[test]
    fn the_device_keys_are_made_once_and_read_back() {
        let (_dir, mut home) = temp_home(1);
        assert!(home.device_secret().unwrap().is_none());
        let first = DeviceSecret::from_seeds(&[1; 32], &[2; 32], "laptop", 5);
        let kept = home.keep_device_secret(&first).unwrap();
        assert_eq!(kept.keys(), first.keys());
        let second = DeviceSecret::from_seeds(&[3; 32], &[4; 32], "other", 6);
        assert_eq!(
            home.keep_device_secret(&second).unwrap().keys(),
            first.keys(),
            "a device's keys are never replaced"
        );
        assert_eq!(home.device_secret().unwrap().unwrap().keys(), first.keys());
    }

    #[test]
    fn trusted_devices_are_added_once_with_their_voucher() {
        let (_dir, mut home) = temp_home(1);
        let a = DeviceSecret::from_seeds(&[1; 32], &[2; 32], "a", 5);
        let b = DeviceSecret::from_seeds(&[3; 32], &[4; 32], "b", 6);
        assert_eq!(home.trust_devices(&[a.keys().clone()], None, 10).unwrap(), 1);
        let by_a = Some(a.keys().sign_pk);
        assert_eq!(
            home.trust_devices(&[a.keys().clone(), b.keys().clone()], by_a, 20)
                .unwrap(),
            1
        );
        let all = home.trusted_devices().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (&all[0].keys, all[0].vouched_by, all[0].trusted_ms),
            (a.keys(), None, 10)
        );
        assert_eq!((&all[1].keys, all[1].vouched_by), (b.keys(), by_a));
    }

    #[test]
    fn a_removed_device_is_never_trusted_again() {
        let (_dir, mut home) = temp_home(1);
        let a = DeviceSecret::from_seeds(&[1; 32], &[2; 32], "a", 5);
        let b = DeviceSecret::from_seeds(&[3; 32], &[4; 32], "b", 6);
        home.trust_devices(&[a.keys().clone(), b.keys().clone()], None, 10)
            .unwrap();
        assert!(home.remove_device(&b.keys().sign_pk, &a.keys().sign_pk, 20).unwrap());
        assert!(home.is_removed(&b.keys().sign_pk).unwrap());
        assert_eq!(home.trusted_devices().unwrap().len(), 1);
        assert_eq!(
            home.trust_devices(&[b.keys().clone()], Some(a.keys().sign_pk), 30)
                .unwrap(),
            0,
            "a list that still names it does not bring it back"
        );
        assert!(!home.remove_device(&b.keys().sign_pk, &a.keys().sign_pk, 40).unwrap());
    }
}
