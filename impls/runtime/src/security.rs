//! What each hop's security is: plaintext, TLS, mutual TLS, a signed token, or both. The
//! harness issues a run's credentials ([`Credentials`]: a throw-away CA's certificate, the
//! unit's own certificate and key, the run's token key) and hands each unit its own in the
//! spec on stdin; nothing is written to disk, so nothing can be left behind.
//!
//! - TLS is rustls with the `ring` provider; every unit's certificate names 127.0.0.1,
//!   `{unit}.{run}.grainbench.invalid` and `member.{run}.grainbench.invalid`, signed by
//!   the run's CA.
//! - Mutual TLS: callees require a client certificate from the run's CA, and accept it
//!   only when it names a member of this run.
//! - Tokens: every call carries `Authorization: Bearer` with an HS256 JWT naming the caller
//!   (`iss`), the callee's unit identity (`aud`), the path called (`path`) and an expiry
//!   (`exp`); the callee checks it before any work and answers 401 otherwise. A token for
//!   `state-carts` is refused by `state-users`, though both serve `/get`. Under
//!   `mtls+token`, `iss` must also be the identity the caller's certificate names.
//!   (Every party still shares the run's one HMAC key, so a unit could mint a token in
//!   another's name; with `mtls+token` the certificate check stops it from using one.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DistinguishedName, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;

/// The security every hop of a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SecurityMode {
    /// Plaintext HTTP (the default).
    #[default]
    None,
    /// HTTPS: the callee proves itself with a certificate from the run's CA.
    Tls,
    /// HTTPS both ways: the caller presents a certificate too, or the handshake fails.
    Mtls,
    /// Plaintext with a signed token on every call.
    Token,
    /// Mutual TLS and a signed token on every call.
    MtlsToken,
}

impl SecurityMode {
    pub const ALL: [SecurityMode; 5] = [
        SecurityMode::None,
        SecurityMode::Tls,
        SecurityMode::Mtls,
        SecurityMode::Token,
        SecurityMode::MtlsToken,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityMode::None => "none",
            SecurityMode::Tls => "tls",
            SecurityMode::Mtls => "mtls",
            SecurityMode::Token => "token",
            SecurityMode::MtlsToken => "mtls+token",
        }
    }

    /// Whether hops are encrypted.
    pub fn tls(self) -> bool {
        matches!(
            self,
            SecurityMode::Tls | SecurityMode::Mtls | SecurityMode::MtlsToken
        )
    }

    /// Whether callers present a certificate.
    pub fn client_certificates(self) -> bool {
        matches!(self, SecurityMode::Mtls | SecurityMode::MtlsToken)
    }

    /// Whether every call carries a signed token.
    pub fn token(self) -> bool {
        matches!(self, SecurityMode::Token | SecurityMode::MtlsToken)
    }

    /// `http` or `https`.
    pub fn scheme(self) -> &'static str {
        if self.tls() {
            "https"
        } else {
            "http"
        }
    }
}

crate::named_modes!(SecurityMode, "security mode");

/// One party's credentials for a run: PEM text and the token key, held in memory only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub mode: SecurityMode,
    /// The run's id: certificates name `{identity}.{run}.grainbench.invalid`.
    pub run: String,
    /// Who this party is (a unit's name, or `driver`).
    pub identity: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The run's HMAC-SHA256 key for tokens, base64.
    pub token_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a key.
        f.debug_struct("Credentials")
            .field("mode", &self.mode)
            .field("run", &self.run)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The label every certificate of a run carries under the run's domain, besides the
/// party's own: `member.{run}.grainbench.invalid`, what mutual TLS checks.
pub const MEMBER: &str = "member";

/// The DNS name a run's certificates give a party.
pub fn party_name(identity: &str, run: &str) -> String {
    format!("{identity}.{}", run_domain(run))
}

/// The domain every certificate of run `run` lies under.
pub fn run_domain(run: &str) -> String {
    format!("{}.grainbench.invalid", dns_chars(run))
}

/// `text` in the characters a DNS label allows: ASCII letters (lowercased) and digits,
/// anything else a `-` (certificates, container and Kubernetes names share it).
pub fn dns_chars(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `text` as one DNS label: [`dns_chars`], at most 63 characters, no `-` at either end.
pub fn dns_label(text: &str) -> String {
    let label: String = dns_chars(text).chars().take(63).collect();
    label.trim_matches('-').to_string()
}

/// Why credentials could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("malformed {what} PEM: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("token key: {0}")]
    TokenKey(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| SecurityError::Pem {
        what,
        detail: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(SecurityError::Pem {
            what,
            detail: "no certificate".into(),
        });
    }
    Ok(certs)
}

fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, SecurityError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| SecurityError::Pem {
        what: "private key",
        detail: e.to_string(),
    })
}

fn roots(ca_pem: &str) -> Result<RootCertStore, SecurityError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "CA certificate")? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A unit's server side: its certificate, and under mutual TLS the client verifier.
pub fn server_config(c: &Credentials) -> Result<Arc<rustls::ServerConfig>, SecurityError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = if c.mode.client_certificates() {
        let inner =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&c.ca_pem)?), provider())
                .build()
                .map_err(|e| SecurityError::Verifier(e.to_string()))?;
        builder.with_client_cert_verifier(Arc::new(RunMembers {
            inner,
            domain: run_domain(&c.run),
        }))
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(
        certificates(&c.cert_pem, "unit certificate")?,
        private_key(&c.key_pem)?,
    )?;
    Ok(Arc::new(config))
}

/// A caller's side: the run's CA as the only root, and under mutual TLS its certificate.
pub fn client_config(c: &Credentials) -> Result<Arc<rustls::ClientConfig>, SecurityError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&c.ca_pem)?);
    let config = if c.mode.client_certificates() {
        builder.with_client_auth_cert(
            certificates(&c.cert_pem, "caller certificate")?,
            private_key(&c.key_pem)?,
        )?
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The name a caller verifies a unit's certificate against: every unit listens on 127.0.0.1.
pub fn loopback_server_name() -> ServerName<'static> {
    ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
}

/// Whether `certificate` (a caller's, already verified by the handshake) names party
/// `identity` of run `run`: what binds a token's `iss` to the caller under `mtls+token`.
pub fn certificate_names(certificate: &CertificateDer<'_>, identity: &str, run: &str) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(certificate) else {
        return false;
    };
    ServerName::try_from(party_name(identity, run))
        .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

/// Mutual TLS's check of a caller: a certificate chain to the run's CA (webpki), naming a
/// party of this run.
#[derive(Debug)]
struct RunMembers {
    inner: Arc<dyn ClientCertVerifier>,
    domain: String,
}

impl ClientCertVerifier for RunMembers {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let member = ServerName::try_from(format!("{MEMBER}.{}", self.domain))
            .map_err(|_| rustls::Error::General("bad run domain".into()))?;
        if cert.verify_is_valid_for_subject_name(&member).is_ok() {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How long a token a caller mints is valid.
pub const TOKEN_LIFETIME_S: u64 = 60;

/// A run's token key (HMAC-SHA256).
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl TokenKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        TokenKey(bytes)
    }

    /// The key of `c`, or `None` when its mode carries no token.
    pub fn of(c: &Credentials) -> Result<Option<TokenKey>, SecurityError> {
        if !c.mode.token() {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&c.token_key)
            .map_err(|e| SecurityError::TokenKey(e.to_string()))?;
        if bytes.len() < 32 {
            return Err(SecurityError::TokenKey("shorter than 32 bytes".into()));
        }
        Ok(Some(TokenKey(bytes)))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// An HS256 JWT from `caller` to unit `callee` for `path`, expiring at `expires`
    /// (Unix seconds).
    pub fn sign(&self, caller: &str, callee: &str, path: &str, expires: u64) -> String {
        const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
        let claims = Claims {
            iss: caller.to_string(),
            aud: callee.to_string(),
            path: path.to_string(),
            exp: expires,
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks `token` for unit `callee` called at `path`, at Unix second `now`.
    pub fn verify(
        &self,
        token: &str,
        callee: &str,
        path: &str,
        now: u64,
    ) -> Result<Claims, TokenError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (_, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.aud != callee {
            return Err(TokenError::WrongAudience);
        }
        if claims.path != path {
            return Err(TokenError::WrongPath);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The callee's unit identity.
    pub aud: String,
    /// The path the token is for.
    pub path: String,
    pub exp: u64,
}

/// Why a token was refused (the callee answers 401 naming it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token is for another callee")]
    WrongAudience,
    #[error("token is for another path")]
    WrongPath,
    #[error("token's issuer is not the caller's certificate")]
    WrongIssuer,
    #[error("token has expired")]
    Expired,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_say_what_they_secure() {
        for mode in SecurityMode::ALL {
            assert_eq!(mode.name().parse::<SecurityMode>(), Ok(mode));
        }
        assert!("ssl"
            .parse::<SecurityMode>()
            .unwrap_err()
            .contains("mtls+token"));
        assert!(SecurityMode::MtlsToken.tls() && SecurityMode::MtlsToken.token());
        assert!(!SecurityMode::Token.tls() && !SecurityMode::Tls.client_certificates());
    }

    #[test]
    fn a_token_verifies_only_unchanged_for_its_callee_before_it_expires() {
        let key = TokenKey::new(vec![7; 32]);
        let token = key.sign("checkout-unit", "state-carts", "/get", 1_000);
        let claims = key.verify(&token, "state-carts", "/get", 999).unwrap();
        assert_eq!(claims.iss, "checkout-unit");
        assert_eq!(
            key.verify(&token, "state-carts", "/get", 1_000),
            Err(TokenError::Expired)
        );
        // Every state unit serves /get: the path alone would let it through.
        assert_eq!(
            key.verify(&token, "state-users", "/get", 999),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            key.verify(&token, "state-carts", "/put", 999),
            Err(TokenError::WrongPath)
        );
        // One flipped character of the payload: the signature no longer holds.
        let (head, rest) = token.split_once('.').unwrap();
        let mut payload: Vec<char> = rest.chars().collect();
        payload[3] = if payload[3] == 'A' { 'B' } else { 'A' };
        let tampered = format!("{head}.{}", payload.into_iter().collect::<String>());
        assert_eq!(
            key.verify(&tampered, "state-carts", "/get", 999),
            Err(TokenError::BadSignature)
        );
        let other = TokenKey::new(vec![8; 32]);
        assert_eq!(
            other.verify(&token, "state-carts", "/get", 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(key.verify("abc", "u", "/", 0), Err(TokenError::Malformed));
    }
}
