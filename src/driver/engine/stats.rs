//! What a load thread did besides its recorder's measurements (sends, connections, spin,
//! TLS work), and how the threads' figures add up.

use std::time::Duration;

/// What the engine did besides the recorder's measurements.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// CPU time (user + system) of the engine thread.
    pub cpu: Duration,
    /// Requests handed to the network.
    pub sent: u64,
    /// Requests that had to wait for a free slot because the in-flight cap was reached.
    pub in_flight_cap_hits: u64,
    pub connections_opened: u64,
    pub max_in_flight: usize,
    /// Time spent in rustls's own work (key shares, encryption, decryption), part of `cpu`.
    pub tls: Duration,
    /// TLS handshakes the engine completed.
    pub handshakes: u64,
    /// Wall time the loop spent busy-polling before due times (what the learned spin
    /// window costs; the rest of its CPU is sending, reading and sleeping).
    pub spinning: Duration,
    /// The spin window at the end of the step, learned from the timer's wake-ups.
    pub spin_window: Duration,
    /// Requests that waited because no connection was idle and the connect budget was
    /// spent (see [`connect`]).
    pub connection_waits: u64,
    /// Connections whose handshake took longer than [`CONNECT_STALL`]: each one's request
    /// is counted as a generator error.
    pub connect_stalls: u64,
    /// Retries the units reported making for the replies read (their `x-grain-retries`).
    pub unit_retries: u64,
}

impl EngineStats {
    /// Adds another load thread's figures: sums, except the spin window (the widest) and
    /// the most in flight (the sum of each thread's most: an upper bound).
    pub fn merge(&mut self, other: &EngineStats) {
        self.cpu += other.cpu;
        self.sent += other.sent;
        self.in_flight_cap_hits += other.in_flight_cap_hits;
        self.connections_opened += other.connections_opened;
        self.max_in_flight += other.max_in_flight;
        self.spinning += other.spinning;
        self.tls += other.tls;
        self.handshakes += other.handshakes;
        self.spin_window = self.spin_window.max(other.spin_window);
        self.connection_waits += other.connection_waits;
        self.connect_stalls += other.connect_stalls;
        self.unit_retries += other.unit_retries;
    }
}
