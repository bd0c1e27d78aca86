//! Taking apart what a script exchanges: the requests a `request()` hook
//! returns (how many, where each ends, which are `HEAD`), and a response
//! captured whole for a `response()` hook (its headers and its decoded
//! body). Only scripts need these; the fixed and templated paths never
//! parse a request or build a header table.

use std::borrow::Cow;

/// One request in a string of pipelined requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEnd {
    /// Offset just past its last byte.
    pub end: usize,
    /// A `HEAD`: its response has no body.
    pub head: bool,
}

/// Splits `bytes` into whole HTTP/1.1 requests (bodies by
/// `Content-Length`). An error says what is wrong, with the 1-based line
/// and column where parsing stopped, as a script author needs it.
///
/// ```
/// let two = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
/// let ends = proto::parts::split_requests(two).unwrap();
/// assert_eq!(ends.len(), 2);
/// assert!(!ends[0].head && ends[1].head);
/// assert_eq!(ends[1].end, two.len());
/// assert!(proto::parts::split_requests(b"GET / HTTP/1.1\r\n").is_err());
/// ```
pub fn split_requests(bytes: &[u8]) -> Result<Vec<RequestEnd>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let mut headers = [httparse::EMPTY_HEADER; crate::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let where_ = |offset: usize| {
            let done = &bytes[..offset.min(bytes.len())];
            let line = done.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = offset - done.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
            format!("at {line}:{col}")
        };
        let head_len = match req.parse(&bytes[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err(format!("incomplete request {}", where_(bytes.len())))
            }
            Err(e) => {
                return Err(format!(
                    "invalid request ({e}) {}",
                    where_(at + bad_line(&bytes[at..]))
                ))
            }
        };
        let mut body = 0usize;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                body = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| format!("invalid Content-Length {}", where_(at)))?;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!(
                    "chunked request bodies are not supported; give a Content-Length {}",
                    where_(at)
                ));
            }
        }
        let end = at + head_len + body;
        if end > bytes.len() {
            return Err(format!(
                "the body is shorter than its Content-Length {}",
                where_(bytes.len())
            ));
        }
        out.push(RequestEnd {
            end,
            head: req.method == Some("HEAD"),
        });
        at = end;
    }
    if out.is_empty() {
        return Err("empty request".into());
    }
    Ok(out)
}

/// Where in a request head that httparse refused the fault is: the
/// offset of the first line that is not a request line (first) or a
/// `Name: value` header (after it).
fn bad_line(head: &[u8]) -> usize {
    let mut offset = 0;
    for (i, line) in head.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && i > 0 {
            break;
        }
        let ok = if i == 0 {
            let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            parts.len() == 3 && parts[2].starts_with(b"HTTP/1.")
        } else {
            line.iter().position(|&b| b == b':').is_some_and(|c| {
                c > 0
                    && line[..c]
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
            })
        };
        if !ok {
            return offset;
        }
        offset += line.len() + 1 + usize::from(head.get(offset + line.len()) == Some(&b'\r'));
    }
    0
}

/// A whole response as received, taken apart for a script.
#[derive(Debug)]
pub struct ResponseParts<'a> {
    /// Header names and values, in order (a name may repeat).
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// The body, de-chunked if it was chunked.
    pub body: Cow<'a, [u8]>,
}

/// Takes apart `raw`, every byte of one response (any interim `1xx`
/// heads before it included). `None` if it is not a response head.
///
/// ```
/// let raw = b"HTTP/1.1 200 OK\r\nX-Token: t1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n";
/// let p = proto::parts::response_parts(raw).unwrap();
/// assert_eq!(p.headers[0], ("X-Token", &b"t1"[..]));
/// assert_eq!(&*p.body, b"hi!");
/// ```
pub fn response_parts(raw: &[u8]) -> Option<ResponseParts<'_>> {
    let mut at = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; crate::MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(&raw[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return None,
        };
        let code = resp.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            at += n;
            continue;
        }
        let chunked = resp.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("transfer-encoding")
                && h.value.to_ascii_lowercase().ends_with(b"chunked")
        });
        let head = &raw[at..at + n];
        // Parse again into a list that borrows from `raw`, not from the
        // local header array.
        let mut headers = [httparse::EMPTY_HEADER; crate::MAX_HEADERS];
        let mut again = httparse::Response::new(&mut headers);
        let _ = again.parse(head);
        let list = again
            .headers
            .iter()
            .map(|h| (h.name, h.value))
            .collect::<Vec<_>>();
        let body = &raw[at + n..];
        let body = if chunked {
            Cow::Owned(dechunk(body))
        } else {
            Cow::Borrowed(body)
        };
        return Some(ResponseParts {
            headers: list,
            body,
        });
    }
}

/// The data of a complete chunked body (the framer has checked it).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_hex = b[..eol].split(|&c| c == b';').next().unwrap_or(&[]);
        let size = std::str::from_utf8(size_hex)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || size > b.len() {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_with_bodies_and_errors_name_the_place() {
        let r = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
        let ends = split_requests(r).unwrap();
        assert_eq!(
            ends.iter().map(|e| e.end).collect::<Vec<_>>(),
            [42, r.len()]
        );
        let e = split_requests(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").unwrap_err();
        assert!(e.contains("at 2:"), "{e}");
        let e = split_requests(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab").unwrap_err();
        assert!(e.contains("shorter"), "{e}");
        assert!(split_requests(b"").is_err());
    }

    #[test]
    fn interim_heads_are_skipped() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nA: b\r\nContent-Length: 2\r\n\r\nok";
        let p = response_parts(raw).unwrap();
        assert_eq!(p.headers, [("A", &b"b"[..]), ("Content-Length", &b"2"[..])]);
        assert_eq!(&*p.body, b"ok");
    }
}
