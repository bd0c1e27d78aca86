use crate::RequestError;

/// Where requests go: parsed once from the user's URL.
///
/// Resolution to socket addresses is left to the caller (this crate does no
/// I/O); `host` is kept without IPv6 brackets so it can go straight to
/// `ToSocketAddrs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as the user gave it, normalised.
    pub url: String,
    /// Host name or address literal, without brackets.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Value of the `Host` header: the port is included only when it is not
    /// the default, as browsers and curl do.
    pub host_header: String,
    /// Path and query, as sent in the request line.
    pub path_and_query: String,
    /// `https://`: the connection speaks TLS.
    pub tls: bool,
}

impl Target {
    /// Parses an `http://` or `https://` URL.
    ///
    /// ```
    /// let t = proto::Target::parse("http://[::1]:9000/a?b").unwrap();
    /// assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
    /// assert_eq!(t.host_header, "[::1]:9000");
    /// assert_eq!(t.path_and_query, "/a?b");
    /// assert!(proto::Target::parse("127.0.0.1:80/").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Target, RequestError> {
        let url = url::Url::parse(s).map_err(|e| RequestError::InvalidUrl(e.to_string()))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(RequestError::UnsupportedScheme(other.to_string())),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(RequestError::InvalidUrl("no host".into())),
        };
        let host_str = url.host_str().unwrap_or_default();
        let host_header = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        let mut path_and_query = url.path().to_string();
        if let Some(q) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        Ok(Target {
            url: url.to_string(),
            host,
            port: url.port_or_known_default().unwrap_or(80),
            host_header,
            path_and_query,
            tls,
        })
    }
}
