//! The crate-wide error: one variant per module, each carrying that module's
//! own error type so a caller can match on exactly what went wrong.

use crate::consensus::ConsensusError;
use crate::envelope::EnvelopeError;
use crate::envelope_v2::EnvelopeV2Error;
use crate::identity::AccountIdError;
use crate::keys::KeyBundleError;
use crate::mnemonic::MnemonicError;
use crate::onion::OnionError;
use crate::rpc::RpcError;

/// Everything that can go wrong inside `allium-common`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A recovery phrase could not be turned into an identity.
    #[error("recovery phrase: {0}")]
    Mnemonic(#[from] MnemonicError),
    /// A string is not a valid Account ID.
    #[error("account id: {0}")]
    AccountId(#[from] AccountIdError),
    /// An envelope could not be sealed or opened.
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// An envelope v2 could not be sealed or opened.
    #[error("envelope v2: {0}")]
    EnvelopeV2(#[from] EnvelopeV2Error),
    /// A key bundle could not be built, decoded or verified.
    #[error("key bundle: {0}")]
    KeyBundle(#[from] KeyBundleError),
    /// An onion layer could not be built or peeled.
    #[error("onion: {0}")]
    Onion(#[from] OnionError),
    /// A vote or consensus is malformed or not trusted.
    #[error("consensus: {0}")]
    Consensus(#[from] ConsensusError),
    /// An RPC request is malformed or fails validation.
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
