//! Virtual time: instants since the start of a run, and durations as scenario files write them.
//!
//! Everything is whole milliseconds. tokio's timer wheel has millisecond resolution too, so a
//! trace never shows a time the scheduler could not produce.

use std::fmt;

/// A span of virtual time in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// From whole seconds.
    pub const fn seconds(n: u64) -> Duration {
        Duration(n * 1_000)
    }

    /// From whole minutes.
    pub const fn minutes(n: u64) -> Duration {
        Duration(n * 60_000)
    }

    /// From whole hours.
    pub const fn hours(n: u64) -> Duration {
        Duration(n * 3_600_000)
    }

    /// From whole days.
    pub const fn days(n: u64) -> Duration {
        Duration(n * 86_400_000)
    }

    /// As milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// As a std duration, for tokio's timers.
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }

    /// A duration as people write it (`5 min`, `30 secs`, `2 hours`) in this format (`5m`),
    /// when it then parses: for a hint.
    pub fn suggest(text: &str) -> Option<String> {
        let mut out = String::new();
        // `5 min` and `5min` alike: spaces go, then each number takes the unit after it.
        let joined: String = text.to_ascii_lowercase().split_whitespace().collect();
        let mut rest = joined.as_str();
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return None;
            }
            out.push_str(&rest[..digits]);
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => "ms",
                "s" | "sec" | "secs" | "second" | "seconds" => "s",
                "m" | "min" | "mins" | "minute" | "minutes" => "m",
                "h" | "hr" | "hrs" | "hour" | "hours" => "h",
                "d" | "day" | "days" => "d",
                _ => return None,
            };
            out.push_str(unit);
            rest = &rest[unit_len..];
        }
        (out != text && Duration::parse(&out).is_ok()).then_some(out)
    }

    /// Parses `250ms`, `30s`, `5m`, `2h`, `4d`, and sums of them such as `4m59s` or `1h30m`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Duration::ZERO);
        }
        if text.is_empty() {
            return Err("empty duration".to_owned());
        }
        let mut total: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{text}` is not a duration"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{text}` is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let factor = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(format!("`{text}` needs a unit: ms, s, m, h or d")),
                other => {
                    return Err(format!(
                        "unknown unit `{other}` in `{text}`: use ms, s, m, h or d"
                    ));
                }
            };
            rest = &rest[unit_len..];
            total = number
                .checked_mul(factor)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(|| format!("`{text}` is too large"))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// The shortest exact form: `0s`, `250ms`, `4m59s`, `1d2h`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return formatter.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if rest >= size {
                write!(formatter, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

/// An instant of virtual time: milliseconds since the run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// The start of the run.
    pub const START: Instant = Instant(0);

    /// Time since the start of the run.
    pub const fn since_start(self) -> Duration {
        Duration(self.0)
    }

    /// This instant moved later by `duration`, saturating.
    pub const fn after(self, duration: Duration) -> Instant {
        Instant(self.0.saturating_add(duration.0))
    }

    /// The time from `earlier` to this instant, zero if `earlier` is later.
    pub const fn since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Instant {
    /// `HH:MM:SS.mmm`, with a `Nd ` prefix from the first day on; right-aligned by callers.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0 % 1_000;
        let seconds = (self.0 / 1_000) % 60;
        let minutes = (self.0 / 60_000) % 60;
        let hours = (self.0 / 3_600_000) % 24;
        let days = self.0 / 86_400_000;
        if days > 0 {
            write!(
                formatter,
                "{days}d {hours:02}:{minutes:02}:{seconds:02}.{millis:03}"
            )
        } else {
            write!(
                formatter,
                "{hours:02}:{minutes:02}:{seconds:02}.{millis:03}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<u64, &str>) {
        assert_eq!(
            Duration::parse(text).map(|d| d.0),
            expected.map_err(str::to_owned),
            "{text}"
        );
    }

    #[test]
    fn durations() {
        check("250ms", Ok(250));
        check("30s", Ok(30_000));
        check("5m", Ok(300_000));
        check("2h", Ok(7_200_000));
        check("4d", Ok(345_600_000));
        check("4m59s", Ok(299_000));
        check("1h30m", Ok(5_400_000));
        check("0", Ok(0));
        check("10", Err("`10` needs a unit: ms, s, m, h or d"));
        check(
            "5min",
            Err("unknown unit `min` in `5min`: use ms, s, m, h or d"),
        );
        check("s", Err("`s` is not a duration"));
        check(
            "99999999999999999999d",
            Err("`99999999999999999999d` is too large"),
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "250ms", "4m59s", "1d2h", "10m", "1h1ms"] {
            assert_eq!(
                Duration::parse(text).map(|d| d.to_string()),
                Ok(text.to_owned())
            );
        }
        assert_eq!(Instant(0).to_string(), "00:00:00.000");
        assert_eq!(Instant(299_250).to_string(), "00:04:59.250");
        assert_eq!(Instant(90_061_001).to_string(), "1d 01:01:01.001");
    }
}
