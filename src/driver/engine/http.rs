//! The engine's side of HTTP/1.1: each entrypoint's request bytes built once up to the
//! body length, and one reply parsed in place (httparse) for its status, body length and
//! the hop counts the units report in headers.

use crate::driver::record::{ErrorClass, Outcome};
use grain_runtime::security::{client_config, unix_now, Credentials, SecurityError, TokenKey};
use grain_runtime::wire::{
    Hops, FAILED_UNIT_HEADER, RETRIES_HEADER, SERVICE_HOPS_HEADER, STATE_HOPS_HEADER,
};
use std::sync::Arc;
use std::time::Duration;

/// One entrypoint as the engine sends it.
#[derive(Debug, Clone)]
pub struct EngineTarget {
    /// Read at every new connection, so a redeployed entry unit is found at its new address.
    pub addr: crate::driver::TargetAddr,
    /// Request line and headers up to `Content-Length: ` (the length and body follow).
    head: Vec<u8>,
    pub request_bytes: usize,
    /// The units' TLS, when they speak it.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The `Host` of requests to units this run started (they listen on 127.0.0.1).
const LOOPBACK_HOST: &str = "127.0.0.1";

impl EngineTarget {
    pub fn new(addr: crate::driver::TargetAddr, path: &str, request_bytes: usize) -> Self {
        Self::to_host(addr, path, request_bytes, LOOPBACK_HOST)
    }

    /// A target reached as `host` (the `Host` its requests carry: an outside deployment's
    /// own name, for an ingress or a virtual host).
    pub fn to_host(
        addr: crate::driver::TargetAddr,
        path: &str,
        request_bytes: usize,
        host: &str,
    ) -> Self {
        Self::with_headers(addr, path, request_bytes, host, "")
    }

    /// A target whose requests carry `extra` header lines (each ending in `\r\n`).
    fn with_headers(
        addr: crate::driver::TargetAddr,
        path: &str,
        request_bytes: usize,
        host: &str,
        extra: &str,
    ) -> Self {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}Content-Length: "
        )
        .into_bytes();
        EngineTarget {
            addr,
            head,
            request_bytes,
            tls: None,
        }
    }

    /// A target speaking `security` as the driver: over TLS when the mode has it, and with
    /// a bearer token valid for `valid_for` from now when the mode carries tokens (one per
    /// step and entrypoint: the driver signs once, every callee still verifies each call).
    pub fn secured(
        addr: crate::driver::TargetAddr,
        path: &str,
        request_bytes: usize,
        security: &Credentials,
        valid_for: Duration,
    ) -> Result<Self, SecurityError> {
        let extra = match TokenKey::of(security)? {
            Some(key) => {
                let expires = unix_now() + valid_for.as_secs() + 1;
                format!(
                    "Authorization: Bearer {}\r\n",
                    key.sign(&security.identity, &addr.unit(), path, expires)
                )
            }
            None => String::new(),
        };
        let mut target = Self::with_headers(addr, path, request_bytes, LOOPBACK_HOST, &extra);
        if security.mode.tls() {
            target.tls = Some(client_config(security)?);
        }
        Ok(target)
    }

    /// The whole request carrying `body` (and a `traceparent` when it is traced).
    pub(crate) fn request(&self, body: &[u8], traceparent: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + 80 + body.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(body.len().to_string().as_bytes());
        if let Some(traceparent) = traceparent {
            out.extend_from_slice(b"\r\ntraceparent: ");
            out.extend_from_slice(traceparent.as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        out
    }
}

pub(crate) enum Parsed {
    /// A whole reply, the process a failed one blames, and the retries the units made for
    /// it (their reply header).
    Complete(Outcome, Option<Arc<str>>, u32),
    Incomplete,
    Malformed,
}

/// Parses one HTTP/1.1 response with a Content-Length body.
pub(crate) fn parse_response(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 24];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(_) => return Parsed::Malformed,
    };
    let mut content_length = 0usize;
    let mut hops = Hops::default();
    let mut blame = None;
    let mut retries = 0;
    for header in response.headers.iter() {
        let value = || {
            std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(0)
        };
        if header.name.eq_ignore_ascii_case("content-length") {
            content_length = value() as usize;
        } else if header.name.eq_ignore_ascii_case(SERVICE_HOPS_HEADER) {
            hops.service = value();
        } else if header.name.eq_ignore_ascii_case(STATE_HOPS_HEADER) {
            hops.state = value();
        } else if header.name.eq_ignore_ascii_case(RETRIES_HEADER) {
            retries = value();
        } else if header.name.eq_ignore_ascii_case(FAILED_UNIT_HEADER) {
            blame = std::str::from_utf8(header.value).ok().map(Arc::from);
        }
    }
    if buf.len() < header_len + content_length {
        return Parsed::Incomplete;
    }
    let status = response.code.unwrap_or(0);
    if status == 200 {
        hops.service += 1; // the driver's own request
        Parsed::Complete(Ok(hops), None, retries)
    } else {
        Parsed::Complete(Err(ErrorClass::Status(status)), blame, retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hops_and_waits_for_the_whole_body() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-grain-service-hops: 3\r\nx-grain-state-hops: 2\r\n\r\nhello";
        match parse_response(full) {
            Parsed::Complete(Ok(hops), None, 0) => assert_eq!(
                hops,
                Hops {
                    service: 4,
                    state: 2
                }
            ),
            _ => panic!("expected a complete reply"),
        }
        assert!(matches!(
            parse_response(&full[..full.len() - 1]),
            Parsed::Incomplete
        ));
        assert!(matches!(parse_response(&full[..20]), Parsed::Incomplete));
        let error = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nx-grain-failed-unit: nano-pay\r\n\r\n";
        match parse_response(error) {
            Parsed::Complete(Err(ErrorClass::Status(502)), Some(blame), 0) => {
                assert_eq!(&*blame, "nano-pay")
            }
            _ => panic!("expected a failed reply naming its culprit"),
        }
        assert!(matches!(
            parse_response(b"garbage\r\n\r\n"),
            Parsed::Malformed
        ));
    }

    #[test]
    fn request_bytes_carry_the_body_length() {
        let target = EngineTarget::new(
            crate::driver::Target::new("x", "127.0.0.1:9", 10)
                .unwrap()
                .addr,
            "/op/x",
            10,
        );
        let bytes = target.request(b"{\"a\":1}", None);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /op/x HTTP/1.1\r\n"));
        assert!(text.ends_with("Content-Length: 7\r\n\r\n{\"a\":1}"));
        let traced = String::from_utf8(target.request(b"{}", Some("00-ab-cd-01"))).unwrap();
        assert!(
            traced.ends_with("Content-Length: 2\r\ntraceparent: 00-ab-cd-01\r\n\r\n{}"),
            "{traced}"
        );
        let (head, _) = traced.split_once("\r\n\r\n").unwrap();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(
            parsed.parse(traced.as_bytes()).unwrap().is_complete(),
            "{head}"
        );
        assert!(parsed.headers.iter().any(|h| h.name == "traceparent"));
    }

    #[test]
    fn an_outside_deployment_is_asked_for_by_its_own_host() {
        let addr = crate::driver::Target::new("x", "127.0.0.1:9", 10)
            .unwrap()
            .addr;
        let own = String::from_utf8(EngineTarget::new(addr.clone(), "/op/x", 1).request(b"", None))
            .unwrap();
        assert!(own.contains("\r\nHost: 127.0.0.1\r\n"), "{own}");
        let outside =
            EngineTarget::to_host(addr, "/op/x", 1, "shop.example:8080").request(b"", None);
        let outside = String::from_utf8(outside).unwrap();
        assert!(
            outside.contains("\r\nHost: shop.example:8080\r\n"),
            "{outside}"
        );
    }
}
