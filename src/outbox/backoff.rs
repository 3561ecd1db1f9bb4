//! Retry delays: `base * 2^(attempt - 1)`, capped at `max`, spread by ±20% jitter so that
//! many messages failing together do not retry together; a server's `Retry-After` wins
//! when it asks for longer.

use std::time::Duration;

/// The delay before attempt `attempt + 1`, after `attempt` failed attempts (≥ 1).
pub fn delay(
    attempt: i64,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exponent = (attempt.max(1) - 1).min(30) as u32;
    let raw = base.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    let spread = raw.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)).min(max);
    match retry_after {
        Some(asked) if asked > spread => asked.min(max.max(asked)),
        _ => spread,
    }
}

/// A uniform number in [0, 1) for the jitter.
pub fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_honours_retry_after() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(delay(1, base, max, None, 0.5), Duration::from_secs(30));
        assert_eq!(delay(3, base, max, None, 0.5), Duration::from_secs(120));
        assert_eq!(delay(20, base, max, None, 0.5), max);
        assert_eq!(delay(1, base, max, None, 0.0), Duration::from_secs(24));
        assert_eq!(delay(1, base, max, None, 1.0), Duration::from_secs(36));
        assert_eq!(
            delay(1, base, max, Some(Duration::from_secs(90)), 0.5),
            Duration::from_secs(90)
        );
        assert_eq!(
            delay(4, base, max, Some(Duration::from_secs(5)), 0.5),
            Duration::from_secs(240)
        );
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
