//! `allium disappear`, `unsend` and `wipe`.

use std::io::BufRead as _;

use allium_common::content::{Disappear, DisappearAfter};
use serde_json::json;

use super::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK, emit, recipient};
use crate::disappear::{format_duration, parse_duration};
use crate::display::escape;
use crate::error::{Error, Result};
use crate::messenger::{Delivery, Messenger};

/// Parses `off`, `after-send DURATION` or `after-read DURATION`.
pub fn parse_rule(mode: &str, duration: Option<&str>) -> Result<Option<Disappear>> {
    let after = match mode {
        "off" => {
            return match duration {
                None => Ok(None),
                Some(_) => Err(Error::Usage("`off` takes no duration".into())),
            };
        }
        "after-send" => DisappearAfter::Send,
        "after-read" => DisappearAfter::Read,
        other => {
            return Err(Error::Usage(format!(
                "{:?}: the setting is off, after-send DURATION or after-read DURATION",
                escape(other)
            )));
        }
    };
    let duration = duration.ok_or_else(|| Error::Usage(format!("{mode} needs a duration (30s, 10m, 12h, 1d, 2w)")))?;
    let ms = parse_duration(duration).map_err(Error::Usage)?;
    Ok(Some(Disappear { after, ms }))
}

/// How a rule reads.
pub fn describe(rule: Option<Disappear>) -> String {
    match rule {
        None => "off".to_owned(),
        Some(Disappear { after, ms }) => {
            let from = if after == DisappearAfter::Send { "send" } else { "read" };
            format!("{} after {from}", format_duration(ms))
        }
    }
}

/// `allium disappear WHO off|after-send DURATION|after-read DURATION`.
pub async fn disappear(m: &mut Messenger, who: &str, mode: &str, duration: Option<&str>, json: bool) -> Result<i32> {
    let with = recipient(&m.book()?, who)?;
    let rule = parse_rule(mode, duration)?;
    let delivery = m.set_disappearing(with, rule).await?;
    super::account::sync_quietly(m).await;
    let told = matches!(delivery, Delivery::Stored(_));
    emit(
        json,
        json!({"with": with.to_string(), "disappearing": rule, "told": told}),
        || {
            format!(
                "messages with {with} now disappear: {}{}",
                describe(rule),
                if told {
                    ""
                } else {
                    " (telling them is still in the outbox)"
                }
            )
        },
    );
    Ok(if matches!(delivery, Delivery::Failed(_)) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// `allium mute WHO [--off]`.
pub async fn mute(m: &mut Messenger, who: &str, muted: bool, json: bool) -> Result<i32> {
    let with = recipient(&m.book()?, who)?;
    m.edit_account_state(crate::convo::CONVERSATIONS, |state, stamp| {
        crate::convo::set_muted(state, &with, muted, stamp);
    })?;
    super::account::sync_quietly(m).await;
    emit(json, json!({"with": with.to_string(), "muted": muted}), || {
        format!("{} {with}", if muted { "muted" } else { "unmuted" })
    });
    Ok(EXIT_OK)
}

/// `allium unsend HASH`.
pub async fn unsend(m: &mut Messenger, hash: &str, json: bool) -> Result<i32> {
    if m.home.sent_to(hash)?.is_none() && m.home.group_message(hash)?.is_some() {
        let (group, chunks) = m.unsend_group_message(hash).await?;
        emit(
            json,
            json!({"unsent": hash, "group": group.to_string(), "chunks_deleted": chunks}),
            || {
                let chunks = match chunks {
                    0 => String::new(),
                    n => format!(" and {n} file chunk(s)"),
                };
                format!("deleted from the group's swarm{chunks}; members who fetched it keep their copy")
            },
        );
        return Ok(EXIT_OK);
    }
    let unsent = m.unsend(hash).await?;
    let told = matches!(unsent.delivery, Delivery::Stored(_));
    emit(
        json,
        json!({"unsent": hash, "to": unsent.to.to_string(), "told": told, "chunks_deleted": unsent.chunks_deleted}),
        || {
            let chunks = match unsent.chunks_deleted {
                0 => String::new(),
                n => format!(" ({n} file chunk(s) deleted from the network)"),
            };
            if told {
                format!("asked {}'s devices to delete it; deleted here{chunks}", unsent.to)
            } else {
                format!(
                    "deleted here; asking {}'s devices is still in the outbox{chunks}",
                    unsent.to
                )
            }
        },
    );
    Ok(EXIT_OK)
}

/// `allium wipe [--yes]`: asks for `yes` on standard input unless `yes`.
pub async fn wipe(m: &mut Messenger, yes: bool, json: bool) -> Result<i32> {
    if !yes {
        eprintln!(
            "This deletes everything account {} has on the network: messages waiting for it, copies of what it sent, \
             its profile and contacts. This device keeps its own copy. Type `yes` to go on:",
            m.home.account_id()
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
        if answer.trim() != "yes" {
            eprintln!("allium: nothing deleted");
            return Ok(EXIT_NOTHING);
        }
    }
    let deleted = m.wipe().await?;
    emit(json, json!({"wiped": true, "deleted": deleted}), || {
        format!("deleted {deleted} message(s) from the network")
    });
    Ok(EXIT_OK)
}
