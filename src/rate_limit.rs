//! Failure-based rate limits per client address, as GitLab's Rack::Attack applies to sign-in
//! and (optionally) to the trigger API: after `max_failures` failed attempts within `window`,
//! the client gets 429 `Retry later` with `Retry-After` until the window ends. Successful
//! callers are never slowed: only failures count, and a success clears the count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept (bounds memory under address spraying).
const MAX_ENTRIES: usize = 10_000;

/// Failure counts per address.
pub struct Limiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Limiter {
    /// A limiter allowing `max_failures` per `window`; 0 turns it off.
    pub fn new(max_failures: u32, window: Duration) -> Limiter {
        Limiter {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether it limits anything.
    pub fn enabled(&self) -> bool {
        self.max_failures > 0
    }

    /// `Err(retry_after)` while `addr` has used up its failures in the current window.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let Ok(map) = self.failures.lock() else { return Ok(()) };
        match map.get(&addr) {
            Some((count, start)) if *count >= self.max_failures && start.elapsed() < self.window => {
                Err(self.window.saturating_sub(start.elapsed()).max(Duration::from_secs(1)))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt of `addr`.
    pub fn failed(&self, addr: IpAddr) {
        if !self.enabled() {
            return;
        }
        let Ok(mut map) = self.failures.lock() else { return };
        if map.len() >= MAX_ENTRIES {
            let window = self.window;
            map.retain(|_, (_, start)| start.elapsed() < window);
        }
        let entry = map.entry(addr).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Clears `addr`'s failures after a success.
    pub fn succeeded(&self, addr: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&addr);
        }
    }
}

/// A quota of uses per key (a user) and window, failures or not: GitLab's limits on actions
/// that make spur post to the outside (hook tests and resends: 5 a minute per user).
pub struct Quota {
    max: u32,
    window: Duration,
    uses: Mutex<HashMap<u64, (u32, Instant)>>,
}

impl Quota {
    /// `max` uses per `window` for each key.
    pub fn new(max: u32, window: Duration) -> Quota {
        Quota {
            max,
            window,
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one use by `key`; `Err(retry_after)` when its quota is used up.
    pub fn take(&self, key: u64) -> Result<(), Duration> {
        let Ok(mut map) = self.uses.lock() else { return Ok(()) };
        if map.len() >= MAX_ENTRIES {
            let window = self.window;
            map.retain(|_, (_, start)| start.elapsed() < window);
        }
        let entry = map.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        if entry.0 >= self.max {
            return Err(self
                .window
                .saturating_sub(entry.1.elapsed())
                .max(Duration::from_secs(1)));
        }
        entry.0 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_are_refused_until_the_window_ends() {
        let l = Limiter::new(2, Duration::from_millis(200));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a).is_ok());
        l.failed(a);
        l.failed(a);
        assert!(l.check(a).is_err());
        assert!(l.check(b).is_ok(), "others are not slowed");
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.check(a).is_ok());
        l.failed(a);
        l.succeeded(a);
        l.failed(a);
        assert!(l.check(a).is_ok(), "a success clears the count");
        assert!(Limiter::new(0, Duration::from_secs(1)).check(a).is_ok());
    }

    #[test]
    fn quotas_count_every_use_per_key() {
        let q = Quota::new(2, Duration::from_millis(200));
        assert!(q.take(1).is_ok() && q.take(1).is_ok());
        assert!(q.take(1).is_err());
        assert!(q.take(2).is_ok(), "another user has their own");
        std::thread::sleep(Duration::from_millis(250));
        assert!(q.take(1).is_ok());
    }
}
