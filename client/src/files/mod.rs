//! Files (`docs/files.md`): sending a file as encrypted chunks spread over
//! the swarms, and fetching, checking and saving one.
//!
//! - [`Messenger::upload_file`] encrypts a file (one secretstream, one
//!   chunk per 64 KiB) and stores every chunk on its own swarm, several at
//!   once through the onion paths; the chunks a swarm confirmed are kept
//!   in the home, so an interrupted upload goes on where it stopped.
//! - [`Messenger::download_file`] fetches a received file's chunks into a
//!   part file (also resumable), decrypts them in order, checks the digest
//!   and writes the file under the chosen directory with a safe name.
//!
//! [`Messenger::upload_file`]: crate::messenger::Messenger::upload_file
//! [`Messenger::download_file`]: crate::messenger::Messenger::download_file

mod auto;
mod avatar;
mod chunk_set;
mod delete;
mod download;
mod save;
mod upload;
mod workers;

use std::time::Duration;

use allium_common::files::RECORD_LEN;

pub use auto::AutoSaved;
pub use avatar::{AVATAR_REFRESH_MS, MAX_AVATAR_BYTES, PROFILE_AVATAR, avatar_path};
pub use chunk_set::ChunkSet;
pub use download::Saved;
pub use save::{content_type_of, safe_name};

/// Chunks in flight at once: four per onion path.
pub const IN_FLIGHT: usize = 8;

/// How long one chunk's request may take before it is tried elsewhere.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(60);

/// How many members of a chunk's swarm are asked before the chunk fails.
pub const TRIES_PER_CHUNK: usize = 3;

/// Progress is saved in the home every this many chunks (and at the end):
/// an interrupted transfer redoes at most these.
pub const SAVE_EVERY: u32 = 32;

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Chunks done (stored, or fetched).
    pub done: u32,
    /// Chunks of the file.
    pub total: u32,
    /// The file's size in bytes.
    pub size: u64,
}

impl Progress {
    /// The bytes of the file the done chunks hold.
    pub fn bytes(&self) -> u64 {
        (u64::from(self.done) * RECORD_LEN as u64).min(self.size)
    }
}

/// Called as a transfer goes on (from the task that runs it).
pub type OnProgress<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// What a listing says of a file a message carried (never its key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileNote {
    /// Its place among the message's files (`allium save HASH --index`).
    pub index: u32,
    /// The name the sender gave it (escape it before printing).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The media type the sender gave.
    #[serde(rename = "type")]
    pub content_type: String,
    /// Where it was saved, once it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<std::path::PathBuf>,
}

impl FileNote {
    /// The notes of a message's files.
    pub fn of(files: &[crate::home::FileRecord]) -> Vec<Self> {
        files
            .iter()
            .map(|f| Self {
                index: f.index,
                name: f.manifest.name.clone(),
                size: f.manifest.size,
                content_type: f.manifest.content_type.clone(),
                saved: f.saved.clone(),
            })
            .collect()
    }

    /// ` [file NAME, SIZE]` for each, the name made safe for a terminal.
    pub fn describe(notes: &[Self]) -> String {
        notes.iter().map(|n| format!(" {}", n.label(true))).collect()
    }

    /// `[file N: NAME, SIZE]`, the name made safe for a terminal, with
    /// `, saved as PATH` once saved (`, saved` without `saved_as`).
    pub fn label(&self, saved_as: bool) -> String {
        let saved = match &self.saved {
            Some(p) if saved_as => format!(", saved as {}", crate::display::escape(&p.to_string_lossy())),
            Some(_) => ", saved".to_owned(),
            None => String::new(),
        };
        format!(
            "[file {}: {}, {}{saved}]",
            self.index,
            crate::display::escape(&self.name),
            human_size(self.size)
        )
    }
}

/// A size for people: bytes, KB, MB or GB (powers of 1,000).
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} KB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

/// The error message a node's refusal carried.
fn refusal(status: u16, body: &serde_json::Value) -> String {
    let text = body["message"].as_str().unwrap_or("no reason given");
    format!(
        "{status} {}",
        crate::display::escape(&text.chars().take(200).collect::<String>())
    )
}
