//! RPC errors: what a node refuses and the HTTP status and JSON body that
//! say so.

use serde::{Deserialize, Serialize};

/// A machine-readable error code; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: malformed request or parameter.
    BadRequest,
    /// 401: signature missing, wrong, or made with a key that is not the
    /// account's.
    Unauthorized,
    /// 403: the signer is known but may not do this (a member's
    /// credential without the right, or revoked).
    Forbidden,
    /// 404: nothing known by that name.
    NotFound,
    /// 406: timestamp too far from the node's clock.
    ClockSkew,
    /// 413: request or data too large.
    TooLarge,
    /// 421: this node's swarm does not hold that account.
    WrongSwarm,
    /// 429: rate limited.
    RateLimited,
    /// 500: the node failed.
    Internal,
    /// 502: a relay could not reach the next hop.
    BadGateway,
    /// 503: the node is not ready (e.g. no node list yet) or shutting down.
    Unavailable,
    /// 504: the next hop did not answer in time.
    GatewayTimeout,
    /// 507: the node's storage (or this mailbox's share of it) is full.
    InsufficientStorage,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::ClockSkew => 406,
            Self::TooLarge => 413,
            Self::WrongSwarm => 421,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::BadGateway => 502,
            Self::Unavailable => 503,
            Self::GatewayTimeout => 504,
            Self::InsufficientStorage => 507,
        }
    }
}

/// The JSON body of every error answer:
/// `{"error": code, "message": text, "details": {...}?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub error: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Code-specific data: `skew_ms` for 406, the right swarm for 421,
    /// `hop` for relay failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A request that a node refuses before touching any state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The body is not a JSON object with `method` and `params`.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// No such method.
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// A parameter is missing or has the wrong form.
    #[error("invalid parameter {param}: {reason}")]
    InvalidParam {
        /// The parameter's name.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `batch`/`sequence` with no or too many sub-requests.
    #[error("a batch holds 1 to {max} sub-requests; this one holds {got}")]
    BadBatch {
        /// Sub-requests given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A `batch`/`sequence` inside another.
    #[error("a batch cannot contain another batch or sequence")]
    NestedBatch,
    /// `pubkey_ed25519` is not the key of the `pubkey` account.
    #[error("pubkey_ed25519 is not the key of this account")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The signature is missing where one is required.
    #[error("this request must be signed by the account owner")]
    SignatureRequired,
    /// A group member's credential does not verify.
    #[error("credential: {0}")]
    Credential(crate::group::credential::CredentialError),
    /// A group member's credential does not allow this.
    #[error("a member may not do this: {0}")]
    Forbidden(&'static str),
    /// The signed timestamp is too far from the node's clock.
    #[error(
        "timestamp is {}s {} the node's clock; the limit is 60s",
        skew_ms.unsigned_abs() as f64 / 1000.0,
        if *skew_ms > 0 { "ahead of" } else { "behind" }
    )]
    ClockSkew {
        /// Request timestamp minus node time, in ms.
        skew_ms: i64,
    },
    /// A forwarded request was signed longer ago than a message lives.
    #[error("the request was signed {}s ago; a passed-on request may be at most 14 days old", age_ms / 1000)]
    TooOld {
        /// How long ago, in ms.
        age_ms: u64,
    },
    /// `data` is larger than [`super::MAX_DATA_LEN`].
    #[error("data is {len} bytes; the limit is {max}")]
    DataTooLarge {
        /// Decoded data length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// TTL outside [`super::MIN_TTL_MS`] ..= [`super::MAX_TTL_MS`].
    #[error("ttl {ttl_ms} ms is outside {min}..={max} ms")]
    TtlOutOfRange {
        /// The requested TTL.
        ttl_ms: u64,
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
}

impl RpcError {
    /// The error code (and so the HTTP status) for this refusal.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_)
            | Self::UnknownMethod(_)
            | Self::InvalidParam { .. }
            | Self::BadBatch { .. }
            | Self::NestedBatch
            | Self::TtlOutOfRange { .. } => ErrorCode::BadRequest,
            Self::KeyMismatch | Self::BadSignature | Self::SignatureRequired | Self::Credential(_) => {
                ErrorCode::Unauthorized
            }
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::ClockSkew { .. } | Self::TooOld { .. } => ErrorCode::ClockSkew,
            Self::DataTooLarge { .. } => ErrorCode::TooLarge,
        }
    }

    /// The JSON error body for this refusal.
    pub fn to_body(&self) -> ErrorBody {
        let details = match self {
            Self::ClockSkew { skew_ms } => Some(serde_json::json!({ "skew_ms": skew_ms })),
            Self::DataTooLarge { len, max } => Some(serde_json::json!({ "len": len, "max": max })),
            _ => None,
        };
        ErrorBody {
            error: self.code(),
            message: self.to_string(),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_message_says_by_how_much_and_which_way() {
        let e = RpcError::ClockSkew { skew_ms: -75_500 };
        assert_eq!(
            e.to_string(),
            "timestamp is 75.5s behind the node's clock; the limit is 60s"
        );
        assert_eq!(e.code().status(), 406);
        let body = serde_json::to_value(e.to_body()).unwrap();
        assert_eq!(body["error"], "clock_skew");
        assert_eq!(body["details"]["skew_ms"], -75_500);
        let ahead = RpcError::ClockSkew { skew_ms: 61_000 };
        assert!(ahead.to_string().contains("61s ahead of"));
    }

    #[test]
    fn statuses() {
        assert_eq!(RpcError::BadSignature.code().status(), 401);
        assert_eq!(RpcError::DataTooLarge { len: 1, max: 0 }.code().status(), 413);
        assert_eq!(ErrorCode::WrongSwarm.status(), 421);
        assert_eq!(ErrorCode::RateLimited.status(), 429);
        assert_eq!(ErrorCode::InsufficientStorage.status(), 507);
    }
}
