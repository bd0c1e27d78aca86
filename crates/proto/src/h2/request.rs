//! An HTTP/1.1 request, as every request source writes it (the fixed
//! request, a rendered template, a script's `wrk.format`), turned into an
//! HTTP/2 header block and a body (RFC 9113 §8.3.1): the request line
//! becomes `:method`, `:scheme` and `:path`, `Host` becomes `:authority`,
//! names are lowercased, and the fields that only mean something to an
//! HTTP/1.1 connection are dropped. One translator serves every source, so
//! that what `--debug` shows as sent is what each protocol sends.

use std::ops::Range;

use super::hpack::encode_field;

/// Fields HTTP/2 forbids (§8.2.2): they describe an HTTP/1.1 connection.
const CONNECTION_FIELDS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Where one translated request's parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// Bytes of the input this request took (head and body).
    pub used: usize,
    /// Its body, within the input.
    pub body: Range<usize>,
    /// A `HEAD`: its response has no body.
    pub head: bool,
}

/// Translates the first request in `http1` into a header block appended
/// to `block`, for a connection of `scheme` (`http` or `https`). Every
/// field is encoded without the dynamic table, so the block can be sent
/// on any connection at any time. An error says what is wrong.
///
/// ```
/// let mut block = Vec::new();
/// let req = b"POST /a?b HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi";
/// let t = proto::h2::request::translate(req, "http", &mut block).unwrap();
/// assert_eq!(&req[t.body.clone()], b"hi");
/// assert_eq!(t.used, req.len());
/// let mut fields = Vec::new();
/// proto::h2::hpack::Decoder::new(4096)
///     .decode(&block, |n, v| fields.push((n.to_vec(), v.to_vec())))
///     .unwrap();
/// let names: Vec<&[u8]> = fields.iter().map(|(n, _)| n.as_slice()).collect();
/// assert_eq!(names, [&b":method"[..], b":scheme", b":path", b":authority", b"content-length"]);
/// ```
pub fn translate(http1: &[u8], scheme: &str, block: &mut Vec<u8>) -> Result<Translated, String> {
    let mut headers = [httparse::EMPTY_HEADER; crate::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(http1) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("an incomplete request".into()),
        Err(e) => return Err(format!("an invalid request ({e})")),
    };
    let method = req.method.unwrap_or("GET");
    let path = req.path.unwrap_or("/");
    encode_field(b":method", method.as_bytes(), block);
    encode_field(b":scheme", scheme.as_bytes(), block);
    encode_field(b":path", path.as_bytes(), block);
    if let Some(h) = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
    {
        encode_field(b":authority", h.value, block);
    }
    let mut body = 0usize;
    let mut lower = [0u8; 64];
    let mut long;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host")
            || CONNECTION_FIELDS
                .iter()
                .any(|c| h.name.eq_ignore_ascii_case(c))
        {
            continue;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("an invalid Content-Length")?;
        }
        if h.name.eq_ignore_ascii_case("te") && !h.value.eq_ignore_ascii_case(b"trailers") {
            // The one value TE may have in HTTP/2 (§8.2.2).
            continue;
        }
        let name = h.name.as_bytes();
        let name: &[u8] = match lower.get_mut(..name.len()) {
            Some(buf) => {
                for (d, s) in buf.iter_mut().zip(name) {
                    *d = s.to_ascii_lowercase();
                }
                buf
            }
            None => {
                long = name.to_ascii_lowercase();
                &long
            }
        };
        encode_field(name, h.value, block);
    }
    let end = head_len + body;
    if end > http1.len() {
        return Err("a body shorter than its Content-Length".into());
    }
    Ok(Translated {
        used: end,
        body: head_len..end,
        head: method == "HEAD",
    })
}
