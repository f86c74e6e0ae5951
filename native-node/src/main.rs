//! `raft-node`: parses arguments and calls into the `native_node` library.

mod cli_secrets;

use clap::{Args, Parser, Subcommand};
use cli_secrets::{Given, SecretArgs};
use native_node::bench::{self, BenchConfig};
use native_node::client::{Client, ClientConfig, ClientError};
use native_node::server::{self, ServeConfig};
use raft_core::linearizability::Op;
use raft_core::NodeId;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "raft-node", version, about = "Flotilla: a Raft node, its client and its benchmark")]
struct Cli {
    #[command(flatten)]
    secrets: SecretArgs,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of `Serve`'s flags costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Serve(ServeArgs),
    /// Key-value operations.
    Kv {
        #[command(flatten)]
        endpoints: Endpoints,
        #[command(subcommand)]
        operation: KvOperation,
        /// Append the operation, with its times and outcome, to this history file (JSON lines).
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Cluster administration (needs the secret).
    Admin {
        #[command(flatten)]
        endpoints: Endpoints,
        #[command(subcommand)]
        operation: AdminOperation,
    },
    /// Measure put throughput and latency; the last line is JSON.
    Bench(BenchArgs),
    /// Check a recorded history (JSON lines) for linearizability; exit 0 if it is, 1 if not.
    Check(CheckArgs),
    /// Run a local cluster on 127.0.0.1 (data under .data/).
    DevCluster(DevClusterArgs),
    /// Print a new random secret or token (256 bits, hex).
    Secret,
    /// Write a development CA and a certificate per node (for 127.0.0.1 and localhost).
    Certs(CertsArgs),
}

#[derive(Args)]
struct CertsArgs {
    /// Directory to write ca.pem, ca-key.pem, node-N.pem and node-N-key.pem to.
    #[arg(long)]
    out: PathBuf,
    /// Number of node certificates.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
}

#[derive(Args)]
struct Endpoints {
    /// host:port of the nodes, comma-separated; tried in turn.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003")]
    endpoints: Vec<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: u64,
    /// host:port to listen on, for peers and clients alike.
    #[arg(long)]
    listen: String,
    /// Where the log, hard state and snapshots live.
    #[arg(long)]
    data_dir: PathBuf,
    /// Start a new cluster: every member as ID=HOST:PORT, comma-separated (this node included).
    #[arg(long, value_delimiter = ',', conflicts_with = "join")]
    bootstrap: Vec<String>,
    /// Join a running cluster through this node (host:port).
    #[arg(long)]
    join: Option<String>,
    /// The address peers and clients reach this node at (default: the listen address).
    #[arg(long)]
    advertise: Option<String>,
    /// The cluster's id; peers of another cluster are refused.
    #[arg(long, default_value = "flotilla")]
    cluster_id: String,
    /// Static files served at / (default: ./web if it exists).
    #[arg(long)]
    web_dir: Option<PathBuf>,
    /// Length of one Raft tick in milliseconds.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Size of one preallocated log segment in MiB.
    #[arg(long, default_value_t = 32)]
    wal_segment_mib: u64,
    /// Election timeout in milliseconds (elections start after 1-2x this much silence).
    #[arg(long, default_value_t = 500)]
    election_timeout_ms: u64,
    /// Snapshot and compact the log after this many applied entries (0: never).
    #[arg(long, default_value_t = 100_000)]
    snapshot_interval: u64,
    /// Also snapshot once the entries applied since the last snapshot carry this many MiB (0:
    /// by count only).
    #[arg(long, default_value_t = 64)]
    snapshot_interval_mib: u64,
    /// Bytes the store may hold; beyond, puts are refused with `no_space` (deletes still work)
    /// and `raft_no_space_alarm` is 1 (etcd's --quota-backend-bytes; 0: no quota).
    #[arg(long, default_value_t = native_node::quota::QUOTA_BACKEND_BYTES_DEFAULT)]
    quota_backend_bytes: u64,
    /// The largest snapshot `admin restore` may send, in bytes; it is streamed into the log in
    /// 1 MiB pieces, so the node never buffers it whole.
    #[arg(long, default_value_t = native_node::restore::RESTORE_BYTES_MAX_DEFAULT)]
    restore_bytes_max: u64,
    /// TCP connections open at once, all clients together (also kept below the open-file limit).
    #[arg(long, default_value_t = 16_384)]
    max_conns: usize,
    /// TCP connections open at once from one IP address.
    #[arg(long, default_value_t = 1024)]
    max_conns_per_address: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds after which a socket that moved no byte either way is closed.
    #[arg(long, default_value_t = 120)]
    idle_timeout_secs: u64,
    /// This node's certificate chain (PEM); with --tls-key and --tls-ca, clients and peers
    /// must speak TLS, and peers must present a certificate from the CA.
    #[arg(long, requires_all = ["tls_key"])]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, requires_all = ["tls_cert"])]
    tls_key: Option<PathBuf>,
    /// Allow a non-loopback listen address without TLS (secrets and data in cleartext), one
    /// shared secret, no client token, and weak secrets.
    #[arg(long)]
    insecure_dev: bool,
    /// Remove a browser learner tab silent this long (10m, 90s, 500ms; issue #13).
    #[arg(long, default_value = "5m", value_parser = native_node::invite::parse_duration)]
    browser_peer_ttl: Duration,
    /// Browser peers the cluster admits at most; joins beyond it are refused.
    #[arg(long, default_value_t = 32)]
    browser_peers_max: usize,
    /// The leader reports a voter tab silent this long (admin status, metrics; issue #14).
    #[arg(long, default_value = "10s", value_parser = native_node::invite::parse_duration)]
    browser_voter_silent_after: Duration,
    /// Demote a voter tab silent this long to a learner (off by default: see native-node/README.md
    /// for the risk either way).
    #[arg(long, value_parser = native_node::invite::parse_duration)]
    browser_voter_demote_after: Option<Duration>,
}

#[derive(Subcommand)]
enum KvOperation {
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Print KEY's value (exit 1 if absent).
    Get {
        key: String,
        /// linearizable (default), lease or stale.
        #[arg(long, default_value = "linearizable")]
        read: String,
    },
    /// Remove KEY.
    Del { key: String },
    /// Set KEY to NEW if it holds OLD: `cas KEY OLD NEW`, or `cas --absent KEY NEW`.
    Cas {
        key: String,
        /// OLD NEW, or NEW alone with --absent.
        values: Vec<String>,
        /// The key must not exist.
        #[arg(long)]
        absent: bool,
    },
}

#[derive(Subcommand)]
enum AdminOperation {
    /// Print the node's status as JSON (includes the leader's id).
    Status,
    /// Add a voter (ADDRESS is required for a native node; a browser tab has none: see
    /// native-node/README.md for when a tab may be promoted).
    AddVoter { id: u64, address: Option<String> },
    /// Add a non-voter.
    AddNonvoter { id: u64, address: String },
    /// Demote a voter to non-voter.
    Demote { id: u64 },
    /// Remove a server.
    Remove { id: u64 },
    /// Transfer leadership (to ID, or to the most up-to-date follower).
    Transfer { id: Option<u64> },
    /// Write a snapshot now.
    Snapshot,
    /// Save the leader's current state to FILE (snapshot bytes).
    Backup { file: PathBuf },
    /// Replace the whole cluster's state by a backup FILE (goes through the log).
    Restore { file: PathBuf },
    /// Make an invitation link for a browser tab to join as a learner; the link is the last line.
    Invite {
        /// How long the link admits tabs (10m, 1h, 90s).
        #[arg(long, default_value = "10m", value_parser = native_node::invite::parse_duration)]
        ttl: Duration,
        /// How many tabs it admits.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    endpoints: Endpoints,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// WebSocket connections per server that the clients share, as etcd's benchmark `--conns`
    /// [default: one per 16 clients; `--conns` equal to `--clients` gives each its own].
    #[arg(long)]
    conns: Option<usize>,
    /// Total puts.
    #[arg(long, default_value_t = 10_000)]
    ops: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Do not use client sessions.
    #[arg(long)]
    no_session: bool,
    /// Record every operation to this history file (JSON lines, for `raft-node check`); the
    /// workload then alternates puts and gets on a few shared keys.
    #[arg(long)]
    record: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// The history file (`bench --record` or `kv --record`).
    history: PathBuf,
    /// Also write a self-contained HTML page with the history panel.
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct DevClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Port of node 1; node N listens on base + N - 1.
    #[arg(long, default_value_t = 7001)]
    base_port: u16,
    /// Data of node N goes to DATA_ROOT/node-N.
    #[arg(long, default_value = ".data/dev-cluster")]
    data_root: PathBuf,
    /// Static files served at /.
    #[arg(long)]
    web_dir: Option<PathBuf>,
    /// Speak TLS: certificates from DATA_ROOT/certs (made by `raft-node certs` if absent).
    #[arg(long)]
    tls: bool,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}

fn parse_members(list: &[String]) -> Result<Vec<(NodeId, String)>, String> {
    list.iter()
        .map(|item| {
            let (id, address) = item
                .split_once('=')
                .ok_or_else(|| format!("bootstrap member {item:?} is not ID=HOST:PORT"))?;
            let id: u64 =
                id.trim().parse().map_err(|_| format!("bootstrap member {item:?}: id is not a number"))?;
            if id == 0 {
                return Err("node id 0 is reserved".to_string());
            }
            Ok((NodeId(id), address.trim().to_string()))
        })
        .collect()
}

fn default_web_dir() -> Option<PathBuf> {
    let dir = PathBuf::from("web");
    dir.is_dir().then_some(dir)
}

async fn serve(args: ServeArgs, secrets: &SecretArgs, given: &Given) -> Result<(), String> {
    if args.id == 0 {
        return Err("node id 0 is reserved".into());
    }
    let Some(peer_secret) = given.peer() else {
        return Err(
            "no peer secret: set FLOTILLA_PEER_SECRET or pass --peer-secret-file (a dev cluster may set \
                    one FLOTILLA_SECRET for peers and admins)"
                .into(),
        );
    };
    let tls = match (&args.tls_cert, &args.tls_key, &secrets.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => {
            Some(native_node::tls::NodeTls::load(&native_node::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            })?)
        }
        (None, None, _) => None,
        _ => return Err("TLS needs --tls-cert, --tls-key and --tls-ca together".into()),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let loopback = listener.local_addr().map(|address| address.ip().is_loopback()).unwrap_or(false);
    if !loopback && tls.is_none() && !args.insecure_dev {
        return Err(format!(
            "listening on {} without TLS would send secrets and all data in cleartext; give --tls-cert, \
             --tls-key and --tls-ca (`raft-node certs` makes development ones), listen on 127.0.0.1, or pass \
             --insecure-dev to accept that",
            args.listen
        ));
    }
    let mut config = ServeConfig::new(NodeId(args.id), peer_secret, args.data_dir);
    config.admin_secret = given.admin();
    config.client_token = given.client_token.clone();
    config.tls = tls;
    config.credentials().check(loopback, args.insecure_dev)?;
    config.bootstrap = parse_members(&args.bootstrap)?;
    config.join = args.join;
    config.cluster_id = args.cluster_id;
    config.advertise_address = args.advertise.or_else(|| {
        // A wildcard listen address is no address to give to peers.
        (!args.listen.starts_with("0.0.0.0")).then(|| args.listen.clone())
    });
    config.web_dir = args.web_dir.or_else(default_web_dir);
    config.tick_interval = Duration::from_millis(args.tick_ms.max(1));
    config.election_timeout_ticks = Some(args.election_timeout_ms / args.tick_ms.max(1));
    config.wal_segment_bytes = args.wal_segment_mib.max(1) * 1024 * 1024;
    config.snapshot_interval_entries = args.snapshot_interval;
    config.snapshot_interval_bytes = args.snapshot_interval_mib.saturating_mul(1024 * 1024);
    config.quota_backend_bytes = args.quota_backend_bytes;
    config.restore_bytes_max = args.restore_bytes_max;
    config.limits.connections_max = args.max_conns.max(1);
    config.limits.connections_per_address_max = args.max_conns_per_address.max(1);
    config.limits.header_read_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
    config.limits.idle_timeout = Duration::from_secs(args.idle_timeout_secs.max(1));
    config.browser_peers.ttl = args.browser_peer_ttl.max(Duration::from_millis(100));
    config.browser_peers.max = args.browser_peers_max;
    config.browser_peers.voters.silent_after =
        args.browser_voter_silent_after.max(Duration::from_millis(100));
    config.browser_peers.voters.demote_after =
        args.browser_voter_demote_after.map(|after| after.max(Duration::from_millis(100)));
    server::run(config, listener, shutdown_signal()).await.map_err(|e| e.to_string())
}

/// The checker's view of a kv command and its read mode; `None` for a malformed cas (which
/// `kv` then reports).
fn history_op(operation: &KvOperation) -> Option<(Op, String)> {
    let linearizable = String::from("linearizable");
    Some(match operation {
        KvOperation::Put { key, value } => (Op::put(key.clone(), value.clone()), linearizable),
        KvOperation::Get { key, read } => (Op::get(key.clone()), read.clone()),
        KvOperation::Del { key } => (Op::delete(key.clone()), linearizable),
        KvOperation::Cas { key, values, absent } => match (absent, values.as_slice()) {
            (true, [new]) => (Op::cas(key.clone(), None, new.clone()), linearizable),
            (false, [old, new]) => {
                (Op::cas(key.clone(), Some(old.clone().into()), new.clone()), linearizable)
            }
            _ => return None,
        },
    })
}

/// How kv, admin and bench reach the cluster: the admin secret, the client token, TLS.
struct Access {
    admin_secret: Option<String>,
    client_token: Option<String>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

fn client_for(endpoints: Endpoints, access: &Access) -> Client {
    let mut config = ClientConfig::new(endpoints.endpoints);
    config.secret = access.admin_secret.clone();
    config.token = access.client_token.clone();
    config.tls = access.tls.clone();
    Client::new(config)
}

fn print_refusal(error: &ClientError) -> ExitCode {
    match error {
        ClientError::Refused { response, .. } => eprintln!("{response}"),
        ClientError::Unavailable(why) => eprintln!("error: {why}"),
    }
    ExitCode::FAILURE
}

async fn kv(endpoints: Endpoints, operation: KvOperation, access: &Access) -> ExitCode {
    let mut client = client_for(endpoints, access);
    let result = match operation {
        KvOperation::Put { key, value } => client.put(&key, &value).await,
        KvOperation::Del { key } => client.del(&key).await,
        KvOperation::Get { key, read } => match client.get(&key, &read).await {
            Ok(response) => {
                return match response.get("value") {
                    Some(Value::String(value)) => {
                        println!("{value}");
                        ExitCode::SUCCESS
                    }
                    _ => {
                        eprintln!("key {key:?} not found");
                        ExitCode::FAILURE
                    }
                };
            }
            Err(error) => Err(error),
        },
        KvOperation::Cas { key, values, absent } => match (absent, values.as_slice()) {
            (true, [new]) => client.cas(&key, None, new).await,
            (false, [old, new]) => client.cas(&key, Some(old), new).await,
            _ => {
                eprintln!("usage: cas KEY OLD NEW, or cas --absent KEY NEW");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(response) => {
            println!("{response}");
            ExitCode::SUCCESS
        }
        Err(error) => print_refusal(&error),
    }
}

async fn admin(endpoints: Endpoints, operation: AdminOperation, access: &Access) -> ExitCode {
    if access.admin_secret.is_none() {
        eprintln!(
            "error: admin needs the admin secret: set FLOTILLA_ADMIN_SECRET (or FLOTILLA_SECRET) or pass \
             --admin-secret-file"
        );
        return ExitCode::from(2);
    }
    let secret_text = access.admin_secret.clone();
    let tls = access.tls.as_ref();
    match &operation {
        AdminOperation::Backup { file } => {
            // Streamed into the file as it arrives (through FILE.partial): a backup of any size,
            // in bounded memory, with no deadline but an idle timeout per read.
            let downloaded = native_node::backup_download::download_backup(
                &endpoints.endpoints,
                secret_text.as_deref(),
                tls,
                file,
            )
            .await;
            return match downloaded {
                Ok(downloaded) => {
                    println!(
                        "{}",
                        json!({ "ok": true, "bytes": downloaded.bytes, "index": downloaded.index })
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        AdminOperation::Restore { file } => {
            // Streamed from the file as it is sent: a backup of any size, in bounded memory.
            if let Err(error) = std::fs::File::open(file) {
                eprintln!("error: cannot read {}: {error}", file.display());
                return ExitCode::FAILURE;
            }
            let answer = native_node::client::http_admin_body_tls(
                &endpoints.endpoints,
                secret_text.as_deref(),
                "POST",
                "/admin/restore",
                native_node::client::RequestBody::File(file),
                tls,
            )
            .await;
            return match answer {
                Ok(answer) => {
                    let text = String::from_utf8_lossy(&answer.body);
                    if answer.status == 200 {
                        println!("{text}");
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("{text}");
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        AdminOperation::Invite { ttl, uses } => {
            let path = format!("/admin/invite?ttl_ms={}&uses={uses}", ttl.as_millis());
            // Over TLS when the node serves it (--tls-ca): the node then answers an https link.
            let answer = native_node::client::http_admin_tls(
                &endpoints.endpoints,
                secret_text.as_deref(),
                "POST",
                &path,
                &[],
                tls,
            )
            .await;
            let link = answer.as_ref().ok().filter(|a| a.status == 200).and_then(|answer| {
                let value: Value = serde_json::from_slice(&answer.body).ok()?;
                Some((value.get("link")?.as_str()?.to_string(), value))
            });
            return match (link, answer) {
                (Some((link, value)), _) => {
                    println!(
                        "invitation for {} browser tab(s) as learners, until {} ms since the epoch:",
                        value["uses"], value["expires_unix_ms"]
                    );
                    println!("{link}");
                    ExitCode::SUCCESS
                }
                (None, Ok(answer)) => {
                    eprintln!("{}", String::from_utf8_lossy(&answer.body));
                    ExitCode::FAILURE
                }
                (None, Err(error)) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let mut client = client_for(endpoints, access);
    let request = match operation {
        AdminOperation::Status => json!({ "op": "status" }),
        AdminOperation::AddVoter { id, address } => {
            json!({ "op": "add_voter", "node": id, "address": address })
        }
        AdminOperation::AddNonvoter { id, address } => {
            json!({ "op": "add_nonvoter", "node": id, "address": address })
        }
        AdminOperation::Demote { id } => json!({ "op": "demote", "node": id }),
        AdminOperation::Remove { id } => json!({ "op": "remove", "node": id }),
        AdminOperation::Transfer { id } => json!({ "op": "transfer", "node": id }),
        AdminOperation::Snapshot => json!({ "op": "snapshot" }),
        AdminOperation::Backup { .. } | AdminOperation::Restore { .. } | AdminOperation::Invite { .. } => {
            return ExitCode::FAILURE
        }
    };
    match client.admin(request).await {
        Ok(response) => {
            println!("{response}");
            ExitCode::SUCCESS
        }
        Err(error) => print_refusal(&error),
    }
}

async fn dev_cluster(args: DevClusterArgs, given: &Given) -> Result<(), String> {
    let secret = given.peer().unwrap_or_else(|| {
        tracing::warn!("no FLOTILLA_SECRET set; the dev cluster uses the secret \"flotilla-dev\"");
        b"flotilla-dev".to_vec()
    });
    let certs_dir = args.data_root.join("certs");
    if args.tls && !certs_dir.join("ca.pem").exists() {
        native_node::tls::generate_dev_certs(&certs_dir, args.nodes)?;
    }
    let scheme = if args.tls { "https" } else { "http" };
    let members: Vec<(NodeId, String)> = (1..=args.nodes)
        .map(|id| (NodeId(id), format!("127.0.0.1:{}", u64::from(args.base_port) + id - 1)))
        .collect();
    let web_dir = args.web_dir.or_else(default_web_dir);
    let mut nodes = Vec::new();
    for (id, address) in &members {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let mut config = ServeConfig::new(*id, secret.clone(), args.data_root.join(format!("node-{id}")));
        config.admin_secret = given.admin();
        config.client_token = given.client_token.clone();
        if args.tls {
            config.tls =
                Some(native_node::tls::NodeTls::load(&native_node::tls::node_files(&certs_dir, id.0))?);
        }
        config.bootstrap = members.clone();
        config.advertise_address = Some(address.clone());
        config.web_dir = web_dir.clone();
        nodes.push(server::start(config, listener).await.map_err(|e| format!("node {id}: {e}"))?);
    }
    let endpoints: Vec<&str> = members.iter().map(|(_, a)| a.as_str()).collect();
    println!("dev cluster of {} nodes running; data under {}", args.nodes, args.data_root.display());
    for (id, address) in &members {
        println!("  node {id}: {scheme}://{address}/  (health: {scheme}://{address}/health)");
    }
    let ca =
        if args.tls { format!("--tls-ca {} ", certs_dir.join("ca.pem").display()) } else { String::new() };
    println!("try: raft-node {ca}kv --endpoints {} put hello world", endpoints.join(","));
    shutdown_signal().await;
    // All at once, so the last nodes do not hold elections while the first ones stop.
    futures_util::future::join_all(nodes.into_iter().map(|node| node.shutdown())).await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::Secret = cli.command {
        let mut bytes = [0u8; 32];
        if let Err(error) = getrandom::getrandom(&mut bytes) {
            eprintln!("error: no randomness from the operating system: {error}");
            return ExitCode::FAILURE;
        }
        println!("{}", hex::encode(bytes));
        return ExitCode::SUCCESS;
    }
    if let Command::Certs(args) = &cli.command {
        return match native_node::tls::generate_dev_certs(&args.out, args.nodes) {
            Ok(written) => {
                for path in written {
                    println!("{}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let (given, client_tls) =
        match cli.secrets.load().and_then(|given| Ok((given, cli.secrets.client_tls()?))) {
            Ok(loaded) => loaded,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        };
    let access =
        Access { admin_secret: given.admin_text(), client_token: given.client_token_text(), tls: client_tls };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                if given.peer().is_none() {
                    eprintln!(
                        "error: no peer secret: set FLOTILLA_PEER_SECRET or pass --peer-secret-file (a dev \
                         cluster may set one FLOTILLA_SECRET for peers and admins)"
                    );
                    return ExitCode::from(2);
                }
                match serve(args, &cli.secrets, &given).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => {
                        tracing::error!(%error, "node stopped");
                        eprintln!("error: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Kv { endpoints, operation, record } => match record {
                None => kv(endpoints, operation, &access).await,
                Some(path) => match history_op(&operation) {
                    Some((op, read)) => {
                        native_node::history_cli::record_kv(&path, client_for(endpoints, &access), &op, &read)
                            .await
                    }
                    None => kv(endpoints, operation, &access).await,
                },
            },
            Command::Check(args) => native_node::history_cli::check(&args.history, args.html.as_deref()),
            Command::Admin { endpoints, operation } => admin(endpoints, operation, &access).await,
            Command::Bench(args) => {
                let record = match args.record.as_deref().map(native_node::history::Recorder::append_to) {
                    None => None,
                    Some(Ok(recorder)) => Some(recorder),
                    Some(Err(error)) => {
                        eprintln!("error: cannot open the history file: {error}");
                        return ExitCode::from(2);
                    }
                };
                let started = std::time::Instant::now();
                let report = bench::run(BenchConfig {
                    endpoints: args.endpoints.endpoints,
                    clients: args.clients,
                    connections: args.conns.unwrap_or(args.clients.div_ceil(bench::CLIENTS_PER_CONNECTION)),
                    ops: args.ops,
                    value_size_bytes: args.value_size,
                    use_session: !args.no_session,
                    record,
                    security: native_node::connection::ClientSecurity {
                        tls: access.tls.clone(),
                        token: access.client_token.clone().or_else(|| access.admin_secret.clone()),
                    },
                })
                .await;
                if let Some(path) = &args.record {
                    native_node::history_cli::print_bench_check(path, started.elapsed());
                }
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
                if report.ops == 0 {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Command::DevCluster(args) => match dev_cluster(args, &given).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            },
            Command::Secret | Command::Certs(_) => ExitCode::SUCCESS,
        }
    })
}
