//! OpenSMTPD 6.8: a relay-only configuration from `crates/mxsim-live/mta/opensmtpd/`, the
//! queue on a tmpfs, `smtpd -d` in the foreground with its log on standard error, local
//! submission with `sendmail` (smtpctl), `smtpctl schedule all` to force a retry, and the
//! verdict read from its `mta delivery` lines.
//!
//! OpenSMTPD 6.8 has no settings for its SMTP timeouts (one 300 s I/O timeout,
//! `mta_session.c`) or its retry intervals (400 s × n², `scheduler_ramqueue.c`): it always runs
//! in real time ([`crate::mta::Mta::scales`]), and files its preset predicts to take too long
//! are skipped with the reason.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mxsim_model::name::{Mailbox, Name};
use mxsim_model::outcome::DispositionKind;
use mxsim_model::smtp::Reply;
use mxsim_model::time::Duration;

use super::{Driver, Observation, Setup, fill};
use crate::namespace::{self, run};

/// The configuration template, kept in the repository beside `install.sh`.
const SMTPD_CONF: &str = include_str!("../../mta/opensmtpd/smtpd.conf");

/// OpenSMTPD's one I/O timeout, for the connect and every reply: `mta_session.c`
/// `io_set_timeout(s->io, 300000)`, as the `opensmtpd-7` preset models it.
pub const IO_TIMEOUT: Duration = Duration::minutes(5);

/// The OpenSMTPD driver.
pub struct Opensmtpd {
    version: String,
    root: PathBuf,
    config: PathBuf,
    log_file: PathBuf,
    read: usize,
    pending: String,
    daemon: Option<tokio::process::Child>,
    /// Message indices in the order they were handed over: the k-th queued message id is the
    /// k-th of them (the log names no Message-ID).
    injected: Vec<usize>,
    /// Message ids seen so far, in order.
    queued: Vec<String>,
    /// Each session's address, from its `mta connecting` line, and whether it connected.
    sessions: Vec<(String, IpAddr, bool)>,
    /// The host each address stands for in the scenario.
    names: Vec<(IpAddr, Name)>,
}

impl Opensmtpd {
    /// A driver for the OpenSMTPD unpacked under `root`.
    pub fn new(version: String, root: PathBuf) -> Opensmtpd {
        Opensmtpd {
            version,
            root,
            config: PathBuf::from("/tmp/mxsim-live/smtpd.conf"),
            log_file: PathBuf::from("/tmp/mxsim-live/smtpd.log"),
            read: 0,
            pending: String::new(),
            daemon: None,
            injected: Vec::new(),
            queued: Vec::new(),
            sessions: Vec::new(),
            names: Vec::new(),
        }
    }

    fn name_of(&self, address: IpAddr) -> Option<Name> {
        self.names
            .iter()
            .find(|(at, _)| *at == address)
            .map(|(_, name)| name.clone())
    }

    /// What one line reports, in the driver's state.
    fn read_line(&mut self, line: &str) -> Option<Observation> {
        match parse_line(line)? {
            Line::Envelope { message_id } => {
                if self.queued.contains(&message_id) {
                    return None;
                }
                let message = *self.injected.get(self.queued.len())?;
                self.queued.push(message_id.clone());
                Some(Observation::Queued {
                    message,
                    queue_id: message_id,
                })
            }
            Line::Connecting { session, address } => {
                self.sessions.push((session, address, false));
                None
            }
            Line::Connected { session } => {
                if let Some(entry) = self.sessions.iter_mut().find(|(id, ..)| *id == session) {
                    entry.2 = true;
                }
                None
            }
            Line::Error { session, refused } => {
                let &(_, address, connected) =
                    self.sessions.iter().find(|(id, ..)| *id == session)?;
                if connected {
                    return None;
                }
                Some(Observation::ConnectFailed {
                    host: self.name_of(address)?,
                    address,
                    refused,
                })
            }
            Line::Delivery {
                message_id,
                recipient,
                kind,
                relay,
                stat,
            } => {
                let relay = relay.and_then(|address| Some((self.name_of(address)?, address)));
                let reply = Reply::parse(&stat).ok();
                Some(Observation::Status {
                    queue_id: message_id,
                    recipient,
                    kind,
                    relay,
                    reply,
                    reason: stat,
                })
            }
        }
    }
}

/// The configuration for `setup`: relay everything, and keep bounce notices to the senders'
/// domains local (`sink`), so they leave no DNS queries or connections in the trace.
pub fn smtpd_conf(setup: &Setup<'_>) -> String {
    let sinks = super::sink_domains(setup.scenario).join(", ");
    fill(
        SMTPD_CONF,
        &[
            ("myhostname", setup.scenario.client.name.as_str().to_owned()),
            ("sink_domains", sinks),
        ],
    )
}

impl Driver for Opensmtpd {
    fn version(&self) -> &str {
        &self.version
    }

    fn connect_timeout(&self) -> Duration {
        IO_TIMEOUT
    }

    async fn configure(&mut self, setup: &Setup<'_>) -> Result<(), String> {
        self.config = setup.work.join("smtpd.conf");
        self.log_file = setup.work.join("smtpd.log");
        self.names = setup
            .scenario
            .servers
            .iter()
            .flat_map(|server| server.addresses.iter().copied())
            .filter_map(|address| Some((address, crate::record::host_at(setup.scenario, address)?)))
            .collect();
        crate::mta::overlay(&self.root, &["usr", "etc", "var/spool", "var/lib"])?;
        // The control socket and the pid file are compiled in under /run (/var/run links there).
        namespace::tmpfs(Path::new("/run"), "mode=0755")?;
        namespace::tmpfs(Path::new("/var/spool/smtpd"), "mode=0711")?;
        std::fs::write(&self.config, smtpd_conf(setup))
            .map_err(|error| format!("cannot write smtpd.conf: {error}"))?;
        run("smtpd", &["-n", "-f", &self.config.to_string_lossy()])
    }

    async fn start(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(&self.log_file)
            .map_err(|error| format!("cannot create {}: {error}", self.log_file.display()))?;
        let errors = log
            .try_clone()
            .map_err(|error| format!("cannot share {}: {error}", self.log_file.display()))?;
        let child = tokio::process::Command::new("smtpd")
            .args(["-d", "-f", &self.config.to_string_lossy()])
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(errors)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot run `smtpd`: {error}"))?;
        self.daemon = Some(child);
        // Ready when the control socket answers (smtpctl, and so sendmail, need it).
        for _ in 0..1000 {
            if Path::new("/run/smtpd.sock").exists() && run("smtpctl", &["show", "status"]).is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.daemon.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("smtpd ended at start ({status})"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err("smtpd did not open /run/smtpd.sock within 10 s".to_owned())
    }

    async fn inject(
        &mut self,
        index: usize,
        from: &Mailbox,
        to: &[Mailbox],
        text: &str,
    ) -> Result<(), String> {
        let arguments = super::submission(&[], from, to);
        self.injected.push(index);
        crate::mta::pipe("sendmail", &arguments, text).await
    }

    async fn force_retry(&mut self) -> Result<(), String> {
        run("smtpctl", &["schedule", "all"])
    }

    fn observations(&mut self) -> Vec<Observation> {
        let lines = crate::mta::new_lines(&self.log_file, &mut self.read, &mut self.pending);
        lines
            .iter()
            .filter_map(|line| self.read_line(line))
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// One line of `smtpd -d`'s log that live mode reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// `SESSION smtp envelope evpid=EVPID from=<…> to=<…>`: a submitted envelope; its message
    /// id is the envelope id's first eight hex digits.
    Envelope {
        /// The message id.
        message_id: String,
    },
    /// `SESSION mta connecting address=smtp://ADDR:25 host=…`.
    Connecting {
        /// The session.
        session: String,
        /// The address.
        address: IpAddr,
    },
    /// `SESSION mta connected`.
    Connected {
        /// The session.
        session: String,
    },
    /// `SESSION mta error reason=IO Error: Connection refused` (or timed out).
    Error {
        /// The session.
        session: String,
        /// Refused, else timed out.
        refused: bool,
    },
    /// `SESSION mta delivery evpid=… to=<R> … relay="ADDR (NAME)" … result="Ok" stat="…"`.
    Delivery {
        /// The message id.
        message_id: String,
        /// The recipient.
        recipient: Mailbox,
        /// `Ok`, `PermFail`, `TempFail`.
        kind: DispositionKind,
        /// The relay's address, when the attempt reached one.
        relay: Option<IpAddr>,
        /// The server's reply or OpenSMTPD's words.
        stat: String,
    },
}

/// Parses one log line (OpenSMTPD 6.8.0p2; samples in `crates/mxsim-live/mta/enter.md`).
pub fn parse_line(line: &str) -> Option<Line> {
    let (session, text) = line.split_once(' ')?;
    if session.len() != 16 || !session.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let session = session.to_owned();
    if let Some(envelope) = text.strip_prefix("smtp envelope evpid=") {
        let id = envelope.split(' ').next()?;
        return Some(Line::Envelope {
            message_id: id.get(..8)?.to_owned(),
        });
    }
    if let Some(connecting) = text.strip_prefix("mta connecting address=") {
        let target = connecting.split(' ').next()?;
        let target = target.strip_prefix("smtp://").unwrap_or(target);
        let (address, _) = target.rsplit_once(':')?;
        let address = address.trim_start_matches('[').trim_end_matches(']');
        return Some(Line::Connecting {
            session,
            address: address.parse().ok()?,
        });
    }
    if text == "mta connected" {
        return Some(Line::Connected { session });
    }
    if let Some(error) = text.strip_prefix("mta error reason=") {
        let refused = if error.contains("Connection refused") {
            true
        } else if error.contains("timed out") || error.contains("timeout") {
            false
        } else {
            return None;
        };
        return Some(Line::Error { session, refused });
    }
    let delivery = text.strip_prefix("mta delivery evpid=")?;
    let id = delivery.split(' ').next()?;
    let recipient = delivery.split_once(" to=<")?.1.split_once('>')?.0;
    let field = |name: &str| -> Option<&str> {
        let (_, after) = delivery.split_once(&format!(" {name}=\""))?;
        Some(after.split_once('"')?.0)
    };
    let kind = match field("result")? {
        "Ok" => DispositionKind::Delivered,
        "TempFail" => DispositionKind::Deferred,
        "PermFail" => DispositionKind::Bounced,
        _ => return None,
    };
    let relay = field("relay").and_then(|relay| relay.split(' ').next()?.parse().ok());
    Some(Line::Delivery {
        message_id: id.get(..8)?.to_owned(),
        recipient: Mailbox::parse(recipient).ok()?,
        kind,
        relay,
        stat: field("stat").unwrap_or("").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timeout a timed-out attempt is dated by is the one the `opensmtpd-7` preset models.
    #[test]
    fn the_timeout_is_the_presets() {
        let preset = mxsim_policy::registry::preset("opensmtpd-7").expect("a preset");
        let timeouts = &preset.settings.timeouts;
        assert_eq!(IO_TIMEOUT, timeouts.connect);
        assert_eq!(IO_TIMEOUT, timeouts.greeting);
        assert_eq!(IO_TIMEOUT, timeouts.end_of_data);
    }

    #[test]
    fn every_placeholder_is_filled() {
        let text = super::super::with_test_setup(1.0, smtpd_conf);
        assert!(text.contains("helo mta.sender.example"), "{text}");
        assert!(
            text.contains("{ mta.sender.example, sender.example }"),
            "{text}"
        );
    }

    #[test]
    fn the_lines_live_mode_reads() {
        assert_eq!(
            parse_line(
                "5156a369690f4998 smtp envelope evpid=52fc6e72d8aa59af from=<probe@mta.probe.invalid> to=<user@foo.example>"
            ),
            Some(Line::Envelope {
                message_id: "52fc6e72".to_owned()
            })
        );
        assert_eq!(
            parse_line(
                "5156a372efaf5e99 mta connecting address=smtp://127.0.0.11:25 host=127.0.0.11"
            ),
            Some(Line::Connecting {
                session: "5156a372efaf5e99".to_owned(),
                address: "127.0.0.11".parse().unwrap()
            })
        );
        assert_eq!(
            parse_line("5156a372efaf5e99 mta error reason=IO Error: Connection refused"),
            Some(Line::Error {
                session: "5156a372efaf5e99".to_owned(),
                refused: true
            })
        );
        assert_eq!(
            parse_line("5156a381672507a4 mta error reason=BANNER rejected: 421 smtp5 go away"),
            None
        );
        let sent = "5156a36d0b1a8646 mta delivery evpid=52fc6e72d8aa59af from=<probe@mta.probe.invalid> to=<user@foo.example> rcpt=<-> source=\"127.0.0.1\" relay=\"127.0.0.10 (127.0.0.10)\" delay=0s result=\"Ok\" stat=\"250 queued as smtp1-1796123957249\"";
        assert_eq!(
            parse_line(sent),
            Some(Line::Delivery {
                message_id: "52fc6e72".to_owned(),
                recipient: Mailbox::parse("user@foo.example").unwrap(),
                kind: DispositionKind::Delivered,
                relay: Some("127.0.0.10".parse().unwrap()),
                stat: "250 queued as smtp1-1796123957249".to_owned(),
            })
        );
        let network = "0000000000000000 mta delivery evpid=e1949e79a7c9398b from=<probe@mta.probe.invalid> to=<user@bar.example> rcpt=<-> source=\"-\" relay=\"bar.example\" delay=11s result=\"TempFail\" stat=\"Network error on destination MXs\"";
        let Some(Line::Delivery { kind, relay, .. }) = parse_line(network) else {
            panic!("a delivery line");
        };
        assert_eq!((kind, relay), (DispositionKind::Deferred, None));
        let bounced = "5156a37722b86768 mta delivery evpid=ca78e7e2116baf96 from=<probe@mta.probe.invalid> to=<user@baz.example> rcpt=<-> source=\"127.0.0.1\" relay=\"127.0.0.12 (127.0.0.12)\" delay=0s result=\"PermFail\" stat=\"550 5.1.1 no such user\"";
        let Some(Line::Delivery { kind, .. }) = parse_line(bounced) else {
            panic!("a delivery line");
        };
        assert_eq!(kind, DispositionKind::Bounced);
        assert_eq!(
            parse_line("smtp-out: Disabling route [] <-> 127.0.0.11 (127.0.0.11) for 15s"),
            None
        );
        assert_eq!(parse_line("info: OpenSMTPD 6.8.0p2 starting"), None);
        assert_eq!(parse_line(""), None);
    }

    /// The k-th queued message id is the k-th message handed over; a connect failure is
    /// reported for a session that never connected, with the scenario's name for the address.
    #[test]
    fn the_driver_maps_messages_and_sessions() {
        let mut driver = Opensmtpd::new("6.8".to_owned(), PathBuf::from("/nonexistent"));
        driver.injected = vec![3];
        driver.names = vec![(
            "192.0.2.11".parse().unwrap(),
            Name::parse("smtp2.foo.example").unwrap(),
        )];
        assert_eq!(
            driver.read_line("aaaaaaaaaaaaaaaa smtp envelope evpid=0123456789abcdef from=<a@b.example> to=<u@foo.example>"),
            Some(Observation::Queued {
                message: 3,
                queue_id: "01234567".to_owned()
            })
        );
        assert_eq!(
            driver.read_line("aaaaaaaaaaaaaaaa smtp envelope evpid=0123456789abcd00 from=<a@b.example> to=<v@foo.example>"),
            None
        );
        assert_eq!(
            driver.read_line(
                "bbbbbbbbbbbbbbbb mta connecting address=smtp://192.0.2.11:25 host=192.0.2.11"
            ),
            None
        );
        assert_eq!(
            driver.read_line("bbbbbbbbbbbbbbbb mta error reason=IO Error: Connection refused"),
            Some(Observation::ConnectFailed {
                host: Name::parse("smtp2.foo.example").unwrap(),
                address: "192.0.2.11".parse().unwrap(),
                refused: true
            })
        );
    }
}
