//! Splitting one step between load threads: which requests of the one schedule and the
//! one request stream each thread sends, and its share of what the step bounds.

/// Which share of a step one load thread sends: requests `index`, `index + of`,
/// `index + 2·of`, … of the one schedule and the one request stream, with its share of the
/// in-flight cap, the connect budget and (closed loop) the connections. The threads' slices
/// together are the whole step, each request once (as wrk2 splits its rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub index: usize,
    pub of: usize,
}

impl Slice {
    /// The whole step, on one thread.
    pub const WHOLE: Slice = Slice { index: 0, of: 1 };

    /// The request numbers (of `total`) this slice sends, in order.
    pub fn requests(self, total: u64) -> impl Iterator<Item = u64> {
        (self.index as u64..total).step_by(self.of.max(1))
    }

    /// This slice's share of `count` things dealt out one by one: `count / of`, one more
    /// for the first `count % of` slices.
    pub fn share(self, count: usize) -> usize {
        let of = self.of.max(1);
        count / of + usize::from(self.index < count % of)
    }
}

#[cfg(test)]
mod tests {
    use super::Slice;

    #[test]
    fn the_threads_slices_make_the_whole_schedule_each_request_once() {
        for threads in 1..=7usize {
            for total in [0u64, 1, 5, 100, 1_001] {
                let mut all: Vec<u64> = (0..threads)
                    .flat_map(|index| Slice { index, of: threads }.requests(total))
                    .collect();
                all.sort_unstable();
                assert_eq!(
                    all,
                    (0..total).collect::<Vec<_>>(),
                    "{threads} threads, {total}"
                );
            }
            for count in [0usize, 1, 16, 10_000, 10_001] {
                let shares: usize = (0..threads)
                    .map(|index| Slice { index, of: threads }.share(count))
                    .sum();
                assert_eq!(shares, count);
            }
        }
    }
}
