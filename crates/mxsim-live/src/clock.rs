//! The one clock of live mode, and the only wall-clock read in the workspace outside `bench`.
//!
//! Real MTAs wait in real time. A scenario's times are scaled by the time scale `F` (real
//! seconds per scenario second) on the way out (delays the listeners wait, timeouts and retry
//! intervals written into the MTA's configuration) and divided by it on the way back (the times
//! of the trace), so a live trace reads in the scenario's own time and compares with the
//! simulator's.

use mxsim_model::time::{Duration, Instant};

/// Real seconds per scenario second when `--time-scale` is not given: 1/20, so Postfix's
/// 300-second greeting timeout lasts 15 real seconds and a 30-second connect timeout 1.5.
pub const DEFAULT_SCALE: f64 = 0.05;

/// The smallest and largest scale accepted: below 1/1000 the MTAs' own whole-second settings
/// round every timeout to the same second; above 1 a run is slower than the scenario says.
pub const SCALE_RANGE: (f64, f64) = (0.001, 1.0);

/// Real time since the run began, mapped to scenario time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
    scale: f64,
}

impl Clock {
    /// A clock whose scenario time zero is now.
    #[allow(
        clippy::disallowed_methods,
        reason = "live mode is the one place with real time (docs/architecture.md)"
    )]
    pub fn start(scale: f64) -> Clock {
        Clock {
            start: std::time::Instant::now(),
            scale,
        }
    }

    /// The scale: real seconds per scenario second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Scenario time now.
    pub fn now(&self) -> Instant {
        Instant(self.scenario(self.start.elapsed()).0)
    }

    /// The real instant at which scenario time reaches `at`.
    pub fn real_at(&self, at: Instant) -> std::time::Instant {
        self.start + self.real(at.since_start())
    }

    /// A scenario duration as real time.
    pub fn real(&self, duration: Duration) -> std::time::Duration {
        scaled(duration, self.scale)
    }

    /// A real duration as scenario time, to the millisecond.
    pub fn scenario(&self, real: std::time::Duration) -> Duration {
        let millis = real.as_secs_f64() * 1000.0 / self.scale;
        Duration(millis.round() as u64)
    }
}

/// `duration` scaled by `scale`.
pub fn scaled(duration: Duration, scale: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(duration.as_millis() as f64 / 1000.0 * scale)
}

/// `duration` scaled by `scale` in whole seconds, at least one: what an MTA setting takes.
pub fn scaled_seconds(duration: Duration, scale: f64) -> u64 {
    (scaled(duration, scale).as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_goes_both_ways() {
        let clock = Clock::start(0.05);
        assert_eq!(
            clock.real(Duration::seconds(300)),
            std::time::Duration::from_secs(15)
        );
        assert_eq!(
            clock.scenario(std::time::Duration::from_secs(15)),
            Duration::seconds(300)
        );
        assert_eq!(scaled_seconds(Duration::seconds(30), 0.05), 2);
        assert_eq!(scaled_seconds(Duration(1), 0.05), 1);
        assert_eq!(scaled_seconds(Duration::seconds(300), 0.05), 15);
    }
}
