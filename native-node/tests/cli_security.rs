//! Issue 11, High 6: `raft-node secret`, and `serve` refusing cleartext off loopback, one shared
//! secret off loopback, and weak secrets.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");

fn serve_error(listen: &str, secret: &str, extra: &[&str]) -> String {
    let data =
        std::env::temp_dir().join(format!("flotilla-cli-security-{}-{}", std::process::id(), extra.len()));
    let output = Command::new(BINARY)
        .args(["serve", "--id", "1", "--listen", listen, "--bootstrap", "1=127.0.0.1:1"])
        .arg("--data-dir")
        .arg(&data)
        .args(extra)
        .env("FLOTILLA_SECRET", secret)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&data);
    assert!(!output.status.success(), "serve on {listen} started");
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn secret_prints_256_random_bits() {
    let first = Command::new(BINARY).arg("secret").output().unwrap();
    let second = Command::new(BINARY).arg("secret").output().unwrap();
    let (first, second) = (
        String::from_utf8(first.stdout).unwrap().trim().to_string(),
        String::from_utf8(second.stdout).unwrap(),
    );
    assert_eq!(first.len(), 64, "{first}");
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert_ne!(first, second.trim());
}

#[test]
fn serve_refuses_cleartext_off_loopback_shared_and_weak_secrets() {
    let strong = "0123456789abcdef0123456789abcdef0123456789abcdef";
    let error = serve_error("0.0.0.0:0", strong, &[]);
    assert!(
        error.contains("cleartext") && error.contains("--tls-cert") && error.contains("--insecure-dev"),
        "{error}"
    );
    // With TLS, one shared secret and no client token are still refused off loopback.
    let certs = std::env::temp_dir().join(format!("flotilla-cli-security-certs-{}", std::process::id()));
    let status = Command::new(BINARY).args(["certs", "--nodes", "1", "--out"]).arg(&certs).status().unwrap();
    assert!(status.success());
    let tls_args = |dir: &std::path::Path| -> Vec<String> {
        ["--tls-cert", "node-1.pem", "--tls-key", "node-1-key.pem", "--tls-ca", "ca.pem"]
            .iter()
            .enumerate()
            .map(|(i, a)| if i % 2 == 1 { dir.join(a).display().to_string() } else { a.to_string() })
            .collect()
    };
    let args = tls_args(&certs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let error = serve_error("0.0.0.0:0", strong, &args);
    assert!(error.contains("separate secrets"), "{error}");
    // A weak secret is refused even on loopback, unless --insecure-dev.
    let error = serve_error("127.0.0.1:0", "flotilla-dev", &[]);
    assert!(error.contains("at least 128"), "{error}");
    let _ = std::fs::remove_dir_all(&certs);
}
