//! Postfix: configuration from `crates/mxsim-live/mta/postfix/`, the queue on a tmpfs, the log
//! in a file (`maillog_file`, there is no syslog in the namespace), and the verdict read from
//! the log's `status=` lines.

use std::net::IpAddr;

use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::DispositionKind;
use mxsim_model::smtp::Reply;

use super::Observation;

use std::path::{Path, PathBuf};

use mxsim_model::time::Duration;

use super::{Driver, Setup, fill};
use crate::clock::scaled_seconds;
use crate::namespace::{self, run};

/// The configuration templates, kept in the repository beside `install.sh`.
const MAIN_CF: &str = include_str!("../../mta/postfix/main.cf");
const MASTER_CF: &str = include_str!("../../mta/postfix/master.cf");

/// Postfix's own defaults for the times live mode scales (postconf(5), Postfix 3.7; the same in
/// 3.10), in scenario time. The `postfix-3.10` preset models the same values (a test holds the
/// two together): `smtp_connect_timeout`, `smtp_helo_timeout` (greeting and EHLO),
/// `smtp_mail_timeout`, `smtp_rcpt_timeout`, `smtp_data_init_timeout`,
/// `smtp_data_xfer_timeout`, `smtp_data_done_timeout`, `smtp_quit_timeout`,
/// `minimal_backoff_time`, `maximal_backoff_time`, `queue_run_delay`,
/// `smtp_connection_cache_time_limit`, `maximal_queue_lifetime`.
pub const DEFAULTS: &[(&str, Duration)] = &[
    ("connect_timeout", Duration::seconds(30)),
    ("helo_timeout", Duration::seconds(300)),
    ("mail_timeout", Duration::seconds(300)),
    ("rcpt_timeout", Duration::seconds(300)),
    ("data_init_timeout", Duration::seconds(120)),
    ("data_xfer_timeout", Duration::seconds(180)),
    ("data_done_timeout", Duration::seconds(600)),
    ("quit_timeout", Duration::seconds(300)),
    ("minimal_backoff", Duration::seconds(300)),
    ("maximal_backoff", Duration::seconds(4000)),
    ("queue_run_delay", Duration::seconds(300)),
    ("cache_time_limit", Duration::seconds(2)),
    ("queue_lifetime", Duration::days(5)),
];

/// The default named `key`.
pub fn default(key: &str) -> Duration {
    super::lookup(DEFAULTS, key)
}

/// The Postfix driver.
pub struct Postfix {
    version: String,
    root: PathBuf,
    log_file: PathBuf,
    read: usize,
    pending: String,
}

impl Postfix {
    /// A driver for the Postfix unpacked under `root`.
    pub fn new(version: String, root: PathBuf) -> Postfix {
        Postfix {
            version,
            root,
            log_file: PathBuf::from("/tmp/mxsim-live/postfix.log"),
            read: 0,
            pending: String::new(),
        }
    }
}

/// The values of main.cf's placeholders for `setup`.
pub fn main_cf(setup: &Setup<'_>, log_file: &Path) -> String {
    let mut values: Vec<(&str, String)> = DEFAULTS
        .iter()
        .map(|(key, value)| (*key, format!("{}s", scaled_seconds(*value, setup.scale))))
        .collect();
    values.push(("myhostname", setup.scenario.client.name.as_str().to_owned()));
    values.push(("log_file", log_file.display().to_string()));
    // Bounce notices go to the senders' domains: discard them there, so they leave no DNS
    // queries or connections in the trace and the queue holds only the scenario's mail.
    let sinks = super::sink_domains(setup.scenario);
    let map = sinks
        .iter()
        .map(|domain| format!("{domain}=discard:bounce-notice"))
        .collect::<Vec<_>>()
        .join(", ");
    values.push(("discard_domains", map));
    fill(MAIN_CF, &values)
}

impl Driver for Postfix {
    fn version(&self) -> &str {
        &self.version
    }

    fn connect_timeout(&self) -> Duration {
        default("connect_timeout")
    }

    async fn configure(&mut self, setup: &Setup<'_>) -> Result<(), String> {
        self.log_file = setup.work.join("postfix.log");
        crate::mta::overlay(&self.root, &["usr", "etc", "var/spool", "var/lib"])?;
        // The package's own files (postfix-files, dynamicmaps.cf, …), then ours over them.
        let config = setup.work.join("etc-postfix");
        std::fs::create_dir_all(&config).map_err(|error| error.to_string())?;
        run("cp", &["-a", "/etc/postfix/.", &config.to_string_lossy()])?;
        std::fs::write(config.join("main.cf"), main_cf(setup, &self.log_file))
            .map_err(|error| format!("cannot write main.cf: {error}"))?;
        std::fs::write(config.join("master.cf"), MASTER_CF)
            .map_err(|error| format!("cannot write master.cf: {error}"))?;
        namespace::bind(&config, Path::new("/etc/postfix"))?;
        namespace::tmpfs(Path::new("/var/spool/postfix"), "mode=0755")?;
        namespace::tmpfs(Path::new("/var/lib/postfix"), "mode=0755")?;
        run("chown", &["postfix:postfix", "/var/lib/postfix"])?;
        std::fs::write(&self.log_file, "").map_err(|error| error.to_string())?;
        run("postfix", &["check"])
    }

    async fn start(&mut self) -> Result<(), String> {
        run("postfix", &["start"])
    }

    async fn inject(
        &mut self,
        _index: usize,
        from: &Mailbox,
        to: &[Mailbox],
        text: &str,
    ) -> Result<(), String> {
        let arguments = super::submission(&["-i"], from, to);
        crate::mta::pipe("sendmail", &arguments, text).await
    }

    async fn force_retry(&mut self) -> Result<(), String> {
        run("postqueue", &["-f"])
    }

    fn observations(&mut self) -> Vec<Observation> {
        let lines = crate::mta::new_lines(&self.log_file, &mut self.read, &mut self.pending);
        lines.iter().filter_map(|line| parse_line(line)).collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    async fn stop(&mut self) {
        let _ = run("postfix", &["stop"]);
    }
}

/// Parses one line of Postfix's log into what it reports, if anything live mode reads.
///
/// The lines read (Postfix 3.7, `smtp(8)`, `cleanup(8)`, `qmgr(8)`; samples in
/// `crates/mxsim-live/mta/enter.md`):
/// - `cleanup[…]: QID: message-id=<mxsim.N@mxsim.invalid>`: message N is queued as QID;
/// - `smtp[…]: connect to HOST[ADDR]:25: Connection refused` (or `Connection timed out`);
/// - `smtp[…]: QID: to=<R>, relay=HOST[ADDR]:25, …, status=sent|deferred|bounced (TEXT)`;
/// - `qmgr[…]: QID: from=<S>, status=expired, returned to sender`.
pub fn parse_line(line: &str) -> Option<Observation> {
    let start = line.find("postfix")?;
    let rest = &line[start..];
    let (_, text) = rest.split_once("]: ")?;
    if let Some(connect) = text.strip_prefix("connect to ") {
        return connect_failed(connect);
    }
    let (queue_id, text) = text.split_once(": ")?;
    if !queue_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if let Some(id) = text.strip_prefix("message-id=<mxsim.") {
        let message = id.split_once('@')?.0.parse().ok()?;
        return Some(Observation::Queued {
            message,
            queue_id: queue_id.to_owned(),
        });
    }
    if text.starts_with("from=<") && text.contains("status=expired") {
        return Some(Observation::Expired {
            queue_id: queue_id.to_owned(),
        });
    }
    if let Some(connect) = text.strip_prefix("connect to ") {
        return connect_failed(connect);
    }
    let recipient = text.strip_prefix("to=<")?.split_once('>')?.0;
    let recipient = Mailbox::parse(recipient).ok()?;
    let (_, status) = text.split_once(", status=")?;
    let (word, reason) = status.split_once(' ').unwrap_or((status, ""));
    let kind = match word {
        "sent" => DispositionKind::Delivered,
        "deferred" => DispositionKind::Deferred,
        "bounced" | "expired" | "undeliverable" => DispositionKind::Bounced,
        _ => return None,
    };
    let reason = reason
        .strip_prefix('(')
        .and_then(|reason| reason.strip_suffix(')'))
        .unwrap_or(reason)
        .to_owned();
    let relay = text
        .split_once(", relay=")
        .and_then(|(_, relay)| host_address(relay.split(',').next()?));
    let reply = if kind == DispositionKind::Delivered {
        Reply::parse(&reason).ok()
    } else {
        reason
            .split_once(" said: ")
            .map(|(_, said)| said.split(" (in reply to").next().unwrap_or(said))
            .and_then(|said| Reply::parse(said).ok())
    };
    Some(Observation::Status {
        queue_id: queue_id.to_owned(),
        recipient,
        kind,
        relay,
        reply,
        reason,
    })
}

/// `HOST[ADDR]:25: Connection refused` and `…: Connection timed out`.
fn connect_failed(text: &str) -> Option<Observation> {
    let (target, error) = text.split_once(": ")?;
    let refused = match error {
        error if error.starts_with("Connection refused") => true,
        error if error.starts_with("Connection timed out") => false,
        _ => return None,
    };
    let (host, address) = host_address(target)?;
    Some(Observation::ConnectFailed {
        host,
        address,
        refused,
    })
}

/// `HOST[ADDR]:PORT` or `HOST[ADDR]`.
fn host_address(text: &str) -> Option<(Name, IpAddr)> {
    let (host, rest) = text.split_once('[')?;
    let (address, _) = rest.split_once(']')?;
    Some((Name::parse(host).ok()?, address.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The times written into Postfix's configuration are the ones the `postfix-3.10` preset
    /// models, so a live run and the preset's run wait the same (scaled) times.
    #[test]
    fn the_configuration_is_the_presets() {
        let preset = mxsim_policy::registry::preset("postfix-3.10").expect("a preset");
        let settings = &preset.settings;
        let timeouts = &settings.timeouts;
        assert_eq!(default("connect_timeout"), timeouts.connect);
        assert_eq!(default("helo_timeout"), timeouts.greeting);
        assert_eq!(default("helo_timeout"), timeouts.ehlo);
        assert_eq!(default("mail_timeout"), timeouts.mail);
        assert_eq!(default("rcpt_timeout"), timeouts.rcpt);
        assert_eq!(default("data_init_timeout"), timeouts.data);
        assert_eq!(default("data_done_timeout"), timeouts.end_of_data);
        assert_eq!(default("quit_timeout"), timeouts.quit);
        assert_eq!(Some(default("queue_run_delay")), settings.queue.scan);
        assert_eq!(default("queue_lifetime"), settings.queue.lifetime);
        let reuse = settings
            .reuse
            .as_ref()
            .expect("the preset caches connections");
        assert_eq!(default("cache_time_limit"), reuse.keep);
        // main.cf keeps `smtp_connection_cache_on_demand = yes`, Postfix's default.
        assert!(MAIN_CF.contains("smtp_connection_cache_on_demand = yes"));
        assert!(reuse.on_demand);
    }

    #[test]
    fn every_placeholder_is_filled() {
        let text = super::super::with_test_setup(0.05, |setup| {
            main_cf(setup, Path::new("/tmp/mxsim-live/postfix.log"))
        });
        assert!(text.contains("smtp_helo_timeout = 15s"), "{text}");
        assert!(text.contains("smtp_connect_timeout = 2s"), "{text}");
        assert!(text.contains("myhostname = mta.sender.example"), "{text}");
        assert!(
            text.contains("transport_maps = inline:{ mta.sender.example=discard:bounce-notice, sender.example=discard:bounce-notice }"),
            "{text}"
        );
    }

    #[test]
    fn the_lines_live_mode_reads() {
        let queued = "Dec  1 11:22:33 mta postfix/cleanup[210]: 4B1C2A0E5: message-id=<mxsim.1@mxsim.invalid>";
        assert_eq!(
            parse_line(queued),
            Some(Observation::Queued {
                message: 1,
                queue_id: "4B1C2A0E5".to_owned()
            })
        );
        let refused = "Dec  1 11:22:33 mta postfix/smtp[211]: connect to smtp2.foo.example[192.0.2.2]:25: Connection refused";
        assert_eq!(
            parse_line(refused),
            Some(Observation::ConnectFailed {
                host: Name::parse("smtp2.foo.example").unwrap(),
                address: "192.0.2.2".parse().unwrap(),
                refused: true,
            })
        );
        let sent = "Dec  1 11:22:34 mta postfix/smtp[211]: 4B1C2A0E5: to=<user@foo.example>, relay=smtp1.foo.example[192.0.2.1]:25, delay=0.05, delays=0.01/0/0.02/0.02, dsn=2.0.0, status=sent (250 2.0.0 queued)";
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
                "192.0.2.1".parse().unwrap()
            ))
        );
        assert_eq!(reply.unwrap().code.get(), 250);
        let bounced = "Dec  1 11:22:34 mta postfix/smtp[211]: 4B1C2A0E5: to=<user@foo.example>, relay=smtp1.foo.example[192.0.2.1]:25, delay=0.05, delays=0.01/0/0.02/0.02, dsn=5.1.1, status=bounced (host smtp1.foo.example[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command))";
        let Some(Observation::Status { kind, reply, .. }) = parse_line(bounced) else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Bounced);
        assert_eq!(reply.unwrap().code.get(), 550);
        let deferred = "Dec  1 11:22:34 mta postfix/smtp[211]: 4B1C2A0E5: to=<user@foo.example>, relay=none, delay=3, delays=0/0/3/0, dsn=4.4.1, status=deferred (connect to smtp1.foo.example[192.0.2.1]:25: Connection refused)";
        let Some(Observation::Status {
            kind,
            relay,
            reason,
            ..
        }) = parse_line(deferred)
        else {
            panic!("a status line");
        };
        assert_eq!(kind, DispositionKind::Deferred);
        assert_eq!(relay, None);
        assert!(reason.starts_with("connect to"));
        let expired = "Dec  1 11:22:35 mta postfix/qmgr[205]: 4B1C2A0E5: from=<sender@sender.example>, status=expired, returned to sender";
        assert_eq!(
            parse_line(expired),
            Some(Observation::Expired {
                queue_id: "4B1C2A0E5".to_owned()
            })
        );
        assert_eq!(
            parse_line("Dec  1 11:22:35 mta postfix/master[1]: daemon started -- version 3.7.11"),
            None
        );
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("postfix]: x"), None);
    }
}
