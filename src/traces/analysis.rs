//! What one traced request's spans say: whether they form one tree under the driver's
//! span, whether the hops they show equal the hops the reply reported, where the
//! request's time went along its critical path, and its waterfall.
//!
//! The critical path is walked back from the end of the driver's span, as Jaeger's
//! critical path is: in each span, the child that ended last before the point reached is
//! on the path; the stretches of a span not covered by such a child are its own time,
//! told apart by the span's role and events (work in a server span, the network model's
//! delay in a client span, the wait before sending in the driver's).

use super::spans::{Hop, SpanRecord, DRIVER_SERVICE};
use super::DriverRecord;
use crate::results::{SpanRole, WaterfallSpan};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::collections::{HashMap, HashSet};

/// A traced request, analysed.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysed {
    pub entrypoint: String,
    pub rate_rps: f64,
    /// From a load step (not a fault step).
    pub steady: bool,
    pub trace_id: String,
    pub latency_us: f64,
    /// Its spans form one tree under the driver's.
    pub complete: bool,
    /// A success whose spans' hops equal the reported hops (`None`: a failure, not checked).
    pub hops_match: Option<bool>,
    /// Why it does not add up, when it does not.
    pub problem: Option<String>,
    /// Its critical path's split (complete successes only).
    pub parts: Option<Parts>,
    pub waterfall: Vec<WaterfallSpan>,
}

/// A critical path's split, µs; the parts add up to the request's latency.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Parts {
    pub work: f64,
    pub handling: f64,
    pub network: f64,
    pub wire: f64,
    pub driver: f64,
}

impl Parts {
    pub fn total(&self) -> f64 {
        self.work + self.handling + self.network + self.wire + self.driver
    }
}

/// The driver's span of `request`, as a span record.
fn root(request: &DriverRecord) -> SpanRecord {
    SpanRecord {
        trace_id: request.ids.trace_id,
        span_id: request.ids.span_id,
        parent: None,
        service: DRIVER_SERVICE.to_string(),
        name: request.entrypoint.clone(),
        kind: SpanKind::Client,
        start_ns: request.intended_ns,
        end_ns: request.done_ns,
        events: request
            .events()
            .into_iter()
            .map(|(name, at)| (name.to_string(), at))
            .collect(),
        hop: None,
        reached: true,
        error: !request.ok,
    }
}

/// Analyses `request` with the spans its units sent for it.
pub fn analyse(request: &DriverRecord, unit_spans: Vec<SpanRecord>) -> Analysed {
    let mut spans = vec![root(request)];
    spans.extend(unit_spans);
    let problem = tree_problem(&spans);
    let complete = problem.is_none();
    let counted = counted_hops(&spans);
    let hops_match = request
        .hops
        .map(|hops| counted == (hops.service, hops.state));
    let problem = problem.or_else(|| match (hops_match, request.hops) {
        (Some(false), Some(hops)) => Some(format!(
            "its spans show {} service and {} state hops, its reply reported {} and {}",
            counted.0, counted.1, hops.service, hops.state
        )),
        _ => None,
    });
    let tree = Tree::new(&spans);
    let parts = (complete && request.ok).then(|| tree.critical_path());
    Analysed {
        entrypoint: request.entrypoint.clone(),
        rate_rps: request.rate_rps,
        steady: request.steady,
        trace_id: grain_runtime::digest::hex(&request.ids.trace_id),
        latency_us: request.done_ns.saturating_sub(request.intended_ns) as f64 / 1e3,
        complete,
        hops_match,
        problem,
        parts,
        waterfall: tree.waterfall(),
    }
}

/// Why `spans` (the driver's first) are not one tree under the driver's span.
fn tree_problem(spans: &[SpanRecord]) -> Option<String> {
    if spans.len() == 1 {
        return Some("no span came from the units".into());
    }
    let mut ids = HashSet::new();
    if let Some(dup) = spans.iter().find(|s| !ids.insert(s.span_id)) {
        return Some(format!(
            "span id {} appears twice",
            grain_runtime::digest::hex(&dup.span_id)
        ));
    }
    let orphans: Vec<&SpanRecord> = spans[1..]
        .iter()
        .filter(|s| s.parent.is_none_or(|p| !ids.contains(&p)))
        .collect();
    orphans.first().map(|first| {
        format!(
            "{} span(s) whose parent is not in the trace (first: {} in {})",
            orphans.len(),
            first.name,
            first.service
        )
    })
}

/// Service and state hops the spans show: the driver's to the entry unit (the root), and
/// every unit's call attempt that reached its callee.
fn counted_hops(spans: &[SpanRecord]) -> (u32, u32) {
    let count = |hop| {
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Client && s.reached && s.hop == Some(hop))
            .count() as u32
    };
    (1 + count(Hop::Service), count(Hop::State))
}

/// Spans with their children.
struct Tree<'a> {
    spans: &'a [SpanRecord],
    children: HashMap<[u8; 8], Vec<usize>>,
}

impl<'a> Tree<'a> {
    fn new(spans: &'a [SpanRecord]) -> Self {
        let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
        for (i, span) in spans.iter().enumerate().skip(1) {
            if let Some(parent) = span.parent {
                children.entry(parent).or_default().push(i);
            }
        }
        for kids in children.values_mut() {
            kids.sort_by_key(|&i| (spans[i].start_ns, spans[i].end_ns));
        }
        Tree { spans, children }
    }

    fn kids(&self, span: usize) -> &[usize] {
        self.children
            .get(&self.spans[span].span_id)
            .map_or(&[], Vec::as_slice)
    }

    /// The root's critical path, split.
    fn critical_path(&self) -> Parts {
        let mut parts = Parts::default();
        let root = &self.spans[0];
        self.walk(0, root.start_ns, root.end_ns, &mut parts, 0);
        parts
    }

    /// Attributes `[from, until]` of span `i` to `parts`, walking back from `until`.
    fn walk(&self, i: usize, from: u64, until: u64, parts: &mut Parts, depth: usize) {
        let mut cursor = until;
        // Deeper than any real call chain means a cycle in malformed spans: stop there.
        let kids = if depth < 64 { self.kids(i) } else { &[] };
        loop {
            let next = kids
                .iter()
                .copied()
                .filter(|&k| self.spans[k].start_ns < cursor)
                .max_by_key(|&k| self.spans[k].end_ns.min(cursor));
            let Some(kid) = next else { break };
            let child = &self.spans[kid];
            let child_end = child.end_ns.min(cursor);
            self.own(i, child_end, cursor, parts);
            let child_start = child.start_ns.max(from);
            if child_end > child_start {
                self.walk(kid, child_start, child_end, parts, depth + 1);
            }
            if child_start <= from {
                return;
            }
            cursor = child_start;
        }
        self.own(i, from, cursor, parts);
    }

    /// Span `i`'s own time in `[a, b]`.
    fn own(&self, i: usize, a: u64, b: u64, parts: &mut Parts) {
        if b <= a {
            return;
        }
        let span = &self.spans[i];
        let us = |ns: u64| ns as f64 / 1e3;
        let whole = us(b - a);
        let inside = |stretches: &[(u64, u64)]| -> f64 {
            stretches.iter().map(|&s| us(overlap(s, (a, b)))).sum()
        };
        match span.kind {
            SpanKind::Server => {
                let work = inside(&work(span));
                parts.work += work;
                parts.handling += whole - work;
            }
            _ => {
                let held = inside(&delays(span));
                let waiting = if i == 0 {
                    inside(&driver_wait(span))
                } else {
                    0.0
                };
                parts.network += held;
                parts.driver += waiting;
                parts.wire += whole - held - waiting;
            }
        }
    }

    /// Every span depth-first from the root, times from the root's start.
    fn waterfall(&self) -> Vec<WaterfallSpan> {
        let mut out = Vec::with_capacity(self.spans.len());
        let origin = self.spans[0].start_ns;
        let mut stack = vec![(0usize, 0usize)];
        let mut seen = HashSet::new();
        while let Some((i, depth)) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let span = &self.spans[i];
            let rel = |ns: u64| ns.saturating_sub(origin) as f64 / 1e3;
            out.push(WaterfallSpan {
                unit: span.service.clone(),
                name: span.name.clone(),
                role: match (i, span.kind) {
                    (0, _) => SpanRole::Driver,
                    (_, SpanKind::Server) => SpanRole::Server,
                    _ => SpanRole::Client,
                },
                depth,
                start_us: rel(span.start_ns),
                end_us: rel(span.end_ns),
                shaded: shaded(span)
                    .into_iter()
                    .filter(|(a, b)| b > a)
                    .map(|(a, b)| [rel(a), rel(b)])
                    .collect(),
                error: span.error,
            });
            for &kid in self.kids(i).iter().rev() {
                stack.push((kid, depth + 1));
            }
        }
        out
    }
}

/// A span's shaded stretches: a server span's work; a client span's network-model delay,
/// and the driver's wait to send too.
fn shaded(span: &SpanRecord) -> Vec<(u64, u64)> {
    match span.kind {
        SpanKind::Server => work(span),
        _ => {
            let mut stretches = delays(span);
            if span.service == DRIVER_SERVICE {
                stretches.extend(driver_wait(span));
            }
            stretches.sort_unstable();
            stretches
        }
    }
}

/// A server span's work (a unit that serves nested operations itself works in each).
fn work(span: &SpanRecord) -> Vec<(u64, u64)> {
    span.events_named("work.start")
        .zip(span.events_named("work.end"))
        .collect()
}

/// A client span's stretches held by the network model.
fn delays(span: &SpanRecord) -> Vec<(u64, u64)> {
    span.events_named("delay.start")
        .zip(span.events_named("delay.end"))
        .collect()
}

/// The driver's wait between the time its request was to leave and its sending (the
/// load generator's send lag).
fn driver_wait(span: &SpanRecord) -> Vec<(u64, u64)> {
    let Some(sent) = span.event("sent") else {
        return Vec::new();
    };
    let leave = span
        .events_named("delay.end")
        .filter(|&end| end <= sent)
        .last()
        .unwrap_or(span.start_ns);
    vec![(leave, sent)]
}

fn overlap((a, b): (u64, u64), (c, d): (u64, u64)) -> u64 {
    b.min(d).saturating_sub(a.max(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::record::TraceIds;
    use grain_runtime::wire::Hops;

    const T: [u8; 16] = [7; 16];

    fn span(id: u8, parent: u8, kind: SpanKind, service: &str, start: u64, end: u64) -> SpanRecord {
        SpanRecord {
            trace_id: T,
            span_id: [id; 8],
            parent: Some([parent; 8]),
            service: service.into(),
            name: format!("s{id}"),
            kind,
            start_ns: start * 1000,
            end_ns: end * 1000,
            events: Vec::new(),
            hop: (kind == SpanKind::Client).then_some(Hop::Service),
            reached: true,
            error: false,
        }
    }

    fn with_events(mut span: SpanRecord, events: &[(&str, u64)]) -> SpanRecord {
        span.events = events
            .iter()
            .map(|(n, t)| (n.to_string(), t * 1000))
            .collect();
        span
    }

    fn request(hops: Hops) -> DriverRecord {
        DriverRecord {
            ids: TraceIds {
                trace_id: T,
                span_id: [1; 8],
            },
            entrypoint: "checkout".into(),
            rate_rps: 100.0,
            intended_ns: 0,
            leave_ns: 0,
            sent_ns: Some(10_000),
            arrived_ns: 200_000,
            done_ns: 200_000,
            ok: true,
            hops: Some(hops),
            steady: true,
        }
    }

    /// Driver 0–200 µs (sent at 10); entry unit a 20–190 with work 30–50; its call to b
    /// 60–170 (sent 70, answered 160); b serves 80–150 with work 90–140.
    fn chain() -> Vec<SpanRecord> {
        vec![
            with_events(
                span(2, 1, SpanKind::Server, "a", 20, 190),
                &[("work.start", 30), ("work.end", 50)],
            ),
            with_events(
                span(3, 2, SpanKind::Client, "a", 60, 170),
                &[
                    ("delay.start", 60),
                    ("delay.end", 70),
                    ("delay.start", 160),
                    ("delay.end", 170),
                ],
            ),
            with_events(
                span(4, 3, SpanKind::Server, "b", 80, 150),
                &[("work.start", 90), ("work.end", 140)],
            ),
        ]
    }

    #[test]
    fn a_chain_splits_its_latency_along_the_critical_path() {
        let analysed = analyse(
            &request(Hops {
                service: 2,
                state: 0,
            }),
            chain(),
        );
        assert!(analysed.complete);
        assert_eq!(analysed.hops_match, Some(true));
        let parts = analysed.parts.unwrap();
        assert_eq!(parts.driver, 10.0);
        assert_eq!(parts.work, 20.0 + 50.0);
        // a: 170 − 110 (its call) − 20 (work) = 40 µs; b: 70 − 50 = 20 µs.
        assert_eq!(parts.handling, 40.0 + 20.0);
        // Held 60–70 and 160–170.
        assert_eq!(parts.network, 20.0);
        // Driver 10–20 and 190–200, the call's 70–80 and 150–160.
        assert_eq!(parts.wire, 20.0 + 20.0);
        assert_eq!(parts.total(), analysed.latency_us);
        let rows: Vec<(usize, &str)> = analysed
            .waterfall
            .iter()
            .map(|s| (s.depth, s.unit.as_str()))
            .collect();
        assert_eq!(rows, [(0, DRIVER_SERVICE), (1, "a"), (2, "a"), (3, "b")]);
        assert_eq!(analysed.waterfall[3].shaded, vec![[90.0, 140.0]]);
    }

    #[test]
    fn parallel_calls_put_only_the_longer_one_on_the_path() {
        let mut spans = chain();
        // A second call from a, 60–100, beside the long one.
        spans.push(span(5, 2, SpanKind::Client, "a", 60, 100));
        spans.push(span(6, 5, SpanKind::Server, "c", 65, 95));
        let analysed = analyse(
            &request(Hops {
                service: 3,
                state: 0,
            }),
            spans,
        );
        assert_eq!(analysed.hops_match, Some(true));
        let parts = analysed.parts.unwrap();
        assert_eq!(parts.total(), 200.0);
        assert_eq!(parts.work, 70.0, "c's time is off the critical path");
    }

    #[test]
    fn a_missing_parent_or_a_hop_count_that_differs_is_a_problem() {
        let mut spans = chain();
        spans.remove(1);
        let orphaned = analyse(
            &request(Hops {
                service: 1,
                state: 0,
            }),
            spans,
        );
        assert!(!orphaned.complete);
        assert!(orphaned
            .problem
            .unwrap()
            .contains("parent is not in the trace"));
        assert!(orphaned.parts.is_none());

        let miscounted = analyse(
            &request(Hops {
                service: 2,
                state: 1,
            }),
            chain(),
        );
        assert!(miscounted.complete);
        assert_eq!(miscounted.hops_match, Some(false));
        assert!(miscounted
            .problem
            .unwrap()
            .contains("2 service and 0 state"));

        let alone = analyse(&request(Hops::default()), Vec::new());
        assert_eq!(
            alone.problem.as_deref(),
            Some("no span came from the units")
        );
    }

    #[test]
    fn a_refused_attempt_is_no_hop() {
        let mut spans = chain();
        let mut refused = span(5, 2, SpanKind::Client, "a", 55, 58);
        refused.reached = false;
        spans.push(refused);
        let analysed = analyse(
            &request(Hops {
                service: 2,
                state: 0,
            }),
            spans,
        );
        assert_eq!(analysed.hops_match, Some(true));
    }

    #[test]
    fn a_unit_serving_nested_operations_works_in_each_of_them() {
        let mut spans = chain();
        spans[0] = with_events(
            span(2, 1, SpanKind::Server, "a", 20, 190),
            &[
                ("work.start", 30),
                ("work.end", 40),
                ("work.start", 45),
                ("work.end", 55),
            ],
        );
        let analysed = analyse(
            &request(Hops {
                service: 2,
                state: 0,
            }),
            spans,
        );
        assert_eq!(analysed.parts.unwrap().work, 20.0 + 50.0);
    }
}
