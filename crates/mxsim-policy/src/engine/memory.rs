//! The engine's side of memory across attempts and messages (`memory:` in a policy file):
//! which failures make a retry record, which records make an attempt skip a host, a recipient
//! or a whole destination, and what clears them. The records themselves live in the world
//! (`World::set_hint`), so a later message of the same run sees them.

use std::net::IpAddr;
use std::sync::Arc;

use mxsim_model::name::Name;
use mxsim_model::outcome::Disposition;
use mxsim_model::queue::Schedule;
use mxsim_model::smtp::Command;
use mxsim_model::world::{Hint, HintKey, World};

use super::{Attempt, Candidate, Failed};
use crate::settings::{Failure, Stage};

impl<W: World> Attempt<'_, '_, W> {
    /// A record in force for this candidate (its host, or its host for this message): the
    /// attempt skips it without connecting.
    pub(super) fn held(&self, candidate: &Candidate) -> Option<Hint> {
        self.settings.memory.hosts.as_ref()?;
        self.world
            .consult(&HintKey::Host(candidate.address))
            .or_else(|| {
                self.world.consult(&HintKey::HostMessage(
                    candidate.address,
                    self.job.message_index,
                ))
            })
    }

    /// Skips `candidate` when a record in force holds it: it is not asked and the attempt
    /// notes why (`retry time not reached`). True when it was skipped.
    pub(super) fn skip_held(&mut self, candidate: &Candidate) -> bool {
        let Some(hint) = self.held(candidate) else {
            return false;
        };
        self.unasked = true;
        self.last_error = format!(
            "{}: retry time not reached ({})",
            candidate.describe(),
            hint.reason
        );
        true
    }

    /// At the start of a domain's attempt: a destination record in force defers every pending
    /// recipient at once; in a retry (a queue run), a recipient record in force defers that
    /// recipient. True when nothing is left to do.
    pub(super) fn held_back(&mut self, domain: &Name) -> bool {
        let memory = &self.settings.memory;
        if memory.destinations.is_some()
            && let Some(hint) = self.world.consult(&HintKey::Domain(domain.clone()))
        {
            let reason = format!("delivery temporarily suspended: {}", hint.reason);
            self.settle_pending(|| Disposition::Deferred {
                reason: reason.clone(),
            });
            return true;
        }
        // A first attempt ignores recipient records (Exim's deliver.c: "ignore retry data when
        // not in a queue run"); only retries honour them.
        if memory.recipients.is_some() && self.job.attempt > 1 {
            let held: Vec<(usize, Hint)> = self
                .pending
                .iter()
                .filter_map(|&index| {
                    let key = self.recipient_key(index);
                    self.world.consult(&key).map(|hint| (index, hint))
                })
                .collect();
            for (index, hint) in held {
                let reason = format!("retry time not reached: {}", hint.reason);
                self.settle(&[index], || Disposition::Deferred {
                    reason: reason.clone(),
                });
            }
        }
        self.pending.is_empty()
    }

    /// Records what a failure at `address` means for later attempts, per the policy's memory.
    pub(super) fn remember(&self, address: IpAddr, failed: &Failed, affected: &[usize]) {
        let memory = &self.settings.memory;
        let connection_level = failed
            .reply
            .as_ref()
            .is_some_and(|reply| reply.code.get() == 421)
            || matches!(
                failed.stage,
                Stage::Connect
                    | Stage::Tls
                    | Stage::Command(
                        Command::Greeting | Command::Ehlo | Command::Helo | Command::Starttls
                    )
            );
        let transient = failed.failure != Failure::Permanent;
        match failed.stage {
            _ if connection_level => {
                if let Some(schedule) = &memory.hosts {
                    self.renew(HintKey::Host(address), schedule, &failed.reason);
                }
            }
            Stage::Command(Command::Rcpt) if transient => {
                if let Some(schedule) = &memory.recipients {
                    for &index in affected {
                        self.renew(self.recipient_key(index), schedule, &failed.reason);
                    }
                }
            }
            Stage::Command(Command::Mail | Command::Data | Command::EndOfData) if transient => {
                if let Some(schedule) = &memory.hosts {
                    let key = HintKey::HostMessage(address, self.job.message_index);
                    self.renew(key, schedule, &failed.reason);
                }
            }
            _ => {}
        }
    }

    /// A session reached EHLO at `address`: its host record is cleared.
    pub(super) fn reached(&self, address: IpAddr) {
        if self.settings.memory.hosts.is_some() {
            let key = HintKey::Host(address);
            if self.world.hint(&key).is_some() {
                self.world.set_hint(key, None);
            }
        }
    }

    /// A recipient was accepted at RCPT: its record is cleared.
    pub(super) fn accepted(&self, index: usize) {
        if self.settings.memory.recipients.is_some() {
            let key = self.recipient_key(index);
            if self.world.hint(&key).is_some() {
                self.world.set_hint(key, None);
            }
        }
    }

    /// The end of a domain's attempt: a destination whose every tried host failed at
    /// connection level gets a record; one that answered is cleared.
    pub(super) fn settle_destination(&self, domain: &Name, attempts: usize, connected: bool) {
        let Some(schedule) = &self.settings.memory.destinations else {
            return;
        };
        let key = HintKey::Domain(domain.clone());
        if connected {
            if self.world.hint(&key).is_some() {
                self.world.set_hint(key, None);
            }
        } else if attempts > 0 && !self.pending.is_empty() {
            self.renew(key, schedule, &self.last_error);
        }
    }

    /// The record of recipient `index`: the recipient and the message's sender (Exim's
    /// `R:address:<sender>`), shared by every message between them.
    fn recipient_key(&self, index: usize) -> HintKey {
        HintKey::Recipient(
            self.job.message.to[index].clone(),
            self.job.message.from.clone(),
        )
    }

    /// Stores or renews a record: its backoff goes one step further on `schedule`.
    fn renew(&self, key: HintKey, schedule: &Schedule, reason: &str) {
        let now = self.world.now();
        let mut backoff = self
            .world
            .hint(&key)
            .map(|hint| hint.backoff)
            .unwrap_or_default();
        let Some(delay) = schedule.next_delay(&mut backoff, now) else {
            return;
        };
        self.world.set_hint(
            key,
            Some(Hint {
                until: now.after(delay),
                backoff,
                reason: Arc::from(reason),
            }),
        );
    }
}
