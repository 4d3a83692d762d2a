//! `allium-node`: the Allium service node (placeholder until the node issue).

fn main() {
    println!("allium-node {}", env!("CARGO_PKG_VERSION"));
}
