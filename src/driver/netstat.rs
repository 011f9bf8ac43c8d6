//! The kernel's TCP counters that betray a load generator opening connections faster
//! than a server accepts them (`/proc/net/netstat`, `TcpExt`): `ListenOverflows` (a SYN
//! or handshake dropped because an accept queue was full) and `TCPSynRetrans` (SYNs sent
//! again, each after at least TCP's 1 s initial timeout). They count for the whole
//! machine, so a step records how much they rose while it ran.

use std::collections::HashMap;

/// The counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpCounters {
    pub listen_overflows: u64,
    pub syn_retransmits: u64,
}

impl TcpCounters {
    /// Reads the counters; `None` where `/proc/net/netstat` cannot be read or lacks them.
    pub fn read() -> Option<TcpCounters> {
        parse(&std::fs::read_to_string("/proc/net/netstat").ok()?)
    }

    /// How much each counter rose from `before` to `self`.
    pub fn since(self, before: TcpCounters) -> TcpCounters {
        TcpCounters {
            listen_overflows: self
                .listen_overflows
                .saturating_sub(before.listen_overflows),
            syn_retransmits: self.syn_retransmits.saturating_sub(before.syn_retransmits),
        }
    }
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
        };
        assert_eq!(later.since(c).listen_overflows, 3);
        assert!(parse("Ip: 1\n").is_none());
        assert!(
            TcpCounters::read().is_some(),
            "this machine has /proc/net/netstat"
        );
    }
}
