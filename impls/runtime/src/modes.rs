//! The name of what a unit's hops speak, which its spec carries: the [`Transport`] of a
//! deployment (how each transport works is [`crate::transport`]'s; security modes are
//! [`crate::security`]'s).

/// What every unit-to-unit hop of a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Transport {
    /// HTTP/1.1 with JSON bodies (the default).
    #[default]
    Http1Json,
    /// gRPC: HTTP/2 with protobuf messages (tonic, prost).
    Grpc,
    /// Length-prefixed postcard frames over one multiplexed connection per pair.
    Binary,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Http1Json, Transport::Grpc, Transport::Binary];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Http1Json => "http1-json",
            Transport::Grpc => "grpc",
            Transport::Binary => "binary",
        }
    }

    /// Its short name in sentences: `HTTP/1.1 + JSON`, `gRPC`, `binary frames`.
    pub fn title(self) -> &'static str {
        match self {
            Transport::Http1Json => "HTTP/1.1 + JSON",
            Transport::Grpc => "gRPC",
            Transport::Binary => "binary frames",
        }
    }
}

crate::named_modes!(Transport, "transport");
