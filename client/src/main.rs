//! `allium`: the Allium command-line messenger (placeholder until the client issue).

fn main() {
    println!("allium {}", env!("CARGO_PKG_VERSION"));
}
