//! Names for saved files: whatever a sender called a file, it is written
//! under the chosen directory, never outside it, and never over another
//! file.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Longest saved name, in bytes (file systems take 255).
const MAX_NAME_BYTES: usize = 200;

/// A file name safe to create in a directory: the last component of what
/// the sender named it, without control characters, path separators or a
/// leading dot (no hidden files, no `.` or `..`), at most 200 bytes;
/// `file` if nothing is left.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '/' | '\\' | '\0'))
        .collect();
    let trimmed = out.trim().trim_start_matches('.').trim().to_owned();
    out = trimmed;
    if out.len() > MAX_NAME_BYTES {
        // Keep the extension where there is a short one.
        let ext = out
            .rfind('.')
            .map(|i| out[i..].to_owned())
            .filter(|e| e.len() <= 16)
            .unwrap_or_default();
        let mut cut = MAX_NAME_BYTES - ext.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}{ext}", &out[..cut]);
    }
    if out.is_empty() { "file".to_owned() } else { out }
}

/// `name`, or `stem (2).ext`, `stem (3).ext`, …: the `n`th choice.
fn numbered(name: &str, n: u32) -> String {
    if n < 2 {
        return name.to_owned();
    }
    match name.rfind('.').filter(|&i| i > 0) {
        Some(i) => format!("{} ({n}){}", &name[..i], &name[i..]),
        None => format!("{name} ({n})"),
    }
}

/// Links the finished `temp` file into `dir` as `name` (made safe),
/// numbered on a clash, and removes `temp`. A hard link fails if the
/// name exists (a file, a directory or a symbolic link), so nothing is
/// overwritten and nothing is followed outside `dir`.
pub(super) fn place(temp: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let name = safe_name(name);
    for n in 1..10_000 {
        let target = dir.join(numbered(&name, n));
        match std::fs::hard_link(temp, &target) {
            Ok(()) => {
                std::fs::remove_file(temp)?;
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "10,000 files of that name already",
    ))
}

/// A new, empty temporary file in `dir` (created, never opened if there).
pub(super) fn temp_file(dir: &Path) -> std::io::Result<(PathBuf, File)> {
    for _ in 0..100 {
        let tag = hex::encode(allium_common::sodium::random_array::<8>());
        let path = dir.join(format!(".allium-{tag}.part"));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary name"))
}

/// A media type for a file, by its extension (what a sender tells the
/// recipient; `application/octet-stream` when unknown).
pub fn content_type_of(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_inside_the_directory() {
        for (given, kept) in [
            ("../../x", "x"),
            ("/etc/passwd", "passwd"),
            ("..\\..\\win.ini", "win.ini"),
            ("..", "file"),
            (".", "file"),
            ("", "file"),
            (".bashrc", "bashrc"),
            ("a\u{1b}[31mred\n.txt", "a[31mred.txt"),
            ("photo.jpg", "photo.jpg"),
            ("  spaced  ", "spaced"),
        ] {
            assert_eq!(safe_name(given), kept, "{given:?}");
        }
        let long = format!("{}.tar.gz", "é".repeat(300));
        let cut = safe_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES && cut.ends_with(".gz"), "{cut}");
    }

    #[test]
    fn a_saved_file_never_replaces_another() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.txt"), b"mine").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("x (2).txt")).unwrap();
        let (temp, _) = temp_file(dir.path()).unwrap();
        std::fs::write(&temp, b"theirs").unwrap();
        let placed = place(&temp, dir.path(), "../x.txt").unwrap();
        assert_eq!(placed, dir.path().join("x (3).txt"));
        assert_eq!(std::fs::read(dir.path().join("x.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(&placed).unwrap(), b"theirs");
        assert!(!temp.exists());
        assert_eq!(numbered("archive", 2), "archive (2)");
    }
}
