//! Exim 4: a complete runtime configuration from `crates/mxsim-live/mta/exim/` (Debian's
//! generated one ignores loopback MX targets), the spool on a tmpfs, local submission with
//! `exim4 -odb` (the delivery runs in the background, as `sendmail` submission does), a queue
//! runner without a listener (`exim4 -q<scan>`), `exim4 -qff` to force a retry, and the verdict
//! read from the main log's `=>`, `==` and `**` lines.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::DispositionKind;
use mxsim_model::smtp::Reply;
use mxsim_model::time::Duration;

use super::{Driver, Observation, Setup, fill};
use crate::clock::scaled_seconds;
use crate::namespace::{self, run};

/// The configuration template, kept in the repository beside `install.sh`.
const EXIM4_CONF: &str = include_str!("../../mta/exim/exim4.conf");

/// Exim's own defaults for the times live mode scales, in scenario time, as the `exim-4` preset
/// models them (a test holds the two together): the smtp transport's `connect_timeout`,
/// `command_timeout` (also the banner), `data_timeout` and `final_timeout` (the reply to the
/// final dot) (spec.xfpt, "Generic options for the smtp transport"), and `queue_scan`, the
/// queue runner's interval the preset assumes (`exim -bd -q30m`, the spec's example: Exim has
/// no default).
pub const DEFAULTS: &[(&str, Duration)] = &[
    ("connect_timeout", Duration::minutes(5)),
    ("command_timeout", Duration::minutes(5)),
    ("data_timeout", Duration::minutes(5)),
    ("final_timeout", Duration::minutes(10)),
    ("queue_scan", Duration::minutes(30)),
];

/// Exim's default retry rule (`src/src/configure.default`: `*  *  F,2h,15m; G,16h,1h,1.5;
/// F,4d,6h`): kind, cutoff, interval, and the G rule's factor in thousandths.
pub const RETRY_RULES: &[(char, Duration, Duration, u32)] = &[
    ('F', Duration::hours(2), Duration::minutes(15), 1000),
    ('G', Duration::hours(16), Duration::hours(1), 1500),
    ('F', Duration::days(4), Duration::hours(6), 1000),
];

/// The default named `key`.
pub fn default(key: &str) -> Duration {
    super::lookup(DEFAULTS, key)
}

/// The retry rule, every time scaled: `F,360s,45s; G,2880s,180s,1.5; F,17280s,1080s` at 0.05.
pub fn retry_rule(scale: f64) -> String {
    RETRY_RULES
        .iter()
        .map(|(kind, cutoff, interval, factor)| {
            let mut rule = format!(
                "{kind},{}s,{}s",
                scaled_seconds(*cutoff, scale),
                scaled_seconds(*interval, scale)
            );
            if *kind == 'G' {
                rule.push_str(&format!(",{}.{}", factor / 1000, (factor % 1000) / 100));
            }
            rule
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The configuration for `setup`, logging into `log_dir`.
pub fn exim4_conf(setup: &Setup<'_>, log_dir: &Path) -> String {
    let mut values: Vec<(&str, String)> = DEFAULTS
        .iter()
        .map(|(key, value)| (*key, format!("{}s", scaled_seconds(*value, setup.scale))))
        .collect();
    values.push(("myhostname", setup.scenario.client.name.as_str().to_owned()));
    // Bounce notices stay local and are dropped (the `local_blackhole` router).
    values.push((
        "local_domains",
        super::sink_domains(setup.scenario).join(" : "),
    ));
    values.push(("log_dir", log_dir.display().to_string()));
    values.push(("retry_rule", retry_rule(setup.scale)));
    fill(EXIM4_CONF, &values)
}

/// The Exim driver.
pub struct Exim {
    version: String,
    root: PathBuf,
    log_file: PathBuf,
    scan: u64,
    read: usize,
    pending: String,
    /// The queue runner and forced queue runs, reaped as they end.
    children: Vec<tokio::process::Child>,
}

impl Exim {
    /// A driver for the Exim unpacked under `root`.
    pub fn new(version: String, root: PathBuf) -> Exim {
        Exim {
            version,
            root,
            log_file: PathBuf::from("/tmp/mxsim-live/exim/mainlog"),
            scan: 90,
            read: 0,
            pending: String::new(),
            children: Vec::new(),
        }
    }

    /// Starts `exim4 arguments` in the background. Exim does not detach when its parent is PID
    /// 1 (the namespace's init, this process), so the child is kept and reaped.
    fn spawn(&mut self, arguments: &[&str]) -> Result<(), String> {
        let child = tokio::process::Command::new("exim4")
            .args(arguments)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot run `exim4 {}`: {error}", arguments.join(" ")))?;
        self.children.push(child);
        Ok(())
    }
}

impl Driver for Exim {
    fn version(&self) -> &str {
        &self.version
    }

    fn connect_timeout(&self) -> Duration {
        default("connect_timeout")
    }

    async fn configure(&mut self, setup: &Setup<'_>) -> Result<(), String> {
        let log_dir = setup.work.join("exim");
        self.log_file = log_dir.join("mainlog");
        self.scan = scaled_seconds(default("queue_scan"), setup.scale);
        crate::mta::overlay(&self.root, &["usr", "etc", "var/spool", "var/lib"])?;
        let config = setup.work.join("etc-exim4");
        std::fs::create_dir_all(&config).map_err(|error| error.to_string())?;
        std::fs::write(config.join("exim4.conf"), exim4_conf(setup, &log_dir))
            .map_err(|error| format!("cannot write exim4.conf: {error}"))?;
        run(
            "install",
            &[
                "-d",
                "-o",
                "Debian-exim",
                "-g",
                "Debian-exim",
                "-m",
                "0750",
                &log_dir.to_string_lossy(),
            ],
        )?;
        namespace::bind(&config, Path::new("/etc/exim4"))?;
        namespace::tmpfs(Path::new("/var/spool/exim4"), "mode=0750")?;
        run("chown", &["Debian-exim:Debian-exim", "/var/spool/exim4"])?;
        run("exim4", &["-bV"])
    }

    async fn start(&mut self) -> Result<(), String> {
        // A queue runner that never listens (daemon_smtp_ports is empty), every scaled scan.
        let interval = format!("-q{}s", self.scan);
        self.spawn(&[&interval])
    }

    async fn inject(
        &mut self,
        _index: usize,
        from: &Mailbox,
        to: &[Mailbox],
        text: &str,
    ) -> Result<(), String> {
        let arguments = super::submission(&["-odb", "-oi"], from, to);
        crate::mta::pipe("exim4", &arguments, text).await
    }

    async fn force_retry(&mut self) -> Result<(), String> {
        // Every deferred address now, past its retry time (`-qff` also thaws frozen messages).
        self.spawn(&["-qff"])
    }

    fn observations(&mut self) -> Vec<Observation> {
        self.children
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        let lines = crate::mta::new_lines(&self.log_file, &mut self.read, &mut self.pending);
        lines.iter().filter_map(|line| parse_line(line)).collect()
    }

    fn log(&self) -> String {
        let mut log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let panic = self.log_file.with_file_name("paniclog");
        if let Ok(text) = std::fs::read_to_string(&panic) {
            log.push_str("--- paniclog ---\n");
            log.push_str(&text);
        }
        log
    }

    async fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
        for child in &mut self.children {
            let _ = child.wait().await;
        }
        self.children.clear();
    }
}

/// Parses one line of Exim's main log (`log_selector = +all`) into what it reports, if
/// anything live mode reads. The lines (Exim 4.96; samples in `crates/mxsim-live/mta/enter.md`):
/// - `MSGID <= SENDER … id=mxsim.N@mxsim.invalid …`: message N is queued as MSGID;
/// - `MSGID => RCPT … H=HOST [ADDR]:25 … C="250 …"` (and `->` for more recipients of the same
///   delivery): delivered;
/// - `MSGID == RCPT … defer (N) …: TEXT`: deferred;
/// - `MSGID ** RCPT …: TEXT`: bounced (also `retry timeout exceeded`);
/// - `MSGID H=HOST [ADDR]:25 Connection refused`, and `…: SMTP timeout after initial
///   connection: Connection timed out` (a connect timeout and a silent greeting read the same;
///   the run drops the line for an address a listener serves, which saw the connection).
pub fn parse_line(line: &str) -> Option<Observation> {
    // `YYYY-MM-DD HH:MM:SS.mmm [PID] MSGID TEXT`
    let (_, rest) = line.split_once("] ")?;
    let (id, text) = rest.split_once(' ')?;
    if !is_message_id(id) {
        return None;
    }
    if let Some(arrival) = text.strip_prefix("<= ") {
        let (_, after) = arrival.split_once(" id=mxsim.")?;
        let message = after.split_once('@')?.0.parse().ok()?;
        return Some(Observation::Queued {
            message,
            queue_id: id.to_owned(),
        });
    }
    if let Some(host) = text.strip_prefix("H=") {
        let (name, after) = host.split_once(" [")?;
        let (address, error) = after.split_once(']')?;
        let refused = if error.contains("Connection refused") {
            true
        } else if error.contains("SMTP timeout after initial connection")
            || error.contains("Connection timed out")
        {
            false
        } else {
            return None;
        };
        return Some(Observation::ConnectFailed {
            host: Name::parse(name).ok()?,
            address: address.parse().ok()?,
            refused,
        });
    }
    let (flag, rest) = text.split_once(' ')?;
    let kind = match flag {
        "=>" | "->" => DispositionKind::Delivered,
        "==" => DispositionKind::Deferred,
        "**" => DispositionKind::Bounced,
        _ => return None,
    };
    let (recipient, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let recipient = Mailbox::parse(recipient.trim_end_matches(':')).ok()?;
    let relay = rest.split_once(" H=").and_then(|(_, host)| {
        let (name, after) = host.split_once(" [")?;
        let (address, _) = after.split_once(']')?;
        Some((Name::parse(name).ok()?, address.parse::<IpAddr>().ok()?))
    });
    let (reply, reason) = if kind == DispositionKind::Delivered {
        let said = rest
            .split_once(" C=\"")
            .and_then(|(_, said)| said.split_once('"'))
            .map(|(said, _)| said)
            .unwrap_or("");
        (Reply::parse(said).ok(), said.to_owned())
    } else {
        let reason = reason_of(rest);
        (reply_in(&reason), reason)
    };
    Some(Observation::Status {
        queue_id: id.to_owned(),
        recipient,
        kind,
        relay,
        reply,
        reason,
    })
}

/// Exim 4.96's message ids: `1xYLiu-000019-29` (base-62 time, pid, fraction).
fn is_message_id(id: &str) -> bool {
    id.len() >= 16
        && id.split('-').count() == 3
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The words of a `==` or `**` line after its fields: the server's error when it quotes one,
/// else what follows `DT=…: ` or `defer (N): `, or the recipient's colon.
fn reason_of(rest: &str) -> String {
    let cut = |text: &str| {
        text.split(" DT=")
            .next()
            .unwrap_or(text)
            .split(" H=")
            .next()
            .unwrap_or(text)
            .trim()
            .to_owned()
    };
    if let Some(at) = rest.find("SMTP error from remote mail server") {
        return rest[at..]
            .split(" DT=")
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
    }
    if let Some((_, after)) = rest.split_once(" DT=")
        && let Some((_, reason)) = after.split_once(": ")
    {
        return reason.trim().to_owned();
    }
    if let Some((_, after)) = rest.split_once("defer (")
        && let Some((_, reason)) = after.split_once("): ")
    {
        return cut(reason);
    }
    cut(rest)
}

/// The server reply quoted in `text`: the first `: ` followed by a reply code, as in
/// `SMTP error from remote mail server after RCPT TO:<u@d>: 451 4.3.0 try later`.
fn reply_in(text: &str) -> Option<Reply> {
    text.match_indices(": ").find_map(|(at, _)| {
        let said = &text[at + 2..];
        let code = said.get(..3)?;
        (code.bytes().all(|b| b.is_ascii_digit())
            && said
                .as_bytes()
                .get(3)
                .is_none_or(|b| *b == b' ' || *b == b'-'))
        .then(|| Reply::parse(said).ok())
        .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxsim_model::queue::Schedule;

    /// The times written into Exim's configuration are the ones the `exim-4` preset models, so
    /// a live run and the preset's run wait the same (scaled) times.
    #[test]
    fn the_configuration_is_the_presets() {
        let preset = mxsim_policy::registry::preset("exim-4").expect("a preset");
        let settings = &preset.settings;
        let timeouts = &settings.timeouts;
        assert_eq!(default("connect_timeout"), timeouts.connect);
        assert_eq!(default("command_timeout"), timeouts.greeting);
        assert_eq!(default("command_timeout"), timeouts.mail);
        assert_eq!(default("command_timeout"), timeouts.rcpt);
        assert_eq!(default("command_timeout"), timeouts.data);
        assert_eq!(default("final_timeout"), timeouts.end_of_data);
        assert_eq!(Some(default("queue_scan")), settings.queue.scan);
        let Some(Schedule::Rules(rules)) = &settings.memory.hosts else {
            panic!("the exim-4 preset keeps host records by retry rules");
        };
        let ours: Vec<_> = RETRY_RULES
            .iter()
            .map(|(kind, cutoff, interval, factor)| {
                (*cutoff, *interval, (*kind == 'G').then_some(*factor))
            })
            .collect();
        let theirs: Vec<_> = rules
            .iter()
            .map(|rule| (rule.cutoff, rule.interval, rule.factor_permille))
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(
            retry_rule(0.05),
            "F,360s,45s; G,2880s,180s,1.5; F,17280s,1080s"
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        let text = super::super::with_test_setup(0.05, |setup| {
            exim4_conf(setup, Path::new("/tmp/mxsim-live/exim"))
        });
        assert!(text.contains("connect_timeout = 15s"), "{text}");
        assert!(text.contains("final_timeout = 30s"), "{text}");
        assert!(
            text.contains("domainlist local_domains = mta.sender.example : sender.example"),
            "{text}"
        );
        assert!(
            text.contains("log_file_path = /tmp/mxsim-live/exim/%slog"),
            "{text}"
        );
    }

    #[test]
    fn the_lines_live_mode_reads() {
        let queued = "2026-12-01 11:08:36.669 [71] 1xYLiu-000019-29 <= probe@mta.probe.invalid U=root P=local S=322 M8S=0 RT=0.000s id=mxsim.2@mxsim.invalid T=\"foo\" from <probe@mta.probe.invalid> for user@foo.example";
        assert_eq!(
            parse_line(queued),
            Some(Observation::Queued {
                message: 2,
                queue_id: "1xYLiu-000019-29".to_owned()
            })
        );
        let sent = "2026-12-01 11:08:36.687 [73] 1xYLiu-000019-29 => user@foo.example F=<probe@mta.probe.invalid> P=<probe@mta.probe.invalid> R=dnslookup T=remote_smtp S=336 H=smtp1.foo.example [127.0.0.10]:25 I=[127.0.0.1]:53962 L C=\"250 queued as smtp1-1796123316685\" QT=0.017s DT=0.002s";
        let Some(Observation::Status {
            kind, relay, reply, ..
        }) = parse_line(sent)
        else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Delivered);
        assert_eq!(
            relay,
            Some((
                Name::parse("smtp1.foo.example").unwrap(),
                "127.0.0.10".parse().unwrap()
            ))
        );
        assert_eq!(reply.unwrap().code.get(), 250);
        let refused = "2026-12-01 11:08:36.720 [87] 1xYLiu-00001J-2F H=smtp2.foo.example [127.0.0.11]:25 Connection refused";
        assert_eq!(
            parse_line(refused),
            Some(Observation::ConnectFailed {
                host: Name::parse("smtp2.foo.example").unwrap(),
                address: "127.0.0.11".parse().unwrap(),
                refused: true,
            })
        );
        let timeout = "2026-12-01 11:08:41.781 [109] 1xYLiu-00001f-2T H=smtp4.foo.example [127.0.0.13]:25: SMTP timeout after initial connection: Connection timed out";
        assert!(matches!(
            parse_line(timeout),
            Some(Observation::ConnectFailed { refused: false, .. })
        ));
        let deferred = "2026-12-01 11:08:47.882 [145] 1xYLj5-00002J-2o == user@r451.example R=dnslookup T=remote_smtp defer (-44) H=smtp8.foo.example [127.0.0.17]:25 I=[127.0.0.1]:51382 DT=0.000s: SMTP error from remote mail server after RCPT TO:<user@r451.example>: 451 4.3.0 try later";
        let Some(Observation::Status {
            kind,
            reply,
            reason,
            ..
        }) = parse_line(deferred)
        else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Deferred);
        assert_eq!(reply.unwrap().code.get(), 451);
        assert!(reason.starts_with("SMTP error"), "{reason}");
        let refused_defer = "2026-12-01 11:08:36.721 [83] 1xYLiu-00001J-2F == user@bar.example R=dnslookup T=remote_smtp defer (111): Connection refused DT=0.000s";
        let Some(Observation::Status {
            kind,
            reply,
            reason,
            relay,
            ..
        }) = parse_line(refused_defer)
        else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Deferred);
        assert_eq!((reply, relay), (None, None));
        assert_eq!(reason, "Connection refused");
        let bounced = "2026-12-01 11:08:36.743 [92] 1xYLiu-00001S-2M ** user@baz.example F=<probe@mta.probe.invalid> P=<probe@mta.probe.invalid> R=dnslookup T=remote_smtp H=smtp3.foo.example [127.0.0.12]:25 I=[127.0.0.1]:55182: SMTP error from remote mail server after RCPT TO:<user@baz.example>: 550 5.1.1 no such user DT=0.000s";
        let Some(Observation::Status { kind, reply, .. }) = parse_line(bounced) else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Bounced);
        assert_eq!(reply.unwrap().code.get(), 550);
        let expired = "2026-12-01 11:10:41.333 [397] 1xYLiu-00001f-2T ** user@qux.example: retry timeout exceeded";
        let Some(Observation::Status {
            kind,
            recipient,
            reason,
            ..
        }) = parse_line(expired)
        else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Bounced);
        assert_eq!(recipient.as_str(), "user@qux.example");
        assert_eq!(reason, "retry timeout exceeded");
        let not_yet = "2026-12-01 11:08:48.937 [215] 1xYLj5-00002J-2o == user@r451.example routing defer (-52) DT=0.000s: retry time not reached";
        assert!(matches!(
            parse_line(not_yet),
            Some(Observation::Status {
                kind: DispositionKind::Deferred,
                ..
            })
        ));
        assert_eq!(
            parse_line("2026-12-01 11:08:36.669 [71] Start queue run: pid=71"),
            None
        );
        assert_eq!(
            parse_line(
                "2026-12-01 11:08:36.755 [99] 1xYLiu-00001Z-2Q => :blackhole: <probe@mta.probe.invalid> R=local_blackhole"
            ),
            None
        );
        assert_eq!(parse_line(""), None);
    }
}
