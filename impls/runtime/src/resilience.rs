//! How a unit calls other units: it balances over a callee's replicas round robin, fails
//! over at once to the next replica when one refuses the connection (nothing was sent, so
//! nothing is repeated), gives each attempt a timeout, retries failed attempts within a
//! budget after an exponential backoff with full jitter, and optionally opens a circuit
//! breaker on a callee that keeps failing.
//!
//! The budget is a token bucket: every call earns `retry_budget_percent / 100` of a retry,
//! every retry spends one, and at most [`BUDGET_CAPACITY`] are banked. Without a budget
//! (`None`) every failed attempt is retried up to `retries` times, which is how a retry
//! storm starts: in a chain of `d` callers each retrying `r` times, one failure deep down
//! can cost `(1 + r)^d` attempts.

use crate::breaker::{Breakers, Outcome, Permit};
use crate::budget::Budget;
use crate::client::{CallError, Reply};
use crate::model::Endpoint;
use crate::network::NetworkModel;
use crate::trace::{Attempt, HopKind};
use crate::transport::UnitClient;
use crate::wire::Hops;
use bytes::Bytes;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use crate::model::unit_of_process;
pub use crate::policy::{Resilience, BUDGET_CAPACITY};

/// A call that succeeded, perhaps after failed attempts.
#[derive(Debug)]
pub struct Answered {
    pub reply: Reply,
    /// Hops of the failed attempts that reached a callee: one each, and what each callee
    /// reported it made downstream before failing.
    pub wasted: Hops,
    /// Retries: this caller's, and those its failed attempts' callees reported (the
    /// successful reply's own are in `reply.downstream_retries`).
    pub retries: u32,
}

/// A call that failed for good.
#[derive(Debug)]
pub struct Failed {
    pub error: CallError,
    /// The process blamed: the one the last reply named, or the callee that did not answer.
    pub failed_unit: String,
    pub wasted: Hops,
    /// Retries made for it: this caller's and those its callees reported.
    pub retries: u32,
}

/// A unit's way of calling: its client, its policy, and the state the policy keeps.
pub struct Caller {
    client: UnitClient,
    policy: Resilience,
    budget: Budget,
    turns: Mutex<HashMap<String, usize>>,
    breakers: Breakers,
}

impl Caller {
    pub fn new(client: impl Into<UnitClient>, policy: Resilience) -> Self {
        let client = client.into();
        Caller {
            budget: Budget::new(policy.retry_budget_percent),
            client,
            turns: Mutex::new(HashMap::new()),
            breakers: Breakers::new(
                policy.breaker_failures,
                Duration::from_millis(policy.breaker_open_ms),
            ),
            policy,
        }
    }

    /// The replica to try first for `target`: the next in turn (no lock and no turn kept
    /// for a callee that runs once, the common case on this hot path).
    fn first_replica(&self, target: &str, replicas: usize) -> usize {
        if replicas <= 1 {
            return 0;
        }
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let turn = match turns.get_mut(target) {
            Some(turn) => turn,
            None => turns.entry(target.to_string()).or_default(),
        };
        let first = *turn % replicas;
        *turn = turn.wrapping_add(1);
        first
    }

    /// The next replica from `next` whose breaker lets a call through now, with its
    /// permit; none while every replica's breaker refuses.
    fn pick<'r>(
        &self,
        replicas: &'r [Endpoint],
        next: &mut usize,
    ) -> Option<(&'r Endpoint, Permit)> {
        for _ in 0..replicas.len() {
            let endpoint = &replicas[*next % replicas.len()];
            *next += 1;
            if let Some(permit) = self.breakers.allow(&endpoint.unit) {
                return Some((endpoint, permit));
            }
        }
        None
    }

    /// POSTs `body` to `path` on one of `replicas` of `target` across `network`, under the
    /// policy; `hop` is what one attempt that reaches a callee costs.
    pub async fn call(
        &self,
        network: &NetworkModel,
        target: &str,
        replicas: &[Endpoint],
        path: &str,
        body: Bytes,
        hop: Hops,
    ) -> Result<Answered, Failed> {
        let Some(first) = replicas.first() else {
            return Err(Failed {
                error: CallError::Connect {
                    addr: String::new(),
                    detail: format!("no replica of {target} is routed"),
                },
                failed_unit: target.to_string(),
                wasted: Hops::default(),
                retries: 0,
            });
        };
        if self.policy.retries > 0 {
            self.budget.earn();
        }
        let n = replicas.len();
        let mut next = self.first_replica(target, n);
        let (mut wasted, mut retries, mut refused_in_a_row) = (Hops::default(), 0u32, 0usize);
        // Retries the failed attempts' callees reported making before they failed.
        let mut retried_below = 0u32;
        let breaker_open = |wasted: Hops, retries: u32| {
            let unit = unit_of_process(&first.unit).to_string();
            let error = CallError::Status {
                addr: first.addr.clone(),
                status: 503,
                body: format!("circuit breaker open on {unit}"),
                failed_unit: Some(unit.clone()),
                hops: Hops::default(),
                retries: 0,
            };
            Failed {
                error,
                failed_unit: unit,
                wasted,
                retries,
            }
        };
        let Some((mut endpoint, mut permit)) = self.pick(replicas, &mut next) else {
            return Err(breaker_open(wasted, 0));
        };
        let kind = if hop.state > 0 {
            HopKind::State
        } else {
            HopKind::Service
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let call = self
                .client
                .post_across(network, endpoint, path, body.clone());
            let traced = Attempt::start(&endpoint.unit, path, kind, attempt);
            // A refused connection sent nothing: it is no hop.
            let failure = |result: &Result<_, CallError>| {
                let error = result.as_ref().err()?;
                Some((error.class(), !matches!(error, CallError::Connect { .. })))
            };
            let error = match traced.run(call, failure).await {
                Ok(reply) => {
                    self.breakers
                        .record(&endpoint.unit, permit, Outcome::Answered);
                    return Ok(Answered {
                        reply,
                        wasted,
                        retries: retries + retried_below,
                    });
                }
                Err(error) => error,
            };
            // A 4xx is the request's fault: the callee answered, and a retry would fail alike.
            let callee_failed = !matches!(error, CallError::Status { status, .. } if status < 500);
            let outcome = if callee_failed {
                Outcome::Failed
            } else {
                Outcome::Answered
            };
            self.breakers.record(&endpoint.unit, permit, outcome);
            let refused = matches!(error, CallError::Connect { .. });
            if refused && refused_in_a_row + 1 < n {
                // Nothing was sent: the next replica gets the same attempt at once.
                refused_in_a_row += 1;
                (endpoint, permit) = self
                    .pick(replicas, &mut next)
                    .ok_or_else(|| breaker_open(wasted, retries + retried_below))?;
                continue;
            }
            refused_in_a_row = 0;
            if !refused {
                wasted += hop;
            }
            if let CallError::Status {
                hops,
                retries: below,
                ..
            } = &error
            {
                // What the callee did downstream before failing was spent too.
                wasted += *hops;
                retried_below += below;
            }
            let failed_unit = match &error {
                CallError::Status {
                    failed_unit: Some(unit),
                    ..
                } => unit.clone(),
                _ => endpoint.unit.clone(),
            };
            let give_up = |error| Failed {
                error,
                failed_unit,
                wasted,
                retries: retries + retried_below,
            };
            if !callee_failed || retries >= self.policy.retries {
                return Err(give_up(error));
            }
            // The breaker before the budget: a retry it refuses spends no token.
            let Some((retry_at, retry_permit)) = self.pick(replicas, &mut next) else {
                return Err(breaker_open(wasted, retries + retried_below));
            };
            if !self.budget.spend() {
                self.breakers.release(&retry_at.unit, retry_permit);
                return Err(give_up(error));
            }
            (endpoint, permit) = (retry_at, retry_permit);
            retries += 1;
            let bound = self.policy.backoff_bound(retries);
            if !bound.is_zero() {
                let wait = rand::rng().random_range(Duration::ZERO..=bound);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::HttpClient;
    use std::sync::Arc;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = Resilience {
            backoff_ms: 10.0,
            backoff_max_ms: 35.0,
            ..Resilience::default()
        };
        assert_eq!(policy.backoff_bound(1), Duration::from_millis(10));
        assert_eq!(policy.backoff_bound(2), Duration::from_millis(20));
        assert_eq!(policy.backoff_bound(3), Duration::from_millis(35));
        assert_eq!(policy.backoff_bound(40), Duration::from_millis(35));
    }

    #[test]
    fn replicas_take_turns_per_target() {
        let caller = Caller::new(
            HttpClient::new(Duration::from_secs(1)),
            Resilience::default(),
        );
        let a: Vec<usize> = (0..4).map(|_| caller.first_replica("a", 2)).collect();
        let b = caller.first_replica("b", 2);
        assert_eq!(a, [0, 1, 0, 1]);
        assert_eq!(b, 0, "each target has its own turn");
        assert_eq!(unit_of_process("micro-orders#1"), "micro-orders");
        assert_eq!(unit_of_process("monolith"), "monolith");
    }

    /// An endpoint nobody listens on: it refuses.
    fn dead(unit: &str) -> Endpoint {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Endpoint {
            unit: unit.to_string(),
            addr: l.local_addr().unwrap().to_string(),
        }
    }

    fn tokens(caller: &Caller) -> f64 {
        *caller.budget.tokens.lock().unwrap()
    }

    /// A retry the breaker would refuse spends no budget token (it spent one, then the
    /// breaker refused the retry anyway).
    #[tokio::test]
    async fn a_retry_the_breaker_refuses_spends_no_budget() {
        let policy = Resilience {
            retries: 1,
            retry_budget_percent: Some(100.0),
            breaker_failures: 1,
            breaker_open_ms: 60_000,
            ..Resilience::default()
        };
        let caller = Caller::new(HttpClient::new(Duration::from_secs(1)), policy);
        let failed = call_x(&caller, &[dead("u")]).await.err().unwrap();
        assert!(
            failed.error.to_string().contains("circuit breaker open"),
            "{}",
            failed.error
        );
        assert_eq!(
            tokens(&caller),
            1.0,
            "the token earned by the call is still there"
        );
    }

    /// Retries are reported: the caller's own (a 503 then a 200) in `Answered.retries`, and
    /// what the callee said it retried in `reply.downstream_retries`.
    #[tokio::test]
    async fn a_call_reports_its_retries_and_its_callees() {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/op/x",
            axum::routing::post(move || {
                let first = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                async move {
                    if first {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            [(crate::wire::RETRIES_HEADER, "1")],
                        )
                    } else {
                        (
                            axum::http::StatusCode::OK,
                            [(crate::wire::RETRIES_HEADER, "2")],
                        )
                    }
                }
            }),
        );
        let replicas = serve(app).await;
        let policy = Resilience {
            retries: 1,
            retry_budget_percent: None,
            backoff_ms: 0.0,
            ..Resilience::default()
        };
        let caller = Caller::new(HttpClient::new(Duration::from_secs(1)), policy);
        let answered = call_x(&caller, &replicas).await.unwrap();
        assert_eq!(
            answered.retries, 2,
            "its own retry and the failed callee's one"
        );
        assert_eq!(answered.reply.downstream_retries, 2);
    }

    /// `app` served on a loopback port, as the one replica of unit `u`.
    async fn serve(app: axum::Router) -> [Endpoint; 1] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        [Endpoint {
            unit: "u".into(),
            addr,
        }]
    }

    /// One call of `/op/x` on `replicas` of `u`, on loopback.
    async fn call_x(caller: &Caller, replicas: &[Endpoint]) -> Result<Answered, Failed> {
        let network = NetworkModel::loopback();
        let (body, hop) = (Bytes::new(), Hops::default());
        caller
            .call(&network, "u", replicas, "/op/x", body, hop)
            .await
    }

    /// A 4xx is the request's fault: it neither opens the breaker nor is retried.
    #[tokio::test]
    async fn a_4xx_answer_neither_opens_the_breaker_nor_is_retried() {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/op/x",
            axum::routing::post(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { axum::http::StatusCode::NOT_FOUND }
            }),
        );
        let replicas = serve(app).await;
        let policy = Resilience {
            retries: 2,
            breaker_failures: 1,
            breaker_open_ms: 60_000,
            ..Resilience::default()
        };
        let caller = Caller::new(HttpClient::new(Duration::from_secs(1)), policy);
        for _ in 0..3 {
            let failed = call_x(&caller, &replicas).await.err().unwrap();
            assert!(
                !failed.error.to_string().contains("breaker"),
                "{}",
                failed.error
            );
        }
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "one attempt per call"
        );
    }

    #[tokio::test]
    async fn a_refused_replica_fails_over_and_a_dead_callee_is_blamed() {
        // Two ports nobody listens on: both refuse.
        let dead = |i: u16| Endpoint {
            unit: format!("u#{i}"),
            addr: {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().to_string()
            },
        };
        let replicas = [dead(0), dead(1)];
        let caller = Caller::new(
            HttpClient::new(Duration::from_secs(1)),
            Resilience::default(),
        );
        let hop = Hops {
            service: 1,
            state: 0,
        };
        let network = NetworkModel::loopback();
        let failed = caller
            .call(&network, "op", &replicas, "/op/x", Bytes::new(), hop)
            .await
            .unwrap_err();
        assert!(matches!(failed.error, CallError::Connect { .. }));
        assert!(failed.failed_unit.starts_with("u#"));
        assert_eq!(failed.wasted, Hops::default(), "refusals reach no callee");
    }

    /// A retried attempt that failed after the callee had made hops of its own counts
    /// them: one hop for the attempt plus what its failure reply reported.
    #[tokio::test]
    async fn a_failed_attempt_counts_the_hops_its_callee_made_before_failing() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let replies = [
                "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 4\r\nx-grain-service-hops: 3\r\nx-grain-state-hops: 2\r\nx-grain-failed-unit: deep\r\n\r\nfail",
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-grain-service-hops: 4\r\nx-grain-state-hops: 2\r\nx-grain-digest: 00000000000000ff\r\n\r\nok",
            ];
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for reply in replies {
                let _ = conn.read(&mut buf).await.unwrap();
                conn.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let policy = Resilience {
            retries: 1,
            retry_budget_percent: None,
            backoff_ms: 0.0,
            ..Resilience::default()
        };
        let caller = Caller::new(HttpClient::new(Duration::from_secs(2)), policy);
        let hop = Hops {
            service: 1,
            state: 0,
        };
        let replicas = [Endpoint {
            unit: "callee".into(),
            addr,
        }];
        let answered = caller
            .call(
                &NetworkModel::loopback(),
                "op",
                &replicas,
                "/op/x",
                Bytes::new(),
                hop,
            )
            .await
            .expect("the retry succeeds");
        assert_eq!(answered.retries, 1);
        assert_eq!(
            answered.wasted,
            Hops {
                service: 1 + 3,
                state: 2
            },
            "the failed attempt's hop and the callee's hops before it failed"
        );
        assert_eq!(
            answered.reply.downstream_hops,
            Hops {
                service: 4,
                state: 2
            }
        );
    }
}
