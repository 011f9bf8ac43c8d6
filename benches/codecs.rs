//! `cargo bench --bench codecs`: each transport's body encoding (JSON for `http1-json`,
//! protobuf for `grpc`, postcard for `binary`) encoding and decoding an operation's
//! request and response at every body size the shipped scenarios declare, so the cost of
//! encoding per KB sits beside the measured hop (criterion reports it as throughput).
//!
//! `GRAINBENCH_BENCH_QUICK=1` shortens it (for CI or a smoke test).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use grain_runtime::transport::Transport;
use grain_runtime::wire::{OpRequest, OpResponse};
use grainbench::scenario;
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

#[path = "common/mod.rs"]
mod common;

fn config() -> Criterion {
    common::config(
        [Duration::from_millis(100), Duration::from_millis(200)],
        [Duration::from_millis(500), Duration::from_secs(1)],
    )
}

/// Every request and response size an operation of a shipped scenario declares.
fn payload_sizes() -> BTreeSet<usize> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut sizes = BTreeSet::new();
    for path in scenario::discover(&dir).expect("scenarios/ is readable") {
        let source = scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
        for op in &source.scenario.operations {
            sizes.insert(op.request_bytes.max(1));
            sizes.insert(op.response_bytes.max(1));
        }
    }
    sizes
}

fn codecs(c: &mut Criterion) {
    let params = BTreeMap::from([("user".to_string(), 4_711u64), ("sku".to_string(), 42)]);
    let digest = format!("{:016x}", 0x0123_4567_89ab_cdefu64);
    for size in payload_sizes() {
        let mut group = c.benchmark_group(format!("codec/{size}B"));
        group.throughput(Throughput::Bytes(size as u64));
        for transport in Transport::ALL {
            let codec = transport.codec();
            let name = transport.name();
            group.bench_function(BenchmarkId::new("encode_request", name), |b| {
                b.iter(|| codec.encode_request(black_box(&params), size))
            });
            let request = codec.encode_request(&params, size);
            group.bench_function(BenchmarkId::new("decode_request", name), |b| {
                b.iter(|| codec.decode::<OpRequest>(black_box(&request)).unwrap())
            });
            group.bench_function(BenchmarkId::new("encode_response", name), |b| {
                b.iter(|| codec.encode_response(black_box(digest.clone()), size))
            });
            let response = codec.encode_response(digest.clone(), size);
            group.bench_function(BenchmarkId::new("decode_response", name), |b| {
                b.iter(|| codec.decode::<OpResponse>(black_box(&response)).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = codecs
}
criterion_main!(benches);
