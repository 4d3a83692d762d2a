//! TLS on the links: a whole handshake between two in-memory rustls
//! endpoints with Allium's configurations, and reading the key out of a
//! certificate.
//!
//! Run: `cargo bench -p allium-common --bench tls`. Results are in
//! `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use allium_common::Identity;
use allium_common::tls::{LinkCert, client_config, peer_key, server_config};
use criterion::{Criterion, criterion_group, criterion_main};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};

/// Moves what `from` has to send into `to`, and lets `to` process it.
fn pump(from: &mut Connection, to: &mut Connection, buf: &mut Vec<u8>) {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).unwrap();
    }
    let mut slice = buf.as_slice();
    while !slice.is_empty() {
        to.read_tls(&mut slice).unwrap();
    }
    to.process_new_packets().unwrap();
}

/// Runs one handshake to the end; panics if it fails (a broken setup).
fn handshake(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) {
    let name = ServerName::try_from("allium.invalid").unwrap();
    let mut c = Connection::Client(ClientConnection::new(Arc::clone(client), name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(Arc::clone(server)).unwrap());
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        pump(&mut c, &mut s, &mut buf);
        pump(&mut s, &mut c, &mut buf);
    }
}

fn bench(c: &mut Criterion) {
    let server_id = Identity::from_ed25519_seed(&[1; 32]);
    let caller_id = Identity::from_ed25519_seed(&[2; 32]);
    let server_cert = LinkCert::new(&server_id).unwrap();
    let caller_cert = LinkCert::new(&caller_id).unwrap();
    let server = Arc::new(server_config(&server_cert).unwrap());
    let pin = Some(*server_id.ed25519_pk());
    let mutual = Arc::new(client_config(pin, Some(&caller_cert)).unwrap());
    let anonymous = Arc::new(client_config(pin, None).unwrap());
    handshake(&mutual, &server);
    c.bench_function("tls handshake, mutual (node to node)", |b| {
        b.iter(|| handshake(&mutual, &server));
    });
    c.bench_function("tls handshake, no client certificate (client to guard)", |b| {
        b.iter(|| handshake(&anonymous, &server));
    });
    let der = server_cert.der().to_vec();
    c.bench_function("peer_key of a link certificate", |b| {
        b.iter(|| peer_key(std::hint::black_box(&der)).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
