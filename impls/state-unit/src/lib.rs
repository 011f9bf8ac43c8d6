//! The state unit: one service's key-value store served over HTTP, so that nano units can
//! stay stateless. `POST /get` reads a batch of keys, `POST /put` writes a batch.

use axum::{extract::State, http::StatusCode, routing::post, Json, Router};
use bytes::Bytes;
use grain_runtime::host::{serve_unit, HostError, RouteTable};
use grain_runtime::model::{Listen, StoreDef};
use grain_runtime::security::Credentials;
use grain_runtime::store::Store;
use grain_runtime::wire::{StateGet, StatePut, StateValues, STATE_GET_PATH, STATE_PUT_PATH};
use std::sync::Arc;

/// Serves `store` as unit `unit` until told to stop, speaking `security` when given and
/// listening where `listen` says.
pub async fn run(
    unit: &str,
    store: &StoreDef,
    security: Option<&Credentials>,
    listen: &Listen,
) -> Result<(), HostError> {
    let routes = Arc::new(RouteTable::default());
    serve_unit(unit, routes, router(store), security, listen).await
}

/// The state unit's HTTP API over a freshly seeded store.
pub fn router(def: &StoreDef) -> Router {
    let store = Arc::new(Store::seeded(def));
    Router::new()
        .route(STATE_GET_PATH, post(get_many))
        .route(STATE_PUT_PATH, post(put_many))
        .with_state(store)
}

async fn get_many(
    State(store): State<Arc<Store>>,
    Json(request): Json<StateGet>,
) -> Json<StateValues> {
    let values = store
        .get_many(&request.keys)
        .into_iter()
        .map(|value| value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        .collect();
    Json(StateValues { values })
}

async fn put_many(State(store): State<Arc<Store>>, Json(request): Json<StatePut>) -> StatusCode {
    store.put_many(
        request
            .entries
            .into_iter()
            .map(|(key, value)| (key, Bytes::from(value)))
            .collect(),
    );
    StatusCode::OK
}
