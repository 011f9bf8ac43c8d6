//! The names of what a deployment is, shared by the scenario, the plan and results.json:
//! its cut ([`cut`]), the security its hops use, the transport they speak, the mesh in
//! front of its units ([`mesh`]) and whether its requests are traced ([`Tracing`]), and
//! the label a deployment carries wherever results are shown ([`variant_label`]).

pub mod cut;
pub mod mesh;

pub use cut::{Architecture, Series};
pub use grain_runtime::security::SecurityMode;
pub use grain_runtime::transport::Transport;
pub use mesh::Mesh;

/// Whether a deployment's requests are traced (`run --trace`): under `--trace-overhead`
/// each cut is deployed both ways, back to back in every round, so tracing's own cost is
/// measured like any other mechanism's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Tracing {
    /// No `traceparent` is sent, no unit exports spans.
    #[default]
    Off,
    /// A share of the load's requests is traced and every unit exports spans.
    Traced,
}

impl Tracing {
    pub const ALL: [Tracing; 2] = [Tracing::Off, Tracing::Traced];

    pub fn name(self) -> &'static str {
        match self {
            Tracing::Off => "off",
            Tracing::Traced => "traced",
        }
    }

    pub fn is_off(&self) -> bool {
        *self == Tracing::Off
    }
}

grain_runtime::named_modes!(Tracing, "tracing mode");

/// How a deployed cut is named wherever results are shown: the cut, plus `+mode` when its
/// hops are secured, `+transport` when they speak other than HTTP/1.1 + JSON and
/// `+sidecar` behind a mesh (`micro+mtls+grpc`, `nano+mtls+sidecar`).
pub fn variant_label(
    architecture: &Architecture,
    security: SecurityMode,
    transport: Transport,
    mesh: Mesh,
    tracing: Tracing,
) -> String {
    let mut label = architecture.name();
    if security != SecurityMode::None {
        label = format!("{label}+{security}");
    }
    if transport != Transport::Http1Json {
        label = format!("{label}+{transport}");
    }
    if mesh != Mesh::None {
        label = format!("{label}+{mesh}");
    }
    if tracing != Tracing::Off {
        label = format!("{label}+{tracing}");
    }
    label
}
