//! The error a node answers with: an [`ErrorCode`] (hence HTTP status), a
//! message for people and optional details, built from every kind of
//! refusal the node makes.

use allium_common::rpc::{ErrorBody, ErrorCode, RpcError};
use serde_json::Value;

use crate::storage::StorageError;

/// A refusal, ready to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What went wrong, for programs (and the HTTP status).
    pub code: ErrorCode,
    /// What went wrong, for people. Never holds message data or keys.
    pub message: String,
    /// Code-specific data.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let body = ErrorBody {
            error: self.code,
            message: self.message.clone(),
            details: self.details.clone(),
        };
        serde_json::to_value(body).unwrap_or(Value::Null)
    }

    /// 503 while the node has no node list yet.
    pub fn not_ready() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "this node has no node list yet; try another node",
        )
    }
}

impl From<RpcError> for ApiError {
    fn from(e: RpcError) -> Self {
        let body = e.to_body();
        Self {
            code: body.error,
            message: body.message,
            details: body.details,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_insufficient_storage() {
            Self::new(ErrorCode::InsufficientStorage, e.to_string())
        } else if e.is_too_large() {
            Self::new(ErrorCode::TooLarge, e.to_string())
        } else if e.is_unavailable() {
            Self::new(ErrorCode::Unavailable, "the node is busy or shutting down; try again")
        } else {
            // Internal detail goes to the log, not to the network.
            tracing::error!(error = %e, "storage failure");
            Self::new(ErrorCode::Internal, "storage failure")
        }
    }
}
