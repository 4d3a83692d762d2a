//! `allium-client`: the Allium client library (placeholder until the client issue).
