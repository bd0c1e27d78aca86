//! The server's clock, from its `Date` headers (RFC 9110 §6.6.1): whole
//! seconds, which a client can still place to within a round trip by
//! watching them change.

/// A server's `Date` changes once a second: a value equal to the last one
/// is not parsed again.
#[derive(Debug, Clone, Default)]
pub(crate) struct DateCache {
    raw: [u8; 32],
    len: usize,
    secs: Option<u64>,
}

impl DateCache {
    pub(crate) fn parse(&mut self, v: &[u8]) -> Option<u64> {
        if v.len() == self.len && self.raw[..v.len()] == *v {
            return self.secs;
        }
        let secs = http_date(v);
        if v.len() <= self.raw.len() {
            self.raw[..v.len()].copy_from_slice(v);
            self.len = v.len();
            self.secs = secs;
        }
        secs
    }
}

/// A `Date` header's value (any of HTTP's three formats) in Unix seconds.
///
/// ```
/// assert_eq!(proto::http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
/// assert_eq!(proto::http_date(b"yesterday"), None);
/// ```
pub fn http_date(v: &[u8]) -> Option<u64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}
