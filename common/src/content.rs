//! The plaintext inside an envelope: a small, versioned JSON object.
//!
//! JSON was chosen over protobuf because every field is optional and
//! self-describing, a reader ignores fields it does not know (so a newer
//! sender can add fields without breaking an older reader), and it needs no
//! schema compiler. The `v` field versions the structure itself; the
//! envelope has its own version byte (see [`crate::envelope`]).
//!
//! ```json
//! {"v":1,"kind":"text","ts":1700000000000,"body":"hi"}
//! ```

use serde::{Deserialize, Serialize};

/// The content structure version this code writes and reads.
pub const CONTENT_VERSION: u8 = 1;

/// What a message is. Unknown kinds from newer senders are kept as
/// [`Kind::Unknown`] so a reader can skip them instead of failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A text message (`body` is the text).
    Text,
    /// A delivery or read receipt (`receipt` says which messages).
    Receipt,
    /// A profile update (`profile`).
    Profile,
    /// The sender accepted the recipient's message request (`profile`
    /// says who accepted).
    Accept,
    /// The sender changed the conversation's disappearing setting
    /// (`disappear`; absent: off).
    Disappear,
    /// The sender takes back one of its messages (`unsend`).
    Unsend,
    /// A direct message inviting the recipient into a group, or making it
    /// an admin (`group`, with the secrets it needs; `docs/groups.md`).
    GroupInvite,
    /// A group message: the sender leaves the group (an admin's client
    /// then removes it).
    GroupLeave,
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

/// The most files one message carries (a reader ignores the rest).
pub const MAX_ATTACHMENTS: usize = 32;

/// Which of the recipient's messages a receipt is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// `delivered` or `read`.
    pub status: String,
    /// The sender timestamps (`ts`) of the messages acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamps: Vec<u64>,
    /// The hashes of the messages acknowledged (in the receipt sender's
    /// swarm, where they were stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<String>,
}

/// When a message disappears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisappearAfter {
    /// `ms` after it was sent.
    Send,
    /// `ms` after the recipient read it.
    Read,
}

/// A disappearing-messages setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disappear {
    /// From when the time runs.
    pub after: DisappearAfter,
    /// How long, ms.
    pub ms: u64,
}

/// A sender's self-chosen profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Avatar: the manifest of an image stored as a file
    /// ([`crate::files::Manifest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<serde_json::Value>,
}

/// Marks a copy of a message its sender sent, sealed to the sender's own
/// account for its other devices (`docs/account-sync.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentCopy {
    /// The recipient's Account ID.
    pub to: String,
    /// The message's hash in the recipient's swarm.
    pub hash: String,
}

/// A group, in a direct message about it: an invitation carries what the
/// member needs to read and write the group's swarm (`docs/groups.md`).
/// Every secret here travels only inside an end-to-end encrypted envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    /// The Group ID (`03…`).
    pub id: String,
    /// The group's name when the invitation was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The member's sub-key seed (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_seed: Option<String>,
    /// The member's credential (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The current generation and its key (hex), so the member reads from
    /// its joining on without waiting for a key message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// The key of `generation` (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The group seed (hex): only when the recipient is made an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Keys of earlier generations, when the admin shares the group's
    /// history with a new member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<GroupKeyShare>,
}

/// One generation's key in an invitation that shares a group's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKeyShare {
    /// The generation.
    pub generation: u32,
    /// Its key (hex).
    pub key: String,
}

/// The plaintext content of an envelope, version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Structure version; [`CONTENT_VERSION`] for this one.
    pub v: u8,
    /// What this message is.
    pub kind: Kind,
    /// Sender's clock when the message was written, in Unix milliseconds.
    pub ts: u64,
    /// Text of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Files sent with the message: one manifest each
    /// ([`crate::files::Manifest`]). Kept as JSON so that a manifest this
    /// version cannot read costs the file, not the whole message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<serde_json::Value>,
    /// For [`Kind::Receipt`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Sender's profile, sent with any message or as [`Kind::Profile`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The group this message belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupRef>,
    /// Disappearing messages: when this message (on a text) disappears,
    /// or the conversation's new setting (on [`Kind::Disappear`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disappear: Option<Disappear>,
    /// For [`Kind::Unsend`]: the hash of the message taken back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsend: Option<String>,
    /// On a copy of a sent message: what it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<SentCopy>,
}

/// Why content bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// Not a JSON object of the expected shape.
    #[error("content is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    /// A structure version this code cannot read.
    #[error("content version {0} is not supported (this build reads version {CONTENT_VERSION})")]
    Version(u8),
}

impl Content {
    /// A message of `kind` with no fields but the time (Unix ms).
    pub fn control(kind: Kind, ts: u64) -> Self {
        Self {
            kind,
            body: None,
            ..Self::text("", ts)
        }
    }

    /// A text message written at `ts` (Unix ms).
    pub fn text(body: impl Into<String>, ts: u64) -> Self {
        Self {
            v: CONTENT_VERSION,
            kind: Kind::Text,
            ts,
            body: Some(body.into()),
            attachments: Vec::new(),
            receipt: None,
            profile: None,
            group: None,
            disappear: None,
            unsend: None,
            sent: None,
        }
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The files sent with this message: each manifest read and checked,
    /// in order, at most [`MAX_ATTACHMENTS`] of them.
    pub fn manifests(&self) -> Vec<Result<crate::files::Manifest, crate::files::ManifestError>> {
        self.attachments
            .iter()
            .take(MAX_ATTACHMENTS)
            .map(crate::files::Manifest::from_json)
            .collect()
    }

    /// Parses content bytes, refusing other structure versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContentError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u8,
        }
        let version: VersionOnly = serde_json::from_slice(bytes).map_err(|e| ContentError::Malformed(e.to_string()))?;
        if version.v != CONTENT_VERSION {
            return Err(ContentError::Version(version.v));
        }
        serde_json::from_slice(bytes).map_err(|e| ContentError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_serialises_compactly() {
        let c = Content::text("hi", 1_700_000_000_000);
        assert_eq!(
            String::from_utf8(c.to_bytes()).unwrap(),
            r#"{"v":1,"kind":"text","ts":1700000000000,"body":"hi"}"#
        );
        assert_eq!(Content::from_bytes(&c.to_bytes()), Ok(c));
    }

    #[test]
    fn unknown_kinds_and_fields_are_tolerated() {
        let c = Content::from_bytes(br#"{"v":1,"kind":"call_offer","ts":5,"future":true}"#).unwrap();
        assert_eq!(c.kind, Kind::Unknown);
        assert_eq!(c.ts, 5);
    }

    #[test]
    fn other_versions_are_refused() {
        assert_eq!(
            Content::from_bytes(br#"{"v":2,"kind":"text","ts":5}"#),
            Err(ContentError::Version(2))
        );
        assert!(matches!(
            Content::from_bytes(b"not json"),
            Err(ContentError::Malformed(_))
        ));
        assert!(matches!(
            Content::from_bytes(br#"{"v":1}"#),
            Err(ContentError::Malformed(_))
        ));
    }
}
