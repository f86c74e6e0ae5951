//! Issue 11, High 6: TLS for clients and peers, mutual for peers, and separate credentials for
//! peers, admins and clients. In-process clusters on 127.0.0.1 with `raft-node certs`'s
//! development CA.

mod common;

use common::{Cluster, TempDir, SECRET};
use native_node::client::{http_request, http_request_tls, Client, ClientConfig, ClientError};
use native_node::tls::{self, NodeTls};
use native_node::transport::{self, HandshakeError, TransportConfig, PROTOCOL_VERSION};
use raft_core::NodeId;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

async fn tls_cluster(name: &str, certs: &Path, size: u64) -> Cluster {
    tls::generate_dev_certs(certs, size).unwrap();
    let certs = certs.to_path_buf();
    Cluster::start_with(size, name, move |config| {
        config.tls = Some(NodeTls::load(&tls::node_files(&certs, config.node_id.0)).unwrap());
    })
    .await
}

fn client(cluster: &Cluster, tls: Option<Arc<rustls::ClientConfig>>) -> Client {
    let mut config = ClientConfig::new(cluster.addresses.clone());
    config.secret = Some(SECRET.to_string());
    config.tls = tls;
    config.call_timeout = Duration::from_secs(3);
    config.attempt_timeout = Duration::from_secs(1);
    Client::new(config)
}

/// The nodes elect a leader and replicate over mutual TLS; a client that trusts the CA reads
/// and writes; a plaintext client, and one that trusts another CA, reach nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_replicates_and_serves_only_tls_clients_that_trust_its_ca() {
    let certs = TempDir::new("tls-certs");
    let cluster = tls_cluster("tls-cluster", &certs.0, 3).await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let trusted = tls::client_config(&certs.0.join("ca.pem"), None).unwrap();

    let mut good = client(&cluster, Some(trusted.clone()));
    good.put("k", "over tls").await.unwrap();
    let answer = good.get("k", "linearizable").await.unwrap();
    assert_eq!(answer["value"], json!("over tls"));
    // Replicated to every node, so the peers' TLS links carry entries.
    let index = cluster.node(leader).raft.status().commit_index;
    cluster.wait_for_applied(index, Duration::from_secs(5)).await;

    let error = client(&cluster, None).put("k", "plain").await.unwrap_err();
    assert!(matches!(error, ClientError::Unavailable(_)), "{error}");
    let other = TempDir::new("tls-other-ca");
    tls::generate_dev_certs(&other.0, 1).unwrap();
    let untrusted = tls::client_config(&other.0.join("ca.pem"), None).unwrap();
    let error = client(&cluster, Some(untrusted.clone())).put("k", "wrong ca").await.unwrap_err();
    assert!(matches!(error, ClientError::Unavailable(_)), "{error}");

    // The small HTTP client too: https with the CA, nothing without.
    let address = &cluster.addresses[0];
    let health = http_request_tls(address, "GET", "/health", None, b"", Some(&trusted)).await.unwrap();
    assert_eq!(health.status, 200, "{}", String::from_utf8_lossy(&health.body));
    assert!(http_request(address, "GET", "/health", None, b"").await.is_err());
    assert!(http_request_tls(address, "GET", "/health", None, b"", Some(&untrusted)).await.is_err());
    let failed: u64 = cluster
        .nodes
        .iter()
        .flatten()
        .map(|node| node.raft.metrics().connections_tls_failed_total.load(Ordering::Relaxed))
        .sum();
    assert!(failed >= 2, "failed TLS handshakes are counted: {failed}");

    // Links the node hands out follow its scheme: a follower's 307 and an invitation say https.
    let leader_address = cluster.addresses[leader as usize - 1].clone();
    let follower = cluster.addresses.iter().find(|a| **a != leader_address).unwrap();
    let put = br#"{"op":"put","key":"x","value":"y"}"#;
    let answer = http_request_tls(follower, "POST", "/client", None, put, Some(&trusted)).await.unwrap();
    assert_eq!(answer.status, 307, "{}", String::from_utf8_lossy(&answer.body));
    let location = answer.headers.iter().find(|(name, _)| name == "location").map(|(_, v)| v.as_str());
    assert_eq!(location, Some(format!("https://{leader_address}/client").as_str()));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["leader_url"], json!(format!("https://{leader_address}/client")));
    let answer =
        http_request_tls(address, "POST", "/admin/invite", Some(SECRET), b"", Some(&trusted)).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let link = body["link"].as_str().unwrap();
    assert!(link.starts_with(&format!("https://{address}/")), "{link}");
    cluster.shutdown().await;
}

fn peer_config(secret: &str, tls: Option<Arc<rustls::ClientConfig>>) -> TransportConfig {
    let mut config = TransportConfig::new(NodeId(99), "flotilla".into(), secret.as_bytes().to_vec(), None);
    config.tls = tls;
    config
}

/// Under TLS a peer must present a certificate from the cluster's CA, and still know the peer
/// secret: TLS authenticates hosts, the handshake's HMAC cluster membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_needs_a_certificate_from_the_ca_and_the_peer_secret() {
    let certs = TempDir::new("tls-peer-certs");
    let cluster = tls_cluster("tls-peer", &certs.0, 1).await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = &cluster.addresses[0];
    let ca = certs.0.join("ca.pem");
    tls::generate_dev_certs(&certs.0.join("extra"), 2).unwrap();

    // A TLS client without a certificate: never a peer.
    let anonymous = tls::client_config(&ca, None).unwrap();
    let error =
        transport::dial(address, &peer_config(SECRET, Some(anonymous)), PROTOCOL_VERSION).await.unwrap_err();
    assert!(matches!(&error, HandshakeError::Connect(why) if why.contains("403")), "{error}");
    assert_eq!(cluster.node(1).raft.metrics().peer_certificate_missing_total.load(Ordering::Relaxed), 1);

    // A certificate from another CA fails the TLS handshake.
    let foreign_files = tls::node_files(&certs.0.join("extra"), 2);
    let foreign = tls::client_config(&ca, Some((&foreign_files.cert, &foreign_files.key))).unwrap();
    let error =
        transport::dial(address, &peer_config(SECRET, Some(foreign)), PROTOCOL_VERSION).await.unwrap_err();
    assert!(matches!(&error, HandshakeError::Connect(_)), "{error}");

    // The cluster's certificate with a wrong secret: refused by the handshake.
    let own = tls::node_files(&certs.0, 1);
    let certified = tls::client_config(&ca, Some((&own.cert, &own.key))).unwrap();
    let error = transport::dial(address, &peer_config("wrong", Some(certified.clone())), PROTOCOL_VERSION)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, HandshakeError::Rejected(why) if why.contains("wrong cluster secret")),
        "{error}"
    );

    // Both: in.
    let (_socket, acceptor, _) =
        transport::dial(address, &peer_config(SECRET, Some(certified)), PROTOCOL_VERSION).await.unwrap();
    assert_eq!(acceptor, NodeId(1));
    cluster.shutdown().await;
}

const PEER: &str = "peer-secret-0123456789abcdef0123456789abcdef";
const ADMIN: &str = "admin-secret-0123456789abcdef0123456789abcdef";
const TOKEN: &str = "client-token-0123456789abcdef0123456789abcdef";

fn credentialed(endpoints: &[String], secret: Option<&str>, token: Option<&str>) -> Client {
    let mut config = ClientConfig::new(endpoints.to_vec());
    config.secret = secret.map(str::to_string);
    config.token = token.map(str::to_string);
    config.call_timeout = Duration::from_secs(5);
    Client::new(config)
}

fn refused_code(result: Result<serde_json::Value, ClientError>) -> String {
    match result {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Separate credentials: the client token opens the key-value API only, the admin secret opens
/// admin operations (and the client API), and the peer secret opens neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_admins_and_clients_hold_separate_credentials() {
    let cluster = Cluster::start_with(3, "credentials", |config| {
        config.secret = PEER.as_bytes().to_vec();
        config.admin_secret = Some(ADMIN.as_bytes().to_vec());
        config.client_token = Some(TOKEN.as_bytes().to_vec());
    })
    .await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let endpoints = &cluster.addresses;

    // The client token: keys yes, admin no.
    let mut app = credentialed(endpoints, None, Some(TOKEN));
    app.put("k", "v").await.unwrap();
    assert_eq!(refused_code(app.admin(json!({"op": "status"})).await), "unauthorized");
    // No token, or the peer secret as one: nothing (the socket's upgrade is refused).
    for token in [None, Some(PEER)] {
        let error = credentialed(endpoints, None, token).put("k", "v").await.unwrap_err();
        assert!(matches!(&error, ClientError::Unavailable(why) if why.contains("401")), "{error}");
    }
    let answer = http_request(&endpoints[0], "PUT", "/v1/kv/k", None, b"v").await.unwrap();
    assert_eq!(answer.status, 401);
    let answer = http_request(&endpoints[0], "PUT", "/v1/kv/k", Some(TOKEN), b"v").await.unwrap();
    assert!(answer.status == 200 || answer.status == 307, "{}", answer.status);
    // The admin secret: admin operations, and the client API.
    let mut operator = credentialed(endpoints, Some(ADMIN), None);
    assert_eq!(operator.admin(json!({"op": "status"})).await.unwrap()["ok"], json!(true));
    operator.put("k", "w").await.unwrap();
    // The peer secret is no admin secret.
    let mut peer = credentialed(endpoints, Some(PEER), Some(TOKEN));
    assert_eq!(refused_code(peer.admin(json!({"op": "status"})).await), "unauthorized");
    let failures: u64 = cluster
        .nodes
        .iter()
        .flatten()
        .map(|node| node.raft.metrics().client_auth_failures_total.load(Ordering::Relaxed))
        .sum();
    assert!(failures >= 3, "refusals are counted: {failures}");
    cluster.shutdown().await;
}
