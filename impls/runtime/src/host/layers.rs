//! The layers around a unit's handlers, outermost first: a server span for a call that
//! carries a sampled `traceparent`, the injected reply faults (`slow`, `fail`) of a fault
//! step, and the token check of a token-secured hop. [`Layers`] decides each once; an
//! HTTP call meets them as axum middleware ([`Layers::around_router`]), a call in another
//! transport that the unit serves directly as plain calls around its handler
//! ([`Layers::around_call`], the transports' [`Layered`]), so both meet the same checks in
//! the same order.

use super::{RouteTable, TlsPeer};
use crate::security::{certificate_names, unix_now, TokenError, TokenKey};
use crate::transport::handlers::Layered;
use crate::transport::CallReply;
use axum::{extract::State, http::StatusCode, response::IntoResponse, Router};
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;

/// What a token-secured unit checks a bearer token against.
struct TokenCheck {
    key: TokenKey,
    /// Under mutual TLS, the run whose party the caller's certificate must name as the
    /// token's issuer.
    run: Option<String>,
}

/// A unit's layers: its process name (`unit#r` for a replica; faults are injected and
/// tokens issued by it), the routes that carry injected faults, its token check (under a
/// token mode) and whether it exports spans.
pub struct Layers {
    process: String,
    routes: Arc<RouteTable>,
    token: Option<TokenCheck>,
    traced: bool,
}

/// What an injected reply fault does to the call being served now.
enum Injected {
    /// Answer 503 naming the unit, without serving.
    Fail(String),
    /// Serve after this delay.
    Delay(std::time::Duration),
}

impl Layers {
    /// `token`: the key a caller's token must verify against and, under mutual TLS, the
    /// run whose party the caller's certificate must name; `traced`: whether this process
    /// exports spans (an untraced unit reads no `traceparent`).
    pub fn new(
        process: &str,
        routes: Arc<RouteTable>,
        token: Option<(TokenKey, Option<String>)>,
        traced: bool,
    ) -> Self {
        Layers {
            process: process.to_string(),
            routes,
            token: token.map(|(key, run)| TokenCheck { key, run }),
            traced,
        }
    }

    /// `app` with every layer as axum middleware; a unit without tokens or traces gets no
    /// middleware for them at all (nothing per request).
    pub fn around_router(self: &Arc<Self>, app: Router) -> Router {
        let mut app = app;
        if self.token.is_some() {
            app = app.layer(axum::middleware::from_fn_with_state(
                self.clone(),
                require_token,
            ));
        }
        app = app.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            apply_reply_fault,
        ));
        if self.traced {
            app = app.layer(axum::middleware::from_fn(traced));
        }
        app
    }

    /// Serves a call to `path` (`serve`) inside the same layers as an HTTP call: a span
    /// under its `traceparent`, the injected fault, then its bearer `token` checked (with
    /// the caller's TLS `peer` under mutual TLS).
    pub async fn around_call(
        &self,
        path: &str,
        token: Option<&str>,
        traceparent: Option<&str>,
        peer: Option<&TlsPeer>,
        serve: impl Future<Output = CallReply>,
    ) -> CallReply {
        let layered = async {
            match self.injected() {
                Some(Injected::Fail(message)) => return self.failed(message),
                Some(Injected::Delay(delay)) => tokio::time::sleep(delay).await,
                None => {}
            }
            let certificate = peer.and_then(|peer| peer.certificate.as_deref());
            match self.verdict(token, path, certificate) {
                Ok(()) => serve.await,
                Err(text) => CallReply::failure(StatusCode::UNAUTHORIZED.as_u16(), text),
            }
        };
        let parent = if self.traced {
            crate::trace::sampled_parent_of(traceparent)
        } else {
            None
        };
        match parent {
            Some(parent) => {
                crate::trace::serve_traced(parent, path.to_string(), layered, |r| r.status).await
            }
            None => layered.await,
        }
    }

    /// The fault injected into this unit's replies now, if any, decided for this call.
    fn injected(&self) -> Option<Injected> {
        use rand::Rng as _;
        if !self.routes.is_faulted() {
            return None;
        }
        let fault = self.routes.current().faults.get(&self.process).copied()?;
        if fault.fail_probability > 0.0
            && rand::rng().random_bool(fault.fail_probability.clamp(0.0, 1.0))
        {
            return Some(Injected::Fail(format!(
                "unit {}: injected failure",
                self.process
            )));
        }
        (fault.delay_ms > 0.0)
            .then(|| Injected::Delay(std::time::Duration::from_secs_f64(fault.delay_ms / 1e3)))
    }

    /// An injected failure's reply: 503 blaming this unit.
    fn failed(&self, message: String) -> CallReply {
        CallReply {
            failed_unit: Some(self.process.clone()),
            ..CallReply::failure(StatusCode::SERVICE_UNAVAILABLE.as_u16(), message)
        }
    }

    /// Whether a call to `path` bearing `token` may be served: always without a token
    /// check; otherwise the token must be for this unit (whatever replica) and `path`,
    /// and under mutual TLS issued by the party the caller's `certificate` names. The
    /// 401's text when not.
    fn verdict(
        &self,
        token: Option<&str>,
        path: &str,
        certificate: Option<&rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<(), String> {
        let Some(check) = &self.token else {
            return Ok(());
        };
        let callee = crate::model::unit_of_process(&self.process);
        token
            .ok_or(TokenError::Missing)
            .and_then(|token| check.key.verify(token, callee, path, unix_now()))
            .and_then(|claims| match (&check.run, certificate) {
                (None, _) => Ok(()),
                (Some(run), Some(cert)) if certificate_names(cert, &claims.iss, run) => Ok(()),
                (Some(_), _) => Err(TokenError::WrongIssuer),
            })
            .map_err(|error| format!("unit {}: {error}", self.process))
    }
}

impl Layered for Layers {
    fn around<'a>(
        &'a self,
        path: &'a str,
        token: Option<&'a str>,
        traceparent: Option<&'a str>,
        peer: Option<&'a TlsPeer>,
        serve: BoxFuture<'a, CallReply>,
    ) -> BoxFuture<'a, CallReply> {
        Box::pin(self.around_call(path, token, traceparent, peer, serve))
    }
}

async fn traced(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Untraced (no exporter, or no sampled traceparent): nothing is allocated or built.
    let Some(parent) = crate::trace::sampled_parent(request.headers()) else {
        return next.run(request).await;
    };
    let name = request.uri().path().to_string();
    crate::trace::serve_traced(parent, name, next.run(request), |r| r.status().as_u16()).await
}

async fn apply_reply_fault(
    State(layers): State<Arc<Layers>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match layers.injected() {
        Some(Injected::Fail(message)) => {
            let headers = [(crate::wire::FAILED_UNIT_HEADER, layers.process.clone())];
            return (StatusCode::SERVICE_UNAVAILABLE, headers, message).into_response();
        }
        Some(Injected::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    next.run(request).await
}

/// Checks a call's bearer token before any work: 401 naming the unit and why otherwise.
async fn require_token(
    State(layers): State<Arc<Layers>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let certificate = request
        .extensions()
        .get::<axum::extract::ConnectInfo<TlsPeer>>()
        .and_then(|info| info.0.certificate.as_deref());
    match layers.verdict(token, request.uri().path(), certificate) {
        Ok(()) => next.run(request).await,
        Err(text) => (StatusCode::UNAUTHORIZED, text).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ReplyFault, Routes};
    use crate::transport::{Call, Codec, DirectCalls, Handlers};
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Serves `/op/direct` directly, counting the calls it served.
    struct Counted(AtomicUsize);

    impl DirectCalls for Counted {
        fn serves(&self, path: &str) -> bool {
            path == "/op/direct"
        }

        fn serve<'a>(&'a self, _: &'a str, _: Codec, body: Bytes) -> BoxFuture<'a, CallReply> {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                CallReply::ok(body)
            })
        }
    }

    /// Handlers of process `u#1` whose router answers 418 on `/op/routed` (counting its
    /// calls) and whose direct calls are counted; tokens checked when `key` is given.
    fn handlers(
        routes: Arc<RouteTable>,
        key: Option<TokenKey>,
    ) -> (Handlers, Arc<Counted>, Arc<AtomicUsize>) {
        let routed = Arc::new(AtomicUsize::new(0));
        let counter = routed.clone();
        let router = Router::new().route(
            "/op/routed",
            axum::routing::post(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                StatusCode::IM_A_TEAPOT
            }),
        );
        let layers = Arc::new(Layers::new("u#1", routes, key.map(|k| (k, None)), false));
        let direct = Arc::new(Counted(AtomicUsize::new(0)));
        let router = layers.around_router(router);
        let handlers = Handlers::new(router, direct.clone(), layers);
        (handlers, direct, routed)
    }

    fn call(path: &str, token: Option<String>) -> Call {
        Call {
            path: path.into(),
            token,
            traceparent: None,
            body: Bytes::from_static(b"payload"),
        }
    }

    #[tokio::test]
    async fn a_direct_path_skips_the_router_and_any_other_path_takes_it() {
        let (handlers, direct, routed) = handlers(Arc::new(RouteTable::default()), None);
        let reply = handlers
            .call(call("/op/direct", None), Codec::Postcard, None)
            .await;
        assert_eq!((reply.status, &reply.body[..]), (200, &b"payload"[..]));
        let reply = handlers
            .call(call("/op/routed", None), Codec::Postcard, None)
            .await;
        assert_eq!(reply.status, 418);
        assert_eq!(direct.0.load(Ordering::SeqCst), 1);
        assert_eq!(routed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_direct_call_meets_the_token_check_before_any_work() {
        let key = TokenKey::new(vec![5; 32]);
        let (handlers, direct, _) = handlers(Arc::new(RouteTable::default()), Some(key.clone()));
        let elsewhere = key.sign("driver", "u", "/op/routed", unix_now() + 60);
        for bad in [None, Some(elsewhere)] {
            let reply = handlers
                .call(call("/op/direct", bad), Codec::Json, None)
                .await;
            assert_eq!(reply.status, 401);
            assert!(String::from_utf8_lossy(&reply.body).starts_with("unit u#1: "));
        }
        assert_eq!(
            direct.0.load(Ordering::SeqCst),
            0,
            "no refused call was served"
        );
        let valid = key.sign("driver", "u", "/op/direct", unix_now() + 60);
        let reply = handlers
            .call(call("/op/direct", Some(valid)), Codec::Json, None)
            .await;
        assert_eq!(reply.status, 200);
    }

    #[tokio::test]
    async fn an_injected_failure_answers_a_direct_call_as_it_answers_an_http_one() {
        let routes = Arc::new(RouteTable::default());
        routes.replace(Routes {
            faults: [(
                "u#1".to_string(),
                ReplyFault {
                    delay_ms: 0.0,
                    fail_probability: 1.0,
                },
            )]
            .into(),
            ..Routes::default()
        });
        let (handlers, direct, routed) = handlers(routes, None);
        let direct_reply = handlers
            .call(call("/op/direct", None), Codec::Json, None)
            .await;
        let routed_reply = handlers
            .call(call("/op/routed", None), Codec::Json, None)
            .await;
        for reply in [&direct_reply, &routed_reply] {
            assert_eq!(reply.status, 503);
            assert_eq!(reply.failed_unit.as_deref(), Some("u#1"));
            assert_eq!(&reply.body[..], b"unit u#1: injected failure");
        }
        assert_eq!(direct.0.load(Ordering::SeqCst), 0);
        assert_eq!(routed.load(Ordering::SeqCst), 0);
    }
}
