//! `allium send --file` and `allium save`: files through the swarms, with a
//! progress bar (rate and time left) on a terminal, and progress events
//! instead with `--json`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{EXIT_OK, emit};
use crate::display::escape;
use crate::error::{Error, Result};
use crate::files::{FileNote, Progress, human_size};
use crate::groups::GroupPage;
use crate::home::UploadRecord;
use crate::incoming::InboxPage;
use crate::messenger::Messenger;

/// JSON progress events come at most this often per file (and at the end).
const EVENT_EVERY: Duration = Duration::from_millis(250);

/// Shows a transfer's progress: a bar on a terminal's standard error, JSON
/// events on standard output with `--json`, nothing otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    json: bool,
    direction: &'static str,
    name: String,
    last_event: Mutex<Option<Instant>>,
}

impl Reporter {
    fn new(json: bool, direction: &'static str, name: &str) -> Self {
        let bar = (!json).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("{direction} {}", escape(name)));
            bar
        });
        Self {
            bar,
            json,
            direction,
            name: name.to_owned(),
            last_event: Mutex::new(None),
        }
    }

    fn report(&self, p: Progress) {
        if let Some(bar) = &self.bar {
            bar.set_length(p.size);
            bar.set_position(p.bytes());
        }
        if self.json {
            let mut last = self
                .last_event
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|t| t.elapsed() >= EVENT_EVERY) || p.done == p.total;
            if due {
                *last = Some(Instant::now());
                emit(
                    true,
                    json!({"event": "progress", "direction": self.direction, "file": self.name,
                           "chunks_done": p.done, "chunks": p.total, "bytes": p.bytes(), "size": p.size}),
                    String::new,
                );
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Stores each of `paths` on the swarms (resuming an upload of the same
/// file left unfinished), chunks living `ttl_ms`; `shown_name` replaces
/// the name the recipients see.
pub(super) async fn upload_all(
    m: &mut Messenger,
    paths: &[PathBuf],
    shown_name: Option<&str>,
    ttl_ms: u64,
    json: bool,
) -> Result<Vec<UploadRecord>> {
    if shown_name.is_some() && paths.len() > 1 {
        return Err(Error::Usage("--name names one file; send the others separately".into()));
    }
    if let Some(name) = shown_name
        && name.chars().count() > allium_common::files::MAX_NAME_CHARS
    {
        return Err(Error::Usage(format!(
            "--name is at most {} characters",
            allium_common::files::MAX_NAME_CHARS
        )));
    }
    let mut uploads = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reporter = Reporter::new(json, "sending", &name);
        let started = Instant::now();
        let result = m.upload_file(path, ttl_ms, &|p| reporter.report(p)).await;
        reporter.finish();
        let mut upload = result.map_err(|e| match e {
            Error::File(why) => Error::File(format!(
                "{}: {why} (what was stored is kept: the same command goes on from there)",
                escape(&name)
            )),
            other => other,
        })?;
        if let Some(name) = shown_name {
            // Not part of what was encrypted: the manifest says it.
            upload.manifest.name = name.to_owned();
        }
        tracing::info!(
            size = upload.size,
            ms = started.elapsed().as_millis() as u64,
            "file stored"
        );
        uploads.push(upload);
    }
    Ok(uploads)
}

/// `allium save HASH [DIR] [--index N]`: fetches, checks and writes the
/// files of message `hash` (or only file `index`) into `dir`.
pub(super) async fn save(m: &mut Messenger, hash: &str, dir: &Path, index: Option<u32>, json: bool) -> Result<i32> {
    let files = m.home.files_of(hash)?;
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "no message {} with files in the history (see `allium history --json`)",
            escape(hash)
        )));
    }
    let wanted: Vec<_> = files.iter().filter(|f| index.is_none_or(|i| f.index == i)).collect();
    if wanted.is_empty() {
        return Err(Error::Usage(format!(
            "message {} has no file {}",
            escape(hash),
            index.unwrap_or_default()
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Usage(format!("{} is not a directory", dir.display())));
    }
    for file in wanted {
        let reporter = Reporter::new(json, "fetching", &file.manifest.name);
        let result = m.download_file(hash, file.index, dir, &|p| reporter.report(p)).await;
        reporter.finish();
        let saved = result?;
        let path = saved.path;
        emit(
            json,
            json!({"saved": path, "hash": hash, "index": file.index, "name": file.manifest.name,
                   "size": file.manifest.size, "refetched": saved.refetched}),
            || {
                format!(
                    "saved {} ({}) as {}",
                    escape(&file.manifest.name),
                    human_size(file.manifest.size),
                    escape(&path.to_string_lossy())
                )
            },
        );
    }
    Ok(EXIT_OK)
}

/// Fetches the small files of what a round showed from contacts (see
/// [`Messenger::auto_save`]) and says where they went; a failure is
/// reported, and `allium save` can try again.
pub(super) async fn auto_save(m: &mut Messenger, page: &InboxPage, groups: Option<&GroupPage>, json: bool) {
    let Ok(book) = m.book() else { return };
    let me = m.home.account_id();
    let mut wanted: Vec<(String, Vec<FileNote>)> = page
        .messages
        .iter()
        .filter(|r| !r.files.is_empty())
        .map(|r| (r.hash.clone(), r.files.clone()))
        .collect();
    if let Some(groups) = groups {
        wanted.extend(
            groups
                .messages
                .iter()
                .filter(|r| !r.files.is_empty() && (r.entry.sender == me || book.is_approved(&r.entry.sender)))
                .map(|r| (r.entry.hash.clone(), r.files.clone())),
        );
    }
    if wanted.is_empty() {
        return;
    }
    for saved in m.auto_save(&wanted).await {
        match saved.result {
            Ok(path) => emit(
                json,
                json!({"auto_saved": path, "hash": saved.hash, "index": saved.index, "name": saved.name}),
                || format!("saved {} as {}", escape(&saved.name), escape(&path.to_string_lossy())),
            ),
            Err(e) => eprintln!(
                "allium: {} was not fetched ({}); `allium save {}` tries again",
                escape(&saved.name),
                escape(&e.to_string()),
                saved.hash
            ),
        }
    }
}

/// The notes of message `hash`'s files, for listings.
pub(super) fn notes(m: &crate::home::Home, hash: &str) -> Result<Vec<FileNote>> {
    Ok(FileNote::of(&m.files_of(hash)?))
}
