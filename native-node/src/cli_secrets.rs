//! Where `raft-node` finds its credentials and TLS files (see `native_node::credentials`):
//! each from its own file flag or environment variable, with one `FLOTILLA_SECRET` (or
//! `--secret-file`) standing in for both the peer and the admin secret in a dev cluster.

use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Credential and TLS flags every subcommand takes.
#[derive(Args, Clone, Debug, Default)]
pub struct SecretArgs {
    /// One secret for peers and admins alike, for a dev cluster (default: the FLOTILLA_SECRET
    /// variable). Off loopback, give --peer-secret-file and --admin-secret-file instead.
    #[arg(long, global = true)]
    pub secret_file: Option<PathBuf>,
    /// The peer secret, which nodes prove to each other (default: FLOTILLA_PEER_SECRET).
    #[arg(long, global = true)]
    pub peer_secret_file: Option<PathBuf>,
    /// The admin secret, for membership changes, backups and status (default:
    /// FLOTILLA_ADMIN_SECRET).
    #[arg(long, global = true)]
    pub admin_secret_file: Option<PathBuf>,
    /// The token clients present to read and write keys (default: FLOTILLA_CLIENT_TOKEN);
    /// optional on loopback.
    #[arg(long, global = true)]
    pub client_token_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signs every node's certificate: a node with it speaks TLS
    /// to clients and peers; kv, admin and bench with it speak https/wss and trust only it.
    #[arg(long, global = true)]
    pub tls_ca: Option<PathBuf>,
}

/// The credentials found.
#[derive(Clone, Default)]
pub struct Given {
    shared: Option<Vec<u8>>,
    peer: Option<Vec<u8>>,
    admin: Option<Vec<u8>>,
    /// The client token.
    pub client_token: Option<Vec<u8>>,
}

fn read(file: Option<&PathBuf>, variable: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(path) = file {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
        if trimmed.is_empty() {
            return Err(format!("secret file {} is empty", path.display()));
        }
        return Ok(Some(trimmed));
    }
    match std::env::var(variable) {
        Ok(secret) if !secret.trim().is_empty() => Ok(Some(secret.trim().as_bytes().to_vec())),
        _ => Ok(None),
    }
}

impl SecretArgs {
    /// Reads every credential given.
    ///
    /// # Errors
    /// A message when a named file cannot be read or is empty.
    pub fn load(&self) -> Result<Given, String> {
        Ok(Given {
            shared: read(self.secret_file.as_ref(), "FLOTILLA_SECRET")?,
            peer: read(self.peer_secret_file.as_ref(), "FLOTILLA_PEER_SECRET")?,
            admin: read(self.admin_secret_file.as_ref(), "FLOTILLA_ADMIN_SECRET")?,
            client_token: read(self.client_token_file.as_ref(), "FLOTILLA_CLIENT_TOKEN")?,
        })
    }

    /// The client TLS configuration for kv, admin and bench, if `--tls-ca` is given.
    ///
    /// # Errors
    /// A message when the CA file is missing or malformed.
    pub fn client_tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        self.tls_ca.as_deref().map(|ca| native_node::tls::client_config(ca, None)).transpose()
    }
}

impl Given {
    /// The peer secret: its own, else the shared one.
    pub fn peer(&self) -> Option<Vec<u8>> {
        self.peer.clone().or_else(|| self.shared.clone())
    }

    /// The admin secret: its own, else the shared one.
    pub fn admin(&self) -> Option<Vec<u8>> {
        self.admin.clone().or_else(|| self.shared.clone())
    }

    /// As text, for the JSON API and headers.
    pub fn admin_text(&self) -> Option<String> {
        self.admin().map(|s| String::from_utf8_lossy(&s).into_owned())
    }

    /// The client token as text.
    pub fn client_token_text(&self) -> Option<String> {
        self.client_token.as_ref().map(|s| String::from_utf8_lossy(s).into_owned())
    }
}
