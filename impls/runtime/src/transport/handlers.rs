//! Where a call that did not arrive as HTTP/1.1 (gRPC, binary frames) is served: a unit's
//! [`Handlers`]. A unit that serves its operations directly ([`DirectCalls`]) has such a
//! call served without building an HTTP request or response, inside the same layers as
//! an HTTP call ([`Layered`]: the host's span, injected fault and token check);
//! any other path (a unit without direct calls, the harness's control routes) goes
//! through the unit's router as the HTTP request it stands for.

use super::{Call, CallReply, Codec};
use crate::client::{header_str, hops_from_headers, retries_from_headers};
use crate::tls_listener::TlsPeer;
use crate::wire::{DIGEST_HEADER, FAILED_UNIT_HEADER};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// A unit's handlers called as plain functions: what a call to one of its paths answers,
/// the same as its HTTP route would (status, hops, retries, digest, blame, body).
pub trait DirectCalls: Send + Sync + 'static {
    /// Whether `path` is served directly (otherwise it goes through the router).
    fn serves(&self, path: &str) -> bool;

    /// Serves a call to `path` (one [`Self::serves`]) with `body` in `codec`. Nothing may
    /// happen before the future is first polled: the layers (token check, injected
    /// fault) decide first whether it runs at all.
    fn serve<'a>(&'a self, path: &'a str, codec: Codec, body: Bytes) -> BoxFuture<'a, CallReply>;
}

/// The layers an HTTP call meets as middleware, around a call served directly (the
/// host's `Layers`: a span, the injected fault, the token check).
pub trait Layered: Send + Sync + 'static {
    /// Serves a call to `path` (`serve`) inside the layers, which read its bearer `token`,
    /// its `traceparent` and the caller's TLS `peer`.
    fn around<'a>(
        &'a self,
        path: &'a str,
        token: Option<&'a str>,
        traceparent: Option<&'a str>,
        peer: Option<&'a TlsPeer>,
        serve: BoxFuture<'a, CallReply>,
    ) -> BoxFuture<'a, CallReply>;
}

/// What a unit hands the calls of its other transports to; cheap to clone.
#[derive(Clone)]
pub struct Handlers {
    /// The unit's routes with their layers, for any path not served directly.
    router: axum::Router,
    direct: Option<(Arc<dyn DirectCalls>, Arc<dyn Layered>)>,
}

impl Handlers {
    /// Every call through `router` (its layers are the router's own middleware).
    pub fn router(router: axum::Router) -> Self {
        Handlers {
            router,
            direct: None,
        }
    }

    /// Calls to the paths `direct` serves go to it inside `layers`; the rest through
    /// `router` (which must carry the same layers).
    pub fn new(
        router: axum::Router,
        direct: Arc<dyn DirectCalls>,
        layers: Arc<dyn Layered>,
    ) -> Self {
        Handlers {
            router,
            direct: Some((direct, layers)),
        }
    }

    /// Serves `call`, its body in `codec`; `peer`: the caller's TLS identity, for the token
    /// check under mutual TLS.
    pub async fn call(&self, call: Call, codec: Codec, peer: Option<TlsPeer>) -> CallReply {
        match &self.direct {
            Some((direct, layers)) if direct.serves(&call.path) => {
                let Call {
                    path,
                    token,
                    traceparent,
                    body,
                } = call;
                let serving = direct.serve(&path, codec, body);
                layers
                    .around(
                        &path,
                        token.as_deref(),
                        traceparent.as_deref(),
                        peer.as_ref(),
                        serving,
                    )
                    .await
            }
            _ => through_router(self.router.clone(), call, codec, peer).await,
        }
    }
}

/// Hands `call` to `app` as the HTTP request it stands for, and the response back as a
/// reply.
async fn through_router(
    app: axum::Router,
    call: Call,
    codec: Codec,
    peer: Option<TlsPeer>,
) -> CallReply {
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::post(call.path.as_str())
        .header(axum::http::header::CONTENT_TYPE, codec.content_type());
    if let Some(token) = &call.token {
        request = request.header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(traceparent) = &call.traceparent {
        request = request.header(crate::trace::TRACEPARENT, traceparent.as_str());
    }
    if let Some(peer) = peer {
        request = request.extension(axum::extract::ConnectInfo(peer));
    }
    let request = match request.body(axum::body::Body::from(call.body)) {
        Ok(request) => request,
        Err(error) => return CallReply::failure(400, format!("bad call: {error}")),
    };
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return CallReply::failure(500, format!("reply body failed: {error}")),
    };
    let header = |name: &str| header_str(&parts.headers, name).map(str::to_string);
    CallReply {
        status: parts.status.as_u16(),
        hops: hops_from_headers(&parts.headers),
        retries: retries_from_headers(&parts.headers),
        digest: header(DIGEST_HEADER),
        failed_unit: header(FAILED_UNIT_HEADER),
        body,
    }
}
