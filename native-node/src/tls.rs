//! TLS for clients and peers (rustls with the ring provider), beneath HTTP and WebSockets, so
//! the peer frames of [`crate::peer_auth`] are untouched.
//!
//! - Every connection to a node started with `--tls-cert/--tls-key/--tls-ca` is TLS; the node's
//!   certificate must be signed by the CA (`--tls-ca`), and clients check it against that CA.
//! - **Peers authenticate mutually**: a `/raft` socket is served only to a connection that
//!   presented a client certificate signed by the CA ([`AcceptedStream::client_certificate`],
//!   checked in `server::raft_socket`). Clients (kv, admin, bench, browsers) need none, so
//!   the server asks for a certificate but does not require one for other paths.
//! - The per-frame HMAC of the peer protocol stays under TLS: TLS authenticates hosts (anyone
//!   holding a certificate from the CA), the HMAC authenticates cluster membership (the peer
//!   secret).
//! - [`generate_dev_certs`] is `raft-node certs`: a development CA and one certificate per node
//!   for `127.0.0.1`, `::1` and `localhost`, usable as server and as client certificate.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where a node's TLS material is: its certificate chain and key, and the cluster's CA.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// PEM certificate chain of this node (leaf first).
    pub cert: PathBuf,
    /// PEM private key of this node.
    pub key: PathBuf,
    /// PEM certificate(s) of the CA that signs every node's certificate.
    pub ca: PathBuf,
}

/// A node's TLS configuration: the server side of its listener, and the client side it dials
/// peers with (presenting its own certificate).
#[derive(Clone)]
pub struct NodeTls {
    /// Accepts clients and peers; asks for (but does not require) a client certificate.
    pub server: Arc<ServerConfig>,
    /// Dials peers: checks them against the CA and presents this node's certificate.
    pub peer_client: Arc<ClientConfig>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeTls")
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM certificate in {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a PEM private key from {}: {e}", path.display()))
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(ca)? {
        roots.add(certificate).map_err(|e| format!("bad CA certificate in {}: {e}", ca.display()))?;
    }
    Ok(Arc::new(roots))
}

/// A client configuration that trusts only the CA in `ca`, presenting `identity` (certificate
/// chain and key files) if given.
///
/// # Errors
/// A message naming the file that is missing or malformed.
pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certificates(cert)?, read_key(key)?)
            .map_err(|e| format!("the certificate {} does not fit its key: {e}", cert.display()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl NodeTls {
    /// Loads a node's certificate, key and CA.
    ///
    /// # Errors
    /// A message naming the file that is missing or malformed, or a certificate that does not
    /// fit its key.
    pub fn load(files: &TlsFiles) -> Result<NodeTls, String> {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(&files.ca)?, provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("cannot use the CA in {}: {e}", files.ca.display()))?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(read_certificates(&files.cert)?, read_key(&files.key)?)
            .map_err(|e| format!("the certificate {} does not fit its key: {e}", files.cert.display()))?;
        // WebSockets upgrade HTTP/1.1 only.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let peer_client = client_config(&files.ca, Some((&files.cert, &files.key)))?;
        Ok(NodeTls { server: Arc::new(server), peer_client })
    }

    /// The acceptor of the node's listener.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }
}

/// An accepted connection, plaintext or TLS.
pub enum AcceptedStream<S> {
    /// Plaintext (a node without TLS: loopback, or `--insecure-dev`).
    Plain(S),
    /// TLS.
    Tls(Box<tokio_rustls::server::TlsStream<S>>),
}

impl<S> AcceptedStream<S> {
    /// Whether this connection may carry a peer socket: any plaintext connection (a node
    /// without TLS has no other proof), and a TLS connection only if it presented a client
    /// certificate that the CA signed (rustls checked it during the handshake).
    pub fn client_certificate(&self) -> PeerProof {
        match self {
            AcceptedStream::Plain(_) => PeerProof::NoTls,
            AcceptedStream::Tls(tls) => {
                if tls.get_ref().1.peer_certificates().is_some_and(|chain| !chain.is_empty()) {
                    PeerProof::CertificateFromCa
                } else {
                    PeerProof::NoCertificate
                }
            }
        }
    }
}

/// What a connection proved about being a peer, at the TLS layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerProof {
    /// The node runs without TLS: the peer handshake alone authenticates.
    NoTls,
    /// A TLS client presented a certificate signed by the cluster's CA.
    CertificateFromCa,
    /// A TLS client presented no certificate: a client, never a peer.
    NoCertificate,
}

impl PeerProof {
    /// Whether `/raft` may be served on this connection.
    pub fn may_be_peer(self) -> bool {
        !matches!(self, PeerProof::NoCertificate)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for AcceptedStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AcceptedStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            AcceptedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for AcceptedStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AcceptedStream::Plain(stream) => Pin::new(stream).poll_write(cx, data),
            AcceptedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AcceptedStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            AcceptedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AcceptedStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            AcceptedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AcceptedStream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, buffers),
            AcceptedStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            AcceptedStream::Plain(stream) => stream.is_write_vectored(),
            AcceptedStream::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

/// The TCP socket beneath a dialled (plaintext or TLS) WebSocket, to set socket options on.
pub fn dialled_tcp(
    stream: &tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
) -> Option<&tokio::net::TcpStream> {
    match stream {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => Some(tcp),
        tokio_tungstenite::MaybeTlsStream::Rustls(tls) => Some(tls.get_ref().0),
        _ => None,
    }
}

/// A byte stream a small HTTP client can use, plaintext or TLS.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// Opens TLS over `tcp` to `address` (host:port; the host names the server's certificate).
///
/// # Errors
/// A message when the host is no valid name or the handshake fails.
pub async fn connect(
    config: &Arc<ClientConfig>,
    address: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} cannot name a TLS server: {e}"))?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {address} failed: {e}"))
}

/// The files `raft-node certs` writes for node `id` under its output directory.
pub fn node_files(dir: &Path, id: u64) -> TlsFiles {
    TlsFiles {
        cert: dir.join(format!("node-{id}.pem")),
        key: dir.join(format!("node-{id}-key.pem")),
        ca: dir.join("ca.pem"),
    }
}

/// Writes a development CA (`ca.pem`, `ca-key.pem`) and, for nodes 1..=`nodes`, a certificate
/// and key (`node-N.pem`, `node-N-key.pem`) valid for `127.0.0.1`, `::1` and `localhost`, as
/// server and as client (peers present it when they dial). Keys are written readable by the
/// owner only. For development and tests: a real deployment issues certificates naming its
/// hosts from its own CA.
///
/// # Errors
/// A message when a key cannot be made or a file cannot be written.
pub fn generate_dev_certs(dir: &Path, nodes: u64) -> Result<Vec<PathBuf>, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let error = |e: rcgen::Error| format!("cannot make a certificate: {e}");
    let ca_key = KeyPair::generate().map_err(error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
    ca_params.distinguished_name.push(DnType::CommonName, "Flotilla development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(error)?;
    let mut written = Vec::new();
    let mut write = |path: PathBuf, text: String, secret: bool| -> Result<(), String> {
        write_file(&path, text.as_bytes(), secret)?;
        written.push(path);
        Ok(())
    };
    write(dir.join("ca.pem"), ca_cert.pem(), false)?;
    write(dir.join("ca-key.pem"), ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca_params, ca_key);
    for id in 1..=nodes {
        let key = KeyPair::generate().map_err(error)?;
        let names = vec!["127.0.0.1".to_string(), "::1".to_string(), "localhost".to_string()];
        let mut params = CertificateParams::new(names).map_err(error)?;
        params.distinguished_name.push(DnType::CommonName, format!("flotilla node {id}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer).map_err(error)?;
        let files = node_files(dir, id);
        write(files.cert, cert.pem(), false)?;
        write(files.key, key.serialize_pem(), true)?;
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificates_load_as_node_and_client_configurations() {
        let dir = std::env::temp_dir().join(format!("flotilla-tls-unit-{}", std::process::id()));
        let written = generate_dev_certs(&dir, 2).unwrap();
        assert_eq!(written.len(), 6);
        for id in 1..=2 {
            NodeTls::load(&node_files(&dir, id)).unwrap();
        }
        client_config(&dir.join("ca.pem"), None).unwrap();
        // A node certificate is no CA.
        assert!(NodeTls::load(&TlsFiles {
            cert: dir.join("node-1.pem"),
            key: dir.join("node-2-key.pem"),
            ca: dir.join("ca.pem"),
        })
        .is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("node-1-key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "keys are private");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
