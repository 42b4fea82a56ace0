//! Command-line value parsers and pacing shared by the producer's binary and the main job.

use std::time::{Duration, Instant};

/// A share between 0 and 1 (fault rates).
pub fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

/// A finite number >= 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number >= 0")),
    }
}

/// A finite number > 0.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number > 0")),
    }
}

/// Seconds > 0 as a duration.
pub fn seconds(s: &str) -> Result<Duration, String> {
    positive(s).map(Duration::from_secs_f64)
}

/// Stops a run at its event count or duration, and paces it at its rate.
pub struct Pace {
    pub started: Instant,
    /// Records per second; 0 or less: as fast as possible.
    pub rate: f64,
    pub events: Option<u64>,
    pub duration: Option<Duration>,
}

impl Pace {
    pub fn done(&self, produced: u64) -> bool {
        self.events.is_some_and(|n| produced >= n) || self.duration.is_some_and(|d| self.started.elapsed() >= d)
    }

    /// How long to wait before record number `produced` (even spacing, not a burst a second).
    pub fn wait(&self, produced: u64) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        let due = self.started + Duration::from_secs_f64(produced as f64 / self.rate);
        due.checked_duration_since(Instant::now()).filter(|d| *d >= Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_accept_their_ranges_and_name_the_bad_value() {
        assert_eq!(share("0.25"), Ok(0.25));
        assert!(share("1.5").unwrap_err().contains("\"1.5\""));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(positive("0").is_err() && positive("inf").is_err() && positive("x").is_err());
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn pace_spaces_records_evenly_and_stops_at_its_limits() {
        let started = Instant::now();
        let pace = Pace { started, rate: 10.0, events: Some(5), duration: None };
        assert!(pace.wait(0).is_none(), "the first record is due at once");
        let wait = pace.wait(10).expect("record 10 is due one second in");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(!pace.done(4) && pace.done(5));
        let unpaced = Pace { started, rate: 0.0, events: None, duration: Some(Duration::ZERO) };
        assert!(unpaced.wait(1_000_000).is_none() && unpaced.done(0));
    }
}
