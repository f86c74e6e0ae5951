//! A node's own `/` page says plainly what it is: one real node (not the simulated playground),
//! with its id, role, term, commit index and members.

mod common;

use common::{http_get, Cluster};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_page_says_which_real_node_this_is() {
    let cluster = Cluster::start(3, "status-page").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let address = cluster.node(leader).address.to_string();
    let (status, body) = http_get(&address, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("<h1>Flotilla node {leader}</h1>")), "{body}");
    assert!(body.contains("not the simulated playground"), "{body}");
    assert!(body.contains("<dt>Role</dt><dd>leader</dd>"), "{body}");
    assert!(body.contains("<dt>Term</dt><dd>"), "{body}");
    assert!(body.contains("<dt>Commit index</dt><dd>"), "{body}");
    assert!(body.contains("<dt>Voters</dt><dd>1, 2, 3</dd>"), "{body}");
    assert!(body.contains("a <strong>simulation</strong>"), "{body}");
    cluster.shutdown().await;
}
