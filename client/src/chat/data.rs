//! What the screen shows, read from the home: the conversation list and
//! a conversation's messages. The home is the one truth; the network
//! tasks write it and the screen reads it again when they say so.

use allium_common::AccountId;

use super::model::{ConvKey, Mark, Message, Summary};
use crate::book::{Book, Contact};
use crate::error::Result;
use crate::files::FileNote;
use crate::home::{Direction, Home, ReceiptLevel};

/// Most messages of one conversation held on screen (older ones stay in
/// the home: `allium history`).
pub const MAX_LOADED: usize = 20_000;

/// How an account is named ([`crate::display::account_label`]; else the
/// start of its ID).
pub fn name_of(id: &AccountId, contact: Option<&Contact>) -> String {
    let (nickname, chosen) = contact.map_or((None, None), |c| (c.nickname.as_deref(), c.display_name.as_deref()));
    crate::display::account_label(id, nickname, chosen).unwrap_or_else(|| format!("{}…", &id.to_string()[..10]))
}

/// The first line of `body`, for the list.
fn first_line(body: &str) -> String {
    body.lines().next().unwrap_or_default().chars().take(80).collect()
}

/// The conversation list: contacts and groups, the most recent first,
/// then the message requests.
pub fn conversations(home: &Home) -> Result<Vec<Summary>> {
    let book = Book::of(home)?;
    let mut out = Vec::new();
    for (id, contact) in book.iter().filter(|(_, c)| c.approved && !c.blocked) {
        let last = home
            .history(Some(id), 1)?
            .pop()
            .map(|e| (e.sent_ts, first_line(&e.body)));
        out.push(Summary {
            key: ConvKey::Peer(*id),
            name: name_of(id, Some(contact)),
            request: false,
            last,
            disappearing: contact.disappearing,
        });
    }
    for group in home.groups()?.into_iter().filter(|g| g.joined) {
        let last = home
            .group_history(Some(&group.id), 1)?
            .pop()
            .map(|e| (e.sent_ms, first_line(&e.body)));
        out.push(Summary {
            key: ConvKey::Group(group.id),
            name: group.name,
            request: false,
            last,
            disappearing: None,
        });
    }
    out.sort_by(|a, b| {
        b.last
            .as_ref()
            .map(|l| l.0)
            .cmp(&a.last.as_ref().map(|l| l.0))
            .then(a.name.cmp(&b.name))
    });
    for request in crate::requests::requests_in(home, 1)? {
        let last = request.messages.last().map(|e| (e.sent_ts, first_line(&e.body)));
        out.push(Summary {
            key: ConvKey::Peer(request.from),
            name: name_of(&request.from, book.get(&request.from)),
            request: true,
            last,
            disappearing: None,
        });
    }
    Ok(out)
}

/// The last `limit` messages of a conversation, oldest first, then those
/// still in the outbox.
pub fn messages(home: &Home, key: &ConvKey, limit: usize) -> Result<Vec<Message>> {
    let book = Book::of(home)?;
    let me = home.account_id();
    let mut out = Vec::new();
    match key {
        ConvKey::Peer(peer) => {
            let name = name_of(peer, book.get(peer));
            for e in home.history(Some(peer), limit.min(MAX_LOADED))? {
                let mine = e.direction == Direction::Outgoing;
                out.push(Message {
                    files: FileNote::of(&home.files_of(&e.hash)?),
                    hash: Some(e.hash),
                    mine,
                    sender: if mine { "you".to_owned() } else { name.clone() },
                    sent_ms: e.sent_ts,
                    body: e.body,
                    mark: match (mine, e.receipt) {
                        (false, _) => Mark::Incoming,
                        (true, ReceiptLevel::Read) => Mark::Read,
                        (true, ReceiptLevel::Delivered) => Mark::Delivered,
                        (true, _) => Mark::Stored,
                    },
                    expires_ms: e.expires_ms,
                    notice: false,
                });
            }
            for item in home
                .outbox_pending()?
                .into_iter()
                .filter(|i| i.to == *peer && !i.control)
            {
                out.push(Message {
                    hash: None,
                    mine: true,
                    sender: "you".to_owned(),
                    sent_ms: item.created_ms,
                    body: item.body,
                    files: Vec::new(),
                    mark: Mark::Pending(item.last_error.unwrap_or_else(|| "not tried yet".to_owned())),
                    expires_ms: None,
                    notice: false,
                });
            }
        }
        ConvKey::Group(group) => {
            for e in home.group_history(Some(group), limit.min(MAX_LOADED))? {
                let mine = e.sender == me;
                let leave = e.kind == "leave";
                out.push(Message {
                    files: FileNote::of(&home.files_of(&e.hash)?),
                    hash: Some(e.hash),
                    mine,
                    sender: if mine {
                        "you".to_owned()
                    } else {
                        name_of(&e.sender, book.get(&e.sender))
                    },
                    sent_ms: e.sent_ms,
                    body: if leave { "left the group".to_owned() } else { e.body },
                    mark: if mine { Mark::Stored } else { Mark::Incoming },
                    expires_ms: None,
                    notice: leave,
                });
            }
        }
    }
    Ok(out)
}

/// Messages the user wrote that wait in the outbox.
pub fn outbox_count(home: &Home) -> Result<usize> {
    Ok(home.outbox_pending()?.iter().filter(|i| !i.control).count())
}
