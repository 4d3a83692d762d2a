//! `allium devices`: list the account's devices and link new ones
//! (`docs/devices.md`).

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{EXIT_ERROR, EXIT_OK, emit, fmt_time};
use crate::devices::{DeviceReport, PendingLink, fmt_code, fmt_device_id};
use crate::display::escape;
use crate::error::Result;
use crate::messenger::Messenger;

/// `allium devices ...`.
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Ask to link this device to the account (after `allium restore`):
    /// shows a code to compare on the device that approves it, then waits.
    Link {
        /// This device's name, shown on the others.
        #[arg(long)]
        name: Option<String>,
        /// Seconds to wait for the approval (0: do not wait; at most 600,
        /// when the request expires).
        #[arg(long, default_value_t = 600)]
        wait: u64,
    },
    /// Approve a device's link request, after checking that it shows the
    /// same code: it gets this account's forward-secrecy keys.
    Approve {
        /// The device's id (at least 4 of its hex digits).
        id: String,
    },
    /// Take a lost or stolen device off the account: the others stop
    /// sharing keys with it, and a new key is made at once.
    Remove {
        /// The device's id (at least 4 of its hex digits).
        id: String,
    },
    /// Start a new list of devices on this one, when every device that
    /// was on the old list is lost (new keys are published from here;
    /// messages sealed to the old keys stay unreadable).
    Reset,
}

/// How often `devices link` looks for its approval.
const LINK_POLL: Duration = Duration::from_secs(2);

/// `allium devices [link|approve|reset]`.
pub async fn devices(m: &mut Messenger, action: Option<DevicesCommand>, json: bool) -> Result<i32> {
    match action {
        None => {
            let report = m.sync_devices(true, None).await?;
            // Only a device that holds keys can tell another's bundle.
            let foreign_bundles = if m.publishes_keys()? {
                m.foreign_bundles().await?
            } else {
                0
            };
            show(m, &report, foreign_bundles, json)
        }
        Some(DevicesCommand::Link { name, wait }) => link(m, name.as_deref(), wait.min(600), json).await,
        Some(DevicesCommand::Approve { id }) => {
            let (device, shared) = m.approve_link(&id).await?;
            emit(
                json,
                json!({"approved": link_json(m, &device), "keys_shared": shared}),
                || {
                    format!(
                        "Linked {} ({}); {shared} key(s) shared with it.",
                        escape(device.keys.name()),
                        fmt_device_id(&device.keys.sign_pk)
                    )
                },
            );
            Ok(EXIT_OK)
        }
        Some(DevicesCommand::Remove { id }) => {
            let (removed, shared) = m.remove_device(&id).await?;
            let rid = fmt_device_id(&removed.keys.sign_pk);
            emit(
                json,
                json!({"removed": {"device": rid, "name": removed.keys.name()}, "rotated": true, "shared": shared}),
                || {
                    format!(
                        "Removed {} ({rid}); a new key was made and shared with the devices that stay. It still \
                         holds the recovery phrase and the keys it had: if it was stolen, move to a new account.",
                        escape(removed.keys.name())
                    )
                },
            );
            Ok(EXIT_OK)
        }
        Some(DevicesCommand::Reset) => {
            m.become_first_device(true).await?;
            let published = m.publish_keys(true).await?;
            emit(
                json,
                json!({"reset": true, "keys": published.bundle.keys().len()}),
                || "This device starts a new list of the account's devices and published new keys.".to_owned(),
            );
            Ok(EXIT_OK)
        }
    }
}

/// Stores a link request, prints the code, and waits for the approval.
async fn link(m: &mut Messenger, name: Option<&str>, wait_secs: u64, json: bool) -> Result<i32> {
    let (keys, code) = m.request_link(name).await?;
    let id = fmt_device_id(&keys.sign_pk);
    emit(
        json,
        json!({"device": id, "name": keys.name(), "code": fmt_code(code), "waiting_secs": wait_secs}),
        || {
            format!(
                "Link request sent for this device, {} ({id}).\nCode: {}\nOn a device of this account, run \
                 `allium devices`, check that it shows this code, then `allium devices approve {}`.",
                escape(keys.name()),
                fmt_code(code),
                &id[..8]
            )
        },
    );
    if wait_secs == 0 {
        return Ok(EXIT_OK);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(LINK_POLL).await;
        let report = match m.sync_devices(true, None).await {
            Ok(report) => report,
            Err(e) => {
                tracing::debug!(error = %e, "waiting for the link approval");
                continue;
            }
        };
        if let Some(by) = &report.linked_by {
            let by_id = fmt_device_id(&by.sign_pk);
            emit(
                json,
                json!({"linked_by": {"device": by_id, "name": by.name()}, "keys_received": report.imported}),
                || {
                    format!(
                        "Linked by {} ({by_id}); {} key(s) received. Check that `allium devices` on that device \
                         shows {by_id} as itself.",
                        escape(by.name()),
                        report.imported
                    )
                },
            );
            return Ok(EXIT_OK);
        }
    }
    eprintln!("allium: no device approved the link request in time; run `allium devices link` again");
    Ok(EXIT_ERROR)
}

fn link_json(m: &Messenger, p: &PendingLink) -> Value {
    let age_secs = m.network_now().saturating_sub(p.asked_ms) / 1000;
    json!({"device": fmt_device_id(&p.keys.sign_pk), "name": p.keys.name(), "code": fmt_code(p.code), "age_secs": age_secs})
}

/// Prints this device, the devices it trusts, pending link requests and
/// warnings.
fn show(m: &Messenger, report: &DeviceReport, foreign_bundles: usize, json: bool) -> Result<i32> {
    let me = m.home.device_secret()?.map(|d| d.keys().sign_pk);
    let linked = m.is_linked()?;
    let devices = m.devices()?;
    let requests: Vec<Value> = report.requests.iter().map(|p| link_json(m, p)).collect();
    let listed: Vec<Value> = devices
        .iter()
        .map(|d| {
            json!({
                "device": fmt_device_id(&d.keys.sign_pk),
                "name": d.keys.name(),
                "this_device": Some(d.keys.sign_pk) == me,
                "vouched_by": d.vouched_by.as_ref().map(fmt_device_id),
                "trusted_ms": d.trusted_ms,
            })
        })
        .collect();
    emit(
        json,
        json!({"linked": linked, "devices": listed, "requests": requests, "foreign_records": report.foreign,
               "keys_received": report.imported, "removed_here": report.removed_self,
               "foreign_bundles": foreign_bundles}),
        || {
            let mut text = String::new();
            if linked {
                text.push_str("Devices of this account:");
                for d in &devices {
                    let this = if Some(d.keys.sign_pk) == me {
                        "  (this device)"
                    } else {
                        ""
                    };
                    text.push_str(&format!(
                        "\n  {}  {}  since {}{this}",
                        fmt_device_id(&d.keys.sign_pk),
                        escape(d.keys.name()),
                        fmt_time(d.trusted_ms)
                    ));
                }
            } else {
                text.push_str(
                    "This device is not linked: messages sealed with forward secrecy to the account's other \
                     devices cannot be read here. Run `allium devices link`.",
                );
            }
            for p in &report.requests {
                text.push_str(&format!(
                    "\nLink request from {} ({}), code {}: if your new device shows this code, run `allium devices \
                     approve {}`",
                    escape(p.keys.name()),
                    fmt_device_id(&p.keys.sign_pk),
                    fmt_code(p.code),
                    &fmt_device_id(&p.keys.sign_pk)[..8]
                ));
            }
            if report.removed_self {
                text.push_str("\nThis device was removed from the account by another device: its keys are deleted.");
            }
            if report.imported > 0 {
                text.push_str(&format!("\n{} key(s) received from other devices.", report.imported));
            }
            text
        },
    );
    if linked {
        warn_foreign(report);
    }
    warn_foreign_bundles(foreign_bundles);
    Ok(EXIT_OK)
}

/// Says so when the account's public namespace holds key bundles naming
/// keys this device does not hold.
pub fn warn_foreign_bundles(count: usize) {
    if count > 0 {
        eprintln!(
            "allium: warning: {count} key bundle(s) published for this account name keys this device does not \
             hold: published by someone else who has the recovery phrase, or by a device whose keys never \
             reached this one. Senders may seal new messages to them."
        );
    }
}

/// Tells of devices asking to be linked (during `inbox` and `watch`).
pub fn note_requests(report: &DeviceReport) {
    for p in &report.requests {
        let id = fmt_device_id(&p.keys.sign_pk);
        eprintln!(
            "allium: a device asks to be linked to this account: {} ({id}), code {}. If it is yours and shows this              code, run `allium devices approve {}`.",
            escape(p.keys.name()),
            fmt_code(p.code),
            &id[..8]
        );
    }
}

/// Says so when records signed by unknown devices are in the account's
/// swarm: only someone with the recovery phrase can write there.
pub fn warn_foreign(report: &DeviceReport) {
    if report.foreign > 0 {
        eprintln!(
            "allium: warning: {} device record(s) in this account's swarm are signed by devices this one does not \
             trust. Only someone with the recovery phrase can write them: another device restored from it, or \
             someone who learnt it.",
            report.foreign
        );
    }
}
