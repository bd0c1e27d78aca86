//! Certificates made at test time (rcgen) and rustls server settings for
//! the TLS test server: a CA the tests trust with `--cacert`, and leaves
//! that are good, for another name, expired, or self-signed.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Which certificate the server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Signed by the test CA, for localhost and 127.0.0.1.
    Good,
    /// Signed by the test CA, for another name only.
    WrongName,
    /// Signed by the test CA, expired in 2020.
    Expired,
    /// Self-signed: no CA vouches for it.
    SelfSigned,
    /// Self-signed and marked `CA:TRUE`, for localhost and 127.0.0.1: what
    /// `openssl req -x509` makes; trusted by giving it as the CA file.
    SelfSignedCa,
    /// Signed by the test CA, for localhost and 127.0.0.1, but itself a
    /// CA certificate (`CA:TRUE`).
    SignedCa,
}

/// A CA and one leaf of each kind, and the CA's PEM file.
pub struct Pki {
    pub ca_file: PathBuf,
    /// A client certificate signed by the CA, and its key (PEM files).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    ca_der: CertificateDer<'static>,
    /// The leaves with their keys, by [`Leaf`].
    leaves: Vec<(Leaf, Vec<CertificateDer<'static>>, Vec<u8>)>,
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("valid names");
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p
}

impl Pki {
    /// Makes a fresh CA and leaves; the CA's PEM goes to a scratch file.
    pub fn new() -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "urk test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaves = Vec::new();
        for kind in [
            Leaf::Good,
            Leaf::WrongName,
            Leaf::Expired,
            Leaf::SelfSigned,
            Leaf::SelfSignedCa,
            Leaf::SignedCa,
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = match kind {
                Leaf::WrongName => leaf_params(&["elsewhere.example"]),
                _ => leaf_params(&["localhost", "127.0.0.1"]),
            };
            if matches!(kind, Leaf::SelfSignedCa | Leaf::SignedCa) {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            }
            if kind == Leaf::Expired {
                params.not_before = rcgen::date_time_ymd(2019, 1, 1);
                params.not_after = rcgen::date_time_ymd(2020, 1, 1);
            }
            let cert = match kind {
                Leaf::SelfSigned | Leaf::SelfSignedCa => params.self_signed(&key).unwrap(),
                _ => params.signed_by(&key, &ca).unwrap(),
            };
            leaves.push((kind, vec![cert.der().clone()], key.serialize_der()));
        }
        let dir = std::env::temp_dir().join(format!(
            "urk-pki-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = leaf_params(&["urk-client"])
            .signed_by(&client_key, &ca)
            .unwrap();
        let (client_cert, client_key_file) = (dir.join("client.pem"), dir.join("client.key"));
        std::fs::write(&client_cert, client.pem()).unwrap();
        std::fs::write(&client_key_file, client_key.serialize_pem()).unwrap();
        Pki {
            ca_file,
            client_cert,
            client_key: client_key_file,
            ca_der: ca.der().clone(),
            leaves,
            dir,
        }
    }

    /// Writes `leaf`'s certificate and key as PEM files (for nginx).
    pub fn write_pem(&self, leaf: Leaf, cert: &std::path::Path, key: &std::path::Path) {
        let (_, chain, der) = self.leaves.iter().find(|(k, ..)| *k == leaf).unwrap();
        let pem = |label: &str, der: &[u8]| {
            use base64::Engine;
            let b = base64::engine::general_purpose::STANDARD.encode(der);
            let mut out = format!("-----BEGIN {label}-----\n");
            for line in b.as_bytes().chunks(64) {
                out.push_str(std::str::from_utf8(line).unwrap());
                out.push('\n');
            }
            out + &format!("-----END {label}-----\n")
        };
        std::fs::write(cert, pem("CERTIFICATE", &chain[0])).unwrap();
        std::fs::write(key, pem("PRIVATE KEY", der)).unwrap();
    }

    /// The CA file's path as a string, for `--cacert`.
    pub fn ca(&self) -> String {
        self.ca_file.display().to_string()
    }

    /// Server settings presenting the good leaf and requiring a client
    /// certificate signed by the CA.
    pub fn server_requiring_client_cert(&self) -> Arc<rustls::ServerConfig> {
        let (_, chain, key) = self.leaves.iter().find(|(k, ..)| *k == Leaf::Good).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key)
            .unwrap();
        Arc::new(cfg)
    }

    /// Server settings presenting `leaf`, offering TLS 1.2 only when
    /// `tls12_only`.
    pub fn server(&self, leaf: Leaf, tls12_only: bool) -> Arc<rustls::ServerConfig> {
        let (_, chain, key) = self.leaves.iter().find(|(k, ..)| *k == leaf).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}
