//! The static table (RFC 7541 Appendix A) and a connection's dynamic table.

use std::collections::VecDeque;

/// The static table: index 1 is the first entry.
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// An entry's size as the table counts it: its bytes and 32 (§4.1).
fn size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// A name and its value, as the peer added them.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The entries the peer added, newest first, within `max` bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dynamic {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl Dynamic {
    pub(crate) fn new(max: usize) -> Dynamic {
        Dynamic {
            max,
            ..Dynamic::default()
        }
    }

    /// Entry `i` of the whole index space (1 is the first static entry).
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match i {
            0 => None,
            1..=61 => Some(STATIC[i - 1]),
            _ => self.entries.get(i - 62).map(|(n, v)| (&n[..], &v[..])),
        }
    }

    /// Adds an entry, evicting the oldest to make room; one larger than
    /// the whole table empties it (§4.4).
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let s = size(name, value);
        while self.size + s > self.max {
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= size(&n, &v),
                None => break,
            }
        }
        if s <= self.max {
            self.entries.push_front((name.into(), value.into()));
            self.size += s;
        }
    }

    /// A new maximum size (a size update in a block), evicting to it.
    pub(crate) fn resize(&mut self, max: usize) {
        self.max = max;
        while self.size > self.max {
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= size(&n, &v),
                None => break,
            }
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
