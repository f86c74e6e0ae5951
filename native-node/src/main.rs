fn main() {
    println!("raft-node {}", env!("CARGO_PKG_VERSION"));
}
