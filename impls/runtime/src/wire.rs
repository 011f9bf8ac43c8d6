//! The HTTP protocol between the driver and units and between units: paths, headers that
//! carry hop counts and digests, and JSON bodies padded to their declared sizes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Response header: service hops made downstream to serve this request.
pub const SERVICE_HOPS_HEADER: &str = "x-grain-service-hops";
/// Response header: state hops (requests to state units) made downstream.
pub const STATE_HOPS_HEADER: &str = "x-grain-state-hops";
/// Response header: retries made for the request by the unit and everything it called
/// (absent: none), summed up the call tree like hops.
pub const RETRIES_HEADER: &str = "x-grain-retries";
/// Response header: digest of the business result.
pub const DIGEST_HEADER: &str = "x-grain-digest";
/// Response header of a failed reply: the process whose failure caused it (a unit answers
/// with its own name, or passes up the name its failed callee gave, or names the callee it
/// could not reach).
pub const FAILED_UNIT_HEADER: &str = "x-grain-failed-unit";
/// Line a unit prints on stdout once it listens: `GRAIN_LISTENING 127.0.0.1:PORT`.
pub const LISTENING_PREFIX: &str = "GRAIN_LISTENING ";

/// Largest HTTP body a unit accepts (requests, state reads and writes), declared once for
/// every unit; scenario payloads and values are bounded well below it.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Path of an operation's endpoint.
pub fn op_path(op: &str) -> String {
    format!("{OP_PATH_PREFIX}{op}")
}

/// What every operation's path starts with.
pub const OP_PATH_PREFIX: &str = "/op/";

pub const STATE_GET_PATH: &str = "/get";
pub const STATE_PUT_PATH: &str = "/put";
pub const HEALTH_PATH: &str = "/health";
/// Every unit: returns the injected-delay errors recorded since the last call, and resets.
pub const DELAY_ERRORS_PATH: &str = "/grain/delay-errors/take";
/// Every unit: returns its body codec's CPU since the last call
/// ([`crate::transport::codec::CodecTime`], JSON), and resets.
pub const CODEC_TIME_PATH: &str = "/grain/codec-time/take";

/// Reply of [`DELAY_ERRORS_PATH`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelayErrorsReply {
    /// The errors of the delays applied since the last call (actual − intended wait, ns),
    /// encoded as [`crate::histogram`] does.
    pub histogram: String,
}

/// Network hops, split into calls between service units and calls to state units.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hops {
    pub service: u32,
    pub state: u32,
}

impl Hops {
    pub fn total(&self) -> u32 {
        self.service + self.state
    }
}

impl std::ops::AddAssign for Hops {
    fn add_assign(&mut self, other: Hops) {
        self.service += other.service;
        self.state += other.state;
    }
}

/// Body of a request to an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    pub params: BTreeMap<String, u64>,
    #[serde(default)]
    pub pad: String,
}

/// Body of an operation's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResponse {
    pub digest: String,
    #[serde(default)]
    pub pad: String,
}

/// Body of a state unit read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateGet {
    pub keys: Vec<String>,
}

/// Answer to a state unit read: one value per key, `null` where absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateValues {
    pub values: Vec<Option<String>>,
}

/// Body of a state unit write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePut {
    pub entries: Vec<(String, String)>,
}

/// Serializes an op request padded so the JSON body is at least `size` bytes.
pub fn encode_request(params: &BTreeMap<String, u64>, size: usize) -> Vec<u8> {
    let request = OpRequest {
        params: params.clone(),
        pad: String::new(),
    };
    padded(to_json(&request), size)
}

/// Serializes an op response padded so the JSON body is at least `size` bytes.
pub fn encode_response(digest: String, size: usize) -> Vec<u8> {
    let response = OpResponse {
        digest,
        pad: String::new(),
    };
    padded(to_json(&response), size)
}

/// Fills the empty `pad` string, the last field of `bare` (`…,"pad":""}`), up to `size`
/// bytes in place, so bodies are serialized once on the units' and driver's hot paths.
fn padded(mut bare: Vec<u8>, size: usize) -> Vec<u8> {
    const EMPTY_PAD_END: &[u8] = b"\"\"}";
    if bare.len() >= size || !bare.ends_with(EMPTY_PAD_END) {
        return bare;
    }
    let missing = size - bare.len();
    let insert_at = bare.len() - 2; // between the two quotes of the empty string
    bare.splice(insert_at..insert_at, std::iter::repeat_n(b'x', missing));
    bare
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs (strings, integers, maps with string keys) cannot fail.
    serde_json::to_vec(value).expect("wire types always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_padded_to_their_declared_size() {
        let params = BTreeMap::from([("user".to_string(), 12)]);
        let body = encode_request(&params, 512);
        assert_eq!(body.len(), 512);
        let parsed: OpRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.params, params);

        let body = encode_response("00ff".into(), 256);
        assert_eq!(body.len(), 256);
        let small = encode_response("00ff".into(), 1);
        assert!(small.len() > 1, "never truncated below the bare JSON");
    }

    #[test]
    fn hops_add_up() {
        let mut hops = Hops {
            service: 1,
            state: 0,
        };
        hops += Hops {
            service: 2,
            state: 3,
        };
        assert_eq!(
            hops,
            Hops {
                service: 3,
                state: 3
            }
        );
        assert_eq!(hops.total(), 6);
    }
}
