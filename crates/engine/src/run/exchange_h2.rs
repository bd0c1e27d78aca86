//! `Plan::exchange` over HTTP/2: the run's first request on a session of
//! its own, on a blocking connection, its response read whole. What it
//! shows are header fields, as sent and as decoded: on the wire they are
//! compressed.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use proto::h2::hpack::Decoder;
use proto::h2::session::{ClientSession, Event, Piece};

use super::exchange::ReadWrite;
use crate::io::transport::Negotiated;
use crate::Exchange;

/// Sends `http1` (the run's first request, as every source writes it) as
/// stream 1 on `wire` to `server` and reads its response. An error names
/// the step and why.
pub(crate) fn exchange(
    mut wire: Box<dyn ReadWrite>,
    http1: &[u8],
    (server, tls): (String, Option<Negotiated>),
    body_limit: usize,
) -> Result<Exchange, (&'static str, String)> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut block = Vec::new();
    let t = proto::h2::request::translate(http1, scheme, &mut block)
        .map_err(|e| ("make the request", e))?;
    let body = &http1[t.body.clone()];
    // The request as fields, decoded back from the block that is sent.
    let mut request = Vec::new();
    Decoder::new(4096)
        .decode(&block, |n, v| line(&mut request, n, v))
        .map_err(|e| ("make the request", e.to_string()))?;
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);

    let mut session = ClientSession::new();
    session.request(&block, body);
    let began = Instant::now();
    let mut x = Exchange {
        server,
        tls,
        http2: true,
        request,
        head: Vec::new(),
        body: Vec::new(),
        body_len: 0,
        status: 0,
        elapsed: Duration::ZERO,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut done = None;
    while done.is_none() {
        let out = session.output().to_vec();
        session.sent(out.len());
        wire.write_all(&out)
            .and_then(|()| wire.flush())
            .map_err(|e| ("send the request", e.to_string()))?;
        let n = match wire.read(&mut buf) {
            Ok(0) => {
                return Err((
                    "read the response",
                    "the server closed the connection before the response was complete".into(),
                ))
            }
            Ok(n) => n,
            // A signal (a read with a timeout is not restarted): read on.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(("read the response", e.to_string())),
        };
        let mut fields = Vec::new();
        let mut status = 0;
        session
            .receive_pieces(
                &buf[..n],
                |ev| match ev {
                    Event::Status { status: s, .. } => status = s,
                    Event::Done { .. } => done = Some(Ok(())),
                    Event::Reset { code, .. } => {
                        done = Some(Err(format!("the server reset the stream (code {code})")))
                    }
                    Event::GoAway {
                        last_stream: 0,
                        code,
                    } => {
                        done = Some(Err(format!(
                            "the server went away without processing it (GOAWAY, code {code})"
                        )))
                    }
                    _ => {}
                },
                |_, piece| match piece {
                    Piece::Field { name, value } => line(&mut fields, name, value),
                    Piece::Data(d) => {
                        x.body_len += d.len() as u64;
                        let room = body_limit.saturating_sub(x.body.len());
                        x.body.extend_from_slice(&d[..room.min(d.len())]);
                    }
                },
            )
            .map_err(|e| ("read the response", e.to_string()))?;
        if status != 0 {
            x.status = status;
            line(&mut x.head, b":status", status.to_string().as_bytes());
        }
        x.head.extend_from_slice(&fields);
    }
    x.elapsed = began.elapsed();
    x.head.extend_from_slice(b"\r\n");
    // Goodbye, as a client that is done says it.
    let mut bye = Vec::new();
    proto::h2::frame::write::goaway(0, 0, &mut bye);
    let _ = wire.write_all(&bye).and_then(|()| wire.flush());
    match done {
        Some(Err(why)) => Err(("read the response", why)),
        _ => Ok(x),
    }
}

/// Appends `name: value` and a line end.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
