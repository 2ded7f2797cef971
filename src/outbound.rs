//! Requests spur makes to other hosts on a user's behalf (webhooks, commit statuses, mirror
//! fetches): which addresses they may reach, as GitLab's `UrlBlocker` decides. Loopback,
//! private, link-local, shared and unique-local addresses (and `0.0.0.0`, `::`, broadcast) are
//! refused after DNS resolution unless the administrator allows local requests or lists the
//! host, address, network or `host:port` in the allow-list. Callers connect to the addresses
//! checked here (pinned), never to a second resolution, so DNS rebinding gains nothing.

use crate::domain::ApplicationSettings as Settings;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What an outbound request may reach.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Local addresses allowed (the setting, or `--allow-local-requests`).
    pub allow_local: bool,
    allowlist: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// An address or network, with an optional port.
    Net(IpAddr, u8, Option<u16>),
    /// A host name, with an optional port.
    Host(String, Option<u16>),
}

impl Policy {
    /// The policy for these settings, with local requests also allowed when `flag` is set.
    pub fn new(settings: &Settings, flag: bool) -> Policy {
        Policy {
            allow_local: flag || settings.allow_local_requests_from_web_hooks_and_services,
            allowlist: settings
                .outbound_local_requests_whitelist
                .iter()
                .filter_map(|e| parse_entry(e).ok())
                .collect(),
        }
    }

    /// Checks one address `host` resolved to; the error is GitLab's message.
    pub fn check(&self, host: &str, ip: IpAddr, port: u16) -> Result<(), String> {
        let Some(reason) = blocked(ip) else { return Ok(()) };
        if self.allow_local || self.allowlist.iter().any(|e| e.admits(host, ip, port)) {
            return Ok(());
        }
        Err(reason.to_string())
    }

    /// Resolves `host` and checks every address it has; answers them for the caller to
    /// connect to.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| format!("Host cannot be resolved or invalid: {bare}"))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("Host cannot be resolved or invalid: {bare}"));
        }
        for a in &addrs {
            self.check(bare, canonical(a.ip()), port)?;
        }
        Ok(addrs)
    }

    /// Checks a URL (scheme http or https) before a request is made to it.
    pub async fn check_url(&self, url: &str) -> Result<Vec<SocketAddr>, String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "Invalid url given".to_string())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("Only allowed schemes are http, https".into());
        }
        let host = parsed.host_str().ok_or("Invalid url given")?.to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        self.resolve(&host, port).await
    }
}

impl Entry {
    fn admits(&self, host: &str, ip: IpAddr, port: u16) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        match self {
            Entry::Net(net, len, p) => port_ok(p) && in_network(canonical(ip), *net, *len),
            Entry::Host(name, p) => port_ok(p) && name.eq_ignore_ascii_case(host),
        }
    }
}

/// Checks the entries of an allow-list (`1.2.3.4`, `10.0.0.0/8`, `::1`, `[::1]:80`,
/// `example.com`, `example.com:8080`); answers them trimmed, or the first bad one.
pub fn parse_allowlist(text: &str) -> Result<Vec<String>, String> {
    let entries: Vec<String> = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if entries.len() > 1000 {
        return Err("may hold at most 1000 entries".into());
    }
    for e in &entries {
        parse_entry(e).map_err(|_| format!("{e:?} is not an IP address, network or host name"))?;
    }
    Ok(entries)
}

fn parse_entry(text: &str) -> Result<Entry, ()> {
    let text = text.trim();
    if let Some((addr, len)) = text.split_once('/') {
        let ip: IpAddr = addr.parse().map_err(|_| ())?;
        let len: u8 = len.parse().map_err(|_| ())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        return if len <= max {
            Ok(Entry::Net(canonical(ip), len, None))
        } else {
            Err(())
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Entry::Net(canonical(ip), if ip.is_ipv4() { 32 } else { 128 }, None));
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        let ip = canonical(sock.ip());
        return Ok(Entry::Net(ip, if ip.is_ipv4() { 32 } else { 128 }, Some(sock.port())));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| ())?)),
        None => (text, None),
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if valid {
        Ok(Entry::Host(host.to_ascii_lowercase(), port))
    } else {
        Err(())
    }
}

/// An IPv6 address that carries an IPv4 one (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) as that IPv4 address, so
/// the IPv4 rules judge it.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && u32::from(low) > 1 {
        return IpAddr::V4(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(low);
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why GitLab refuses a request to `ip` by default; `None` for a public address.
pub fn blocked(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical(ip);
    let net = |n: IpAddr, len: u8| in_network(ip, n, len);
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |s: u16| IpAddr::V6(Ipv6Addr::new(s, 0, 0, 0, 0, 0, 0, 0));
    if ip.is_unspecified() || net(v4(0, 0, 0, 0), 8) {
        Some("Requests to localhost are not allowed")
    } else if ip.is_loopback() {
        Some("Requests to loopback addresses are not allowed")
    } else if net(v4(10, 0, 0, 0), 8)
        || net(v4(172, 16, 0, 0), 12)
        || net(v4(192, 168, 0, 0), 16)
        || net(v4(192, 0, 0, 0), 24)
        || net(v4(198, 18, 0, 0), 15)
        || net(v4(240, 0, 0, 0), 4)
        || net(v6(0xfc00), 7)
        || net(v6(0xfec0), 10)
    {
        Some("Requests to the local network are not allowed")
    } else if net(v4(169, 254, 0, 0), 16) || net(v6(0xfe80), 10) {
        Some("Requests to the link local network are not allowed")
    } else if net(v4(100, 64, 0, 0), 10) {
        Some("Requests to the shared address space are not allowed")
    } else if net(v4(224, 0, 0, 0), 4) || net(v6(0xff00), 8) {
        Some("Requests to the limited broadcast address are not allowed")
    } else {
        None
    }
}

/// Fetches a text file (an `include:remote`) as GitLab's `External::File::Remote` does: only
/// addresses `policy` admits (checked after resolution, on every connection), no redirects,
/// at most `max_bytes`, within `timeout`. Errors are GitLab's texts for `url`.
pub async fn fetch_text(
    policy: std::sync::Arc<std::sync::RwLock<Policy>>,
    url: &str,
    max_bytes: usize,
    timeout: std::time::Duration,
) -> Result<String, String> {
    let current = policy.read().map(|p| p.clone()).unwrap_or_default();
    if let Err(why) = current.check_url(url).await {
        return Err(format!("Remote file `{url}` could not be fetched: {why}"));
    }
    install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(GuardedResolver(policy)))
        .build()
        .map_err(|e| format!("Remote file `{url}` could not be fetched: {e}"))?;
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            format!("Remote file `{url}` could not be fetched because of a timeout error!")
        } else {
            format!("Remote file `{url}` could not be fetched because of a socket error!")
        }
    };
    let mut response = client.get(url).send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(format!(
            "Remote file `{url}` could not be fetched because of HTTP code `{}` error!",
            response.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!(
                "Remote file `{url}` is too large: the limit is {max_bytes} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("Remote file `{url}` is not UTF-8 text"))
}

/// Remote files fetched recently, so that a burst of pipelines fetches each once.
#[derive(Debug, Default)]
pub struct TextCache(std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, std::sync::Arc<str>)>>);

impl TextCache {
    /// How long a fetched file is reused, and how many are kept.
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX_ENTRIES: usize = 64;

    /// The file fetched for `url` in the last minute, if any.
    pub fn get(&self, url: &str) -> Option<std::sync::Arc<str>> {
        let map = self.0.lock().ok()?;
        map.get(url)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, text)| text.clone())
    }

    /// Keeps `text` for `url`.
    pub fn put(&self, url: &str, text: std::sync::Arc<str>) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
            map.insert(url.to_string(), (std::time::Instant::now(), text));
        }
    }
}

/// Makes rustls use the ring provider for every outbound https request (once per process).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A resolver for reqwest that answers only addresses the policy admits, so a webhook's host
/// is checked on every connection, after resolution.
pub struct GuardedResolver(pub std::sync::Arc<std::sync::RwLock<Policy>>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.read().map(|p| p.clone()).unwrap_or_default();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs = policy
                .resolve(&host, 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

/// How git must reach a mirror's origin so that it connects only to checked addresses.
#[derive(Clone, Debug, Default)]
pub struct GitPin {
    /// `-c` settings for git (`http.curloptResolve`, `url.<ip>.insteadOf`, no redirects).
    pub config: Vec<String>,
    /// Options for ssh (`HostName` pinned to the checked address).
    pub ssh_options: Vec<String>,
}

/// Checks a mirror's remote URL (https, http, ssh, git or scp-like) and pins git to the
/// addresses checked.
pub async fn git_pin(url: &str, policy: &Policy) -> Result<GitPin, String> {
    if let Ok(parsed) = reqwest::Url::parse(url)
        && parsed.has_host()
    {
        let host = parsed.host_str().unwrap_or_default().to_string();
        let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let scheme = parsed.scheme();
        let port = parsed.port().unwrap_or(match scheme {
            "https" => 443,
            "http" => 80,
            "ssh" => 22,
            _ => 9418,
        });
        let addr = policy.resolve(&bare, port).await?[0].ip();
        let shown = match addr {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        return Ok(match scheme {
            "https" | "http" => GitPin {
                config: vec![
                    format!("http.curloptResolve={bare}:{port}:{shown}"),
                    "http.followRedirects=false".into(),
                ],
                ssh_options: Vec::new(),
            },
            "ssh" => GitPin {
                config: Vec::new(),
                ssh_options: vec![format!("HostName={addr}"), format!("HostKeyAlias={bare}")],
            },
            _ => {
                let from = format!(
                    "git://{}{}/",
                    host,
                    parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
                );
                GitPin {
                    config: vec![format!("url.git://{shown}:{port}/.insteadOf={from}")],
                    ssh_options: Vec::new(),
                }
            }
        });
    }
    // scp-like `user@host:path`
    let host = url
        .split_once(':')
        .map(|(h, _)| h.rsplit_once('@').map_or(h, |(_, h)| h))
        .ok_or("Invalid url given")?;
    let addr = policy.resolve(host, 22).await?[0].ip();
    Ok(GitPin {
        config: Vec::new(),
        ssh_options: vec![format!("HostName={addr}"), format!("HostKeyAlias={host}")],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_addresses_are_blocked_with_gitlabs_messages() {
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "localhost"),
            ("10.1.2.3", "local network"),
            ("172.20.0.1", "local network"),
            ("192.168.1.1", "local network"),
            ("fd00::1", "local network"),
            ("169.254.169.254", "link local"),
            ("fe80::1", "link local"),
            ("100.64.0.1", "shared address"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:1::", "loopback"),
            ("64:ff9b::a00:1", "local network"),
            ("198.18.0.1", "local network"),
            ("255.255.255.255", "local network"),
        ] {
            let reason = blocked(ip(addr)).unwrap_or_else(|| panic!("{addr} must be blocked"));
            assert!(reason.contains(why), "{addr}: {reason}");
        }
        for addr in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "172.32.0.1"] {
            assert_eq!(blocked(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_admits_addresses_networks_hosts_and_ports() {
        let settings = Settings {
            outbound_local_requests_whitelist: parse_allowlist("127.0.0.1, 10.0.0.0/8;hooks.local:8080\n[::1]:80")
                .unwrap(),
            ..Settings::default()
        };
        let p = Policy::new(&settings, false);
        assert!(p.check("x", ip("127.0.0.1"), 1).is_ok());
        assert!(p.check("x", ip("10.9.9.9"), 1).is_ok());
        assert!(p.check("hooks.local", ip("192.168.0.5"), 8080).is_ok());
        assert!(p.check("hooks.local", ip("192.168.0.5"), 8081).is_err());
        assert!(p.check("x", ip("::1"), 80).is_ok());
        assert!(p.check("x", ip("::1"), 81).is_err());
        assert!(p.check("x", ip("192.168.0.5"), 1).is_err());
        assert!(
            Policy::new(&Settings::default(), true)
                .check("x", ip("127.0.0.1"), 1)
                .is_ok()
        );
        assert!(parse_allowlist("not a host!").is_err());
        assert!(parse_allowlist("10.0.0.0/33").is_err());
    }
}
