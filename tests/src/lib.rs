//! End-to-end tests for Allium (the TestNet harness arrives with the node issue).
