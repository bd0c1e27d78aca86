//! `--debug`: one request and its response, shown as curl -v shows them
//! (`>` sent, `<` received, `*` about the connection).

use std::fmt::Write;

use urk_engine::units::format_time_us;
use urk_engine::Exchange;

/// Most body bytes shown; the rest is counted.
pub const BODY_SHOWN: usize = 16 * 1024;

/// The exchange as text.
pub fn show(x: &Exchange) -> String {
    let mut out = String::new();
    match &x.tls {
        Some(t) => {
            let alpn = if t.alpn.is_empty() { "none" } else { &t.alpn };
            let _ = writeln!(
                out,
                "* Connected to {} with {}, {}, {}; ALPN {alpn}",
                x.server, t.version, t.cipher, t.group
            );
        }
        None => {
            let _ = writeln!(out, "* Connected to {}", x.server);
        }
    }
    if x.http2 {
        let _ = writeln!(
            out,
            "* HTTP/2{}: header fields as sent and as decoded (compressed on the wire)",
            if x.tls.is_some() {
                ""
            } else {
                " with prior knowledge (h2c)"
            }
        );
    }
    let (head, body) = split_head(&x.request);
    lines(&mut out, "> ", head);
    data(&mut out, body, body.len() as u64);
    lines(&mut out, "< ", &x.head);
    data(&mut out, &x.body, x.body_len);
    let _ = writeln!(
        out,
        "* Status {}, {} body bytes, {} from the request's send to the response's last byte",
        x.status,
        x.body_len,
        format_time_us(x.elapsed.as_secs_f64() * 1e6)
    );
    out
}

/// A message's head (through the blank line) and what follows it.
fn split_head(m: &[u8]) -> (&[u8], &[u8]) {
    match m.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => m.split_at(at + 4),
        None => (m, &[]),
    }
}

/// A head's lines, each after `mark`, the blank line that ends it too.
fn lines(out: &mut String, mark: &str, head: &[u8]) {
    let text = String::from_utf8_lossy(head);
    let text = text.strip_suffix("\r\n").unwrap_or(&text);
    for l in text.split("\r\n") {
        let _ = writeln!(out, "{mark}{}", l.escape_debug());
    }
}

/// A body: as text when it is text, else its size; `total` is its whole
/// length, of which `shown` is the start.
fn data(out: &mut String, shown: &[u8], total: u64) {
    if total == 0 {
        return;
    }
    let text = std::str::from_utf8(shown).ok().filter(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    });
    match text {
        Some(t) => {
            out.push_str(t);
            if !t.ends_with('\n') {
                out.push('\n');
            }
        }
        None => {
            let _ = writeln!(out, "[{} bytes of binary data]", shown.len());
        }
    }
    if total > shown.len() as u64 {
        let _ = writeln!(out, "[{} more bytes not shown]", total - shown.len() as u64);
    }
}
