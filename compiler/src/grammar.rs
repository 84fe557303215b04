//! The grammar of each place a string from a `.stack` file lands in a
//! generated file: one validation per place, applied where the string is
//! lowered, so that no value can add a directive to a config or a command to
//! a shell line, whatever the target. Each grammar is the intersection of what
//! every reader accepts as one plain token (nginx, HAProxy, a shell, compose's
//! short volume syntax, Kubernetes), so the targets write these strings as they
//! are (docs/targets.md, "How each value is escaped").

/// Where a string lands, and so which grammar it must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A route's path prefix: nginx `location`, HAProxy `path_beg`, an Ingress
    /// path.
    RoutePath,
    /// An HTTP check path: an HTTP request target, which may carry a query
    /// (written in a shell's single quotes where a shell runs it).
    RequestPath,
    /// A metrics path: Prometheus' `metrics_path`, which takes no query.
    MetricsPath,
    /// A domain a proxy serves: nginx `server_name`, HAProxy `hdr(host)`, an
    /// Ingress host, a certificate's name.
    Domain,
    /// A file or directory path: TLS certificates and keys, mounts, volumes.
    FilePath,
    /// A name that Redis Sentinel and its clients read as one word.
    SentinelName,
    /// A database role name.
    RoleName,
    /// A container image reference: `[registry[:port]/]name[:tag][@digest]`.
    Image,
    /// An ACME directory URL: a shell word of the ACME client's script, a
    /// cert-manager Issuer's `server`.
    AcmeDirectory,
    /// An email address: the ACME account's contact.
    Email,
    /// An S3 bucket's name (AWS's rules, which every S3-compatible store
    /// accepts): pgbackrest.conf's `repo1-s3-bucket`.
    Bucket,
    /// An S3 endpoint, `https://HOST[:PORT]` (pgBackRest speaks TLS only).
    S3Endpoint,
    /// An S3 region, `eu-central-1`.
    Region,
    /// A repository's path in a bucket.
    BucketPath,
    /// The URL an Alertmanager webhook posts to.
    WebhookUrl,
    /// A Slack channel (`#ops`) or user (`@name`).
    SlackChannel,
    /// A metric's name, as Prometheus and the Kubernetes metrics APIs read it.
    MetricName,
    /// A Kubernetes label's name (without a prefix) or value.
    LabelValue,
    /// A Prometheus label's name.
    PromLabel,
}

impl Place {
    /// What the place is, for a diagnostic.
    pub fn what(self) -> &'static str {
        match self {
            Place::RoutePath => "a route path",
            Place::RequestPath => "an HTTP path",
            Place::MetricsPath => "a metrics path",
            Place::Domain => "a domain",
            Place::FilePath => "a file path",
            Place::SentinelName => "a Sentinel master name",
            Place::RoleName => "a role name",
            Place::Image => "an image reference",
            Place::AcmeDirectory => "an ACME directory URL",
            Place::Email => "an email address",
            Place::Bucket => "a bucket name",
            Place::S3Endpoint => "an S3 endpoint",
            Place::Region => "a region",
            Place::BucketPath => "a path in a bucket",
            Place::WebhookUrl => "a webhook URL",
            Place::SlackChannel => "a Slack channel",
            Place::MetricName => "a metric name",
            Place::LabelValue => "a label",
            Place::PromLabel => "a Prometheus label name",
        }
    }

    /// The characters the place takes, for a diagnostic's help.
    pub fn takes(self) -> &'static str {
        match self {
            Place::RoutePath => "`/` then letters, digits and `-._~!+,=:@/`, no empty, `.` or `..` segment",
            Place::MetricsPath => "`/` then letters, digits and `-._~%!+,=:@/`",
            Place::RequestPath => "`/` then letters, digits and `-._~%!+,=:@/`, and a query after `?` (`&` too)",
            Place::Domain => "DNS labels of letters, digits and `-`, joined by `.` (a leading `*.` for a wildcard)",
            Place::FilePath => "letters, digits and `-._~%+=@/`",
            Place::SentinelName => "letters, digits and `-._`",
            Place::RoleName => "a letter or `_`, then letters, digits and `_`",
            Place::Image => "`[registry/]name[:tag][@digest]` of letters, digits and `-._/:@`",
            Place::AcmeDirectory => "`https://` then a host and a path of letters, digits and `-._~%/:`",
            Place::Email => "`name@domain`, the name of letters, digits and `.+_-`",
            Place::Bucket => "3 to 63 lowercase letters, digits, `.` and `-`, a letter or digit at each end",
            Place::S3Endpoint => "`https://` then a host and an optional `:PORT`, no path",
            Place::Region => "lowercase letters, digits and `-`",
            Place::BucketPath => "`/` then letters, digits and `-._~%+=@/`",
            Place::WebhookUrl => "`http://` or `https://`, a host (`[...]` for an IPv6 address) and an optional `:PORT`, then a path and query of letters, digits and `-._~%/:?=&+`",
            Place::SlackChannel => "`#` or `@`, then lowercase letters, digits, `-`, `_` and `.`",
            Place::MetricName => "a letter, `_` or `:`, then letters, digits, `_` and `:`",
            Place::LabelValue => "at most 63 letters, digits, `-`, `_` and `.`, a letter or digit at each end",
            Place::PromLabel => "a letter or `_`, then letters, digits and `_`",
        }
    }
}

/// Why `s` does not follow the grammar of `place`, or `None` when it does.
pub fn invalid(place: Place, s: &str) -> Option<String> {
    let bad = |c: char| Some(format!("{} cannot hold {}", place.what(), shown(c)));
    match place {
        Place::RoutePath | Place::RequestPath | Place::MetricsPath => {
            if !s.starts_with('/') {
                return Some(format!("{} starts with `/`", place.what()));
            }
            let query = place == Place::RequestPath;
            let (path, rest) = match s.split_once('?') {
                Some((p, q)) if query => (p, q),
                _ => (s, ""),
            };
            if let Some(c) = path.chars().find(|&c| !is_path_char(c)) {
                return bad(c);
            }
            if place == Place::RoutePath {
                // nginx matches a location against the request's path decoded
                // and normalized, HAProxy's `path_beg` against it as sent: a
                // prefix they would read differently matches for one only.
                if path.contains('%') {
                    return Some("a route path cannot hold `%`: nginx matches the decoded path, HAProxy the path as sent".to_string());
                }
                if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
                    return Some("a route path has no empty, `.` or `..` segment: nginx normalizes them away".to_string());
                }
            }
            if let Some(c) = rest
                .chars()
                .find(|&c| !is_path_char(c) && !"?&".contains(c))
            {
                return bad(c);
            }
            None
        }
        Place::Domain => domain(s, "a domain"),
        Place::MetricName => metric_name(s),
        Place::LabelValue => label(s),
        Place::PromLabel => match metric_name(s) {
            None if s.contains(':') => Some("a Prometheus label name cannot hold `:`".to_string()),
            other => other.map(|why| why.replace("metric name", "Prometheus label name")),
        },
        Place::FilePath => {
            if s.is_empty() {
                return Some("a file path cannot be empty".to_string());
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || "-._~%+=@/".contains(c);
            s.chars().find(|&c| !ok(c)).and_then(bad)
        }
        Place::SentinelName => {
            if s.is_empty() {
                return Some("a Sentinel master name cannot be empty".to_string());
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
            s.chars().find(|&c| !ok(c)).and_then(bad)
        }
        Place::Image => {
            if s.is_empty() {
                return Some("an image reference cannot be empty".to_string());
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || "-._/:@".contains(c);
            s.chars().find(|&c| !ok(c)).and_then(bad)
        }
        Place::AcmeDirectory => {
            let Some(rest) = s.strip_prefix("https://") else {
                return Some("an ACME directory URL starts with `https://`".to_string());
            };
            let host = rest.split(['/', ':']).next().unwrap_or_default();
            if let Some(why) =
                domain(host, "an ACME directory's host").filter(|_| address(host).is_err())
            {
                return Some(why);
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || "-._~%/:".contains(c);
            rest.chars().find(|&c| !ok(c)).and_then(bad)
        }
        Place::Email => {
            let Some((name, host)) = s.rsplit_once('@') else {
                return Some("an email address is `name@domain`".to_string());
            };
            let ok = |c: char| c.is_ascii_alphanumeric() || ".+_-".contains(c);
            if name.is_empty() {
                return Some("an email address has a name before `@`".to_string());
            }
            if let Some(c) = name.chars().find(|&c| !ok(c)) {
                return bad(c);
            }
            domain(host, "an email address's domain")
        }
        Place::Bucket | Place::S3Endpoint | Place::Region | Place::BucketPath => s3(place, s),
        Place::WebhookUrl => webhook_url(s),
        Place::SlackChannel => {
            let Some(name) = s.strip_prefix('#').or_else(|| s.strip_prefix('@')) else {
                return Some("a Slack channel starts with `#` (a user with `@`)".to_string());
            };
            if name.is_empty() || name.len() > 80 {
                return Some("a Slack channel's name is 1 to 80 characters".to_string());
            }
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
            name.chars().find(|&c| !ok(c)).and_then(bad)
        }
        Place::RoleName => {
            let mut chars = s.chars();
            match chars.next() {
                None => Some("a role name cannot be empty".to_string()),
                Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
                    Some(format!("a role name cannot start with {}", shown(c)))
                }
                _ => chars
                    .find(|&c| !(c.is_ascii_alphanumeric() || c == '_'))
                    .and_then(bad),
            }
        }
    }
}

/// `http(s)://HOST[:PORT][/PATH][?QUERY]`, the host a DNS name, an IPv4
/// address or `[IPv6]`.
fn webhook_url(s: &str) -> Option<String> {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return Some("a webhook URL starts with `http://` or `https://`".to_string());
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let port = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((a, port)) if matches!(address(a), Ok(AddressKind::V6)) => port,
            _ => return Some(format!("`{authority}` is not an IPv6 address in `[...]`")),
        },
        None => {
            let (host, port) = authority
                .find(':')
                .map_or((authority, ""), |i| authority.split_at(i));
            if let Some(why) =
                domain(host, "a webhook URL's host").filter(|_| address(host).is_err())
            {
                return Some(why);
            }
            port
        }
    };
    if let Some(p) = port.strip_prefix(':') {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Some(format!("`{p}` is not a port"));
        }
    } else if !port.is_empty() {
        return Some(format!("`{port}` after the host is not `:PORT`"));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "-._~%/:?=&+".contains(c);
    path.chars()
        .find(|&c| !ok(c))
        .map(|c| format!("a webhook URL cannot hold {}", shown(c)))
}

/// The places of an S3 repository (`Place::Bucket` and after).
fn s3(place: Place, s: &str) -> Option<String> {
    let bad = |c: char| Some(format!("{} cannot hold {}", place.what(), shown(c)));
    match place {
        Place::Bucket => {
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c);
            if let Some(c) = s.chars().find(|&c| !ok(c)) {
                return bad(c);
            }
            let end_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
            if !(3..=63).contains(&s.len())
                || !end_ok(s.chars().next())
                || !end_ok(s.chars().last())
            {
                return Some(
                    "a bucket name is 3 to 63 characters, with a letter or digit at each end"
                        .to_string(),
                );
            }
            None
        }
        Place::S3Endpoint => {
            let Some(rest) = s.strip_prefix("https://") else {
                return Some(
                    "an S3 endpoint starts with `https://`: pgBackRest speaks TLS only".to_string(),
                );
            };
            let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
            if rest.contains('/') {
                return Some("an S3 endpoint has no path: write the path in `path`".to_string());
            }
            if !port.is_empty() && port.parse::<u16>().map_or(true, |p| p == 0) {
                return Some(format!("`{port}` is not a port"));
            }
            if host.starts_with('[')
                || matches!(address(host), Ok(AddressKind::V4 | AddressKind::V6))
            {
                // pgBackRest checks a certificate's DNS names only.
                return Some("an S3 endpoint is named by its DNS name, not an address: pgBackRest verifies the certificate by name".to_string());
            }
            domain(host, "an S3 endpoint's host")
        }
        Place::Region => {
            if s.is_empty() {
                return Some("a region cannot be empty".to_string());
            }
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
            s.chars().find(|&c| !ok(c)).and_then(bad)
        }
        Place::BucketPath => {
            if !s.starts_with('/') {
                return Some("a path in a bucket starts with `/`".to_string());
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || "-._~%+=@/".contains(c);
            s.chars().find(|&c| !ok(c)).and_then(bad)
        }
        _ => None,
    }
}

/// RFC 3986 path characters, less those some reader gives a meaning: `;` (an
/// nginx directive's end), `$` (nginx and shell variables), `'`, `(`, `)`, `*`
/// and `&` (a shell).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!+,=:@/".contains(c)
}

/// A DNS name (RFC 1123), or a wildcard `*.` before one; `what` names it in
/// the reason.
fn domain(s: &str, what: &str) -> Option<String> {
    let name = s.strip_prefix("*.").unwrap_or(s);
    if name.is_empty() {
        return Some("a domain cannot be empty".to_string());
    }
    if s.len() > 253 {
        return Some(format!(
            "a domain is at most 253 characters, not {}",
            s.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some("a domain has no empty label (`..`, or a `.` at an end)".to_string());
        }
        if label.len() > 63 {
            return Some(format!(
                "`{label}` is longer than a DNS label's 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Some(format!("{what} cannot hold {}", shown(c)));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    None
}

/// A character as a diagnostic names it.
fn shown(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '\n' => "a newline".to_string(),
        '\t' => "a tab".to_string(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// An address as a host is reached: an IP literal or a DNS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    V4,
    V6,
    Name,
}

/// What kind of address `s` is, or why it is none.
pub fn address(s: &str) -> Result<AddressKind, String> {
    address_named(s, "an address")
}

/// `address`, naming it `what` in the reason.
fn address_named(s: &str, what: &str) -> Result<AddressKind, String> {
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(AddressKind::V4);
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(AddressKind::V6);
    }
    if s.contains(':') || s.starts_with('[') {
        return Err(format!(
            "`{s}` is not an IPv6 address (write it without brackets)"
        ));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{s}` is not an IPv4 address"));
    }
    match domain(s, what) {
        None if !s.starts_with('*') => Ok(AddressKind::Name),
        None => Err(format!("{what} cannot be a wildcard")),
        Some(why) => Err(why),
    }
}

/// A public URL's parts: `https://api.example.com:8443/app` is
/// ("https", "api.example.com", Some(8443), "/app").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url<'a> {
    pub scheme: &'a str,
    /// Lowercased when it is a name; an IPv6 address without its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub path: &'a str,
}

/// The parts of an `http` or `https` URL whose host a proxy or an Ingress
/// can serve (a domain or an IP), or why it has none. Every reader of a
/// public URL takes its host from here.
pub fn url(s: &str) -> Result<Url<'_>, String> {
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("a URL cannot hold {}", shown(c)));
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err("a public URL starts with `https://` or `http://`".to_string());
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("the scheme `{scheme}` is not `https` or `http`"));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("a public URL has no user or password".to_string());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| "an IPv6 host has no closing `]`".to_string())?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("`{addr}` is not an IPv6 address"));
            }
            (addr.to_string(), after.strip_prefix(':'))
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            address_named(host, "a URL's host")?;
            (host.to_ascii_lowercase(), port)
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("`{p}` is not a port"))?,
        ),
    };
    if let Some(c) = path.chars().find(|c| "\"'<>\\^`{|};$".contains(*c)) {
        return Err(format!("a URL cannot hold {}", shown(c)));
    }
    Ok(Url {
        scheme,
        host,
        port,
        path,
    })
}

/// A word for `sh`: bare when it is plainly safe, else single-quoted (a `'`
/// inside as `'\''`). The one shell escaper of every generated shell line.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// `host:port` as every reader writes it: an IPv6 address in brackets, so
/// that the port is not read as one of its groups.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why `s` is not a metric name (Prometheus' grammar, which the metrics APIs
/// take).
fn metric_name(s: &str) -> Option<String> {
    let bad = |c: char| Some(format!("a metric name cannot hold {}", shown(c)));
    let first = |c: char| c.is_ascii_alphabetic() || "_:".contains(c);
    match s.chars().next() {
        None => Some("a metric name cannot be empty".to_string()),
        Some(c) if !first(c) => bad(c),
        _ => s
            .chars()
            .find(|&c| !(first(c) || c.is_ascii_digit()))
            .and_then(bad),
    }
}

/// Why `s` is not a Kubernetes label's name (without a prefix) or value.
fn label(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some("a label holds at most 63 characters".to_string());
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        return Some(format!("a label cannot hold {}", shown(c)));
    }
    let ends = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !ends(s.chars().next()) || !ends(s.chars().last()) {
        return Some("a label starts and ends with a letter or digit".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_their_hosts() {
        let u = url("https://API.example.com:8443/app?x=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path),
            ("https", "api.example.com", Some(8443), "/app?x=1")
        );
        let u = url("http://[fd00::2]:8080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((u.host.as_str(), u.port), ("fd00::2", Some(8080)));
        for bad in [
            "https://a b.com",
            "https://x.example.com; return 200",
            "ftp://x.com",
            "x.com",
            "https://u:p@x.com",
            "https://x.com:99999",
            "https://x.com/a\nb",
            "https://x.com/{a}",
        ] {
            assert!(url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(host_port("fd00::2", 80), "[fd00::2]:80");
        assert_eq!(host_port("10.0.0.1", 80), "10.0.0.1:80");
    }

    #[test]
    fn paths_take_no_reader_syntax() {
        for ok in ["/", "/api/", "/a-b_c.d~e/x:y@z", "/v1,2+3=4!", "/a.b/.c/"] {
            assert_eq!(invalid(Place::RoutePath, ok), None, "{ok}");
        }
        for bad in [
            "api/",
            "/a/ { return 200; } location /b/",
            "/a b",
            "/a\n",
            "/a;b",
            "/$x",
            "/a'b",
            "/a\"b",
            "/a{b",
            "/a?b",
            "/a#b",
            "/a\\b",
            "/日本",
            "/a%20b/",
            "/a//b/",
            "/a/../b/",
            "/./",
        ] {
            assert!(invalid(Place::RoutePath, bad).is_some(), "{bad:?}");
        }
        assert_eq!(invalid(Place::RequestPath, "/health?full=1&x=2"), None);
        assert!(invalid(Place::RequestPath, "/h; touch /tmp/pwned #").is_some());
        assert!(invalid(Place::RequestPath, "/h?$(id)").is_some());
    }

    #[test]
    fn domains_are_dns_names() {
        for ok in [
            "example.com",
            "a-b.example.com",
            "*.example.com",
            "localhost",
            "X.COM",
        ] {
            assert_eq!(invalid(Place::Domain, ok), None, "{ok}");
        }
        for bad in [
            "x.example.com; return 200",
            "a..b",
            "-a.com",
            "a-.com",
            "a_b.com",
            "",
            "*.",
            "exa mple.com",
            "a.com\n",
        ] {
            assert!(invalid(Place::Domain, bad).is_some(), "{bad:?}");
        }
        assert!(invalid(Place::Domain, &format!("{}.com", "a".repeat(64))).is_some());
    }

    #[test]
    fn addresses_are_ips_or_names() {
        assert_eq!(address("10.0.0.1"), Ok(AddressKind::V4));
        assert_eq!(address("fd00:50::2"), Ok(AddressKind::V6));
        assert_eq!(address("db.internal"), Ok(AddressKind::Name));
        for bad in [
            "[fd00::1]",
            "10.0.0.256",
            "1.2.3",
            "fd00::g",
            "a b",
            "*.x.com",
            "",
        ] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_file_paths() {
        assert_eq!(invalid(Place::SentinelName, "mymaster"), None);
        assert!(invalid(Place::SentinelName, "my master").is_some());
        assert!(invalid(Place::SentinelName, "m\nsentinel monitor x").is_some());
        assert_eq!(invalid(Place::RoleName, "replicator"), None);
        assert!(invalid(Place::RoleName, "rep'l").is_some());
        assert!(invalid(Place::RoleName, "1rep").is_some());
        assert_eq!(
            invalid(Place::Image, "registry.example.com:5000/team/api:1.4.0"),
            None
        );
        assert_eq!(invalid(Place::Image, "postgres@sha256:0123abcd"), None);
        assert!(invalid(Place::Image, "api:1\u{0}").is_some());
        assert!(invalid(Place::Image, "api 1").is_some());
        assert!(invalid(Place::Image, "").is_some());
        assert_eq!(invalid(Place::FilePath, "/etc/ssl/x.pem"), None);
        assert!(invalid(Place::FilePath, "/etc/x.pem;").is_some());
        assert!(invalid(Place::FilePath, "/a:b").is_some());
    }

    #[test]
    fn receivers_urls_and_channels() {
        for ok in [
            "https://alerts.example.com/hook",
            "http://10.0.0.5:8080/hook?src=shop&x=1",
            "http://[fd00::5]:8080/hook",
            "https://hooks.example.com",
        ] {
            assert_eq!(invalid(Place::WebhookUrl, ok), None, "{ok}");
        }
        for bad in [
            "ftp://alerts.example.com/",
            "https://",
            "https://a b/",
            "https://x.example.com:0/",
            "https://x.example.com:99999/",
            "http://[not-v6]/",
            "https://x.example.com/a b",
            "https://x.example.com/a\nb",
            "https://x.example.com/a\"b",
        ] {
            assert!(invalid(Place::WebhookUrl, bad).is_some(), "{bad:?}");
        }
        assert_eq!(invalid(Place::SlackChannel, "#ops-alerts"), None);
        assert_eq!(invalid(Place::SlackChannel, "@oncall"), None);
        for bad in ["ops", "#", "#Ops", "#ops alerts", "#ops\n"] {
            assert!(invalid(Place::SlackChannel, bad).is_some(), "{bad:?}");
        }
    }
}
