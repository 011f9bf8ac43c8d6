//! The state unit: one service's key-value store served over HTTP (or another unit
//! transport), so that nano units can stay stateless. `POST /get` reads a batch of keys,
//! `POST /put` writes a batch; bodies in the codec the request's content type names.

use axum::{
    extract::State as Extract,
    http::{header::CONTENT_TYPE, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use grain_runtime::host::{serve_unit, HostError, RouteTable};
use grain_runtime::model::{Listen, StoreDef};
use grain_runtime::security::Credentials;
use grain_runtime::store::Store;
use grain_runtime::transport::{CallReply, Codec, DirectCalls, Transport};
use grain_runtime::wire::{StateGet, StatePut, StateValues, STATE_GET_PATH, STATE_PUT_PATH};
use std::sync::Arc;

/// Serves `store` as unit `unit` until told to stop, speaking `security` when given,
/// answering calls in `transport` (directly, without an HTTP request, for a non-HTTP
/// transport) and listening where `listen` says.
pub async fn run(
    unit: &str,
    store: &StoreDef,
    security: Option<&Credentials>,
    transport: Transport,
    listen: &Listen,
) -> Result<(), HostError> {
    let routes = Arc::new(RouteTable::default());
    let state = Arc::new(State(Store::seeded(store)));
    let app = router(&state);
    let direct: Arc<dyn DirectCalls> = state;
    serve_unit(unit, routes, app, Some(direct), security, transport, listen).await
}

/// A state unit's store and the two calls it answers.
pub struct State(Store);

impl State {
    /// `/get`: the values of the keys `body` names (in `codec`), encoded in `codec`.
    fn get(&self, codec: Codec, body: &[u8]) -> Result<Vec<u8>, String> {
        let request: StateGet = codec.decode(body).map_err(|e| e.to_string())?;
        let values = self
            .0
            .get_many(&request.keys)
            .into_iter()
            .map(|value| value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
            .collect();
        Ok(codec.encode(&StateValues { values }))
    }

    /// `/put`: writes the entries `body` carries (in `codec`).
    fn put(&self, codec: Codec, body: &[u8]) -> Result<(), String> {
        let request: StatePut = codec.decode(body).map_err(|e| e.to_string())?;
        self.0.put_many(
            request
                .entries
                .into_iter()
                .map(|(key, value)| (key, Bytes::from(value)))
                .collect(),
        );
        Ok(())
    }
}

impl DirectCalls for State {
    fn serves(&self, path: &str) -> bool {
        path == STATE_GET_PATH || path == STATE_PUT_PATH
    }

    fn serve<'a>(&'a self, path: &'a str, codec: Codec, body: Bytes) -> BoxFuture<'a, CallReply> {
        // Nothing is read or written before the layers let the call through.
        Box::pin(async move {
            let answered = match path {
                STATE_GET_PATH => self.get(codec, &body),
                STATE_PUT_PATH => self.put(codec, &body).map(|()| Vec::new()),
                other => return CallReply::failure(404, format!("no state path {other}")),
            };
            match answered {
                Ok(body) => CallReply::ok(Bytes::from(body)),
                Err(text) => CallReply::failure(StatusCode::BAD_REQUEST.as_u16(), text),
            }
        })
    }
}

/// The state unit's HTTP API over `state`.
pub fn router(state: &Arc<State>) -> Router {
    Router::new()
        .route(STATE_GET_PATH, post(get_many))
        .route(STATE_PUT_PATH, post(put_many))
        .with_state(state.clone())
}

fn malformed(error: String) -> Response {
    (StatusCode::BAD_REQUEST, error).into_response()
}

async fn get_many(state: Extract<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let codec = Codec::of_headers(&headers);
    match state.0.get(codec, &body) {
        Ok(values) => {
            let content_type = HeaderValue::from_static(codec.content_type());
            ([(CONTENT_TYPE, content_type)], values).into_response()
        }
        Err(error) => malformed(error),
    }
}

async fn put_many(state: Extract<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    match state.0.put(Codec::of_headers(&headers), &body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => malformed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> State {
        State(Store::seeded(&StoreDef {
            service: "orders".into(),
            seeds: Vec::new(),
        }))
    }

    fn put(key: &str) -> Bytes {
        let entries = vec![(key.to_string(), "v".to_string())];
        Bytes::from(Codec::Json.encode(&StatePut { entries }))
    }

    #[tokio::test]
    async fn a_direct_write_happens_only_once_the_call_runs() {
        let state = empty();
        let refused = state.serve(STATE_PUT_PATH, Codec::Json, put("a"));
        drop(refused);
        assert_eq!(
            state.0.get_many(&["a".into()]),
            [None],
            "an unpolled call wrote"
        );
        let reply = state.serve(STATE_PUT_PATH, Codec::Json, put("a")).await;
        assert_eq!(reply.status, 200);
        assert!(state.0.get_many(&["a".into()])[0].is_some());
    }

    #[tokio::test]
    async fn a_direct_read_answers_as_the_http_route_does() {
        let state = Arc::new(empty());
        state.serve(STATE_PUT_PATH, Codec::Json, put("a")).await;
        let get = Bytes::from(Codec::Json.encode(&StateGet {
            keys: vec!["a".into(), "b".into()],
        }));
        let direct = state.serve(STATE_GET_PATH, Codec::Json, get.clone()).await;
        let headers = [(
            CONTENT_TYPE,
            HeaderValue::from_static(Codec::Json.content_type()),
        )];
        let http = get_many(Extract(state.clone()), headers.into_iter().collect(), get).await;
        let http = axum::body::to_bytes(http.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(direct.body, http);
        let values: StateValues = Codec::Json.decode(&direct.body).unwrap();
        assert_eq!(values.values, [Some("v".to_string()), None]);
        let malformed = state.serve(STATE_GET_PATH, Codec::Json, Bytes::new()).await;
        assert_eq!(malformed.status, 400);
    }
}
