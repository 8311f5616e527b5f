//! Our LocalSend certificate and the TLS settings both ways. LocalSend devices use
//! self-signed certificates and know each other by the certificate's fingerprint, so no
//! certificate is checked against an authority: every one is taken, and what was presented
//! is handed up so the caller compares its fingerprint with the one claimed or pinned
//! before it believes anything (a client's certificate, when it sends one, proves its
//! `register` or offer the same way).
//!
//! The certificate is made once (ECDSA P-256) and kept in the data folder, so our
//! fingerprint stays the same across restarts and devices that pinned it keep trusting it.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::protocol::localsend::fingerprint;

/// Where the certificate and its key live, below the data folder.
const CERT_FILE: &str = "localsend-cert.pem";
const KEY_FILE: &str = "localsend-key.pem";

/// Our certificate's fingerprint and the TLS settings made from it.
pub struct Tls {
    /// SHA-256 of our certificate, upper-case hex: our LocalSend identity.
    pub fingerprint: String,
    /// For our HTTPS server (asks for a client certificate, does not need one).
    pub server: Arc<rustls::ServerConfig>,
    /// For our requests (presents our certificate, takes any).
    pub client: Arc<rustls::ClientConfig>,
}

impl Tls {
    /// Loads the certificate from `data_dir`, making one the first time.
    pub fn load_or_create(data_dir: &Path) -> Result<Tls, String> {
        let (cert_path, key_path) = (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE));
        if !cert_path.exists() || !key_path.exists() {
            create(&cert_path, &key_path)?;
        }
        let read =
            |path: &Path| std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()));
        let cert = CertificateDer::from_pem_slice(&read(&cert_path)?)
            .map_err(|err| format!("{} is not a certificate: {err}", cert_path.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
            .map_err(|err| format!("{} is not a key: {err}", key_path.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let tls_err = |err: rustls::Error| format!("TLS settings: {err}");
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_client_cert_verifier(Arc::new(AnyCertificate(algorithms)))
            .with_single_cert(vec![cert.clone()], key.clone_key())
            .map_err(tls_err)?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
            .with_client_auth_cert(vec![cert.clone()], key)
            .map_err(tls_err)?;
        Ok(Tls { fingerprint: fingerprint(&cert), server: Arc::new(server), client: Arc::new(client) })
    }
}

/// The fingerprint of the certificate a TLS peer presented, if it presented one.
pub fn presented(certificates: Option<&[CertificateDer<'_>]>) -> Option<String> {
    certificates.and_then(<[_]>::first).map(|cert| fingerprint(cert))
}

fn create(cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let made = rcgen::generate_simple_self_signed(vec![String::from("LocalSend User")])
        .map_err(|err| format!("cannot make a certificate: {err}"))?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    write_private(key_path, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, made.cert.pem())
        .map_err(|err| format!("cannot write {}: {err}", cert_path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |err: std::io::Error| format!("cannot write {}: {err}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// Takes every certificate, checking only that the handshake was signed by its key: who it
/// belongs to is decided by its fingerprint, by the caller.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl AnyCertificate {
    fn tls12(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Signed {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn tls13(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Signed {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
}

type Signed = Result<HandshakeSignatureValid, rustls::Error>;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Signed {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Signed {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

impl ClientCertVerifier for AnyCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // The LocalSend apps send none; their claims are checked by asking them back.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Signed {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Signed {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_made_once_and_its_fingerprint_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Tls::load_or_create(dir.path()).unwrap();
        assert_eq!(first.fingerprint.len(), 64);
        assert!(first.fingerprint.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        let again = Tls::load_or_create(dir.path()).unwrap();
        assert_eq!(again.fingerprint, first.fingerprint);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is ours alone");
    }
}
