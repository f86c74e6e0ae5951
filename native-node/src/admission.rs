//! Who may do what, and how often: the admin secret's check (constant time, no length leak,
//! failures counted, logged and throttled per address) and the rate limit on unauthenticated
//! session registrations.

use crate::metrics::Metrics;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed admin attempts one address may make per [`ADMIN_FAILURE_WINDOW`]; after that its
/// admin requests are refused unchecked until the window ends.
pub const ADMIN_FAILURES_MAX: u32 = 10;
/// The window of [`ADMIN_FAILURES_MAX`].
pub const ADMIN_FAILURE_WINDOW: Duration = Duration::from_secs(10);
/// Session registrations one address may start per second, sustained.
pub const REGISTRATIONS_PER_SECOND: f64 = 20.0;
/// Registrations one address may start at once (the bucket's size): room for a benchmark's
/// 256 clients starting together.
pub const REGISTRATIONS_BURST: f64 = 300.0;
/// Addresses remembered at most (failures, registration buckets); beyond it the oldest go.
const ADDRESSES_MAX: usize = 65_536;

/// Why an admin request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRefusal {
    /// Wrong or missing secret.
    WrongSecret,
    /// Too many recent failures from this address.
    Throttled,
}

type HmacSha256 = Hmac<Sha256>;

/// Checks admin secrets.
#[derive(Debug)]
pub struct AdminGuard {
    /// A random per-process key: both sides of the comparison are HMACs under it, so the
    /// comparison takes the same time whatever the guess's length or content.
    key: [u8; 32],
    expected: [u8; 32],
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

fn digest(key: &[u8; 32], secret: &[u8]) -> HmacSha256 {
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts keys of any length"),
    };
    mac.update(secret);
    mac
}

impl AdminGuard {
    /// A guard for `secret`.
    pub fn new(secret: &[u8]) -> AdminGuard {
        let mut key = [0u8; 32];
        if getrandom::getrandom(&mut key).is_err() {
            // Without OS randomness the comparison is still constant time; the key only hides
            // the digest from timing, which the HMAC's fixed length already does.
            key = [0x5c; 32];
        }
        let expected = digest(&key, secret).finalize().into_bytes().into();
        AdminGuard { key, expected, failures: Mutex::new(HashMap::new()) }
    }

    /// Checks `given` for a request from `remote`, counting and logging failures.
    ///
    /// # Errors
    /// [`AdminRefusal`] saying why.
    pub fn check(&self, given: &[u8], remote: Option<IpAddr>, metrics: &Metrics) -> Result<(), AdminRefusal> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(remote) = remote {
            if let Some((count, since)) = failures.get(&remote) {
                if now.duration_since(*since) < ADMIN_FAILURE_WINDOW && *count >= ADMIN_FAILURES_MAX {
                    metrics.admin_auth_throttled_total.fetch_add(1, Ordering::Relaxed);
                    return Err(AdminRefusal::Throttled);
                }
            }
        }
        if digest(&self.key, given).verify_slice(&self.expected).is_ok() {
            return Ok(());
        }
        metrics.admin_auth_failures_total.fetch_add(1, Ordering::Relaxed);
        let count = match remote {
            Some(remote) => {
                if failures.len() >= ADDRESSES_MAX {
                    failures.retain(|_, (_, since)| now.duration_since(*since) < ADMIN_FAILURE_WINDOW);
                }
                let slot = failures.entry(remote).or_insert((0, now));
                if now.duration_since(slot.1) >= ADMIN_FAILURE_WINDOW {
                    *slot = (0, now);
                }
                slot.0 += 1;
                slot.0
            }
            None => 0,
        };
        tracing::warn!(?remote, failures = count, "admin request with a wrong or missing secret");
        Err(AdminRefusal::WrongSecret)
    }
}

/// Token buckets per address for session registrations.
#[derive(Debug, Default)]
pub struct RegistrationLimiter {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RegistrationLimiter {
    /// Whether `remote` may register a session now (takes a token if so).
    pub fn allow(&self, remote: Option<IpAddr>) -> bool {
        let Some(remote) = remote else { return true };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= ADDRESSES_MAX {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * REGISTRATIONS_PER_SECOND
                    < REGISTRATIONS_BURST
            });
        }
        let (tokens, at) = buckets.entry(remote).or_insert((REGISTRATIONS_BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * REGISTRATIONS_PER_SECOND)
            .min(REGISTRATIONS_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_check_counts_failures_and_throttles_an_address() {
        let guard = AdminGuard::new(b"right secret");
        let metrics = Metrics::default();
        let remote: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(guard.check(b"right secret", Some(remote), &metrics), Ok(()));
        for guess in [&b""[..], b"right", b"right secret!", b"wrong secret"] {
            assert_eq!(guard.check(guess, Some(remote), &metrics), Err(AdminRefusal::WrongSecret));
        }
        for _ in 4..ADMIN_FAILURES_MAX {
            let _ = guard.check(b"guess", Some(remote), &metrics);
        }
        // Now even the right secret waits for the window to pass, from that address only.
        assert_eq!(guard.check(b"right secret", Some(remote), &metrics), Err(AdminRefusal::Throttled));
        assert_eq!(guard.check(b"right secret", Some("127.0.0.3".parse().unwrap()), &metrics), Ok(()));
        assert_eq!(metrics.admin_auth_failures_total.load(Ordering::Relaxed), u64::from(ADMIN_FAILURES_MAX));
        assert_eq!(metrics.admin_auth_throttled_total.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn registrations_are_limited_per_address() {
        let limiter = RegistrationLimiter::default();
        let remote: IpAddr = "127.0.0.2".parse().unwrap();
        let allowed = (0..1000).filter(|_| limiter.allow(Some(remote))).count();
        assert!((300..320).contains(&allowed), "{allowed}");
        assert!(limiter.allow(Some("127.0.0.3".parse().unwrap())));
    }
}
