//! What to do after an attempt: the pure part of delivery. Classifies an answer (or a transport
//! error) into delivered, retry later (with exponential backoff and full jitter, or the
//! server's `Retry-After`), or failed with a reason category.

use std::time::Duration;

use crate::store::Attempt;

/// Retry settings of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    pub base: Duration,
    pub max: Duration,
}

/// What came back from the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Http {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    Timeout,
    /// The connection failed, or the body was cut off: what happened, in words.
    Network(String),
    /// No token could be had (the token endpoint refused or was unreachable).
    Token(String),
}

/// `Retry-After`: delta-seconds or an HTTP-date.
pub fn retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Full jitter: a uniform delay in [0, min(max, base * 2^(attempt-1))].
pub fn backoff(policy: &RetryPolicy, attempt: i64, unit: f64) -> Duration {
    let exp = policy
        .base
        .saturating_mul(1u32 << (attempt.clamp(1, 20) - 1) as u32);
    exp.min(policy.max).mul_f64(unit.clamp(0.0, 1.0))
}

fn is_outcome(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v["resourceType"] == "OperationOutcome")
}

/// Decides how attempt number `attempt` (1-based) ended. `unit` is a uniform random number in
/// [0, 1) for the jitter.
pub fn decide(
    policy: &RetryPolicy,
    attempt: i64,
    answer: &Answer,
    now: chrono::DateTime<chrono::Utc>,
    unit: f64,
) -> Attempt {
    let (reason, status, error, retryable, wait, outcome) = match answer {
        Answer::Http { status, .. } if (200..300).contains(status) => {
            return Attempt::Delivered { status: *status }
        }
        Answer::Http {
            status,
            retry_after: ra,
            body,
        } => {
            let outcome = is_outcome(body).then(|| body.chars().take(65_536).collect());
            let wait = ra.as_deref().and_then(|v| retry_after(v, now));
            let (reason, retryable) = match status {
                401 | 403 => ("auth", false),
                408 => ("timeout", true),
                409 | 412 => ("conflict", false),
                429 => ("server", true),
                400 | 404 | 405 | 410 | 413 | 415 | 422 => ("validation", false),
                s if *s >= 500 => ("server", true),
                _ => ("validation", false),
            };
            (
                reason,
                Some(*status),
                format!("HTTP {status}"),
                retryable,
                wait,
                outcome,
            )
        }
        Answer::Timeout => ("timeout", None, "timed out".to_string(), true, None, None),
        Answer::Network(what) => ("network", None, what.clone(), true, None, None),
        Answer::Token(e) => ("auth", None, e.clone(), true, None, None),
    };
    if !retryable || attempt >= policy.max_attempts {
        let error = if retryable {
            format!("{error} (gave up after {attempt} attempts)")
        } else {
            error
        };
        return Attempt::Failed {
            reason,
            status,
            error,
            outcome,
        };
    }
    let delay = backoff(policy, attempt, unit).max(wait.unwrap_or(Duration::ZERO));
    Attempt::Retry {
        at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()),
        reason,
        status,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(500),
        max: Duration::from_secs(60),
    };

    fn http(status: u16, retry_after: Option<&str>, body: &str) -> Answer {
        Answer::Http {
            status,
            retry_after: retry_after.map(str::to_string),
            body: body.into(),
        }
    }

    #[test]
    fn success_transient_and_permanent_answers() {
        let now = chrono::Utc::now();
        assert_eq!(
            decide(&P, 1, &http(200, None, ""), now, 0.5),
            Attempt::Delivered { status: 200 }
        );
        assert!(matches!(
            decide(&P, 1, &http(503, None, ""), now, 0.5),
            Attempt::Retry {
                reason: "server",
                ..
            }
        ));
        let oo = r#"{"resourceType":"OperationOutcome","issue":[]}"#;
        match decide(&P, 1, &http(422, None, oo), now, 0.5) {
            Attempt::Failed {
                reason, outcome, ..
            } => {
                assert_eq!(reason, "validation");
                assert_eq!(outcome.as_deref(), Some(oo));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&P, 1, &http(412, None, ""), now, 0.5),
            Attempt::Failed {
                reason: "conflict",
                ..
            }
        ));
        assert!(matches!(
            decide(&P, 1, &http(401, None, ""), now, 0.5),
            Attempt::Failed { reason: "auth", .. }
        ));
        assert!(matches!(
            decide(&P, 5, &Answer::Timeout, now, 0.5),
            Attempt::Failed {
                reason: "timeout",
                ..
            }
        ));
        assert!(matches!(
            decide(
                &P,
                4,
                &Answer::Network("connection refused".into()),
                now,
                0.5
            ),
            Attempt::Retry {
                reason: "network",
                ..
            }
        ));
    }

    #[test]
    fn retry_after_is_honoured_in_seconds_and_as_a_date() {
        let now = chrono::Utc::now();
        match decide(&P, 1, &http(429, Some("30"), ""), now, 0.0) {
            Attempt::Retry { at, .. } => assert_eq!((at - now).num_seconds(), 30),
            other => panic!("{other:?}"),
        }
        let date = (now + chrono::Duration::seconds(90)).to_rfc2822();
        let d = retry_after(&date, now).unwrap().as_secs();
        assert!((88..=90).contains(&d), "{d}");
    }

    #[test]
    fn backoff_grows_exponentially_with_full_jitter_and_a_cap() {
        assert_eq!(backoff(&P, 1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(&P, 3, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&P, 3, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(&P, 30, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&P, 3, 0.0), Duration::ZERO);
    }
}
