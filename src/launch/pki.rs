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
/// How long the run's certificates are valid: about a day (an hour's slack before now for
/// clocks), not decades; a run, or an `up`, longer than that needs a new one.
pub const VALIDITY: time::Duration = time::Duration::hours(25);

/// What a certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A unit: serves (127.0.0.1 and its names) and calls other units.
    Unit,
    /// The driver: only calls. No address and no server use, so whoever holds the
    /// certificate `up` prints cannot pose as a unit.
    Client,
}

/// `params` valid from an hour ago for [`VALIDITY`].
fn valid_from_now(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + VALIDITY;
}

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
        valid_from_now(&mut params);
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
        let driver = Arc::new(authority.issue(DRIVER, &[], Role::Client)?);
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
        self.authority.issue(identity, &[], Role::Unit)
    }

    /// Credentials for `identity` whose certificate also names `host` (a unit reached by
    /// its container's name).
    pub fn issue_for_host(&self, identity: &str, host: &str) -> Result<Credentials, PkiError> {
        self.authority
            .issue(identity, &[host.to_string()], Role::Unit)
    }
}

impl Authority {
    fn issue(&self, identity: &str, hosts: &[String], role: Role) -> Result<Credentials, PkiError> {
        let key = KeyPair::generate()?;
        let mut names = vec![
            party_name(identity, &self.run),
            format!("{MEMBER}.{}", run_domain(&self.run)),
        ];
        names.extend(hosts.iter().cloned());
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, identity.to_string());
        valid_from_now(&mut params);
        params.extended_key_usages = match role {
            Role::Unit => {
                params
                    .subject_alt_names
                    .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ]
            }
            Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
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
        assert_eq!(unit.ca_pem, pki.driver().ca_pem);
        grain_runtime::security::server_config(&unit).unwrap();
        grain_runtime::security::client_config(&unit).unwrap();
        assert!(
            !format!("{unit:?}").contains("PRIVATE"),
            "Debug never shows a key"
        );
    }

    /// Whether `cert_pem` verifies against the run's CA at Unix second `at`, for `usage`.
    fn verifies(ca_pem: &str, cert_pem: &str, at: u64, usage: webpki::KeyUsage) -> bool {
        use rustls::pki_types::{pem::PemObject as _, CertificateDer, UnixTime};
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
        let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let cert = webpki::EndEntityCert::try_from(&der).unwrap();
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            time,
            usage,
            None,
            None,
        )
        .is_ok()
    }

    /// The certificates last about a day, not from 1975 to 4096; the driver's serves
    /// nothing (it was good as a server's, for 127.0.0.1, so its holder could pose as a
    /// unit).
    #[test]
    fn certificates_last_a_day_and_the_drivers_is_for_clients_only() {
        let pki = RunPki::new(SecurityMode::Mtls, "run-2").unwrap();
        let unit = pki.issue("checkout").unwrap();
        let driver = pki.driver();
        let now = grain_runtime::security::unix_now();
        let (server, client) = (
            webpki::KeyUsage::server_auth(),
            webpki::KeyUsage::client_auth(),
        );
        assert!(verifies(&unit.ca_pem, &unit.cert_pem, now + 3_600, server));
        assert!(verifies(&unit.ca_pem, &unit.cert_pem, now, client));
        assert!(!verifies(
            &unit.ca_pem,
            &unit.cert_pem,
            now + 2 * 86_400,
            server
        ));
        assert!(!verifies(
            &unit.ca_pem,
            &unit.cert_pem,
            now - 2 * 3_600,
            server
        ));
        assert!(verifies(&driver.ca_pem, &driver.cert_pem, now, client));
        assert!(!verifies(&driver.ca_pem, &driver.cert_pem, now, server));
    }
}
