//! Issue 11, High 6 (the part without TLS): `raft-node secret`, and `serve` refusing cleartext
//! off loopback and short secrets.

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
fn serve_refuses_cleartext_off_loopback_and_short_secrets() {
    let error = serve_error("0.0.0.0:0", "a-long-enough-secret-of-32-bytes", &[]);
    assert!(error.contains("cleartext") && error.contains("--insecure-dev"), "{error}");
    let error = serve_error("0.0.0.0:0", "short", &["--insecure-dev"]);
    assert!(error.contains("at least 16 random bytes"), "{error}");
}
