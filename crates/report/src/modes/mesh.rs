//! Whether every unit runs behind a sidecar proxy: the service-mesh dimension of a
//! deployment (`--mesh`, `[mesh] modes`). The proxies themselves are grainbench's
//! `launch::sidecar`.

/// What stands between a unit and the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Mesh {
    /// Units call each other directly (the default).
    #[default]
    None,
    /// Every unit process has an HAProxy sidecar: its inbound traffic arrives through it,
    /// and its calls leave through it to the callee's sidecar (two proxies per hop).
    Sidecar,
}

impl Mesh {
    pub const ALL: [Mesh; 2] = [Mesh::None, Mesh::Sidecar];

    pub fn name(self) -> &'static str {
        match self {
            Mesh::None => "none",
            Mesh::Sidecar => "sidecar",
        }
    }
}

grain_runtime::named_modes!(Mesh, "mesh mode");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_back_what_they_write_and_unknown_ones_are_named() {
        for mesh in Mesh::ALL {
            assert_eq!(mesh.name().parse::<Mesh>(), Ok(mesh));
            let json = serde_json::to_string(&mesh).unwrap();
            assert_eq!(serde_json::from_str::<Mesh>(&json).unwrap(), mesh);
        }
        assert!("istio"
            .parse::<Mesh>()
            .unwrap_err()
            .contains("none, sidecar"));
    }
}
