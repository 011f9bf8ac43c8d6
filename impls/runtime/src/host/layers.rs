//! The layers around a unit's routes, outermost first: a server span for a call that
//! carries a sampled `traceparent`, the token check of a token-secured hop, and the
//! injected reply faults (`slow`, `fail`) of a fault step.

use super::{RouteTable, TlsPeer};
use crate::security::{certificate_names, unix_now, TokenError, TokenKey};
use axum::{extract::State, http::StatusCode, Router};
use std::sync::Arc;

/// `app` with every call that carries a sampled `traceparent` served inside a server
/// span (see [`crate::trace`]); the outermost layer, so the span covers the token check
/// and an injected fault too.
pub fn with_tracing(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(traced))
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
    crate::trace::serve_traced(parent, name, next.run(request)).await
}

/// `app` with the fault the harness injects into this unit's replies applied to every
/// call (none most of the time): a 503 naming the unit, or a delay before the handler.
pub fn with_reply_faults(app: Router, unit: &str, routes: Arc<RouteTable>) -> Router {
    app.layer(axum::middleware::from_fn_with_state(
        Arc::new((unit.to_string(), routes)),
        apply_reply_fault,
    ))
}

async fn apply_reply_fault(
    State(unit): State<Arc<(String, Arc<RouteTable>)>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use rand::Rng as _;
    let (name, routes) = unit.as_ref();
    if !routes.is_faulted() {
        return next.run(request).await;
    }
    let Some(fault) = routes.current().faults.get(name).copied() else {
        return next.run(request).await;
    };
    if fault.fail_probability > 0.0
        && rand::rng().random_bool(fault.fail_probability.clamp(0.0, 1.0))
    {
        let headers = [(crate::wire::FAILED_UNIT_HEADER, name.clone())];
        let body = format!("unit {name}: injected failure");
        return (StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response();
    }
    if fault.delay_ms > 0.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(fault.delay_ms / 1e3)).await;
    }
    next.run(request).await
}

/// What a unit checks a bearer token against.
struct TokenCheck {
    /// The process name (`unit#r` for a replica), for the 401's text.
    process: String,
    key: TokenKey,
    /// Under mutual TLS, the run whose party the caller's certificate must name as the
    /// token's issuer.
    run: Option<String>,
}

/// `app` with every call's bearer token checked before its handler runs: for this unit
/// (its identity, whatever replica) and the path called; with `run`, issued by the party
/// the caller's certificate names.
pub fn with_token_check(app: Router, unit: &str, key: TokenKey, run: Option<String>) -> Router {
    let check = TokenCheck {
        process: unit.to_string(),
        key,
        run,
    };
    app.layer(axum::middleware::from_fn_with_state(
        Arc::new(check),
        require_token,
    ))
}

/// Checks a call's bearer token before any work: 401 naming the unit and why otherwise.
async fn require_token(
    State(check): State<Arc<TokenCheck>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let callee = crate::model::unit_of_process(&check.process);
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let verdict = token
        .ok_or(TokenError::Missing)
        .and_then(|token| {
            check
                .key
                .verify(token, callee, request.uri().path(), unix_now())
        })
        .and_then(|claims| match &check.run {
            None => Ok(claims),
            Some(run) => {
                let peer = request
                    .extensions()
                    .get::<axum::extract::ConnectInfo<TlsPeer>>()
                    .and_then(|info| info.0.certificate.clone());
                match peer {
                    Some(cert) if certificate_names(&cert, &claims.iss, run) => Ok(claims),
                    _ => Err(TokenError::WrongIssuer),
                }
            }
        });
    match verdict {
        Ok(_) => next.run(request).await,
        Err(error) => {
            let text = format!("unit {}: {error}", check.process);
            (StatusCode::UNAUTHORIZED, text).into_response()
        }
    }
}
