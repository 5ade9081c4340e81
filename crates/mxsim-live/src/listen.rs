//! The scenario's SMTP servers on real sockets: one listener per served address, each
//! connection answered through the same script the simulator uses
//! ([`mxsim_model::script::Conversation::step`]). This module only reads lines, waits the
//! script's delays (scaled), writes its replies and records what crossed the wire.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mxsim_model::name::Name;
use mxsim_model::scenario::ConnectMode;
use mxsim_model::script::{Action, Answer, Conversation, Request, Script, ServerState, wire};
use mxsim_model::smtp::{Command, ReplyClass};
use mxsim_model::trace::{Closer, EventKind, Sent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::record::Recorder;

/// The longest command line read (RFC 5321 §4.5.3.1.4 allows 512 octets; real clients stay far
/// below); a longer one is answered 500 and skipped up to its end.
const LINE_MAX: usize = 4096;

/// The largest message read after DATA; beyond it the rest is read and dropped.
const DATA_MAX: usize = 16 << 20;

/// What every connection of a run shares.
#[derive(Clone)]
pub struct Shared {
    /// The servers' scripts.
    pub script: Arc<Script>,
    /// The servers' memory across connections (greylisting).
    pub state: Arc<Mutex<ServerState>>,
    /// The trace.
    pub recorder: Recorder,
}

/// Serves server `server` at `address`:25 until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    address: IpAddr,
    server: usize,
    host: Name,
    shared: Shared,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or the like: wait a little rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let (shared, host) = (shared.clone(), host.clone());
        tokio::spawn(async move {
            converse(stream, address, server, host, shared).await;
        });
    }
}

/// Binds `address`:25.
pub async fn bind(address: IpAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind((address, 25)).await
}

/// Bytes read from the client, split into lines as they are needed.
struct Input {
    stream: TcpStream,
    buffer: Vec<u8>,
    closed: bool,
}

impl Input {
    /// Reads more bytes; false once the client has closed (or the connection broke).
    async fn fill(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                self.closed = true;
                false
            }
            Ok(read) => {
                self.buffer.extend_from_slice(&chunk[..read]);
                true
            }
        }
    }

    /// The next complete line without its CRLF (or LF), if one is buffered.
    fn line(&mut self) -> Option<Vec<u8>> {
        let end = self.buffer.iter().position(|&byte| byte == b'\n')?;
        let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(line)
    }

    /// The next line, reading as needed; `None` when the client closed first.
    async fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(line) = self.line() {
                return Some(line);
            }
            if self.buffer.len() > LINE_MAX {
                // An overlong line: keep its tail only, so memory stays bounded.
                let keep = self.buffer.split_off(self.buffer.len() - 1);
                self.buffer = keep;
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Waits `duration` while still reading what the client pipelines; false when the client
    /// closed meanwhile (it gave up waiting).
    async fn wait(&mut self, duration: std::time::Duration) -> bool {
        if duration.is_zero() {
            // No delay: answer at once, even if the client has already closed its side (a
            // client that sends QUIT and does not wait for the 221).
            return true;
        }
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        while !self.closed {
            tokio::select! {
                biased;
                () = &mut sleep => return true,
                _ = self.fill() => {}
            }
        }
        false
    }

    /// Waits for the client to close (a script that never answers); `limit` ends the wait.
    async fn until_closed(&mut self, limit: Option<std::time::Duration>) -> bool {
        match limit {
            Some(limit) => !self.wait(limit).await,
            None => {
                while self.fill().await {}
                true
            }
        }
    }
}

/// One connection, from accept to close.
async fn converse(stream: TcpStream, address: IpAddr, server: usize, host: Name, shared: Shared) {
    let Shared {
        script,
        state,
        recorder,
    } = &shared;
    let clock = recorder.clock();
    let now = clock.now();
    recorder.record(EventKind::Connecting {
        address,
        host: host.clone(),
    });
    match script.connect(server, now).mode {
        ConnectMode::Refuse | ConnectMode::Reset => {
            // A userspace listener cannot refuse a SYN it has accepted: it resets at once.
            let _ = stream.set_zero_linger();
            recorder.record(EventKind::Reset { address });
            return;
        }
        ConnectMode::Timeout => {
            // Nor drop it: it holds the connection without a word until the client leaves.
            recorder.record(EventKind::Connected { address });
            let mut input = Input {
                stream,
                buffer: Vec::new(),
                closed: false,
            };
            input.until_closed(None).await;
            recorder.record(EventKind::Closed {
                address,
                by: Closer::Client,
            });
            return;
        }
        ConnectMode::Accept => {}
    }
    recorder.record(EventKind::Connected { address });
    let client = script.scenario().client.addresses.first().copied();
    let mut conversation = Conversation::open(script, server, client, now);
    let mut input = Input {
        stream,
        buffer: Vec::new(),
        closed: false,
    };
    let mut request = Request::Greeting;
    loop {
        let asked = clock.now();
        let action = {
            let mut state = state.lock().expect("no listener panics holding the state");
            conversation.step(script, &mut state, &request, asked)
        };
        let command = request.command().unwrap_or(Command::Greeting);
        // After a 354 to DATA the client sends the message, up to a line with a lone dot.
        let in_data = matches!(request, Request::Data)
            && matches!(&action.answer, Answer::Reply(reply) if reply.class() == ReplyClass::Intermediate);
        match answer(&mut input, address, command, asked, action, &shared, &host).await {
            Next::Read => {}
            Next::Closed => return,
        }
        // The next request: a command line, or after 354 the message up to its dot.
        let Some(line) = input.next_line().await else {
            recorder.record(EventKind::Closed {
                address,
                by: Closer::Client,
            });
            return;
        };
        request = if in_data {
            let message = read_message(&mut input, line).await;
            let Some(message) = message else {
                recorder.record(EventKind::Closed {
                    address,
                    by: Closer::Client,
                });
                return;
            };
            Request::EndOfData { message }
        } else {
            let text = String::from_utf8_lossy(&line);
            Request::parse(&text)
        };
        if let Some(sent) = sent_of(&request) {
            recorder.record(EventKind::Sent {
                address,
                command: sent,
            });
        }
    }
}

/// What to do after an answer.
enum Next {
    Read,
    Closed,
}

/// Carries out the script's action: wait, answer (or stay silent), record, close.
async fn answer(
    input: &mut Input,
    address: IpAddr,
    command: Command,
    asked: mxsim_model::time::Instant,
    action: Action,
    shared: &Shared,
    host: &Name,
) -> Next {
    let recorder = &shared.recorder;
    let clock = recorder.clock();
    let gave_up = |recorder: &Recorder| {
        let waited = clock.now().since(asked);
        recorder.record(EventKind::ReplyGaveUp {
            address,
            command,
            waited,
        });
        recorder.record(EventKind::Closed {
            address,
            by: Closer::Client,
        });
    };
    if !input.wait(clock.real(action.delay)).await {
        gave_up(recorder);
        return Next::Closed;
    }
    if let Some(accepted) = &action.accepted {
        recorder.record(EventKind::Accepted {
            address,
            host: host.clone(),
            message: accepted.message,
            recipients: accepted.recipients.clone(),
            reply_lost: accepted.reply_lost,
        });
    }
    match &action.answer {
        Answer::Reply(reply) => {
            let text = wire(reply, action.keywords.as_deref());
            if input.stream.write_all(text.as_bytes()).await.is_err() {
                recorder.record(EventKind::Closed {
                    address,
                    by: Closer::Client,
                });
                return Next::Closed;
            }
            recorder.record(EventKind::Replied {
                address,
                reply: reply.clone(),
                keywords: action.keywords.clone(),
            });
        }
        Answer::Silent { idle_timeout } => {
            let limit = idle_timeout.map(|idle| clock.real(idle));
            if input.until_closed(limit).await {
                gave_up(recorder);
                return Next::Closed;
            }
            let _ = input.stream.shutdown().await;
            recorder.record(EventKind::Closed {
                address,
                by: Closer::ServerIdle,
            });
            return Next::Closed;
        }
    }
    if let Some(by) = action.close {
        let _ = input.stream.shutdown().await;
        recorder.record(EventKind::Closed { address, by });
        return Next::Closed;
    }
    Next::Read
}

/// Reads the message after 354 up to the line with a lone dot; the message index from its
/// `Message-ID: <mxsim.N@mxsim.invalid>`, which the driver wrote. `None` if the client closed.
async fn read_message(input: &mut Input, first: Vec<u8>) -> Option<usize> {
    let mut message = None;
    let mut line = first;
    let mut read = 0usize;
    loop {
        if line == b"." {
            return Some(message.unwrap_or(0));
        }
        read = read.saturating_add(line.len());
        if message.is_none() && read <= DATA_MAX {
            message = message_index(&line);
        }
        line = input.next_line().await?;
    }
}

/// `N` from a `Message-ID: <mxsim.N@…>` header line.
pub fn message_index(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let (name, value) = text.split_once(':')?;
    if !name.eq_ignore_ascii_case("message-id") {
        return None;
    }
    let value = value.trim().strip_prefix("<mxsim.")?;
    value.split_once('@')?.0.parse().ok()
}

/// The trace's line for a request the trace format has a word for.
fn sent_of(request: &Request) -> Option<Sent> {
    Some(match request {
        Request::Ehlo(name) => Sent::Ehlo(name.clone()),
        Request::Helo(name) => Sent::Helo(name.clone()),
        Request::Starttls => Sent::Starttls,
        Request::Mail(from, parameters) => Sent::Mail(from.clone(), parameters.clone()),
        Request::Rcpt(to) => Sent::Rcpt(to.clone()),
        Request::Data => Sent::Data,
        Request::EndOfData { message } => Sent::EndOfData(*message),
        Request::Rset => Sent::Rset,
        Request::Quit => Sent::Quit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_index_comes_from_the_message_id() {
        assert_eq!(
            message_index(b"Message-ID: <mxsim.3@mxsim.invalid>"),
            Some(3)
        );
        assert_eq!(
            message_index(b"message-id:<mxsim.0@mxsim.invalid>"),
            Some(0)
        );
        assert_eq!(message_index(b"Subject: <mxsim.3@mxsim.invalid>"), None);
        assert_eq!(message_index(b"Message-ID: <other@x>"), None);
    }
}
