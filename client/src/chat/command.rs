//! Slash commands: what the user typed after `/`, read against what is on
//! screen (the open conversation, the selected message) into a
//! [`Command`] the event loop carries out with the same library calls as
//! the subcommands. Reading does no I/O.

use std::path::PathBuf;

use allium_common::AccountId;
use allium_common::content::Disappear;
use allium_common::group::GroupId;

use super::model::{ConvKey, Message};

/// What a command may refer to without naming it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The open conversation.
    pub open: Option<ConvKey>,
    /// Whether it is a message request.
    pub request: bool,
    /// The selected message.
    pub selected: Option<Message>,
    /// This account's last stored message in it.
    pub last_mine: Option<Message>,
    /// Its last message with files.
    pub last_with_files: Option<Message>,
}

/// A command to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Add a contact: a name for an Account ID.
    Add {
        /// The name.
        name: String,
        /// The account.
        account: AccountId,
    },
    /// Block (or unblock) an account.
    Block {
        /// Whom.
        account: AccountId,
        /// Block, or unblock.
        on: bool,
    },
    /// Accept a message request, naming the sender.
    Accept {
        /// Whose.
        account: AccountId,
        /// The contact name to give.
        name: Option<String>,
    },
    /// Decline a message request.
    Decline {
        /// Whose.
        account: AccountId,
    },
    /// Create a group with members (contact names or Account IDs).
    GroupCreate {
        /// Its name.
        name: String,
        /// Who is invited.
        members: Vec<String>,
    },
    /// Invite members to a group.
    GroupAdd {
        /// Which.
        group: GroupId,
        /// Who.
        members: Vec<String>,
    },
    /// Remove members from a group.
    GroupRemove {
        /// Which.
        group: GroupId,
        /// Who.
        members: Vec<String>,
    },
    /// Leave a group.
    GroupLeave {
        /// Which.
        group: GroupId,
    },
    /// Send a file (with text).
    File {
        /// Where.
        to: ConvKey,
        /// The file.
        path: PathBuf,
        /// Text to go with it.
        text: String,
    },
    /// Save a message's files.
    Save {
        /// The message.
        hash: String,
        /// Only this file.
        index: Option<u32>,
        /// Where (default: the download directory).
        dir: Option<PathBuf>,
    },
    /// Set the disappearing-messages rule of a conversation.
    Disappear {
        /// With whom.
        account: AccountId,
        /// The rule (none: off).
        rule: Option<Disappear>,
    },
    /// Take back a sent message.
    Unsend {
        /// Its hash.
        hash: String,
    },
    /// Set this account's display name.
    Name(String),
}

/// The commands, for the help screen: usage and what it does.
pub const HELP: &[(&str, &str)] = &[
    ("/add NAME ID", "add a contact (then /open NAME)"),
    ("/accept [NAME]", "accept this message request"),
    ("/decline", "decline this message request"),
    ("/block, /unblock", "block or unblock this account"),
    ("/group create NAME MEMBER…", "create a group"),
    ("/group add|remove MEMBER…", "change this group's members (admins)"),
    ("/group leave", "leave this group"),
    ("/file PATH [TEXT]", "send a file (\"quote\" a path with spaces)"),
    ("/save [N] [DIR]", "save the selected (or last) message's files"),
    (
        "/disappear off|after-send D|after-read D",
        "disappearing messages (30s … 2w)",
    ),
    ("/unsend", "take back the selected (or your last) message"),
    ("/open NAME", "open a conversation by (the start of) its name"),
    ("/reply TEXT", "answer quoting the selected message"),
    ("/find TEXT", "find TEXT in older messages"),
    ("/name NAME", "set your display name"),
    ("/quit", "leave (also Ctrl-C)"),
];

fn peer(ctx: &Context, what: &str) -> Result<AccountId, String> {
    match &ctx.open {
        Some(ConvKey::Peer(id)) => Ok(*id),
        Some(ConvKey::Group(_)) => Err(format!("/{what} works in a conversation with one account, not a group")),
        None => Err(format!("/{what}: open a conversation first")),
    }
}

fn group(ctx: &Context, what: &str) -> Result<GroupId, String> {
    match &ctx.open {
        Some(ConvKey::Group(id)) => Ok(*id),
        _ => Err(format!("/group {what} works in a group's conversation: open it first")),
    }
}

fn words(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(str::to_owned).collect()
}

/// A path and what follows it: `"a path" text` or `path text`.
fn path_and_text(rest: &str) -> Result<(PathBuf, String), String> {
    let (path, text) = match rest.strip_prefix('"') {
        Some(quoted) => quoted
            .split_once('"')
            .ok_or("/file: the quoted path has no closing \"")?,
        None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
    };
    if path.is_empty() {
        return Err("/file PATH [TEXT]: which file".into());
    }
    Ok((PathBuf::from(path), text.trim().to_owned()))
}

/// Reads `/NAME REST` into a command.
pub fn parse(name: &str, rest: &str, ctx: &Context) -> Result<Command, String> {
    let args = words(rest);
    match name {
        "add" => match args.as_slice() {
            [name, id] => Ok(Command::Add {
                name: name.clone(),
                account: id.parse().map_err(|e| format!("{id:?} is not an Account ID: {e}"))?,
            }),
            _ => Err("/add NAME ID: a name and an Account ID (66 hex characters, 05…)".into()),
        },
        "block" | "unblock" => Ok(Command::Block {
            account: peer(ctx, name)?,
            on: name == "block",
        }),
        "accept" | "decline" => {
            let account = peer(ctx, name)?;
            if !ctx.request {
                return Err(format!("/{name}: this conversation is not a message request"));
            }
            Ok(if name == "accept" {
                Command::Accept {
                    account,
                    name: args.first().cloned(),
                }
            } else {
                Command::Decline { account }
            })
        }
        "group" => match args.split_first() {
            Some((sub, tail)) if sub == "create" => match tail.split_first() {
                Some((name, members)) => Ok(Command::GroupCreate {
                    name: name.clone(),
                    members: members.to_vec(),
                }),
                None => Err("/group create NAME [MEMBER…]".into()),
            },
            Some((sub, tail)) if sub == "add" || sub == "remove" => {
                let group = group(ctx, sub)?;
                if tail.is_empty() {
                    return Err(format!("/group {sub} MEMBER…: whom"));
                }
                let members = tail.to_vec();
                Ok(if sub == "add" {
                    Command::GroupAdd { group, members }
                } else {
                    Command::GroupRemove { group, members }
                })
            }
            Some((sub, _)) if sub == "leave" => Ok(Command::GroupLeave {
                group: group(ctx, "leave")?,
            }),
            _ => Err("/group create NAME MEMBER… | add MEMBER… | remove MEMBER… | leave".into()),
        },
        "file" => {
            let to = ctx.open.clone().ok_or("/file: open a conversation first")?;
            let (path, text) = path_and_text(rest)?;
            Ok(Command::File { to, path, text })
        }
        "save" => {
            let message = ctx
                .selected
                .clone()
                .filter(|m| !m.files.is_empty())
                .or_else(|| ctx.last_with_files.clone())
                .ok_or("/save: no message with files here (select one with Alt-↑)")?;
            let hash = message.hash.ok_or("/save: that message is not stored yet")?;
            let (index, dir) = match args.as_slice() {
                [] => (None, None),
                [one] => match one.parse::<u32>() {
                    Ok(n) => (Some(n), None),
                    Err(_) => (None, Some(PathBuf::from(one))),
                },
                [n, dir] => (
                    Some(
                        n.parse()
                            .map_err(|_| format!("/save [N] [DIR]: {n:?} is not a file number"))?,
                    ),
                    Some(PathBuf::from(dir)),
                ),
                _ => return Err("/save [N] [DIR]".into()),
            };
            Ok(Command::Save { hash, index, dir })
        }
        "disappear" => {
            let account = peer(ctx, name)?;
            let (mode, duration) = match args.as_slice() {
                [mode] => (mode.as_str(), None),
                [mode, d] => (mode.as_str(), Some(d.as_str())),
                _ => return Err("/disappear off | after-send DURATION | after-read DURATION".into()),
            };
            let rule = crate::cli::conversation::parse_rule(mode, duration).map_err(|e| e.to_string())?;
            Ok(Command::Disappear { account, rule })
        }
        "unsend" => {
            let message = match &ctx.selected {
                Some(m) if !m.mine => return Err("/unsend: only your own messages can be taken back".into()),
                Some(m) => m.clone(),
                None => ctx.last_mine.clone().ok_or("/unsend: you sent nothing here")?,
            };
            let hash = message.hash.ok_or("/unsend: that message is not stored yet")?;
            Ok(Command::Unsend { hash })
        }
        "name" => {
            if rest.is_empty() {
                return Err("/name NAME: the display name others see".into());
            }
            crate::home::validate_name(rest).map_err(|e| e.to_string())?;
            Ok(Command::Name(rest.to_owned()))
        }
        other => Err(format!(
            "/{}: no such command (? shows them)",
            crate::display::escape(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::model::Mark;

    fn bob() -> AccountId {
        AccountId::from_x25519([7; 32])
    }

    fn message(mine: bool, hash: Option<&str>, files: bool) -> Message {
        Message {
            hash: hash.map(str::to_owned),
            mine,
            sender: "x".into(),
            sent_ms: 0,
            body: "b".into(),
            files: if files {
                vec![crate::files::FileNote {
                    index: 0,
                    name: "a.jpg".into(),
                    size: 1,
                    content_type: "image/jpeg".into(),
                    saved: None,
                }]
            } else {
                Vec::new()
            },
            mark: Mark::Stored,
            expires_ms: None,
            notice: false,
        }
    }

    fn with_bob() -> Context {
        Context {
            open: Some(ConvKey::Peer(bob())),
            ..Context::default()
        }
    }

    #[test]
    fn commands_refer_to_the_open_conversation() {
        assert_eq!(
            parse("block", "", &with_bob()),
            Ok(Command::Block {
                account: bob(),
                on: true
            })
        );
        assert!(parse("block", "", &Context::default()).is_err());
        assert!(
            parse("accept", "", &with_bob())
                .unwrap_err()
                .contains("not a message request")
        );
        let request = Context {
            request: true,
            ..with_bob()
        };
        assert_eq!(
            parse("accept", "bob", &request),
            Ok(Command::Accept {
                account: bob(),
                name: Some("bob".into())
            })
        );
        assert!(parse("group", "leave", &with_bob()).is_err(), "not a group");
    }

    #[test]
    fn add_checks_the_account_id() {
        let id = bob().to_string();
        assert_eq!(
            parse("add", &format!("bob {id}"), &Context::default()),
            Ok(Command::Add {
                name: "bob".into(),
                account: bob()
            })
        );
        assert!(parse("add", "bob 05zz", &Context::default()).is_err());
        assert!(parse("add", "bob", &Context::default()).is_err());
    }

    #[test]
    fn file_paths_may_be_quoted() {
        let Ok(Command::File { path, text, .. }) = parse("file", "\"my photo.jpg\" look", &with_bob()) else {
            panic!("not a file command")
        };
        assert_eq!((path, text.as_str()), (PathBuf::from("my photo.jpg"), "look"));
        let Ok(Command::File { path, text, .. }) = parse("file", "a.txt", &with_bob()) else {
            panic!("not a file command")
        };
        assert_eq!((path, text.as_str()), (PathBuf::from("a.txt"), ""));
        assert!(parse("file", "\"open", &with_bob()).is_err());
    }

    #[test]
    fn unsend_and_save_take_the_selected_or_the_last_message() {
        let mut ctx = with_bob();
        assert!(parse("unsend", "", &ctx).is_err(), "nothing sent");
        ctx.last_mine = Some(message(true, Some("h1"), false));
        assert_eq!(parse("unsend", "", &ctx), Ok(Command::Unsend { hash: "h1".into() }));
        ctx.selected = Some(message(false, Some("h2"), true));
        assert!(parse("unsend", "", &ctx).unwrap_err().contains("own"));
        assert_eq!(
            parse("save", "2 /tmp", &ctx),
            Ok(Command::Save {
                hash: "h2".into(),
                index: Some(2),
                dir: Some(PathBuf::from("/tmp"))
            })
        );
        ctx.selected = Some(message(true, None, false));
        assert!(parse("unsend", "", &ctx).unwrap_err().contains("not stored"));
    }

    #[test]
    fn disappear_reads_like_the_subcommand() {
        let Ok(Command::Disappear { rule: Some(rule), .. }) = parse("disappear", "after-read 1h", &with_bob()) else {
            panic!("not read")
        };
        assert_eq!(rule.ms, 3_600_000);
        assert!(parse("disappear", "after-read", &with_bob()).is_err());
        assert!(parse("nonsense", "", &with_bob()).is_err());
    }
}
