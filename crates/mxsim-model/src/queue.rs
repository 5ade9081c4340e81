//! A client's queue as data: when it retries a deferred message, how often it looks at its
//! queue, when it gives up, and when it warns the sender.
//!
//! RFC 5321 §4.5.4.1 leaves the numbers to the implementation ("the retry interval SHOULD be at
//! least 30 minutes", "give-up time generally needs to be at least 4-5 days") and says they MUST
//! be configurable; deployed MTAs pick very different ones. A [`QueueSettings`] value is what a
//! policy gives the world's queue scheduler, so the scheduler stays a pure function of data.

use std::fmt;

use crate::time::{Duration, Instant};

/// When a deferred message is tried again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// The same interval after every failure.
    Fixed(Duration),
    /// `first` after the first failure, then each delay `factor_permille / 1000` times the last,
    /// never more than `max` (Postfix's `minimal_backoff_time` and `maximal_backoff_time`).
    Exponential {
        /// The first delay.
        first: Duration,
        /// The longest delay.
        max: Duration,
        /// Growth per failure, in thousandths (2000 doubles).
        factor_permille: u32,
    },
    /// These delays in turn; the last repeats.
    Delays(Vec<Duration>),
    /// Exim's retry rules: each applies until its cutoff, counted from the first failure; past
    /// the last cutoff the message has no retry time left.
    Rules(Vec<Rule>),
}

/// One Exim retry rule: `F,2h,15m` or `G,16h,1h,1.5`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Applies while less than this has passed since the first failure.
    pub cutoff: Duration,
    /// The first interval under this rule.
    pub interval: Duration,
    /// `None` for `F` (fixed); for `G`, the growth per failure in thousandths.
    pub factor_permille: Option<u32>,
}

/// Everything a policy says about its queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// When to retry.
    pub schedule: Schedule,
    /// The queue is only looked at every `scan` (a periodic queue runner): a retry that falls due
    /// waits for the next scan. `None`: retries happen when due.
    pub scan: Option<Duration>,
    /// A message still undelivered this long after submission bounces (expires).
    pub lifetime: Duration,
    /// A delay warning (a DSN with action `delayed`, RFC 3464) goes to the sender when a message
    /// is still undelivered this long after submission; `None`: never.
    pub warn_after: Option<Duration>,
}

/// Where a [`Schedule`] stands for one message: how many attempts failed, when the first did,
/// and the last delay it used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Failed attempts so far.
    pub failures: u32,
    /// The time of the first failure.
    pub first_failure: Option<Instant>,
    /// The last delay handed out.
    pub last_delay: Option<Duration>,
}

/// Without `horizon:`, a queue run goes on this long past the last submission plus the
/// policy's lifetime, so that the last attempt (which may sit in timeouts) can end.
pub const LAST_ATTEMPT_ALLOWANCE: Duration = Duration::days(1);

/// A queue run can never make more attempts than this for one message, whatever its schedule:
/// a bound on every loop (a 1 ms fixed schedule over 30 days would be 2.6 billion).
pub const ATTEMPTS_MAX: u32 = 10_000;

impl Schedule {
    /// The delay before the next attempt, after a failure at `now`; `None` when the schedule has
    /// no retry left (Exim's rules past their last cutoff). Updates `backoff`.
    pub fn next_delay(&self, backoff: &mut Backoff, now: Instant) -> Option<Duration> {
        let first_failure = *backoff.first_failure.get_or_insert(now);
        let failures = backoff.failures;
        backoff.failures = failures.saturating_add(1);
        if backoff.failures >= ATTEMPTS_MAX {
            return None;
        }
        let delay = match self {
            Schedule::Fixed(interval) => *interval,
            Schedule::Exponential {
                first,
                max,
                factor_permille,
            } => match backoff.last_delay {
                None => (*first).min(*max),
                Some(last) => grow(last, *factor_permille).min(*max),
            },
            Schedule::Delays(delays) => {
                let index = (failures as usize).min(delays.len().saturating_sub(1));
                delays.get(index).copied().unwrap_or(Duration::ZERO)
            }
            Schedule::Rules(rules) => {
                let elapsed = now.since(first_failure);
                let rule = rules.iter().find(|rule| elapsed < rule.cutoff)?;
                // A `G` gap is the rule's own interval while the last gap is shorter than it, and
                // the last gap times the factor after that (Exim's retry.c, `retry_update`:
                // `next_try = now + ((lastgap < p1) ? p1 : lastgap * p2 / 1000)`), so the first
                // `G` gap after `F,2h,15m` is 1h, then 1h 30m, ...
                match (rule.factor_permille, backoff.last_delay) {
                    (Some(factor), Some(last)) if last >= rule.interval => grow(last, factor),
                    _ => rule.interval,
                }
            }
        };
        backoff.last_delay = Some(delay);
        Some(delay)
    }

    /// The shortest delay the schedule ever hands out: what the spacing checker holds a
    /// policy's attempts to.
    pub fn min_delay(&self) -> Duration {
        match self {
            Schedule::Fixed(interval) => *interval,
            Schedule::Exponential { first, max, .. } => (*first).min(*max),
            Schedule::Delays(delays) => delays.iter().copied().min().unwrap_or(Duration::ZERO),
            Schedule::Rules(rules) => rules
                .iter()
                .map(|rule| rule.interval)
                .min()
                .unwrap_or(Duration::ZERO),
        }
    }
}

fn grow(last: Duration, factor_permille: u32) -> Duration {
    Duration(last.as_millis().saturating_mul(u64::from(factor_permille)) / 1000)
}

impl QueueSettings {
    /// The RFC 5321 baseline: a retry every 30 minutes (§4.5.4.1: "at least 30 minutes"), a
    /// message still undelivered 5 days after submission bounces ("at least 4-5 days"), no
    /// periodic scan, no delay warning (the RFC asks for none).
    pub fn rfc5321() -> QueueSettings {
        QueueSettings {
            schedule: Schedule::Fixed(Duration::minutes(30)),
            scan: None,
            lifetime: Duration::days(5),
            warn_after: None,
        }
    }

    /// The first queue scan at or after `due`.
    pub fn on_scan(&self, due: Instant) -> Instant {
        match self.scan {
            Some(scan) if scan.as_millis() > 0 => {
                let step = scan.as_millis();
                Instant(due.0.div_ceil(step).saturating_mul(step))
            }
            _ => due,
        }
    }

    /// How many attempts a message can get before its lifetime ends: the first, then one per
    /// delay the schedule hands out within the lifetime. Bounded by [`ATTEMPTS_MAX`].
    pub fn attempts_within_lifetime(&self) -> u32 {
        let mut backoff = Backoff::default();
        let mut now = Instant::START;
        let deadline = Instant::START.after(self.lifetime);
        let mut attempts = 1;
        while let Some(delay) = self.schedule.next_delay(&mut backoff, now) {
            now = self.on_scan(now.after(delay.max(Duration(1))));
            if now >= deadline {
                break;
            }
            attempts += 1;
        }
        attempts
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Fixed(interval) => write!(formatter, "every {interval}"),
            Schedule::Exponential {
                first,
                max,
                factor_permille,
            } => write!(
                formatter,
                "{first}, ×{} each time, at most {max}",
                Permille(*factor_permille)
            ),
            Schedule::Delays(delays) => {
                for (index, delay) in delays.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(", ")?;
                    }
                    write!(formatter, "{delay}")?;
                }
                formatter.write_str(" (the last repeats)")
            }
            Schedule::Rules(rules) => {
                for (index, rule) in rules.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str("; ")?;
                    }
                    match rule.factor_permille {
                        None => write!(formatter, "F,{},{}", rule.cutoff, rule.interval)?,
                        Some(factor) => write!(
                            formatter,
                            "G,{},{},{}",
                            rule.cutoff,
                            rule.interval,
                            Permille(factor)
                        )?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// A factor in thousandths, written as a decimal: `1.5`, `2`.
struct Permille(u32);

impl fmt::Display for Permille {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let fraction = self.0 % 1000;
        if fraction == 0 {
            write!(formatter, "{whole}")
        } else {
            let text = format!("{fraction:03}");
            write!(formatter, "{whole}.{}", text.trim_end_matches('0'))
        }
    }
}

/// Parses Exim's retry rule list, `F,2h,15m; G,16h,1h,1.5; F,4d,6h`.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for part in text
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let fields: Vec<&str> = part.split(',').map(str::trim).collect();
        let rule = match fields.as_slice() {
            ["F", cutoff, interval] => Rule {
                cutoff: Duration::parse(cutoff)?,
                interval: Duration::parse(interval)?,
                factor_permille: None,
            },
            ["G", cutoff, interval, factor] => Rule {
                cutoff: Duration::parse(cutoff)?,
                interval: Duration::parse(interval)?,
                factor_permille: Some(parse_factor(factor)?),
            },
            _ => {
                return Err(format!(
                    "`{part}` is not a retry rule: write `F,CUTOFF,INTERVAL` or `G,CUTOFF,INTERVAL,FACTOR`"
                ));
            }
        };
        if rule.interval == Duration::ZERO {
            return Err(format!("`{part}`: the interval must be more than 0s"));
        }
        if let Some(previous) = rules.last().map(|rule: &Rule| rule.cutoff)
            && rule.cutoff <= previous
        {
            return Err(format!(
                "`{part}`: cutoffs must grow from rule to rule ({} is not after {previous})",
                rule.cutoff
            ));
        }
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err("no retry rule given".to_owned());
    }
    Ok(rules)
}

/// A growth factor such as `1.5` or `2`, in thousandths; at least 1 and at most 100.
pub fn parse_factor(text: &str) -> Result<u32, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let bad = || format!("`{text}` is not a factor between 1 and 100, like 1.5 or 2");
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 3
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 3
    {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<3}").parse().map_err(|_| bad())?
    };
    let permille = whole * 1000 + fraction;
    if !(1000..=100_000).contains(&permille) {
        return Err(bad());
    }
    Ok(permille)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(schedule: &Schedule, n: usize) -> Vec<String> {
        let mut backoff = Backoff::default();
        let mut now = Instant::START;
        let mut out = Vec::new();
        for _ in 0..n {
            match schedule.next_delay(&mut backoff, now) {
                Some(delay) => {
                    out.push(delay.to_string());
                    now = now.after(delay);
                }
                None => {
                    out.push("give up".to_owned());
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn postfix_backoff_doubles_up_to_its_maximum() {
        let postfix = Schedule::Exponential {
            first: Duration::seconds(300),
            max: Duration::seconds(4000),
            factor_permille: 2000,
        };
        assert_eq!(delays(&postfix, 5), ["5m", "10m", "20m", "40m", "1h6m40s"]);
    }

    #[test]
    fn exim_default_rules() {
        let rules = parse_rules("F,2h,15m; G,16h,1h,1.5; F,4d,6h").expect("valid");
        let all = delays(&Schedule::Rules(rules), 40);
        assert_eq!(&all[..8], ["15m"; 8]);
        assert_eq!(&all[8..12], ["1h", "1h30m", "2h15m", "3h22m30s"]);
        assert!(all.contains(&"6h".to_owned()));
        assert_eq!(all.last().map(String::as_str), Some("give up"));
    }

    #[test]
    fn a_g_rule_uses_its_interval_until_the_last_gap_reaches_it() {
        // retry.c: lastgap < p1 ? p1 : lastgap * p2. After 45m gaps, the first G gap is 1h (not
        // 45m × 1.5 = 67m30s), then 1h30m.
        let rules = parse_rules("F,2h,45m; G,16h,1h,1.5").expect("valid");
        let all = delays(&Schedule::Rules(rules), 6);
        assert_eq!(all, ["45m", "45m", "45m", "1h", "1h30m", "2h15m"]);
    }

    #[test]
    fn scans_round_up_and_attempts_are_bounded() {
        let settings = QueueSettings {
            schedule: Schedule::Fixed(Duration::minutes(30)),
            scan: Some(Duration::minutes(7)),
            lifetime: Duration::days(5),
            warn_after: None,
        };
        assert_eq!(settings.on_scan(Instant(60_000)), Instant(420_000));
        assert_eq!(settings.on_scan(Instant(420_000)), Instant(420_000));
        let tiny = QueueSettings {
            schedule: Schedule::Fixed(Duration(1)),
            scan: None,
            lifetime: Duration::days(30),
            warn_after: None,
        };
        assert_eq!(tiny.attempts_within_lifetime(), ATTEMPTS_MAX);
    }

    #[test]
    fn factors_and_rule_errors() {
        assert_eq!(parse_factor("1.5"), Ok(1500));
        assert_eq!(parse_factor("2"), Ok(2000));
        assert!(parse_factor("0.5").is_err());
        assert!(parse_factor("1e3").is_err());
        assert!(parse_rules("F,2h").is_err());
        assert!(parse_rules("F,4d,6h; F,2h,15m").is_err());
    }
}
