//! Before an HTTP/2 run: one connection that checks the server speaks it,
//! so that a server that does not stops the run with what it did instead,
//! rather than every connection failing as a counted error.

use std::io::{Read, Write};
use std::time::Duration;

use proto::h2::frame;

use super::exchange::ReadWrite;
use crate::io::transport::{BlockingStream, TlsSetup};
use crate::{Endpoint, EngineError};

/// Under TLS, ALPN must agree on `h2`; then (and on h2c) the server must
/// answer our preface with its SETTINGS, not with HTTP/1.1. The probe
/// then says GOAWAY and closes: no request is sent.
pub(crate) fn probe(
    endpoint: &Endpoint,
    tls: Option<&TlsSetup>,
    timeout: Duration,
) -> Result<(), EngineError> {
    let server = endpoint.to_string();
    let refused = |got: String| EngineError::NotHttp2 {
        server: server.clone(),
        got,
    };
    let mut wire: Box<dyn ReadWrite> = match tls {
        Some(setup) => {
            let (conn, sock) = setup.handshake_blocking(endpoint, timeout)?;
            match conn.alpn_protocol() {
                Some(b"h2") => {}
                Some(p) => {
                    return Err(refused(format!(
                        "ALPN agreed on {}, not h2",
                        String::from_utf8_lossy(p)
                    )))
                }
                None => {
                    return Err(refused(
                        "the TLS handshake agreed on no protocol (ALPN), not h2".into(),
                    ))
                }
            }
            Box::new(rustls::StreamOwned::new(conn, sock))
        }
        None => Box::new(BlockingStream::connect(endpoint, timeout).map_err(|e| {
            EngineError::Exchange {
                server: server.clone(),
                step: "connect",
                reason: e.to_string(),
            }
        })?),
    };
    let mut hello = frame::PREFACE.to_vec();
    frame::write::settings(&[], &mut hello);
    let io_failed = |step: &'static str, e: std::io::Error| EngineError::Exchange {
        server: server.clone(),
        step,
        reason: e.to_string(),
    };
    wire.write_all(&hello)
        .and_then(|()| wire.flush())
        .map_err(|e| io_failed("send the HTTP/2 preface", e))?;
    let mut head = [0u8; 9];
    let mut got = 0;
    while got < head.len() {
        match wire.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if got == 0 => {
                return Err(io_failed("read the answer to the HTTP/2 preface", e))
            }
            Err(_) => break,
        }
    }
    let head = &head[..got];
    if head.starts_with(b"HTTP/") {
        let line: String = String::from_utf8_lossy(head).chars().take(8).collect();
        return Err(refused(format!(
            "it answered the HTTP/2 preface with {line} (h2c needs a port that takes it with prior knowledge; try without --http2)"
        )));
    }
    if got == 0 {
        return Err(refused(
            "it closed the connection on the HTTP/2 preface".into(),
        ));
    }
    // A SETTINGS frame on stream 0: the server's side of the preface.
    let settings = got == 9 && head[3] == 0x4 && head[5..9] == [0, 0, 0, 0];
    if !settings {
        return Err(refused(format!(
            "it answered the HTTP/2 preface with {} bytes that are not a SETTINGS frame",
            got
        )));
    }
    let mut bye = Vec::new();
    frame::write::goaway(0, 0, &mut bye);
    let _ = wire.write_all(&bye).and_then(|()| wire.flush());
    Ok(())
}
