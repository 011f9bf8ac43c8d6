//! The load driver: open-loop (and closed-loop) steps, and the equivalence check.
//!
//! A step runs on its own thread in the [`engine`]: request `i` is due at
//! `start + i / rate` and is sent then, whatever earlier replies do. Latency is recorded
//! twice in HdrHistograms (µs): from the intended send time (coordinated omission
//! corrected) and from the actual send time; the difference between the two send times is
//! the send lag, recorded too. Hop counts come from the reply headers, i.e. from what
//! actually crossed the network.

pub mod engine;
pub mod netstat;
pub mod pacer;
pub mod record;
pub mod requests;
pub mod summarize;

use crate::launch::cores::UnitCores;
pub use crate::results::{DigestRecord, ErrorCounts};
use bytes::Bytes;
use engine::{Engine, EngineStats, EngineTarget, Schedule, Slice};
use grain_runtime::client::{CallError, HttpClient};
use grain_runtime::network::NetworkModel;
use grain_runtime::security::Credentials;
use grain_runtime::wire::{encode_request, op_path};
use hdrhistogram::Histogram;
use record::Recorder;
pub use record::{new_histogram, EntryMeasurement, Sample, Second};
use requests::RequestGen;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Default last stretch before a send time that the engine spins instead of sleeping.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(100);

/// What one step measured.
#[derive(Debug, Clone)]
pub struct StepMeasurement {
    pub schedule: Schedule,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests scheduled in the measured window (open loop; 0 for closed loop).
    pub scheduled: u64,
    /// Successful replies per second over the measured window.
    pub achieved_rps: f64,
    /// Actual − intended send time of every request (µs); under a network model the
    /// intended time includes the request's one-way delay.
    pub send_lag: Histogram<u64>,
    /// How late the driver released each delayed request and reply (ns; empty on loopback).
    pub delay_error: Histogram<u64>,
    /// Per entrypoint, in scenario order.
    pub per_entry: Vec<EntryMeasurement>,
    /// All entrypoints together.
    pub overall: EntryMeasurement,
    /// One entry per second of the step, warm-up included and marked.
    pub timeline: Vec<Second>,
    /// Every request of the step, for looking at a window of it (empty unless the step's
    /// config kept them).
    pub samples: Vec<Sample>,
    /// The measured window's traced requests that got a reply.
    pub traced: Vec<record::TracedRequest>,
    /// When the step's schedule started.
    pub started: Instant,
    /// How the load thread was scheduled.
    pub scheduling: pacer::Scheduling,
    pub engine: EngineStats,
    /// How much the machine's TCP listen-overflow and SYN-retransmission counters rose
    /// while the step ran.
    pub kernel: Option<netstat::TcpCounters>,
    /// Load threads the step ran on.
    pub threads: usize,
}

/// An entrypoint as the driver sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub op: String,
    pub addr: TargetAddr,
    pub request_bytes: usize,
    /// The driver's credentials when the units' hops are secured.
    pub security: Option<Arc<Credentials>>,
    /// The `Host` requests carry, when not the units' own 127.0.0.1 (an outside
    /// deployment's name from `--endpoints`).
    pub host: Option<String>,
}

impl Target {
    pub fn new(op: &str, addr: &str, request_bytes: usize) -> Result<Self, DriverError> {
        let parsed: SocketAddr = addr.parse().map_err(|_| DriverError::BadAddress {
            op: op.to_string(),
            addr: addr.to_string(),
        })?;
        let replica = Replica {
            addr: parsed,
            process: Arc::from(addr),
        };
        Ok(Self::replicated(op, vec![replica], request_bytes))
    }

    /// An entrypoint served by several processes, balanced round robin per connection.
    pub fn replicated(op: &str, replicas: Vec<Replica>, request_bytes: usize) -> Self {
        Target {
            op: op.to_string(),
            addr: TargetAddr::new(replicas),
            request_bytes,
            security: None,
            host: None,
        }
    }

    /// The same target with requests carrying `Host: host`.
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    /// The same target reached as the driver under `security`.
    pub fn secured(mut self, security: Option<Arc<Credentials>>) -> Self {
        self.security = security;
        self
    }
}

/// One process serving an entrypoint, as the driver reaches it.
#[derive(Debug, Clone)]
pub struct Replica {
    pub addr: SocketAddr,
    /// The process blamed when it cannot be reached (its unit name, `unit#i` for a replica).
    pub process: Arc<str>,
}

/// Where an entrypoint is served, shared with a running step so that a redeploy or a
/// restart can move it: new connections go to the new address, open ones finish where
/// they are, and an idle one to a replaced process is not used again (the replaced
/// process is about to drain and close it: a request sent on it then would be lost). With
/// replicas, each new connection goes to the next one in turn.
#[derive(Debug, Clone)]
pub struct TargetAddr(Arc<(RwLock<Vec<Replica>>, AtomicUsize, AtomicU64)>);

impl TargetAddr {
    fn new(replicas: Vec<Replica>) -> Self {
        TargetAddr(Arc::new((
            RwLock::new(replicas),
            AtomicUsize::new(0),
            AtomicU64::new(0),
        )))
    }

    /// How many times the replicas were replaced: a connection opened under an older
    /// generation reaches a process that no longer serves.
    pub fn generation(&self) -> u64 {
        self.0 .2.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Replica>> {
        // Writers only store a plain list, so a poisoned lock still holds a whole one.
        self.0
             .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The first replica's address.
    pub fn get(&self) -> SocketAddr {
        self.read()
            .first()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |r| r.addr)
    }

    /// The unit the replicas serve (what a token is for).
    pub fn unit(&self) -> String {
        let replicas = self.read();
        let process = replicas.first().map_or("", |r| &r.process);
        grain_runtime::resilience::unit_of_process(process).to_string()
    }

    /// The first replica as a caller names it: its unit (what a token is for) and address.
    pub fn endpoint(&self) -> grain_runtime::model::Endpoint {
        let replicas = self.read();
        let first = replicas.first();
        grain_runtime::model::Endpoint {
            unit: first.map_or(String::new(), |r| r.process.to_string()),
            addr: first.map_or_else(|| self.get().to_string(), |r| r.addr.to_string()),
        }
    }

    /// The replica whose turn it is (round robin over new connections).
    pub fn next(&self) -> Option<Replica> {
        let replicas = self.read();
        let turn = self.0 .1.fetch_add(1, Ordering::Relaxed);
        replicas.get(turn % replicas.len().max(1)).cloned()
    }

    /// How many replicas serve the entrypoint.
    pub fn replicas(&self) -> usize {
        self.read().len()
    }

    /// Replaces every replica (a restart moved one).
    pub fn set_all(&self, replicas: Vec<Replica>) {
        *self.0 .0.write().unwrap_or_else(|p| p.into_inner()) = replicas;
        self.0 .2.fetch_add(1, Ordering::AcqRel);
    }
}

/// Why a step could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("entrypoint {op}: {addr:?} is not a socket address")]
    BadAddress { op: String, addr: String },
    #[error("cannot start the load engine: {0}")]
    Engine(std::io::Error),
    #[error("entrypoint {op}: cannot speak the units' security: {source}")]
    Security {
        op: String,
        source: grain_runtime::security::SecurityError,
    },
}

/// How one step runs.
#[derive(Debug, Clone)]
pub struct StepConfig {
    pub schedule: Schedule,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// Most requests in flight at once; requests due beyond it wait for a slot (counted).
    pub in_flight_cap: usize,
    /// The last stretch before each send time that is spun instead of slept.
    pub spin: Duration,
    /// The network between the driver and the entry units.
    pub network: NetworkModel,
    /// Keep every request's sample (24 bytes each) for looking at a window of the step
    /// afterwards; off, a step's memory is bounded whatever its length.
    pub keep_samples: bool,
    /// The share of requests traced (0: none carries a `traceparent`).
    pub trace_sample: f64,
    /// Load threads, each with its slice of the schedule, its own connections and its own
    /// histograms, merged at the end (at least 1; see [`auto_threads`]).
    pub threads: usize,
    /// The cores the load threads run on (none: wherever the scheduler puts them). With
    /// the units confined (`--unit-cpus`), the cores left to the driver, so that it never
    /// competes with the units for theirs, nor they with its spinning before each send.
    pub load_cores: Option<UnitCores>,
}

/// Open-loop rate one load thread is given before a second one is added.
pub const RATE_PER_THREAD: u32 = 20_000;

/// Load threads for `schedule` on this machine: one per [`RATE_PER_THREAD`] of open-loop
/// rate, or one per two cores in closed loop (as many as connections at most), never more
/// than half the cores (the rest is the units'), at least one.
pub fn auto_threads(schedule: Schedule) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = (cores / 2).max(1);
    let wanted = match schedule {
        Schedule::OpenLoop { rate } => rate.div_ceil(RATE_PER_THREAD) as usize,
        Schedule::ClosedLoop { connections } => most.min(connections),
    };
    wanted.clamp(1, most)
}

/// Told how far into a step (warm-up included) its load is, from the load thread.
pub type Progress = Box<dyn Fn(Duration) + Send>;

/// Runs one step against `targets` (indexed like the scenario's entrypoints).
pub async fn run_step(
    targets: &[Target],
    generator: RequestGen,
    config: &StepConfig,
    progress: Option<Progress>,
    cancel: &CancellationToken,
) -> Result<StepMeasurement, DriverError> {
    // A token is signed for the whole step, with a minute to spare.
    let valid_for = config.warmup + config.duration + config.timeout + Duration::from_secs(60);
    let engine_targets = targets
        .iter()
        .map(|t| {
            let path = op_path(&t.op);
            match &t.security {
                Some(c) => {
                    EngineTarget::secured(t.addr.clone(), &path, t.request_bytes, c, valid_for)
                        .map_err(|source| DriverError::Security {
                            op: t.op.clone(),
                            source,
                        })
                }
                None => Ok(match &t.host {
                    Some(host) => {
                        EngineTarget::to_host(t.addr.clone(), &path, t.request_bytes, host)
                    }
                    None => EngineTarget::new(t.addr.clone(), &path, t.request_bytes),
                }),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = config.clone();
    let cancel = cancel.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("grainbench-load".into())
        .spawn(move || {
            let _ = tx.send(run_engine(
                &engine_targets,
                generator,
                &config,
                progress,
                &cancel,
            ));
        })
        .map_err(DriverError::Engine)?;
    match rx.await {
        Ok(result) => result,
        Err(_) => Err(DriverError::Engine(std::io::Error::other(
            "the load engine thread panicked",
        ))),
    }
}

fn run_engine(
    targets: &[EngineTarget],
    generator: RequestGen,
    config: &StepConfig,
    progress: Option<Progress>,
    cancel: &CancellationToken,
) -> Result<StepMeasurement, DriverError> {
    let threads = config.threads.max(1);
    let start = Instant::now() + Duration::from_millis(5);
    let kernel_before = netstat::TcpCounters::read();
    // One slice of the step on the calling thread: its own engine, recorder and stream.
    let run_slice = |slice: Slice, mut generator: RequestGen, progress: Option<&Progress>| {
        if let Some(cores) = &config.load_cores {
            cores.confine_this_thread().map_err(DriverError::Engine)?;
        }
        pacer::tighten_timer_slack();
        let scheduling = pacer::prefer_real_time();
        let engine = Engine::new(targets, config, slice).map_err(DriverError::Engine)?;
        let mut recorder = Recorder::new(targets.len(), start, config.warmup, config.keep_samples);
        let stats = engine.run(&mut generator, &mut recorder, start, cancel, |now| {
            if let Some(progress) = progress {
                progress(now.saturating_duration_since(start));
            }
        });
        Ok::<_, DriverError>((recorder, stats, scheduling))
    };
    let slices = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|index| {
                let generator = generator.clone();
                let slice = Slice { index, of: threads };
                std::thread::Builder::new()
                    .name(format!("grainbench-load-{index}"))
                    .spawn_scoped(scope, move || run_slice(slice, generator, None))
            })
            .collect();
        let first = run_slice(
            Slice {
                index: 0,
                of: threads,
            },
            generator,
            progress.as_ref(),
        );
        let mut all = vec![first];
        for spawned in others {
            all.push(match spawned {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(DriverError::Engine(std::io::Error::other(
                        "a load thread panicked",
                    )))
                }),
                Err(error) => Err(DriverError::Engine(error)),
            });
        }
        all
    });
    let mut slices = slices.into_iter();
    let (mut recorder, mut stats, scheduling) = slices
        .next()
        .unwrap_or_else(|| Err(DriverError::Engine(std::io::Error::other("no load thread"))))?;
    for slice in slices {
        let (other, other_stats, _) = slice?;
        recorder.merge(other);
        stats.merge(&other_stats);
    }
    let kernel = netstat::TcpCounters::read()
        .zip(kernel_before)
        .map(|(after, before)| after.since(before));
    let measure_from = recorder.measure_from();
    let span = config
        .duration
        .max(recorder.last_sent.saturating_duration_since(measure_from));
    let mut overall = EntryMeasurement::new();
    for entry in &recorder.per_entry {
        overall.merge(entry);
    }
    let scheduled = match config.schedule {
        Schedule::OpenLoop { rate } => {
            (config.duration.as_secs_f64() * f64::from(rate)).round() as u64
        }
        Schedule::ClosedLoop { .. } => 0,
    };
    Ok(StepMeasurement {
        schedule: config.schedule,
        warmup: config.warmup,
        duration: config.duration,
        scheduled,
        achieved_rps: if span.is_zero() {
            0.0
        } else {
            overall.ok as f64 / span.as_secs_f64()
        },
        send_lag: recorder.send_lag,
        delay_error: recorder.delay_error,
        per_entry: recorder.per_entry,
        overall,
        timeline: recorder.timeline,
        samples: recorder.samples.unwrap_or_default(),
        traced: recorder.traced,
        scheduling,
        started: start,
        engine: stats,
        kernel,
        threads,
    })
}

/// Why the equivalence sequence could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("equivalence request {index} ({entrypoint} {params:?}) failed: {source}")]
pub struct EquivalenceError {
    pub index: usize,
    pub entrypoint: String,
    pub params: BTreeMap<String, u64>,
    pub source: CallError,
}

/// Sends `count` requests of the seeded stream one at a time and returns their digests.
pub async fn equivalence_digests(
    targets: &[Target],
    mut generator: RequestGen,
    count: usize,
    timeout: Duration,
    mut traced: Option<&mut Vec<record::TracedRequest>>,
) -> Result<Vec<DigestRecord>, EquivalenceError> {
    let mut sampler = record::TraceSampler::new(1.0);
    let security = targets.first().and_then(|t| t.security.as_deref());
    let client = HttpClient::secured(timeout, security, true).map_err(|e| EquivalenceError {
        index: 0,
        entrypoint: targets.first().map(|t| t.op.clone()).unwrap_or_default(),
        params: BTreeMap::new(),
        source: CallError::Io {
            addr: String::new(),
            detail: e.to_string(),
        },
    })?;
    let mut records = Vec::with_capacity(count);
    for index in 0..count {
        let request = generator.next_request();
        let target = &targets[request.entry];
        let body = Bytes::from(encode_request(&request.params, target.request_bytes));
        let (to, path) = (target.addr.endpoint(), op_path(&target.op));
        let call = client.post(&to, &path, body);
        // Traced, every request of the check carries a traceparent of its own.
        let ids = traced.is_some().then(|| sampler.draw()).flatten();
        let sent = Instant::now();
        let reply = match ids {
            Some(ids) => grain_runtime::trace::sending(ids.traceparent(), call).await,
            None => call.await,
        };
        let done = Instant::now();
        if let (Some(traced), Some(ids), Ok(reply)) = (traced.as_deref_mut(), ids, &reply) {
            let mut hops = reply.downstream_hops;
            hops.service += 1; // the driver's own request, as a step counts it
            traced.push(record::TracedRequest {
                ids,
                entry: request.entry,
                intended: sent,
                leave_at: sent,
                sent: Some(sent),
                arrived: done,
                done,
                outcome: Ok(hops),
            });
        }
        let reply = reply.map_err(|source| EquivalenceError {
            index,
            entrypoint: target.op.clone(),
            params: request.params.clone(),
            source,
        })?;
        records.push(DigestRecord {
            entrypoint: target.op.clone(),
            params: request.params,
            digest: reply.digest.unwrap_or_default(),
        });
    }
    Ok(records)
}
