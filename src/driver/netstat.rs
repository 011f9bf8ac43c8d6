//! The kernel's TCP counters that betray a load generator opening connections faster
//! than a server accepts them (`/proc/net/netstat`, `TcpExt`): `ListenOverflows` (a SYN
//! or handshake dropped because an accept queue was full) and `TCPSynRetrans` (SYNs sent
//! again, each after at least TCP's 1 s initial timeout), and `/proc/net/snmp`'s
//! `ActiveOpens` (connections opened by `connect(2)`, every caller's: under TLS each is a
//! handshake). They count for the whole machine, so a step records how much they rose
//! while it ran.

use std::collections::HashMap;

/// The counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpCounters {
    pub listen_overflows: u64,
    pub syn_retransmits: u64,
    /// Connections opened by any process (`Tcp: ActiveOpens`); 0 where not readable.
    pub active_opens: u64,
}

impl TcpCounters {
    /// Reads the counters; `None` where `/proc/net/netstat` cannot be read or lacks them.
    pub fn read() -> Option<TcpCounters> {
        let mut counters = parse(&std::fs::read_to_string("/proc/net/netstat").ok()?)?;
        counters.active_opens = std::fs::read_to_string("/proc/net/snmp")
            .ok()
            .and_then(|text| counter(&text, "Tcp:", "ActiveOpens"))
            .unwrap_or(0);
        Some(counters)
    }

    /// How much each counter rose from `before` to `self`.
    pub fn since(self, before: TcpCounters) -> TcpCounters {
        TcpCounters {
            listen_overflows: self
                .listen_overflows
                .saturating_sub(before.listen_overflows),
            syn_retransmits: self.syn_retransmits.saturating_sub(before.syn_retransmits),
            active_opens: self.active_opens.saturating_sub(before.active_opens),
        }
    }
}

/// One counter of a `/proc/net` table given as a line of names and a line of values.
fn counter(text: &str, table: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(table));
    let names = lines.next()?.split_whitespace().skip(1);
    let values = lines.next()?.split_whitespace().skip(1);
    names
        .zip(values)
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
}

/// `TcpExt:` comes as a line of names and a line of values.
fn parse(text: &str) -> Option<TcpCounters> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?.split_whitespace().skip(1);
    let values = lines.next()?.split_whitespace().skip(1);
    let counters: HashMap<&str, u64> = names
        .zip(values)
        .filter_map(|(n, v)| Some((n, v.parse().ok()?)))
        .collect();
    Some(TcpCounters {
        listen_overflows: *counters.get("ListenOverflows")?,
        syn_retransmits: *counters.get("TCPSynRetrans")?,
        active_opens: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tcp_ext_lines() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\nTcpExt: 0 12 12 7\nIpExt: InNoRoutes\nIpExt: 0\n";
        let c = parse(text).unwrap();
        assert_eq!((c.listen_overflows, c.syn_retransmits), (12, 7));
        let later = TcpCounters {
            listen_overflows: 15,
            syn_retransmits: 7,
            active_opens: 0,
        };
        let snmp =
            "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm ActiveOpens PassiveOpens\nTcp: 1 4021 3990\n";
        assert_eq!(counter(snmp, "Tcp:", "ActiveOpens"), Some(4021));
        assert_eq!(later.since(c).listen_overflows, 3);
        assert!(parse("Ip: 1\n").is_none());
        assert!(
            TcpCounters::read().is_some(),
            "this machine has /proc/net/netstat"
        );
    }
}
