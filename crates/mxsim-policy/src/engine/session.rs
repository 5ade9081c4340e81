//! One candidate: open a session (no effect on recipients), search for wanted keywords if the
//! policy does, then check required keywords and run the transaction.

use std::cell::Cell;
use std::sync::Arc;

use mxsim_model::outcome::Disposition;
use mxsim_model::smtp::{Command, Keyword, Reply, ReplyClass, find_keyword};
use mxsim_model::time::{Duration, Instant};
use mxsim_model::world::{Connect, Handshake, Job, MailParameters, ReuseKey, Session, World};

use super::{Attempt, Candidate, Failed, Flow, Got, Last, Opened, Tried, ask, classify};
use crate::settings::{
    Failure, KeywordAction, ReuseBy, Settings, Stage, StarttlsRefused, TlsFallback, TlsUse,
    WantedAction,
};

/// Sends QUIT; the reply does not matter.
pub(super) async fn quit<S: Session>(world: &impl World, session: &mut S, limit: Duration) {
    let _ = world.timeout(limit, session.quit()).await;
}

impl<W: World> Attempt<'_, '_, W> {
    /// Opens a session to `candidates[index]` and uses it; retries in plaintext when
    /// opportunistic TLS fails and the policy says so.
    pub(super) async fn try_candidate(
        &mut self,
        candidates: &[Candidate],
        index: usize,
        tried: &mut Tried,
    ) -> (Flow, usize) {
        if let Some(opened) = self.reuse_for_address(candidates, index).await {
            self.connected = true;
            return self.use_session(candidates, opened, tried).await;
        }
        let mut plaintext = false;
        loop {
            match self.opener().open(candidates, index, plaintext, None).await {
                Ok(opened) => {
                    self.connected = true;
                    self.reached(candidates[index].address);
                    return self.use_session(candidates, opened, tried).await;
                }
                Err(failed) if failed.tls_optional => {
                    self.last_error = failed.reason;
                    match self.settings.tls_fallback {
                        Some(TlsFallback::Plaintext) if !plaintext => plaintext = true,
                        Some(TlsFallback::NextHost) => return (Flow::NextHost, index),
                        _ => return (Flow::NextAddress, index),
                    }
                }
                Err(failed) => {
                    self.unasked = true;
                    // Decided after opening: EHLO may have lowered the after-EHLO ceiling.
                    let last = self.last(candidates, tried, &candidates[index].host, false);
                    let everyone = self.pending.clone();
                    return (self.fail(failed, &everyone, last), index);
                }
            }
        }
    }

    /// Required keywords, SIZE, the wanted-keyword search, then the transaction.
    pub(super) async fn use_session(
        &mut self,
        candidates: &[Candidate],
        opened: Opened<W::Session>,
        tried: &mut Tried,
    ) -> (Flow, usize) {
        let Opened {
            mut session,
            keywords,
            index,
        } = opened;
        let candidate = &candidates[index];
        if let Some(flow) = self
            .check_required(&mut session, candidate, &keywords)
            .await
        {
            return (flow, index);
        }
        self.missing = None;
        self.same_preference_only = None;
        self.capable = true;
        let (mut session, keywords, index) =
            if self.lacks_wanted(&keywords) && self.settings.wanted != WantedAction::Ignore {
                self.search(
                    candidates,
                    Opened {
                        session,
                        keywords,
                        index,
                    },
                    tried,
                )
                .await
            } else {
                (session, keywords, index)
            };
        // The search may have moved the transaction to another host.
        self.current = Some(candidates[index].address);
        if let Some(flow) = self.requeue_for_wanted(&mut session, &keywords).await {
            return (flow, index);
        }
        // The session that reaches the limit is the final one (Postfix's rule): decide before
        // counting it.
        let last = self.last(candidates, tried, &candidates[index].host, true);
        self.sessions += 1;
        let flow = self
            .transaction(&mut session, &candidates[index], last, &keywords)
            .await;
        if std::mem::take(&mut self.reusable)
            && let Some(reuse) = self.settings.reuse
        {
            let key = match reuse.by {
                ReuseBy::Address => ReuseKey::Address(candidates[index].address),
                ReuseBy::Domain => ReuseKey::Domain(self.domain.clone()),
            };
            self.world.park(key, session, keywords, reuse.keep);
        }
        (flow, index)
    }

    /// A cached session to this candidate's address, after a good RSET (Postfix's connection
    /// cache, Exim's waiting messages); `None` when there is none or RSET fails.
    pub(super) async fn reuse_for_address(
        &mut self,
        candidates: &[Candidate],
        index: usize,
    ) -> Option<Opened<W::Session>> {
        self.settings
            .reuse
            .filter(|reuse| reuse.by == ReuseBy::Address && self.caching)?;
        let reused = self
            .world
            .reuse(&ReuseKey::Address(candidates[index].address))?;
        let (session, keywords) = self.reset(reused.session, reused.keywords).await?;
        // The session answered EHLO when it was opened: it counts for the after-EHLO rule.
        if self.settings.same_or_better_after_ehlo {
            let preference = candidates[index].preference;
            self.ceiling.set(Some(
                self.ceiling
                    .get()
                    .map_or(preference, |ceiling| ceiling.min(preference)),
            ));
        }
        Some(Opened {
            session,
            keywords,
            index,
        })
    }

    /// A cached session for this domain (maddy's pool): the transaction goes down it with no MX
    /// selection. True when that settled every recipient of the domain.
    pub(super) async fn reuse_for_domain(&mut self) -> bool {
        if self
            .settings
            .reuse
            .is_none_or(|reuse| reuse.by != ReuseBy::Domain)
            || !self.caching
        {
            return false;
        }
        let Some(reused) = self.world.reuse(&ReuseKey::Domain(self.domain.clone())) else {
            return false;
        };
        let candidates = [Candidate {
            host: reused.host.clone(),
            preference: 0,
            address: reused.address,
        }];
        let Some((session, keywords)) = self.reset(reused.session, reused.keywords).await else {
            return false;
        };
        self.connected = true;
        self.current = Some(reused.address);
        self.reused = Some(reused.address);
        let mut tried = Tried::new(&candidates);
        tried.mark(0);
        let opened = Opened {
            session,
            keywords,
            index: 0,
        };
        let _ = self.use_session(&candidates, opened, &mut tried).await;
        self.pending.is_empty()
    }

    /// RSET on a cached session: the session back when the server answers 2yz.
    async fn reset(
        &self,
        mut session: W::Session,
        keywords: Arc<[Keyword]>,
    ) -> Option<(W::Session, Arc<[Keyword]>)> {
        match ask(self.world, self.settings.timeouts.quit, session.rset()).await {
            Got::Reply(reply) if reply.class() == ReplyClass::Positive => Some((session, keywords)),
            Got::Reply(_) => {
                quit(self.world, &mut session, self.settings.timeouts.quit).await;
                None
            }
            Got::Timeout | Got::Closed => None,
        }
    }

    /// The rule that decides for this host's keywords, if a required keyword is missing and its
    /// rule is not to send anyway. Among several missing keywords the strictest rule wins, in a
    /// fixed order that does not depend on how `requires` lists them. `downgrade` counts as
    /// `ignore` when the conversion works, and as strict as `bounce` when it cannot (SMTPUTF8
    /// with a non-ASCII local part, RFC 6531 §3.2).
    fn missing_required(&self, keywords: &[Keyword]) -> Option<(KeywordAction, String)> {
        let message = self.job.message;
        let implied_starttls = self.requires_tls()
            && !message
                .requires
                .iter()
                .any(|k| k.eq_ignore_ascii_case("STARTTLS"));
        let required = message
            .requires
            .iter()
            .map(|keyword| &**keyword)
            .chain(implied_starttls.then_some("STARTTLS"))
            .chain(implied_smtputf8(message).then_some("SMTPUTF8"));
        let requiretls_known = self.settings.knows_requiretls()
            && message
                .requires
                .iter()
                .any(|k| k.eq_ignore_ascii_case("REQUIRETLS"));
        let convertible = |keyword: &str| {
            !keyword.eq_ignore_ascii_case("SMTPUTF8")
                || (!message.from.is_internationalized()
                    && !message.to.iter().any(|to| to.is_internationalized()))
        };
        let strictness = |action: KeywordAction, keyword: &str| match action {
            KeywordAction::Ignore => None,
            KeywordAction::Downgrade if convertible(keyword) => None,
            KeywordAction::Downgrade => Some(KeywordAction::Bounce.strictness()),
            other => Some(other.strictness()),
        };
        required
            .filter(|keyword| find_keyword(keywords, keyword).is_none())
            .filter_map(|keyword| {
                let mut action = self.settings.required_action(keyword);
                // RFC 8689 §4.2.1: a host without STARTTLS fails a step of the REQUIRETLS
                // procedure, so a REQUIRETLS search ("repeat steps 2-5 with each host") goes on
                // past it too, whatever the STARTTLS rule says.
                // Whether or not `requires` also lists STARTTLS: REQUIRETLS's procedure governs
                // (found by `mxsim explore` on a message that listed both).
                if requiretls_known && keyword.eq_ignore_ascii_case("STARTTLS") {
                    let requiretls = self.settings.required_action("REQUIRETLS");
                    if matches!(
                        requiretls,
                        KeywordAction::WholeList(_) | KeywordAction::SamePreference(_)
                    ) {
                        action = requiretls;
                    }
                }
                strictness(action, keyword).map(|rank| (rank, keyword, action))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
            .map(|(_, keyword, action)| (action, keyword.to_owned()))
    }

    /// True when this host could take the message: no required keyword missing (beyond what the
    /// policy sends anyway) and the message within its SIZE.
    fn acceptable(&self, keywords: &[Keyword]) -> bool {
        let too_big = matches!((self.job.message.size, size_limit(keywords)), (Some(size), Some(limit)) if size > limit);
        self.missing_required(keywords).is_none()
            && !(too_big && self.settings.size_exceeded_bounces)
    }

    /// True when the message needs TLS (see [`Opener::requires_tls`]).
    fn requires_tls(&self) -> bool {
        self.opener().requires_tls()
    }

    /// A reply of the expected class, or the failure (see [`Opener::judge`]).
    async fn judge<S: Session>(
        &self,
        session: &mut S,
        candidate: &Candidate,
        command: Command,
        expected: ReplyClass,
        got: Got<Reply>,
        deadline: Option<Instant>,
    ) -> Result<Reply, Failed> {
        self.opener()
            .judge(session, candidate, command, expected, got, deadline)
            .await
    }

    fn lacks_wanted(&self, keywords: &[Keyword]) -> bool {
        self.job
            .message
            .wants
            .iter()
            .any(|keyword| find_keyword(keywords, keyword).is_none())
    }

    fn wanted_score(&self, keywords: &[Keyword]) -> usize {
        self.job
            .message
            .wants
            .iter()
            .filter(|keyword| find_keyword(keywords, keyword).is_some())
            .count()
    }

    /// RFC 5321 §2.2.3: in a queue, a message whose wanted keywords the best session lacks is
    /// requeued (QUIT, defer) until it has been queued `wanted_send_without_after`, then sent
    /// without them. `Some(flow)` when it is requeued.
    async fn requeue_for_wanted<S: Session>(
        &mut self,
        session: &mut S,
        keywords: &[Keyword],
    ) -> Option<Flow> {
        let send_without_after = self.settings.wanted_send_without_after?;
        let queued_for = self.world.now().since(self.job.submitted);
        if !self.job.queued || !self.lacks_wanted(keywords) || queued_for >= send_without_after {
            return None;
        }
        quit(self.world, session, self.settings.timeouts.quit).await;
        let wanted: Vec<&str> = self.job.message.wants.iter().map(|k| &**k).collect();
        let reason = format!(
            "no host offered wanted {}; requeued until it has been queued {send_without_after}, then sent without",
            wanted.join(", ")
        );
        self.last_error = reason.clone();
        self.settle_pending(|| Disposition::Deferred {
            reason: reason.clone(),
        });
        Some(Flow::Stop)
    }

    /// Missing required keywords and SIZE; `Some(flow)` when this host will not be used.
    async fn check_required<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        keywords: &[Keyword],
    ) -> Option<Flow> {
        let message = self.job.message;
        if let Some((action, keyword)) = self.missing_required(keywords) {
            quit(self.world, session, self.settings.timeouts.quit).await;
            let reason = match action {
                KeywordAction::Downgrade => format!(
                    "{} does not offer required {keyword}, and a non-ASCII address cannot be downgraded (RFC 6531 §3.2)",
                    candidate.describe()
                ),
                _ => format!("{} does not offer required {keyword}", candidate.describe()),
            };
            self.last_error = reason.clone();
            return Some(match action {
                // A host that offers it already failed transiently in this walk: the message
                // can still go there later, so the recipients stay queued (R1, R6, S7).
                KeywordAction::Ignore | KeywordAction::Downgrade | KeywordAction::Bounce
                    if self.capable =>
                {
                    let reason = format!(
                        "{reason}; a host that offers it failed transiently, so the message stays queued"
                    );
                    self.settle_pending(|| Disposition::Deferred {
                        reason: reason.clone(),
                    });
                    Flow::Stop
                }
                KeywordAction::Ignore | KeywordAction::Downgrade | KeywordAction::Bounce => {
                    self.settle_pending(|| Disposition::Bounced {
                        reason: reason.clone(),
                        reply: None,
                    });
                    Flow::Stop
                }
                KeywordAction::Defer => {
                    self.settle_pending(|| Disposition::Deferred {
                        reason: reason.clone(),
                    });
                    Flow::Stop
                }
                KeywordAction::SamePreference(final_) => {
                    self.missing = Some((
                        final_,
                        format!(
                            "no host of preference {} offers {keyword}; last: {reason}",
                            candidate.preference
                        ),
                    ));
                    self.same_preference_only = Some(candidate.preference);
                    Flow::NextHost
                }
                KeywordAction::WholeList(final_) => {
                    self.missing = Some((
                        final_,
                        format!("no MX host offers {keyword}; last: {reason}"),
                    ));
                    Flow::NextHost
                }
            });
        }
        let limit = size_limit(keywords);
        match (message.size, limit) {
            (Some(size), Some(limit)) if size > limit && self.settings.size_exceeded_bounces => {
                quit(self.world, session, self.settings.timeouts.quit).await;
                let reason = format!(
                    "message of {size} bytes exceeds the SIZE limit {limit} of {} (RFC 1870)",
                    candidate.describe()
                );
                self.last_error = reason.clone();
                self.settle_pending(|| Disposition::Bounced {
                    reason: reason.clone(),
                    reply: None,
                });
                Some(Flow::Stop)
            }
            _ => None,
        }
    }

    /// Keeps `parked` open while opening sessions to other candidates (same preference, or all
    /// with `whole-list`) until one offers every wanted keyword or the search limit passes.
    /// Returns the best session; QUITs the others.
    async fn search(
        &mut self,
        candidates: &[Candidate],
        parked: Opened<W::Session>,
        tried: &mut Tried,
    ) -> (W::Session, Arc<[Keyword]>, usize) {
        let limit = self.settings.search_limit.unwrap_or(Duration::ZERO);
        let deadline = self.world.now().after(limit);
        let preference = candidates[parked.index].preference;
        let wanted_all = self.job.message.wants.len();
        let mut best_score = self.wanted_score(&parked.keywords);
        let mut best = parked;
        for index in 0..candidates.len() {
            if best_score == wanted_all || self.world.now() >= deadline {
                break;
            }
            let probe = &candidates[index];
            let in_scope =
                self.settings.wanted == WantedAction::WholeList || probe.preference == preference;
            if tried.is_tried(index)
                || !in_scope
                || !self.eligible(probe)
                || probe.host == candidates[best.index].host
            {
                continue;
            }
            tried.mark(index);
            let Ok(opened) = self
                .opener()
                .open(candidates, index, false, Some(deadline))
                .await
            else {
                self.unasked = true;
                continue;
            };
            let missing_required = !self.acceptable(&opened.keywords);
            let score = self.wanted_score(&opened.keywords);
            if score > best_score && !missing_required {
                let mut previous = std::mem::replace(&mut best, opened);
                quit(
                    self.world,
                    &mut previous.session,
                    self.wait(self.settings.timeouts.quit, Some(deadline)),
                )
                .await;
                best_score = score;
            } else {
                let mut probe_session = opened.session;
                quit(
                    self.world,
                    &mut probe_session,
                    self.wait(self.settings.timeouts.quit, Some(deadline)),
                )
                .await;
            }
        }
        (best.session, best.keywords, best.index)
    }

    /// MAIL, RCPT for each pending recipient, DATA, the message, QUIT.
    async fn transaction<S: Session>(
        &mut self,
        session: &mut S,
        candidate: &Candidate,
        last: Last,
        keywords: &[Keyword],
    ) -> Flow {
        let timeouts = self.settings.timeouts;
        let parameters = mail_parameters(self, keywords);
        let everyone = self.pending.clone();
        let got = ask(
            self.world,
            timeouts.mail,
            session.mail(&self.job.message.from, &parameters),
        )
        .await;
        if let Err(failed) = self
            .judge(
                session,
                candidate,
                Command::Mail,
                ReplyClass::Positive,
                got,
                None,
            )
            .await
        {
            return self.fail(failed, &everyone, last);
        }
        let mut accepted = Vec::with_capacity(everyone.len());
        let mut flow = Flow::NextAddress;
        // With `rcpt_none_accepted: transient` the refusals wait for the end of the RCPT stage,
        // where a session that accepted none of two or more recipients turns them into 4yz.
        let hold = self.settings.rcpt_none_accepted_transient && everyone.len() >= 2;
        let mut held: Vec<(usize, Failed)> = Vec::new();
        for (position, &index) in everyone.iter().enumerate() {
            let recipient = self.job.message.to[index].clone();
            let got = ask(self.world, timeouts.rcpt, session.rcpt(&recipient)).await;
            let broken = matches!(got, Got::Timeout | Got::Closed);
            // RCPT refusals do not end the session, so no QUIT here: judge only classifies.
            let result = match got {
                Got::Reply(reply) => match classify(&reply, ReplyClass::Positive) {
                    Ok(()) => Ok(()),
                    Err(failure) => Err(failed(
                        Stage::Command(Command::Rcpt),
                        failure,
                        format!("{}: RCPT answered {reply}", candidate.describe()),
                        Some(reply),
                    )),
                },
                Got::Timeout => Err(failed(
                    Stage::Command(Command::Rcpt),
                    Failure::Timeout,
                    format!("{}: no reply to RCPT", candidate.describe()),
                    None,
                )),
                Got::Closed => Err(failed(
                    Stage::Command(Command::Rcpt),
                    Failure::Closed,
                    format!("{}: connection lost at RCPT", candidate.describe()),
                    None,
                )),
            };
            match result {
                Ok(()) => {
                    self.accepted(index);
                    accepted.push(index);
                }
                Err(failed) if broken => {
                    for (index, refused) in std::mem::take(&mut held) {
                        flow = flow.max(self.fail(refused, &[index], last));
                    }
                    return flow.max(self.fail(failed, &everyone[position..], last));
                }
                Err(failed) if hold => held.push((index, failed)),
                Err(failed) => flow = flow.max(self.fail(failed, &[index], last)),
            }
        }
        let none_accepted = accepted.is_empty();
        for (index, mut refused) in held {
            if none_accepted {
                refused.failure = Failure::Transient;
                refused.reason = format!("{}; no recipient accepted", refused.reason);
            }
            flow = flow.max(self.fail(refused, &[index], last));
        }
        if accepted.is_empty() {
            quit(self.world, session, timeouts.quit).await;
            return flow;
        }
        let got = ask(self.world, timeouts.data, session.data()).await;
        if let Err(failed) = self
            .judge(
                session,
                candidate,
                Command::Data,
                ReplyClass::Intermediate,
                got,
                None,
            )
            .await
        {
            return flow.max(self.fail(failed, &accepted, last));
        }
        let got = ask(
            self.world,
            timeouts.end_of_data,
            session.end_of_data(self.job.message_index),
        )
        .await;
        match self
            .judge(
                session,
                candidate,
                Command::EndOfData,
                ReplyClass::Positive,
                got,
                None,
            )
            .await
        {
            Ok(reply) => {
                let host = candidate.host.clone();
                let address = candidate.address;
                self.settle(&accepted, || Disposition::Delivered {
                    host: host.clone(),
                    address,
                    reply: reply.clone(),
                });
            }
            Err(failed) => return flow.max(self.fail(failed, &accepted, last)),
        }
        // With a connection cache the session is kept for another transaction instead (on
        // demand: only when back-to-back attempts turned caching on).
        if self.settings.reuse.is_some() && self.caching {
            self.reusable = true;
        } else {
            quit(self.world, session, timeouts.quit).await;
        }
        flow
    }
}

/// A session that goes on without TLS: its keywords, none of which is then STARTTLS.
fn without_tls<S>(session: S, keywords: &[Keyword], index: usize) -> Opened<S> {
    Opened {
        session,
        keywords: keywords
            .iter()
            .filter(|keyword| !keyword.is("STARTTLS"))
            .cloned()
            .collect(),
        index,
    }
}

fn failed(stage: Stage, failure: Failure, reason: String, reply: Option<Reply>) -> Failed {
    Failed {
        stage,
        failure,
        reason,
        reply,
        tls_optional: false,
    }
}

/// MAIL parameters: SIZE when advertised, and every required or wanted keyword the server
/// offers (a used extension is shown as a bare parameter).
fn mail_parameters<W: World>(attempt: &Attempt<'_, '_, W>, keywords: &[Keyword]) -> MailParameters {
    let message = attempt.job.message;
    let size = message
        .size
        .filter(|_| find_keyword(keywords, "SIZE").is_some());
    let implied: Option<Arc<str>> = implied_smtputf8(message).then(|| Arc::from("SMTPUTF8"));
    let extensions = message
        .requires
        .iter()
        .chain(implied.iter())
        .chain(message.wants.iter())
        .filter(|keyword| !matches!(&***keyword, "STARTTLS" | "SIZE"))
        .filter(|keyword| find_keyword(keywords, keyword).is_some())
        .cloned()
        .collect();
    MailParameters { size, extensions }
}

/// True when the message needs SMTPUTF8 without listing it: an internationalized address in
/// its reverse-path or among its recipients (RFC 6531 §3.2, rule X8: such an address "MUST NOT"
/// go to a server without SMTPUTF8). Each policy's SMTPUTF8 rule then decides what a host
/// without it gets, as for a listed keyword.
fn implied_smtputf8(message: &mxsim_model::scenario::Message) -> bool {
    !message
        .requires
        .iter()
        .any(|keyword| keyword.eq_ignore_ascii_case("SMTPUTF8"))
        && (message.from.is_internationalized()
            || message.to.iter().any(|to| to.is_internationalized()))
}

/// The SIZE limit a host advertised, if it gave a positive one (RFC 1870: 0 means no limit).
fn size_limit(keywords: &[Keyword]) -> Option<u64> {
    find_keyword(keywords, "SIZE")
        .and_then(|keyword| keyword.parameter.as_ref())
        .and_then(|text| text.parse::<u64>().ok())
        .filter(|limit| *limit > 0)
}

/// What opening a session needs, without the attempt's mutable state, so that several
/// sessions can be opened at once (`parallel:`) while the attempt uses another one.
pub(super) struct Opener<'a, 'j, W: World> {
    pub(super) settings: &'a Settings,
    pub(super) world: &'a W,
    pub(super) job: Job<'j>,
    /// The attempt's after-EHLO ceiling, lowered by every EHLO that was answered.
    pub(super) ceiling: &'a Cell<Option<u16>>,
}

impl<W: World> Clone for Opener<'_, '_, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W: World> Copy for Opener<'_, '_, W> {}

impl<'a, 'j, W: World> Attempt<'a, 'j, W> {
    /// What opening a session needs, borrowed from the attempt for as long as it lives.
    pub(super) fn opener(&self) -> Opener<'a, 'j, W> {
        Opener {
            settings: self.settings,
            world: self.world,
            job: self.job,
            ceiling: self.ceiling,
        }
    }
}

impl<W: World> Opener<'_, '_, W> {
    /// Connect, greeting, EHLO (or HELO), and STARTTLS where the policy uses it. Touches no
    /// recipient; QUITs the server after a refusal where the connection is still open.
    pub(super) async fn open(
        self,
        candidates: &[Candidate],
        index: usize,
        plaintext: bool,
        deadline: Option<Instant>,
    ) -> Result<Opened<W::Session>, Failed> {
        let candidate = &candidates[index];
        let timeouts = self.settings.timeouts;
        let connect = self
            .world
            .timeout(
                self.wait(timeouts.connect, deadline),
                self.world.connect(candidate.address, &candidate.host),
            )
            .await;
        let mut session = match connect {
            Some(Connect::Connected(session)) => session,
            Some(_) => {
                return Err(failed(
                    Stage::Connect,
                    Failure::Dropped,
                    format!("{}: connection refused or reset", candidate.describe()),
                    None,
                ));
            }
            None => {
                return Err(failed(
                    Stage::Connect,
                    Failure::Timeout,
                    format!("{}: connection timed out", candidate.describe()),
                    None,
                ));
            }
        };
        let got = ask(
            self.world,
            self.wait(timeouts.greeting, deadline),
            session.greeting(),
        )
        .await;
        self.judge(
            &mut session,
            candidate,
            Command::Greeting,
            ReplyClass::Positive,
            got,
            deadline,
        )
        .await?;
        let keywords = self.hello(&mut session, candidate, deadline).await?;
        let tls_required = self.requires_tls();
        let use_tls = match self.settings.tls {
            TlsUse::Never => false,
            TlsUse::WhenRequired => tls_required,
            TlsUse::Opportunistic => !plaintext || tls_required,
        };
        // A client may send STARTTLS for a message that needs TLS even where it is not
        // advertised, and let the reply decide (mox under MTA-STS enforce or DANE).
        let offered = find_keyword(&keywords, "STARTTLS").is_some()
            || (tls_required && self.settings.starttls_unadvertised_sent);
        if !use_tls || !offered {
            // STARTTLS advertised but not used satisfies no requirement: only a TLS session does.
            return Ok(without_tls(session, &keywords, index));
        }
        let optional = !tls_required;
        let got = ask(
            self.world,
            self.wait(timeouts.starttls, deadline),
            session.starttls(),
        )
        .await;
        let refused = matches!(&got, Got::Reply(reply) if reply.class() != ReplyClass::Positive);
        if optional && refused && self.settings.starttls_refused == StarttlsRefused::Continue {
            // The server said no to STARTTLS but the session is still there: go on in
            // plaintext with the keywords already known.
            return Ok(without_tls(session, &keywords, index));
        }
        self.judge(
            &mut session,
            candidate,
            Command::Starttls,
            ReplyClass::Positive,
            got,
            deadline,
        )
        .await
        .map_err(|failed| Failed {
            // `on-starttls`: a refusal goes to the action map, as when TLS is required.
            tls_optional: optional
                && !(refused && self.settings.starttls_refused == StarttlsRefused::OnStarttls),
            ..failed
        })?;
        let handshake = self
            .world
            .timeout(self.wait(timeouts.tls, deadline), session.handshake())
            .await;
        let failure = match handshake {
            Some(Handshake::Established) => None,
            Some(Handshake::Failed) => Some((Failure::Dropped, "TLS handshake failed")),
            None => Some((Failure::Timeout, "TLS handshake timed out")),
        };
        if let Some((failure, what)) = failure {
            return Err(Failed {
                tls_optional: optional,
                ..failed(
                    Stage::Tls,
                    failure,
                    format!("{}: {what}", candidate.describe()),
                    None,
                )
            });
        }
        let mut keywords = self
            .hello(&mut session, candidate, deadline)
            .await?
            .to_vec();
        // STARTTLS is satisfied by the TLS session itself (RFC 3207 §4.2).
        keywords.push(Keyword::parse("STARTTLS").expect("STARTTLS is a keyword"));
        Ok(Opened {
            session,
            keywords: Arc::from(keywords),
            index,
        })
    }

    /// EHLO, or HELO after an EHLO reply the policy answers with HELO. Returns the keywords.
    async fn hello<S: Session>(
        self,
        session: &mut S,
        candidate: &Candidate,
        deadline: Option<Instant>,
    ) -> Result<Arc<[Keyword]>, Failed> {
        let got = ask(
            self.world,
            self.wait(self.settings.timeouts.ehlo, deadline),
            session.ehlo(&self.job.client.name),
        )
        .await;
        if matches!(got, Got::Reply(_)) && self.settings.same_or_better_after_ehlo {
            self.ceiling.set(Some(
                self.ceiling.get().map_or(candidate.preference, |ceiling| {
                    ceiling.min(candidate.preference)
                }),
            ));
        }
        let got = match got {
            Got::Reply(ehlo) if ehlo.reply.class() == ReplyClass::Positive => {
                return Ok(ehlo.keywords);
            }
            Got::Reply(ehlo)
                if self
                    .settings
                    .helo_fallback
                    .iter()
                    .any(|rule| rule.matches(ehlo.reply.code))
                    && ehlo.reply.code.get() != 421 =>
            {
                let got = ask(
                    self.world,
                    self.wait(self.settings.timeouts.helo, deadline),
                    session.helo(&self.job.client.name),
                )
                .await;
                self.judge(
                    session,
                    candidate,
                    Command::Helo,
                    ReplyClass::Positive,
                    got,
                    deadline,
                )
                .await?;
                return Ok(Arc::from([]));
            }
            Got::Reply(ehlo) => Got::Reply(ehlo.reply),
            Got::Timeout => Got::Timeout,
            Got::Closed => Got::Closed,
        };
        self.judge(
            session,
            candidate,
            Command::Ehlo,
            ReplyClass::Positive,
            got,
            deadline,
        )
        .await
        .map(|_| Arc::from([]))
    }

    /// A reply of the expected class, or the failure (after a QUIT where the connection lives).
    pub(super) async fn judge<S: Session>(
        self,
        session: &mut S,
        candidate: &Candidate,
        command: Command,
        expected: ReplyClass,
        got: Got<Reply>,
        deadline: Option<Instant>,
    ) -> Result<Reply, Failed> {
        let stage = Stage::Command(command);
        let what = command.label();
        match got {
            Got::Reply(reply) => match classify(&reply, expected) {
                Ok(()) => Ok(reply),
                Err(failure) => {
                    if reply.code.get() != 421 {
                        quit(
                            self.world,
                            session,
                            self.wait(self.settings.timeouts.quit, deadline),
                        )
                        .await;
                    }
                    let reason = format!("{}: {what} answered {reply}", candidate.describe());
                    Err(failed(stage, failure, reason, Some(reply)))
                }
            },
            Got::Timeout => Err(failed(
                stage,
                Failure::Timeout,
                format!("{}: no reply to {what}", candidate.describe()),
                None,
            )),
            Got::Closed => Err(failed(
                stage,
                Failure::Closed,
                format!("{}: connection lost at {what}", candidate.describe()),
                None,
            )),
        }
    }

    /// A step's wait, cut to what is left before `deadline`.
    pub(super) fn wait(self, step: Duration, deadline: Option<Instant>) -> Duration {
        match deadline {
            Some(deadline) => step.min(deadline.since(self.world.now())),
            None => step,
        }
    }

    /// True when the message needs TLS: it requires STARTTLS, or REQUIRETLS and the client
    /// knows REQUIRETLS (a client that does not know it treats it as any other keyword).
    pub(super) fn requires_tls(self) -> bool {
        let requires = |name: &str| {
            self.job
                .message
                .requires
                .iter()
                .any(|keyword| keyword.eq_ignore_ascii_case(name))
        };
        requires("STARTTLS") || (requires("REQUIRETLS") && self.settings.knows_requiretls())
    }
}
