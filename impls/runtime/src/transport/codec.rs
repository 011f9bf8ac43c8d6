//! The bodies of operation and state calls in each transport's encoding: JSON
//! (`http1-json`), protobuf (`grpc`, prost messages declared here with prost's derive, so
//! no `protoc` is needed) and postcard (`binary`). Requests and responses are padded to
//! the scenario's declared sizes in every encoding.

use crate::wire::{OpRequest, OpResponse, StateGet, StatePut, StateValues};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every this many encodes and decodes, one is timed with the thread's CPU clock (a
/// system call each side, too dear for every call).
pub const TIMED_EVERY: u64 = 8;

/// The body codec's CPU in this unit since the last [`take_codec_time`], sampled.
static CODEC_CALLS: AtomicU64 = AtomicU64::new(0);
static CODEC_TIMED: AtomicU64 = AtomicU64::new(0);
static CODEC_TIMED_NS: AtomicU64 = AtomicU64::new(0);

/// What a unit's body codec cost since the last take: every encode and decode counted,
/// one in [`TIMED_EVERY`] timed on the thread's CPU clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CodecTime {
    pub calls: u64,
    pub timed: u64,
    pub timed_ns: u64,
}

impl CodecTime {
    /// The codec's whole CPU estimated from the timed calls, ns.
    pub fn estimated_ns(&self) -> Option<f64> {
        (self.timed > 0).then(|| self.timed_ns as f64 * self.calls as f64 / self.timed as f64)
    }
}

/// This unit's codec time since the last take; starts the next count.
pub fn take_codec_time() -> CodecTime {
    CodecTime {
        calls: CODEC_CALLS.swap(0, Ordering::Relaxed),
        timed: CODEC_TIMED.swap(0, Ordering::Relaxed),
        timed_ns: CODEC_TIMED_NS.swap(0, Ordering::Relaxed),
    }
}

fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec passed by pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Runs `f`, counted, and timed when its turn comes.
fn timed<T>(f: impl FnOnce() -> T) -> T {
    if !CODEC_CALLS
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(TIMED_EVERY)
    {
        return f();
    }
    let start = thread_cpu_ns();
    let out = f();
    let spent = thread_cpu_ns().saturating_sub(start);
    CODEC_TIMED.fetch_add(1, Ordering::Relaxed);
    CODEC_TIMED_NS.fetch_add(spent, Ordering::Relaxed);
    out
}

/// An encoding of call bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    Protobuf,
    Postcard,
}

/// A body that did not decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed {codec} body: {detail}")]
pub struct DecodeError {
    pub codec: &'static str,
    pub detail: String,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "JSON",
            Codec::Protobuf => "protobuf",
            Codec::Postcard => "postcard",
        }
    }

    /// The content type a body in this codec is labelled with.
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/json",
            Codec::Protobuf => "application/x-protobuf",
            Codec::Postcard => "application/x-postcard",
        }
    }

    /// The codec a request's content type names (JSON when it names none of them: what
    /// the driver and any HTTP client send).
    pub fn of_content_type(content_type: Option<&str>) -> Codec {
        match content_type {
            Some(t) if t == Codec::Protobuf.content_type() => Codec::Protobuf,
            Some(t) if t == Codec::Postcard.content_type() => Codec::Postcard,
            _ => Codec::Json,
        }
    }

    /// The codec a request's `content-type` header names.
    pub fn of_headers(headers: &http::HeaderMap) -> Codec {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        Codec::of_content_type(content_type)
    }

    /// `message` in this codec.
    pub fn encode<M: Message>(self, message: &M) -> Vec<u8> {
        timed(|| self.encode_untimed(message))
    }

    fn encode_untimed<M: Message>(self, message: &M) -> Vec<u8> {
        match self {
            // These plain structs (strings, integers, maps with string keys) always serialize.
            Codec::Json => serde_json::to_vec(message).expect("wire types always serialize"),
            Codec::Protobuf => prost::Message::encode_to_vec(&message.to_proto()),
            Codec::Postcard => postcard::to_stdvec(message).expect("wire types always serialize"),
        }
    }

    /// A message from `bytes` in this codec.
    pub fn decode<M: Message>(self, bytes: &[u8]) -> Result<M, DecodeError> {
        timed(|| self.decode_untimed(bytes))
    }

    fn decode_untimed<M: Message>(self, bytes: &[u8]) -> Result<M, DecodeError> {
        let error = |detail: String| DecodeError {
            codec: self.name(),
            detail,
        };
        match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| error(e.to_string())),
            Codec::Protobuf => <M::Proto as prost::Message>::decode(bytes)
                .map(M::from_proto)
                .map_err(|e| error(e.to_string())),
            Codec::Postcard => postcard::from_bytes(bytes).map_err(|e| error(e.to_string())),
        }
    }

    /// An operation request padded so its body is at least `size` bytes.
    pub fn encode_request(self, params: &BTreeMap<String, u64>, size: usize) -> Vec<u8> {
        timed(|| self.encode_request_untimed(params, size))
    }

    fn encode_request_untimed(self, params: &BTreeMap<String, u64>, size: usize) -> Vec<u8> {
        if self == Codec::Json {
            return crate::wire::encode_request(params, size);
        }
        let request = OpRequest {
            params: params.clone(),
            pad: String::new(),
        };
        self.padded(request, size, |r, pad| r.pad = pad)
    }

    /// An operation response padded so its body is at least `size` bytes.
    pub fn encode_response(self, digest: String, size: usize) -> Vec<u8> {
        timed(|| self.encode_response_untimed(digest, size))
    }

    fn encode_response_untimed(self, digest: String, size: usize) -> Vec<u8> {
        if self == Codec::Json {
            return crate::wire::encode_response(digest, size);
        }
        let response = OpResponse {
            digest,
            pad: String::new(),
        };
        self.padded(response, size, |r, pad| r.pad = pad)
    }

    /// `message` encoded with its pad string grown until the body is `size` bytes (a
    /// byte or two over where the pad's length prefix grows).
    fn padded<M: Message>(
        self,
        mut message: M,
        size: usize,
        pad: impl Fn(&mut M, String),
    ) -> Vec<u8> {
        let mut body = self.encode_untimed(&message);
        let mut pad_len = 0usize;
        // The pad's own tag and length prefix take a few bytes: a few passes settle it.
        for _ in 0..4 {
            if (size..=size + 2).contains(&body.len()) || (pad_len == 0 && body.len() > size) {
                break;
            }
            pad_len = (pad_len + size).saturating_sub(body.len());
            pad(&mut message, "x".repeat(pad_len));
            body = self.encode_untimed(&message);
        }
        body
    }
}

/// A call body every codec encodes: serde for JSON and postcard, a prost message for
/// protobuf.
pub trait Message: Serialize + DeserializeOwned {
    type Proto: prost::Message + Default;
    fn to_proto(&self) -> Self::Proto;
    fn from_proto(proto: Self::Proto) -> Self;
}

/// The protobuf messages (`grain.v1`), as prost derives them.
pub mod proto {
    use std::collections::BTreeMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OpRequest {
        #[prost(btree_map = "string, uint64", tag = "1")]
        pub params: BTreeMap<String, u64>,
        #[prost(string, tag = "2")]
        pub pad: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OpResponse {
        #[prost(string, tag = "1")]
        pub digest: String,
        #[prost(string, tag = "2")]
        pub pad: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StateGet {
        #[prost(string, repeated, tag = "1")]
        pub keys: Vec<String>,
    }

    /// One value of a read: absent when the key is not in the store.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, optional, tag = "1")]
        pub value: Option<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StateValues {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatePut {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<Entry>,
    }
}

impl Message for OpRequest {
    type Proto = proto::OpRequest;
    fn to_proto(&self) -> proto::OpRequest {
        proto::OpRequest {
            params: self.params.clone(),
            pad: self.pad.clone(),
        }
    }
    fn from_proto(p: proto::OpRequest) -> Self {
        OpRequest {
            params: p.params,
            pad: p.pad,
        }
    }
}

impl Message for OpResponse {
    type Proto = proto::OpResponse;
    fn to_proto(&self) -> proto::OpResponse {
        proto::OpResponse {
            digest: self.digest.clone(),
            pad: self.pad.clone(),
        }
    }
    fn from_proto(p: proto::OpResponse) -> Self {
        OpResponse {
            digest: p.digest,
            pad: p.pad,
        }
    }
}

impl Message for StateGet {
    type Proto = proto::StateGet;
    fn to_proto(&self) -> proto::StateGet {
        proto::StateGet {
            keys: self.keys.clone(),
        }
    }
    fn from_proto(p: proto::StateGet) -> Self {
        StateGet { keys: p.keys }
    }
}

impl Message for StateValues {
    type Proto = proto::StateValues;
    fn to_proto(&self) -> proto::StateValues {
        proto::StateValues {
            values: self
                .values
                .iter()
                .map(|value| proto::Value {
                    value: value.clone(),
                })
                .collect(),
        }
    }
    fn from_proto(p: proto::StateValues) -> Self {
        StateValues {
            values: p.values.into_iter().map(|v| v.value).collect(),
        }
    }
}

impl Message for StatePut {
    type Proto = proto::StatePut;
    fn to_proto(&self) -> proto::StatePut {
        proto::StatePut {
            entries: self
                .entries
                .iter()
                .map(|(key, value)| proto::Entry {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
    fn from_proto(p: proto::StatePut) -> Self {
        StatePut {
            entries: p.entries.into_iter().map(|e| (e.key, e.value)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Codec; 3] = [Codec::Json, Codec::Protobuf, Codec::Postcard];

    #[test]
    fn every_codec_round_trips_every_message() {
        let params = BTreeMap::from([("user".to_string(), 12), ("sku".to_string(), 7)]);
        let values = StateValues {
            values: vec![Some("a".into()), None, Some(String::new())],
        };
        let put = StatePut {
            entries: vec![("k1".into(), "v1".into()), ("k2".into(), String::new())],
        };
        for codec in ALL {
            let request: OpRequest = codec.decode(&codec.encode_request(&params, 300)).unwrap();
            assert_eq!(request.params, params, "{codec:?}");
            let response: OpResponse = codec
                .decode(&codec.encode_response("00ff".into(), 100))
                .unwrap();
            assert_eq!(response.digest, "00ff", "{codec:?}");
            assert_eq!(
                codec.decode::<StateValues>(&codec.encode(&values)).unwrap(),
                values
            );
            assert_eq!(codec.decode::<StatePut>(&codec.encode(&put)).unwrap(), put);
            assert!(
                codec.decode::<StateGet>(b"\xff\xff\xff").is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn bodies_are_padded_to_their_declared_size_in_every_codec() {
        let params = BTreeMap::from([("user".to_string(), 12)]);
        for codec in ALL {
            for size in [200, 1_000, 20_000] {
                let len = codec.encode_request(&params, size).len();
                assert!((size..=size + 2).contains(&len), "{codec:?} {size}: {len}");
                let len = codec.encode_response("00ff".into(), size).len();
                assert!((size..=size + 2).contains(&len), "{codec:?} {size}: {len}");
            }
        }
    }

    #[test]
    fn content_types_name_their_codec() {
        for codec in ALL {
            assert_eq!(Codec::of_content_type(Some(codec.content_type())), codec);
        }
        assert_eq!(Codec::of_content_type(None), Codec::Json);
    }
}
