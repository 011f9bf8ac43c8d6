//! A run's throw-away PKI: a CA generated when a secured deployment is launched, a
//! certificate per unit (and one for the driver) signed by it, and the run's token key.
//! Everything stays in this process's memory and reaches each unit in its spec on stdin:
//! no certificate or key is ever written to disk, so none can outlive the run.

use grain_runtime::security::{party_name, run_domain, Credentials, SecurityMode, MEMBER};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::sync::Arc;

/// Why the run's credentials could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot issue the run's certificates: {0}")]
pub struct PkiError(#[from] rcgen::Error);

/// The identity the driver (and the harness's own calls) present.
pub const DRIVER: &str = "driver";

/// A run's CA and token key, issuing each party's credentials.
pub struct RunPki {
    authority: Authority,
    /// The driver's credentials (the harness's own calls present them too), shared with
    /// every step's targets.
    driver: Arc<Credentials>,
}

/// What signs: the CA, its key, and the run's token key.
struct Authority {
    mode: SecurityMode,
    run: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    token_key: String,
}

impl std::fmt::Debug for RunPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunPki")
            .field("mode", &self.authority.mode)
            .field("run", &self.authority.run)
            .finish_non_exhaustive()
    }
}

impl RunPki {
    /// A fresh CA (ECDSA P-256) and a random 32-byte token key for run `run`.
    pub fn new(mode: SecurityMode, run: &str) -> Result<Self, PkiError> {
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("grainbench run {run} CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key)?;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        use base64::Engine as _;
        let authority = Authority {
            mode,
            run: run.to_string(),
            ca,
            ca_key,
            token_key: base64::engine::general_purpose::STANDARD.encode(key),
        };
        let driver = Arc::new(authority.issue(DRIVER, &[])?);
        Ok(RunPki { authority, driver })
    }

    pub fn mode(&self) -> SecurityMode {
        self.authority.mode
    }

    /// The driver's credentials.
    pub fn driver(&self) -> &Arc<Credentials> {
        &self.driver
    }

    /// `identity`'s credentials: a certificate for 127.0.0.1, its own name and the run's
    /// member name, good as server and as client.
    pub fn issue(&self, identity: &str) -> Result<Credentials, PkiError> {
        self.authority.issue(identity, &[])
    }

    /// Credentials for `identity` whose certificate also names `host` (a unit reached by
    /// its container's name).
    pub fn issue_for_host(&self, identity: &str, host: &str) -> Result<Credentials, PkiError> {
        self.authority.issue(identity, &[host.to_string()])
    }
}

impl Authority {
    fn issue(&self, identity: &str, hosts: &[String]) -> Result<Credentials, PkiError> {
        let key = KeyPair::generate()?;
        let mut names = vec![
            party_name(identity, &self.run),
            format!("{MEMBER}.{}", run_domain(&self.run)),
        ];
        names.extend(hosts.iter().cloned());
        let mut params = CertificateParams::new(names)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .distinguished_name
            .push(DnType::CommonName, identity.to_string());
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        Ok(Credentials {
            mode: self.mode,
            run: self.run.clone(),
            identity: identity.to_string(),
            ca_pem: self.ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            token_key: self.token_key.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_credentials_make_tls_configs_on_both_sides() {
        let pki = RunPki::new(SecurityMode::Mtls, "run-1").unwrap();
        let unit = pki.issue("checkout").unwrap();
        assert!(unit.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(unit.key_pem.contains("PRIVATE KEY"));
        assert_eq!(unit.ca_pem, pki.issue(DRIVER).unwrap().ca_pem);
        grain_runtime::security::server_config(&unit).unwrap();
        grain_runtime::security::client_config(&unit).unwrap();
        assert!(
            !format!("{unit:?}").contains("PRIVATE"),
            "Debug never shows a key"
        );
    }
}
