//! The node's error type: what went wrong and on what (file, address, peer).

use std::path::{Path, PathBuf};

use allium_common::seeds::SeedFileError;

/// Everything that can stop the node or one of its subsystems.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node key file is unusable.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is invalid.
    #[error("configuration{}: {reason}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Config {
        /// The config file, if the problem is in one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// The seed file is invalid.
    #[error("seed file {}: {source}", path.display())]
    SeedFile {
        /// The seed file.
        path: PathBuf,
        /// What is wrong.
        source: SeedFileError,
    },
    /// The HTTP listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The message store failed.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A configuration error not tied to a file.
    pub fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            path: None,
            reason: reason.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
