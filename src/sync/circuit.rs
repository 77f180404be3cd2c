//! A circuit breaker per destination (per process). After `threshold` consecutive transient
//! failures (5xx, 429, timeouts, connection errors) the circuit opens: no delivery is tried for
//! `cooldown`. Then it is half-open: one delivery probes; success closes it, failure opens it
//! again. Answers that prove the server is up (2xx, and 4xx refusals of one Bundle) count as
//! successes. Deliveries waiting meanwhile stay queued; nothing is dropped.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// `probing`: the one probe is in flight.
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug)]
pub struct Circuit {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<(State, u32)>,
}

impl Circuit {
    pub fn new(threshold: u32, cooldown: Duration) -> Circuit {
        Circuit {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new((State::Closed, 0)),
        }
    }

    /// How many deliveries may start now (at most `wanted`).
    pub fn allow(&self, wanted: usize, now: Instant) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.0 {
            State::Closed => wanted,
            State::Open { until } if now < until => 0,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                g.0 = State::HalfOpen { probing: true };
                wanted.min(1)
            }
            State::HalfOpen { probing: true } => 0,
        }
    }

    /// Records how an attempt went: `healthy` unless it was a transient failure.
    pub fn record(&self, healthy: bool, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if healthy {
            *g = (State::Closed, 0);
            return;
        }
        g.1 += 1;
        let trip = matches!(g.0, State::HalfOpen { .. }) || g.1 >= self.threshold;
        if trip && !matches!(g.0, State::Open { .. }) {
            g.0 = State::Open {
                until: now + self.cooldown,
            };
        }
    }

    /// Gives back an unused probe slot (the lease found nothing to deliver).
    pub fn unused(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 == (State::HalfOpen { probing: true }) {
            g.0 = State::HalfOpen { probing: false };
        }
    }

    /// `closed`, `open` or `half-open`.
    pub fn state(&self, now: Instant) -> &'static str {
        match self.inner.lock().unwrap_or_else(|p| p.into_inner()).0 {
            State::Closed => "closed",
            State::Open { until } if now < until => "open",
            _ => "half-open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_probes_once_and_closes_on_success() {
        let c = Circuit::new(3, Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(c.allow(4, t), 4);
        c.record(false, t);
        c.record(false, t);
        c.record(true, t); // a success resets the count
        c.record(false, t);
        c.record(false, t);
        assert_eq!(c.state(t), "closed");
        c.record(false, t);
        assert_eq!(c.state(t), "open");
        assert_eq!(c.allow(4, t + Duration::from_secs(5)), 0);
        let later = t + Duration::from_secs(11);
        assert_eq!(c.allow(4, later), 1, "one probe");
        assert_eq!(c.allow(4, later), 0, "only one");
        c.record(false, later);
        assert_eq!(c.state(later), "open", "a failed probe opens it again");
        let again = later + Duration::from_secs(11);
        assert_eq!(c.allow(4, again), 1);
        c.record(true, again);
        assert_eq!(c.state(again), "closed");
        assert_eq!(c.allow(4, again), 4);
    }

    #[test]
    fn an_unused_probe_is_given_back() {
        let c = Circuit::new(1, Duration::from_secs(1));
        let t = Instant::now();
        c.record(false, t);
        let later = t + Duration::from_secs(2);
        assert_eq!(c.allow(2, later), 1);
        c.unused();
        assert_eq!(c.allow(2, later), 1);
    }
}
