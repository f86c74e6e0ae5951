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

/// GETs `path` with an optional `Origin` header: status, head (lower-cased) and body.
async fn get_from(address: &str, path: &str, origin: Option<&str>) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let origin = origin.map_or(String::new(), |origin| format!("Origin: {origin}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{origin}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// `/v1/cluster` (issue #13, item 5): the figures of the status page as JSON, the leader's view
/// of every member's progress, and cross-origin reads for members' own pages only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_cluster_tells_each_members_figures_to_members_pages_only() {
    let cluster = Cluster::start(3, "cluster-view").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let mut client = cluster.client();
    let written = client.put("k", "v").await.unwrap()["index"].as_u64().unwrap();
    let leader_address = cluster.node(leader).address.to_string();
    let follower_origin = format!("http://{}", cluster.node(follower).address);
    // The leader's match index for each follower catches up with the write.
    let mut body = serde_json::Value::Null;
    for _ in 0..100 {
        // Past the 250 ms cache, so each try sees a fresh answer.
        tokio::time::sleep(Duration::from_millis(260)).await;
        let (status, head, text) = get_from(&leader_address, "/v1/cluster", Some(&follower_origin)).await;
        assert_eq!(status, 200, "{text}");
        assert!(head.contains(&format!("access-control-allow-origin: {follower_origin}\r\n")), "{head}");
        assert!(head.contains("vary: origin"), "{head}");
        body = serde_json::from_str(&text).unwrap();
        let members = body["members"].as_array().unwrap();
        if members.iter().all(|m| m["match_index"].as_u64().unwrap() >= written) {
            break;
        }
    }
    assert_eq!(body["node"], leader);
    assert_eq!(body["role"], "leader");
    assert!(body["commit_index"].as_u64().unwrap() >= written, "{body}");
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{body}");
    for member in members {
        assert!(member["match_index"].as_u64().unwrap() >= written, "{body}");
        assert_eq!(member["kind"], "native");
        assert_eq!(member["voter"], true);
        assert!(member["last_contact_ms"].is_u64(), "{body}");
    }
    // A follower tells its own figures; only the leader tracks the others' progress.
    let follower_address = cluster.node(follower).address.to_string();
    let (_, _, text) = get_from(&follower_address, "/v1/cluster", None).await;
    let view: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["node"], follower);
    assert_eq!(view["leader"], leader);
    assert!(view["members"][0]["match_index"].is_null(), "{view}");
    // Any other page gets the JSON but no permission to read it, and never `*`.
    for stranger in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let (status, head, _) = get_from(&leader_address, "/v1/cluster", Some(stranger)).await;
        assert_eq!(status, 200);
        assert!(!head.contains("access-control-allow-origin"), "{stranger}: {head}");
    }
    // Counted in the metrics.
    let (_, metrics) = http_get(&leader_address, "/metrics").await;
    let line = metrics.lines().find(|l| l.starts_with("raft_cluster_view_requests_total")).unwrap();
    assert!(line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() >= 4, "{line}");
    cluster.shutdown().await;
}
