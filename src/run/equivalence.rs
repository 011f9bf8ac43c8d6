//! The equivalence check: the same seeded requests, sent one at a time to every
//! architecture before any load, must get identical business digests.

use super::arch::ArchRun;
use super::RunError;
use crate::driver::{self, requests::RequestGen, Target};
use crate::plan::Deployment;
use crate::results::{EquivalenceSummary, RunResults};

impl ArchRun<'_> {
    /// Sends the fixed request sequence and compares digests with the first
    /// architecture's.
    pub(super) async fn check_equivalence(
        &self,
        targets: &[Target],
        deployment: &Deployment,
        results: &mut RunResults,
    ) -> Result<(), RunError> {
        let (scenario, seed) = (&self.source.scenario, self.resolved.seed);
        let (requests, timeout) = (
            self.options.equivalence_requests,
            self.resolved.load.timeout,
        );
        let architecture = deployment.architecture.clone();
        let label = deployment.label();
        let generator = RequestGen::new(scenario, seed);
        // A traced deployment's check traces every one of its requests.
        let traces = self
            .traces
            .filter(|_| deployment.tracing == crate::plan::Tracing::Traced);
        let mut traced = traces.map(|_| Vec::new());
        let digests =
            driver::equivalence_digests(targets, generator, requests, timeout, traced.as_mut())
                .await
                .map_err(|source| RunError::Equivalence {
                    architecture: architecture.clone(),
                    source,
                })?;
        if let (Some(traces), Some(traced)) = (traces, &traced) {
            let entrypoints: Vec<String> = targets.iter().map(|t| t.op.clone()).collect();
            // Checked like the load's, kept out of its time split (one request at a time).
            traces.record_step(&entrypoints, 0.0, traced, false);
        }
        let Some(summary) = results.equivalence.as_mut() else {
            results.equivalence = Some(EquivalenceSummary {
                requests: digests.len(),
                reference: label.clone(),
                agreed: vec![label],
                digests,
            });
            return Ok(());
        };
        for (index, (got, expected)) in digests.iter().zip(&summary.digests).enumerate() {
            if got.digest != expected.digest {
                return Err(RunError::Mismatch {
                    architecture,
                    reference: summary.reference.clone(),
                    index,
                    entrypoint: got.entrypoint.clone(),
                    params: got.params.clone(),
                    got: got.digest.clone(),
                    expected: expected.digest.clone(),
                });
            }
        }
        summary.agreed.push(label);
        Ok(())
    }
}
