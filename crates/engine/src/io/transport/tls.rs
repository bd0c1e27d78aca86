//! TLS with rustls, driven by hand over the ring's bytes.
//!
//! Ciphertext arrives exactly as plaintext does on the plain path (a
//! provided buffer, or the connection's own at `legacy`); it goes into
//! rustls at once and the buffer back to the ring. What rustls wants
//! written (the handshake's flights, encrypted requests, alerts) collects
//! in the connection's `tx`, which the ring sends from; it is only written
//! to while no send is in flight, so the kernel never reads a buffer that
//! moves. Everything rustls-specific stays in this file, so that a move to
//! rustls 0.24's caller-owned buffers (no copy into `tx`, no allocation per
//! record) touches nothing else.

use std::io::{self, Read, Write};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind,
    RootCertStore, SignatureScheme,
};

use crate::config::{TlsOptions, TlsVersion};
use crate::error::{TlsFailure, TlsProblem};
use crate::report::stats::Fault;
use crate::Endpoint;
use crate::EngineError;

use super::BlockingStream;

/// Why a TLS connection failed during the run, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsCause {
    /// The server's certificate was refused.
    Certificate,
    /// The server sent a fatal alert.
    Alert,
    /// Anything else: a record that does not decrypt or parse, a protocol
    /// violation.
    Protocol,
    /// The handshake did not finish within the timeout.
    HandshakeTimeout,
}

/// What a TLS handshake agreed on, named as people read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// The cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: String,
    /// The key exchange group, e.g. `X25519`.
    pub group: String,
    /// The ALPN protocol, empty when none was agreed.
    pub alpn: String,
}

impl Negotiated {
    /// What a finished handshake agreed on, named as people read it.
    pub(crate) fn of(c: &ClientConnection) -> Negotiated {
        let name = |s: String| s.replace("TLSv1_", "TLSv1.");
        Negotiated {
            version: c
                .protocol_version()
                .map_or_else(String::new, |v| name(format!("{v:?}"))),
            cipher: c
                .negotiated_cipher_suite()
                .map_or_else(String::new, |s| format!("{:?}", s.suite())),
            group: c
                .negotiated_key_exchange_group()
                .map_or_else(String::new, |g| format!("{:?}", g.name())),
            alpn: c
                .alpn_protocol()
                .map_or_else(String::new, |a| String::from_utf8_lossy(a).into_owned()),
        }
    }
}

/// How long the probe waits after its handshake for the server's verdict
/// on it.
const PROBE_VERDICT: Duration = Duration::from_millis(200);

/// The provider, with AES-128-GCM/SHA-256 suites offered first (as
/// browsers do): rustls's default puts AES-256-GCM/SHA-384 first, and a
/// server that honours the client's order then spends the handshake's key
/// schedule on SHA-384 (23% of urk's CPU with a new connection per
/// request, where SHA-256 has hardware help) and every record on AES-256.
fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .sort_by_key(|s| !format!("{:?}", s.suite()).contains("AES_128_GCM_SHA256"));
    Arc::new(p)
}

/// The checked TLS settings of a run: built once before the load, from
/// the system's roots (or the given CA file) and the given files.
#[derive(Debug, Clone)]
pub(crate) struct TlsSetup {
    base: ClientConfig,
    name: ServerName<'static>,
    resume: bool,
}

impl TlsSetup {
    /// `http2`: offer only `h2` by ALPN (the probe insists on it);
    /// otherwise only `http/1.1`.
    pub(crate) fn new(opts: &TlsOptions, host: &str, http2: bool) -> Result<TlsSetup, EngineError> {
        let provider = provider();
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (TlsVersion::V1_2, &rustls::version::TLS12),
            (TlsVersion::V1_3, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| (opts.min_version..=opts.max_version).contains(v))
        .map(|(_, p)| p)
        .collect();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| EngineError::Config(format!("tls versions: {e}")))?;
        let roots = match opts.insecure {
            true => None,
            false => {
                let (roots, listed) = roots(opts.ca_file.as_deref())?;
                let inner =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| EngineError::Config(format!("tls certificate check: {e}")))?;
                Some(Trusted { inner, listed })
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { provider, roots }));
        let mut base = match &opts.client_cert {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| files("client certificate", cert, e.to_string()))?;
                if chain.is_empty() {
                    return Err(files(
                        "client certificate",
                        cert,
                        "no certificate in it".into(),
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| files("client key", key, e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| files("client key", cert, e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        base.alpn_protocols = vec![match http2 {
            true => b"h2".to_vec(),
            false => b"http/1.1".to_vec(),
        }];
        base.resumption = Resumption::disabled();
        let host = opts.sni.as_deref().unwrap_or(host);
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            EngineError::Config(format!("tls server name '{host}' is not a valid DNS name"))
        })?;
        Ok(TlsSetup {
            base,
            name,
            resume: opts.resume,
        })
    }

    /// One blocking handshake before any load, so that an untrusted or
    /// mismatched certificate stops the run with its reason instead of
    /// turning every connection into a counted error.
    pub(crate) fn probe(&self, addr: &Endpoint, timeout: Duration) -> Result<(), EngineError> {
        let (mut conn, mut sock) = self.handshake_blocking(addr, timeout)?;
        // Under TLS 1.3 the server judges the client's certificate after
        // the client's last flight: wait a moment for its verdict (an
        // alert, or its session tickets) before calling the probe good.
        let _ = sock.set_read_timeout(Some(timeout.min(PROBE_VERDICT)));
        if let Err(e) = conn.complete_io(&mut sock) {
            if let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Err(self.failure(addr, TlsProblem::Other, err.to_string()));
            }
        }
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        Ok(())
    }

    fn failure(&self, addr: &Endpoint, problem: TlsProblem, detail: String) -> EngineError {
        EngineError::Tls(TlsFailure {
            server: format!("{addr} ({})", self.name.to_str()),
            problem,
            detail,
        })
    }

    /// A blocking connection and its finished handshake, each failure
    /// named as the user can act on it.
    pub(crate) fn handshake_blocking(
        &self,
        addr: &Endpoint,
        timeout: Duration,
    ) -> Result<(ClientConnection, BlockingStream), EngineError> {
        let fail = |problem, detail: String| {
            EngineError::Tls(TlsFailure {
                server: format!("{addr} ({})", self.name.to_str()),
                problem,
                detail,
            })
        };
        let mut sock = BlockingStream::connect(addr, timeout)
            .map_err(|e| fail(TlsProblem::Connect, e.to_string()))?;
        let mut conn = ClientConnection::new(Arc::new(self.base.clone()), self.name.clone())
            .map_err(|e| fail(TlsProblem::Other, e.to_string()))?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                let (problem, detail) = match e.get_ref().and_then(|i| i.downcast_ref()) {
                    Some(rustls::Error::InvalidCertificate(c)) => certificate_problem(c),
                    Some(other) => (TlsProblem::Other, other.to_string()),
                    None if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                    {
                        (TlsProblem::Timeout, e.to_string())
                    }
                    None => (TlsProblem::Other, e.to_string()),
                };
                return Err(fail(problem, detail));
            }
        }
        Ok((conn, sock))
    }

    /// A worker's own client: its own configuration and session cache
    /// (no lock shared with other threads), large enough for one ticket
    /// per connection.
    pub(crate) fn for_worker(&self, connections: usize) -> TlsClient {
        let mut config = self.base.clone();
        if self.resume {
            config.resumption = Resumption::in_memory_sessions(connections.max(16));
        }
        TlsClient {
            config: Arc::new(config),
            name: self.name.clone(),
        }
    }
}

fn files(what: &'static str, path: &Path, reason: String) -> EngineError {
    EngineError::TlsFile {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

/// What was wrong with the server's certificate, in a class the caller
/// can act on and a few plain words (never rustls's debug text).
fn certificate_problem(c: &CertificateError) -> (TlsProblem, String) {
    use CertificateError as E;
    let words = |s: &str| s.to_string();
    match c {
        E::UnknownIssuer => (TlsProblem::Untrusted, String::new()),
        E::BadSignature => (
            TlsProblem::Untrusted,
            words("its signature does not verify"),
        ),
        E::BadEncoding => (TlsProblem::Untrusted, words("it could not be parsed")),
        E::NotValidForName => (TlsProblem::NameMismatch, String::new()),
        E::NotValidForNameContext {
            expected,
            presented,
        } => (
            TlsProblem::NameMismatch,
            format!(
                "asked for {}, it names {}",
                expected.to_str(),
                match presented.as_slice() {
                    [] => "no DNS name or address".to_string(),
                    names => names
                        .iter()
                        .map(|n| plain_name(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            ),
        ),
        E::Expired | E::ExpiredContext { .. } => (TlsProblem::Expired, String::new()),
        E::NotValidYet | E::NotValidYetContext { .. } => (TlsProblem::NotValidYet, String::new()),
        E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            (TlsProblem::UnsupportedSignature, String::new())
        }
        E::Other(o) if is_ca_as_end_entity(o) => (TlsProblem::CaAsServerCert, String::new()),
        E::Revoked => (TlsProblem::Untrusted, words("it has been revoked")),
        _ => (
            TlsProblem::Untrusted,
            words("the certificate check refused it"),
        ),
    }
}

/// A name as webpki lists it (`DnsName("a.example")`, `IpAddress(10.0.0.1)`),
/// without the wrapping.
fn plain_name(n: &str) -> &str {
    n.split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(n, |v| v.trim_matches('"'))
}

/// webpki refused a CA certificate (`CA:TRUE`) presented as the server's own.
fn is_ca_as_end_entity(o: &rustls::OtherError) -> bool {
    matches!(
        o.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

/// The trusted roots (the CA file's, or the system's: Debian's
/// ca-certificates), read once at start, and the CA file's certificates
/// as they were listed.
fn roots(
    ca_file: Option<&Path>,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), EngineError> {
    let mut store = RootCertStore::empty();
    let mut listed = Vec::new();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| files("CA file", path, e.to_string()))?;
            let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
            if added == 0 {
                return Err(files("CA file", path, "no usable certificate in it".into()));
            }
            listed = certs;
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
    }
    Ok((store, listed))
}

/// How the server's certificate is checked: against the trusted roots
/// (`roots`), or not at all (`insecure`). Either way the handshake's
/// signatures are verified, so the server must hold its certificate's key.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    /// `None`: any certificate is accepted (`insecure`).
    roots: Option<Trusted>,
}

/// The usual certificate check, which also trusts a server certificate
/// that is itself one of the CA file's, as curl and Go do: the
/// self-signed certificate of most READMEs (`openssl req -x509`) is marked
/// `CA:TRUE`, and webpki refuses a CA certificate as a server's own even
/// when it is the very one trusted. Its dates were checked (webpki checks
/// them before it finds the certificate is a CA's); its name is checked
/// here.
#[derive(Debug)]
struct Trusted {
    inner: Arc<WebPkiServerVerifier>,
    /// The CA file's certificates, byte for byte.
    listed: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(t) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        match t
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(o)))
                if is_ca_as_end_entity(&o)
                    && t.listed.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                let bad = |c| rustls::Error::InvalidCertificate(c);
                webpki::EndEntityCert::try_from(end_entity)
                    .map_err(|_| bad(CertificateError::BadEncoding))?
                    .verify_is_valid_for_subject_name(server_name)
                    .map_err(|_| bad(CertificateError::NotValidForName))?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A worker's TLS client: one configuration and session cache per thread.
pub(crate) struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

/// One connection's TLS state. The session is made anew for each socket;
/// `tx` keeps its capacity across them.
pub(crate) struct TlsSession {
    conn: Option<ClientConnection>,
    /// Ciphertext to send; while a send is in flight the kernel reads it,
    /// and nothing writes to it.
    pub tx: Vec<u8>,
}

/// How a handshake ended, once it has.
pub(crate) struct Handshake {
    pub resumed: bool,
    pub negotiated: Negotiated,
}

impl TlsSession {
    pub(crate) fn new() -> TlsSession {
        TlsSession {
            conn: None,
            tx: Vec::new(),
        }
    }

    /// Starts a handshake on a new socket: the ClientHello lands in `tx`.
    pub(crate) fn start(&mut self, client: &TlsClient) -> Result<(), Fault> {
        let conn = ClientConnection::new(client.config.clone(), client.name.clone())
            .map_err(|_| Fault::Tls(TlsCause::Protocol))?;
        self.conn = Some(conn);
        self.tx.clear();
        self.fill_tx();
        Ok(())
    }

    /// Forgets the socket's session (its resumption ticket stays in the
    /// worker's cache).
    pub(crate) fn end(&mut self) {
        self.conn = None;
        self.tx.clear();
    }

    /// The handshake's outcome, once it is over.
    pub(crate) fn handshake(&self) -> Option<Handshake> {
        let c = self.conn.as_ref().filter(|c| !c.is_handshaking())?;
        Some(Handshake {
            resumed: c.handshake_kind() == Some(HandshakeKind::Resumed),
            negotiated: Negotiated::of(c),
        })
    }

    /// Takes ciphertext from the ring and hands every piece of plaintext it
    /// decrypts to `plain`, through `scratch`.
    pub(crate) fn absorb(
        &mut self,
        mut bytes: &[u8],
        scratch: &mut [u8],
        mut plain: impl FnMut(&[u8]) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Fault::Tls(TlsCause::Protocol));
        };
        while !bytes.is_empty() {
            let n = conn
                .read_tls(&mut bytes)
                .map_err(|_| Fault::Tls(TlsCause::Protocol))?;
            if n == 0 {
                return Err(Fault::Tls(TlsCause::Protocol));
            }
            // Records before a bad one (an alert after the last response)
            // still count: their plaintext is framed before the fault.
            let processed = conn.process_new_packets();
            loop {
                match conn.reader().read(scratch) {
                    // Ok(0) is the server's close_notify: the socket's end
                    // follows, and is framed there.
                    Ok(0) => break,
                    Ok(n) => plain(&scratch[..n])?,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return Err(Fault::Tls(TlsCause::Protocol)),
                }
            }
            processed.map_err(|e| Fault::Tls(cause(&e)))?;
        }
        Ok(())
    }

    /// Encrypts a batch of requests into `tx`. Only while no send is in
    /// flight.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<(), Fault> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Fault::Tls(TlsCause::Protocol));
        };
        conn.writer()
            .write_all(plaintext)
            .map_err(|_| Fault::Tls(TlsCause::Protocol))?;
        self.fill_tx();
        Ok(())
    }

    /// Moves whatever rustls wants written into `tx` (handshake flights,
    /// records, alerts, key updates). Only while no send is in flight.
    pub(crate) fn fill_tx(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while conn.wants_write() {
            if conn.write_tls(&mut self.tx).is_err() {
                break;
            }
        }
    }
}

fn cause(e: &rustls::Error) -> TlsCause {
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            TlsCause::Certificate
        }
        rustls::Error::AlertReceived(_) => TlsCause::Alert,
        _ => TlsCause::Protocol,
    }
}
