//! Answers far slower than a destination's usual ones. A delivery slot held by a request that
//! waits on one slow answer (a lock wait, a pause, one slow node behind a balancer) holds back
//! every delivery queued behind it. The worker watches the requests in flight and, while some
//! are slow, lends up to `slow_spare_slots` extra slots so the rest of the queue keeps moving.
//! Slow requests are never abandoned or sent twice: they run to their answer or their timeout.
//!
//! "Slow" is relative to the destination: waiting longer than [`FACTOR`] times the median of
//! its last [`WINDOW`] answers, and never less than [`FLOOR`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers kept to judge what is usual.
pub const WINDOW: usize = 64;
/// Slow: this many times the median answer...
pub const FACTOR: u32 = 4;
/// ...and at least this long.
pub const FLOOR: Duration = Duration::from_millis(250);
/// Until this many answers are known, slow means [`INITIAL`].
const MIN_SAMPLES: usize = 8;
const INITIAL: Duration = Duration::from_secs(1);

/// The requests in flight to one destination and how long its recent answers took.
#[derive(Debug, Default)]
pub struct SlowAnswers {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    outstanding: HashMap<u64, Instant>,
    recent: VecDeque<Duration>,
}

impl SlowAnswers {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data stays consistent whatever panicked while holding the lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request starts; the ticket ends it.
    pub fn begin(&self, now: Instant) -> u64 {
        let mut i = self.inner();
        i.next += 1;
        let ticket = i.next;
        i.outstanding.insert(ticket, now);
        ticket
    }

    /// A request ends (answered, timed out, or given up by its caller); its time counts
    /// towards what is usual.
    pub fn end(&self, ticket: u64, now: Instant) {
        let mut i = self.inner();
        let Some(started) = i.outstanding.remove(&ticket) else {
            return;
        };
        if i.recent.len() == WINDOW {
            i.recent.pop_front();
        }
        i.recent.push_back(now.saturating_duration_since(started));
    }

    /// How long a request may wait before it counts as slow.
    pub fn threshold(&self) -> Duration {
        threshold_of(&self.inner().recent)
    }

    /// Requests in flight that have waited longer than [`SlowAnswers::threshold`].
    pub fn slow(&self, now: Instant) -> usize {
        let i = self.inner();
        let limit = threshold_of(&i.recent);
        i.outstanding
            .values()
            .filter(|started| now.saturating_duration_since(**started) > limit)
            .count()
    }
}

fn threshold_of(recent: &VecDeque<Duration>) -> Duration {
    if recent.len() < MIN_SAMPLES {
        return INITIAL;
    }
    let mut v: Vec<Duration> = recent.iter().copied().collect();
    let mid = v.len() / 2;
    let (_, median, _) = v.select_nth_unstable(mid);
    (*median * FACTOR).max(FLOOR)
}

/// A request in flight, counted until dropped.
pub struct Tracked<'a> {
    of: &'a SlowAnswers,
    ticket: u64,
}

impl<'a> Tracked<'a> {
    pub fn start(of: &'a SlowAnswers) -> Self {
        Tracked {
            of,
            ticket: of.begin(Instant::now()),
        }
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.of.end(self.ticket, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` requests answered in `each`, starting at `t0`.
    fn answered(s: &SlowAnswers, t0: Instant, n: usize, each: Duration) {
        for _ in 0..n {
            let t = s.begin(t0);
            s.end(t, t0 + each);
        }
    }

    #[test]
    fn until_enough_answers_are_known_slow_means_one_second() {
        let s = SlowAnswers::default();
        let t0 = Instant::now();
        answered(&s, t0, MIN_SAMPLES - 1, ms(10));
        assert_eq!(s.threshold(), INITIAL);
        let t = s.begin(t0);
        assert_eq!(s.slow(t0 + ms(999)), 0);
        assert_eq!(s.slow(t0 + ms(1001)), 1);
        s.end(t, t0 + ms(1001));
        assert_eq!(
            s.slow(t0 + ms(5000)),
            0,
            "an ended request is no longer in flight"
        );
    }

    #[test]
    fn slow_is_four_times_the_median_answer_and_never_under_the_floor() {
        let s = SlowAnswers::default();
        let t0 = Instant::now();
        answered(&s, t0, 20, ms(100));
        answered(&s, t0, 3, ms(30_000)); // outliers do not move the median
        assert_eq!(s.threshold(), ms(400));
        let fast = SlowAnswers::default();
        answered(&fast, t0, 20, ms(5));
        assert_eq!(fast.threshold(), FLOOR);
    }

    #[test]
    fn only_requests_waiting_past_the_threshold_count_and_the_window_moves_on() {
        let s = SlowAnswers::default();
        let t0 = Instant::now();
        answered(&s, t0, WINDOW, ms(100));
        let early = s.begin(t0);
        let _late = s.begin(t0 + ms(300));
        assert_eq!(s.slow(t0 + ms(350)), 0);
        assert_eq!(s.slow(t0 + ms(450)), 1);
        assert_eq!(s.slow(t0 + ms(800)), 2);
        // An ended request no longer counts; one very long answer does not move the median.
        s.end(early, t0 + ms(60_000));
        assert_eq!(s.slow(t0 + ms(800)), 1);
        assert_eq!(s.threshold(), ms(400));
        // The server slows down for good: after a window of slower answers, they are usual.
        answered(&s, t0, WINDOW, ms(1000));
        assert_eq!(s.threshold(), ms(4000));
        assert_eq!(s.slow(t0 + ms(3000)), 0);
    }

    #[test]
    fn a_tracked_request_is_in_flight_until_dropped_then_counts_as_an_answer() {
        let s = SlowAnswers::default();
        let t = Tracked::start(&s);
        assert_eq!(s.inner().outstanding.len(), 1);
        drop(t);
        let i = s.inner();
        assert!(i.outstanding.is_empty());
        assert_eq!(i.recent.len(), 1);
    }
}
