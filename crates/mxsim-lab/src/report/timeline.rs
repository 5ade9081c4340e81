//! The timeline picture of one run, as an SVG string: one lane per address the client
//! connected to (host name and address), a lane for the client's own steps (DNS answers, the
//! equal-preference orders drawn, queue attempts, outcomes, DSNs, retry records), and virtual
//! time along the horizontal axis.
//!
//! The axis is ordinal with time gaps: every event takes one step of width, so a session that
//! takes no virtual time (most do) is still as wide as its commands, and where virtual time
//! passes between two events a gap opens whose width grows with the logarithm of the time
//! passed, labelled with it (`+5m`), and the axis is ticked with the time reached. A picture is
//! therefore read left to right as the trace is read top to bottom, and long waits (timeouts,
//! retries over days) stay visible without flattening everything else. docs/report.md is the
//! legend.
//!
//! Every text that comes from a scenario (host names, reply texts, reasons) goes through
//! [`escape::html`]; the picture is a pure function of the trace, so the same run gives the same
//! bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use mxsim_model::escape;
use mxsim_model::outcome::DispositionKind;
use mxsim_model::smtp::ReplyClass;
use mxsim_model::time::Instant;
use mxsim_model::trace::{AttemptId, Closer, EventKind, Sent, Trace};

/// How a connection ended, as the picture colours its span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    /// A server took a copy of a message on it (2yz to the end of data, or a lost 2yz).
    Accepted,
    /// Its last answered command got a 4yz (QUIT's reply aside).
    Transient,
    /// Its last answered command got a 5yz (QUIT's reply aside).
    Permanent,
    /// The connection attempt was refused (RST).
    Refused,
    /// The server accepted and closed at once.
    Reset,
    /// The client stopped waiting: for the handshake, a reply, or TLS.
    Timeout,
    /// The TLS handshake failed.
    TlsFailed,
    /// The server closed it without a negative reply.
    ClosedByServer,
    /// The client closed it without a delivery or a negative reply (a missing keyword, SIZE, …).
    ClosedByClient,
    /// Still open when the run ended (a limit or a budget stopped it).
    Open,
}

impl Ending {
    /// Every ending, in legend order.
    pub const ALL: [Ending; 10] = [
        Ending::Accepted,
        Ending::Transient,
        Ending::Permanent,
        Ending::Refused,
        Ending::Reset,
        Ending::Timeout,
        Ending::TlsFailed,
        Ending::ClosedByServer,
        Ending::ClosedByClient,
        Ending::Open,
    ];

    /// The CSS class of its spans.
    pub const fn class(self) -> &'static str {
        match self {
            Ending::Accepted => "e-acc",
            Ending::Transient => "e-4yz",
            Ending::Permanent => "e-5yz",
            Ending::Refused => "e-ref",
            Ending::Reset => "e-rst",
            Ending::Timeout => "e-tmo",
            Ending::TlsFailed => "e-tls",
            Ending::ClosedByServer => "e-srv",
            Ending::ClosedByClient => "e-cli",
            Ending::Open => "e-open",
        }
    }

    /// The legend's words.
    pub const fn label(self) -> &'static str {
        match self {
            Ending::Accepted => "a copy accepted",
            Ending::Transient => "4yz reply",
            Ending::Permanent => "5yz reply",
            Ending::Refused => "refused (RST)",
            Ending::Reset => "reset after accept",
            Ending::Timeout => "client gave up (timeout)",
            Ending::TlsFailed => "TLS handshake failed",
            Ending::ClosedByServer => "closed by server",
            Ending::ClosedByClient => "closed by client",
            Ending::Open => "open when the run ended",
        }
    }
}

/// The style rules the picture's classes need; the page puts them in its `<style>` once.
pub const CSS: &str = "\
svg.tl{font:10px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#fff}
svg.tl .lane{fill:#f6f7f9}
svg.tl .lane.c{fill:#eef1f6}
svg.tl .gap{fill:#e9e4d8}
svg.tl .gapt{fill:#7a6a3a}
svg.tl .tick{stroke:#c9ced6;stroke-width:1}
svg.tl .axis{fill:#555}
svg.tl .lbl{fill:#222}
svg.tl .sub{fill:#666;font-size:9px}
svg.tl .ord{fill:#1a4f8b}
svg.tl .att{stroke:#1a4f8b;stroke-dasharray:3 2}
svg.tl .attt{fill:#1a4f8b;font-weight:bold}
svg.tl .lim{stroke:#b00020;stroke-width:2}
svg.tl .snt{stroke:#222;stroke-width:1}
svg.tl .r2{stroke:#1b5e20;stroke-width:1.5}
svg.tl .r3{stroke:#1b5e20;stroke-width:1.5}
svg.tl .r4{stroke:#e65100;stroke-width:2}
svg.tl .r5{stroke:#b00020;stroke-width:2}
svg.tl .park{stroke:#555;stroke-dasharray:2 2;stroke-width:2}
svg.tl .dns{fill:#5c6bc0}
svg.tl .hint{fill:#8d6e63}
svg.tl .q{fill:#1a4f8b}
svg.tl .dsn{fill:#6d4c41}
svg.tl .o-delivered{fill:#2e7d32}
svg.tl .o-bounced{fill:#c62828}
svg.tl .o-deferred{fill:#f9a825}
.e-acc{fill:#66bb6a}
.e-4yz{fill:#ffb74d}
.e-5yz{fill:#e57373}
.e-ref{fill:#ab47bc}
.e-rst{fill:#ce93d8}
.e-tmo{fill:#78909c}
.e-tls{fill:#ff8a65}
.e-srv{fill:#a1887f}
.e-cli{fill:#cfd8dc}
.e-open{fill:#fff;stroke:#555;stroke-dasharray:3 2}
";

/// Width of the lane labels, in pixels.
const LABEL_WIDTH: f64 = 210.0;
/// Characters that fit in a lane label (10 px monospace is about 6 px a character).
const LABEL_CHARS: usize = 33;
/// The plot aims at this width for the events' steps (gaps come on top).
const PLOT_TARGET: f64 = 900.0;
/// An event's step is at least this wide (long traces) …
const STEP_MIN: f64 = 0.5;
/// … and at most this wide (short ones).
const STEP_MAX: f64 = 12.0;
/// Height of an address lane.
const LANE: f64 = 26.0;
/// Height of the client's lane.
const CLIENT_LANE: f64 = 20.0;
/// Height of one row of order labels, and of the attempt labels.
const TEXT_ROW: f64 = 13.0;
/// Order labels are stacked in at most this many rows; the rest are left to the trace.
const ORDER_ROWS_MAX: usize = 4;
/// Height of the time axis.
const AXIS: f64 = 24.0;
/// Right margin.
const MARGIN: f64 = 24.0;

/// The gap opened for `millis` of virtual time: 10 px, plus 8 px per doubling of the seconds.
fn gap(millis: u64) -> f64 {
    let seconds = millis as f64 / 1000.0;
    10.0 + 8.0 * (1.0 + seconds).log2()
}

/// `00:05:00` for `00:05:00.000`, `1d 02:00:00`; milliseconds only when there are any.
pub fn time_label(at: Instant) -> String {
    let text = at.to_string();
    match text.strip_suffix(".000") {
        Some(short) => short.to_owned(),
        None => text,
    }
}

fn duration_label(millis: u64) -> String {
    format!("+{}", mxsim_model::time::Duration(millis))
}

/// `text` cut to `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The address an event happens on, for events of a connection.
fn address_of(kind: &EventKind) -> Option<IpAddr> {
    match kind {
        EventKind::Connecting { address, .. }
        | EventKind::Connected { address }
        | EventKind::Refused { address }
        | EventKind::Reset { address }
        | EventKind::ConnectGaveUp { address, .. }
        | EventKind::Sent { address, .. }
        | EventKind::Replied { address, .. }
        | EventKind::TlsEstablished { address }
        | EventKind::TlsFailed { address }
        | EventKind::HandshakeGaveUp { address, .. }
        | EventKind::ReplyGaveUp { address, .. }
        | EventKind::Closed { address, .. }
        | EventKind::Accepted { address, .. }
        | EventKind::Parked { address, .. }
        | EventKind::Reused { address, .. } => Some(*address),
        _ => None,
    }
}

/// One connection while it is drawn.
struct Span {
    /// The attempt it was opened in (a reused connection takes the reusing attempt's).
    attempt: Option<AttemptId>,
    /// Event index where its current segment began, and whether that segment is parked.
    segment: (usize, bool),
    /// Finished segments: first and last event index, parked or not.
    segments: Vec<(usize, usize, bool)>,
    accepted: bool,
    gave_up: bool,
    tls_failed: bool,
    /// The last command sent, to leave QUIT's reply out of how it ended.
    last_sent: Option<Sent>,
    /// The class of the last reply to a command other than QUIT.
    last_reply: Option<ReplyClass>,
    /// Index of the event that opened it.
    start: usize,
}

impl Span {
    fn new(index: usize, attempt: Option<AttemptId>) -> Span {
        Span {
            attempt,
            segment: (index, false),
            segments: Vec::new(),
            accepted: false,
            gave_up: false,
            tls_failed: false,
            last_sent: None,
            last_reply: None,
            start: index,
        }
    }

    fn ending(&self, closed_by: Option<Closer>) -> Ending {
        if self.accepted {
            Ending::Accepted
        } else if self.gave_up {
            Ending::Timeout
        } else if self.last_reply == Some(ReplyClass::Permanent) {
            Ending::Permanent
        } else if self.last_reply == Some(ReplyClass::Transient) {
            Ending::Transient
        } else if self.tls_failed {
            Ending::TlsFailed
        } else {
            match closed_by {
                Some(Closer::Server | Closer::ServerIdle) => Ending::ClosedByServer,
                Some(Closer::Client) => Ending::ClosedByClient,
                None => Ending::Open,
            }
        }
    }
}

/// A span ready to draw.
struct Drawn {
    lane: usize,
    segments: Vec<(usize, usize, bool)>,
    ending: Ending,
    start: usize,
    end: usize,
}

/// The picture of `trace`. Traces of any length give a bounded number of elements per event.
pub fn svg(trace: &Trace) -> String {
    let events = &trace.events;
    let text = trace.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let line = |index: usize| -> String {
        escape::html(lines.get(index).map_or("", |line| line.trim_start()))
    };

    // Lanes: one per address, in the order the client first reached it; the hosts it was
    // reached as.
    let mut lanes: Vec<(IpAddr, Vec<String>)> = Vec::new();
    let mut lane_of: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for event in events {
        let Some(address) = address_of(&event.kind) else {
            continue;
        };
        let lane = *lane_of.entry(address).or_insert_with(|| {
            lanes.push((address, Vec::new()));
            lanes.len() - 1
        });
        if let EventKind::Connecting { host, .. } | EventKind::Reused { host, .. } = &event.kind {
            let host = host.to_string();
            if !lanes[lane].1.contains(&host) {
                lanes[lane].1.push(host);
            }
        }
    }

    // The horizontal axis: a step per event, a gap where virtual time passes.
    let step = (PLOT_TARGET / events.len().max(1) as f64).clamp(STEP_MIN, STEP_MAX);
    let mut xs = Vec::with_capacity(events.len());
    let mut gaps: Vec<(f64, f64, u64)> = Vec::new();
    let mut ticks: Vec<(f64, Instant)> = vec![(0.0, Instant(0))];
    let mut x = 0.0;
    let mut previous = Instant(0);
    for event in events {
        if event.at.0 > previous.0 {
            let width = gap(event.at.0 - previous.0);
            gaps.push((x, width, event.at.0 - previous.0));
            x += width;
            ticks.push((x, event.at));
            previous = event.at;
        }
        xs.push(x);
        x += step;
    }
    let plot_width = x.max(step);
    let at = |index: usize| LABEL_WIDTH + xs.get(index).copied().unwrap_or(plot_width);

    // Order labels, stacked in rows so they do not overlap.
    let mut order_rows: Vec<f64> = Vec::new();
    let mut orders: Vec<(usize, usize, String)> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if let EventKind::Shuffled { label, order } = &event.kind {
            let picks: Vec<String> = order
                .iter()
                .map(|pick| {
                    let pick = pick.to_string();
                    pick.split('.').next().unwrap_or(&pick).to_owned()
                })
                .collect();
            let text = cut(&format!("{label}: {}", picks.join(" › ")), 70);
            let x = at(index);
            let end = x + 6.0 * text.chars().count() as f64 + 8.0;
            let row = match order_rows.iter().position(|row_end| *row_end <= x) {
                Some(row) => Some(row),
                None if order_rows.len() < ORDER_ROWS_MAX => {
                    order_rows.push(0.0);
                    Some(order_rows.len() - 1)
                }
                None => None,
            };
            if let Some(row) = row {
                order_rows[row] = end;
                orders.push((index, row, text));
            }
        }
    }
    let queue = events
        .iter()
        .any(|event| matches!(event.kind, EventKind::AttemptStarted { .. }));
    let top = order_rows.len() as f64 * TEXT_ROW + if queue { TEXT_ROW } else { 0.0 } + 4.0;
    let client_y = top;
    let lanes_y = client_y + CLIENT_LANE + 2.0;
    let lane_y = |lane: usize| lanes_y + lane as f64 * LANE;
    let axis_y = lanes_y + lanes.len() as f64 * LANE + 2.0;
    let height = axis_y + AXIS;
    let width = LABEL_WIDTH + plot_width + MARGIN;

    let mut out = String::with_capacity(4096 + events.len() * 48);
    let _ = writeln!(
        out,
        "<svg class=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"timeline: {n} events, {l} {addresses}\">",
        w = px(width),
        h = px(height),
        n = events.len(),
        l = lanes.len(),
        addresses = if lanes.len() == 1 {
            "address"
        } else {
            "addresses"
        },
    );
    // Lane backgrounds and labels.
    let _ = writeln!(
        out,
        "<rect class=\"lane c\" x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\"/><text class=\"lbl\" x=\"4\" y=\"{}\">client</text>",
        px(client_y),
        px(width),
        px(CLIENT_LANE),
        px(client_y + 14.0)
    );
    for (index, (address, hosts)) in lanes.iter().enumerate() {
        let y = lane_y(index);
        let hosts_text = if hosts.is_empty() {
            "?".to_owned()
        } else {
            hosts.join(", ")
        };
        let _ = writeln!(
            out,
            "<rect class=\"lane\" x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\"/><text class=\"lbl\" x=\"4\" y=\"{}\"><title>{} [{}]</title>{}</text><text class=\"sub\" x=\"4\" y=\"{}\">{}</text>",
            px(y + 1.0),
            px(width),
            px(LANE - 2.0),
            px(y + 12.0),
            escape::html(&hosts_text),
            address,
            escape::html(&cut(&hosts_text, LABEL_CHARS)),
            px(y + 22.0),
            address
        );
    }
    // Gaps where virtual time passes, with how much.
    for (x, width_of_gap, millis) in &gaps {
        let _ = writeln!(
            out,
            "<rect class=\"gap\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/><text class=\"gapt\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(LABEL_WIDTH + x + step / 2.0),
            px(client_y),
            px(width_of_gap - step.min(*width_of_gap)),
            px(axis_y - client_y),
            px(LABEL_WIDTH + x + width_of_gap / 2.0 + step / 2.0),
            px(axis_y + 20.0),
            duration_label(*millis)
        );
    }
    // The time axis: a tick where time moved on, labelled unless too close to the last label.
    let mut last_label = f64::NEG_INFINITY;
    for (x, time) in &ticks {
        let x = LABEL_WIDTH + x;
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\"/>",
            x = px(x),
            y1 = px(client_y),
            y2 = px(axis_y + 4.0)
        );
        if x - last_label >= 70.0 {
            let _ = write!(
                out,
                "<text class=\"axis\" x=\"{}\" y=\"{}\">{}</text>",
                px(x + 2.0),
                px(axis_y + 10.0),
                time_label(*time)
            );
            last_label = x;
        }
        out.push('\n');
    }

    // Connections.
    let mut open: BTreeMap<IpAddr, Vec<Span>> = BTreeMap::new();
    let mut drawn: Vec<Drawn> = Vec::new();
    let mut sent_ticks = String::new();
    let mut reply_ticks: [String; 4] = Default::default();
    let finish =
        |span: Span, lane: usize, end: usize, closed: Option<Closer>, drawn: &mut Vec<Drawn>| {
            let ending = span.ending(closed);
            let mut segments = span.segments;
            segments.push((span.segment.0, end, span.segment.1));
            drawn.push(Drawn {
                lane,
                segments,
                ending,
                start: span.start,
                end,
            });
        };
    for (index, event) in events.iter().enumerate() {
        let Some(address) = address_of(&event.kind) else {
            continue;
        };
        let lane = lane_of[&address];
        let spans = open.entry(address).or_default();
        if let EventKind::Connecting { .. } = event.kind {
            spans.push(Span::new(index, event.attempt));
            continue;
        }
        // The connection this event belongs to: the open one of the same attempt, else the
        // latest (concurrent attempts of a queue may share an address).
        let position = spans
            .iter()
            .rposition(|span| span.attempt == event.attempt)
            .or_else(|| spans.len().checked_sub(1));
        let Some(position) = position else {
            continue;
        };
        let x = at(index);
        let y = lane_y(lane);
        let span = &mut spans[position];
        match &event.kind {
            EventKind::Refused { .. }
            | EventKind::Reset { .. }
            | EventKind::ConnectGaveUp { .. } => {
                let span = spans.remove(position);
                let ending = match event.kind {
                    EventKind::Refused { .. } => Ending::Refused,
                    EventKind::Reset { .. } => Ending::Reset,
                    _ => Ending::Timeout,
                };
                drawn.push(Drawn {
                    lane,
                    segments: vec![(span.segment.0, index, false)],
                    ending,
                    start: span.start,
                    end: index,
                });
            }
            EventKind::Closed { by, .. } => {
                let span = spans.remove(position);
                finish(span, lane, index, Some(*by), &mut drawn);
            }
            EventKind::Sent { command, .. } => {
                let _ = write!(sent_ticks, "M{} {}v8", px(x + step / 2.0), px(y + 4.0));
                span.last_sent = Some(command.clone());
            }
            EventKind::Replied { reply, .. } => {
                let class = reply.class();
                let slot = match class {
                    ReplyClass::Positive => 0,
                    ReplyClass::Intermediate => 1,
                    ReplyClass::Transient => 2,
                    ReplyClass::Permanent => 3,
                };
                let _ = write!(
                    reply_ticks[slot],
                    "M{} {}v8",
                    px(x + step / 2.0),
                    px(y + LANE - 13.0)
                );
                if !matches!(span.last_sent, Some(Sent::Quit)) {
                    span.last_reply = Some(class);
                }
            }
            EventKind::Accepted { .. } => span.accepted = true,
            EventKind::ReplyGaveUp { .. } | EventKind::HandshakeGaveUp { .. } => {
                span.gave_up = true;
            }
            EventKind::TlsFailed { .. } => span.tls_failed = true,
            EventKind::Parked { .. } => {
                span.segments.push((span.segment.0, index, false));
                span.segment = (index, true);
            }
            EventKind::Reused { .. } => {
                span.segments.push((span.segment.0, index, true));
                span.segment = (index, false);
                span.attempt = event.attempt;
            }
            _ => {}
        }
    }
    let last = events.len().saturating_sub(1);
    for (address, spans) in open {
        for span in spans {
            finish(span, lane_of[&address], last, None, &mut drawn);
        }
    }
    drawn.sort_by_key(|span| (span.start, span.lane));
    for span in &drawn {
        let y = lane_y(span.lane);
        let _ = write!(out, "<g class=\"{}\">", span.ending.class());
        let _ = write!(
            out,
            "<title>{}: {} ({} – {})&#10;{}&#10;{}</title>",
            escape::html(&lanes[span.lane].1.join(", ")),
            span.ending.label(),
            events
                .get(span.start)
                .map_or(String::new(), |e| time_label(e.at)),
            events
                .get(span.end)
                .map_or(String::new(), |e| time_label(e.at)),
            line(span.start),
            line(span.end)
        );
        for &(first, end, parked) in &span.segments {
            let x1 = at(first);
            let x2 = at(end) + step;
            if parked {
                let _ = write!(
                    out,
                    "<line class=\"park\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
                    px(x1 + step),
                    px(x2 - step),
                    y = px(y + LANE / 2.0)
                );
            } else {
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\"/>",
                    px(x1),
                    px(y + 3.0),
                    px((x2 - x1).max(3.0)),
                    px(LANE - 8.0)
                );
            }
        }
        out.push_str("</g>\n");
    }
    if !sent_ticks.is_empty() {
        let _ = writeln!(out, "<path class=\"snt\" d=\"{sent_ticks}\"/>");
    }
    for (slot, ticks) in reply_ticks.iter().enumerate() {
        if !ticks.is_empty() {
            let _ = writeln!(out, "<path class=\"r{}\" d=\"{ticks}\"/>", slot + 2);
        }
    }

    // The client's lane, the orders drawn, the queue's attempts and the run's limits.
    let mid = client_y + CLIENT_LANE / 2.0;
    let mut last_attempt_label = f64::NEG_INFINITY;
    let mut dns = String::new();
    for (index, event) in events.iter().enumerate() {
        let x = at(index) + step / 2.0;
        let marker = |class: &str, shape: &str| -> String {
            format!(
                "<{shape} class=\"{class}\" {}><title>{}</title></{shape}>\n",
                match shape {
                    "circle" => format!("cx=\"{}\" cy=\"{}\" r=\"3\"", px(x), px(mid)),
                    _ => format!(
                        "x=\"{}\" y=\"{}\" width=\"6\" height=\"6\"",
                        px(x - 3.0),
                        px(mid - 3.0)
                    ),
                },
                line(index)
            )
        };
        match &event.kind {
            // DNS answers are many and the trace beside the picture spells them out: one path,
            // a diamond each, without tooltips.
            EventKind::Dns { .. } | EventKind::DnsGaveUp { .. } => {
                let _ = write!(dns, "M{} {}l3 3l-3 3l-3-3z", px(x), px(mid - 3.0));
            }
            EventKind::HintSet { .. }
            | EventKind::HintCleared { .. }
            | EventKind::HintHeld { .. } => {
                out.push_str(&marker("hint", "circle"));
            }
            EventKind::Submitted { .. }
            | EventKind::Joined { .. }
            | EventKind::Retry { .. }
            | EventKind::Expired { .. } => {
                out.push_str(&marker("q", "rect"));
            }
            EventKind::Dsn { .. } | EventKind::DsnSuppressed { .. } => {
                out.push_str(&marker("dsn", "rect"));
            }
            EventKind::Outcome { disposition, .. } => {
                let class = match disposition.kind() {
                    DispositionKind::Delivered => "o-delivered",
                    DispositionKind::Bounced => "o-bounced",
                    DispositionKind::Deferred => "o-deferred",
                };
                out.push_str(&marker(class, "rect"));
            }
            EventKind::AttemptStarted {
                message, attempt, ..
            } => {
                let _ = write!(
                    out,
                    "<line class=\"att\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"><title>{}</title></line>",
                    px(client_y - TEXT_ROW + 2.0),
                    px(axis_y),
                    line(index),
                    x = px(x)
                );
                if x - last_attempt_label >= 44.0 {
                    let _ = write!(
                        out,
                        "<text class=\"attt\" x=\"{}\" y=\"{}\">m{message}#{attempt}</text>",
                        px(x + 2.0),
                        px(client_y - 3.0)
                    );
                    last_attempt_label = x;
                }
                out.push('\n');
            }
            EventKind::RunLimit { .. }
            | EventKind::Horizon { .. }
            | EventKind::BudgetSpent { .. } => {
                let _ = writeln!(
                    out,
                    "<line class=\"lim\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"><title>{}</title></line>",
                    px(client_y),
                    px(axis_y),
                    line(index),
                    x = px(x)
                );
            }
            _ => {}
        }
    }
    if !dns.is_empty() {
        let _ = writeln!(out, "<path class=\"dns\" d=\"{dns}\"/>");
    }
    for (index, row, text) in &orders {
        let _ = writeln!(
            out,
            "<text class=\"ord\" x=\"{}\" y=\"{}\"><title>{}</title>{}</text>",
            px(at(*index)),
            px((*row as f64 + 1.0) * TEXT_ROW - 2.0),
            line(*index),
            escape::html(text)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A coordinate with at most one decimal, without a trailing `.0`: short and stable text.
fn px(value: f64) -> String {
    let tenths = (value * 10.0).round() as i64;
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, (tenths % 10).abs())
    }
}

/// The legend of the picture: the spans' colours, the ticks, the client's markers, as a small
/// SVG.
pub fn legend() -> String {
    // (what to draw, its class, its words)
    let mut items: Vec<(&str, &str, &str)> = Ending::ALL
        .iter()
        .map(|ending| ("span", ending.class(), ending.label()))
        .collect();
    items.extend([
        ("tick", "snt", "command sent"),
        ("tick", "r2", "2yz/3yz reply"),
        ("tick", "r4", "4yz reply"),
        ("tick", "r5", "5yz reply"),
        ("park", "park", "kept open for reuse"),
        ("diamond", "dns", "DNS answer"),
        ("dot", "hint", "retry record"),
        ("box", "q", "queued, retry, expiry"),
        ("box", "dsn", "DSN"),
        ("box", "o-delivered", "recipient delivered"),
        ("box", "o-bounced", "recipient bounced"),
        ("box", "o-deferred", "recipient deferred"),
        ("vline", "att", "queue attempt begins"),
        ("vline", "lim", "limit or budget reached"),
        ("gap", "gap", "virtual time passes"),
    ]);
    let width = 190.0;
    let per_row = 5;
    let rows = items.len().div_ceil(per_row);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg class=\"tl legend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"legend of the timelines\">",
        px(width * per_row as f64),
        px(rows as f64 * 18.0 + 2.0)
    );
    for (index, (shape, class, label)) in items.iter().enumerate() {
        let x = (index % per_row) as f64 * width;
        let y = (index / per_row) as f64 * 18.0;
        let _ = match *shape {
            "span" => write!(
                out,
                "<g class=\"{class}\"><rect x=\"{}\" y=\"{}\" width=\"22\" height=\"12\" rx=\"2\"/></g>",
                px(x),
                px(y + 2.0)
            ),
            "tick" => write!(
                out,
                "<path class=\"{class}\" d=\"M{} {}v10\"/>",
                px(x + 11.0),
                px(y + 3.0)
            ),
            "park" => write!(
                out,
                "<path class=\"{class}\" d=\"M{} {}h22\"/>",
                px(x),
                px(y + 8.0)
            ),
            "dot" => write!(
                out,
                "<circle class=\"{class}\" cx=\"{}\" cy=\"{}\" r=\"3\"/>",
                px(x + 11.0),
                px(y + 8.0)
            ),
            "diamond" => write!(
                out,
                "<path class=\"{class}\" d=\"M{} {}l3 3l-3 3l-3-3z\"/>",
                px(x + 11.0),
                px(y + 5.0)
            ),
            "box" => write!(
                out,
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"6\" height=\"6\"/>",
                px(x + 8.0),
                px(y + 5.0)
            ),
            "vline" => write!(
                out,
                "<path class=\"{class}\" d=\"M{} {}v14\"/>",
                px(x + 11.0),
                px(y + 1.0)
            ),
            _ => write!(
                out,
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"22\" height=\"14\"/>",
                px(x),
                px(y + 1.0)
            ),
        };
        let _ = writeln!(
            out,
            "<text class=\"lbl\" x=\"{}\" y=\"{}\">{label}</text>",
            px(x + 28.0),
            px(y + 12.0)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_short_and_stable() {
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.34), "12.3");
        assert_eq!(px(12.96), "13");
        assert_eq!(px(0.05), "0.1");
    }

    #[test]
    fn gaps_grow_with_the_logarithm_of_the_time_passed() {
        assert_eq!(px(gap(1_000)), "18");
        assert_eq!(px(gap(300_000)), "75.9");
        assert!(gap(86_400_000) < 2.0 * gap(3_600_000));
        assert_eq!(time_label(Instant(1_800_000)), "00:30:00");
        assert_eq!(time_label(Instant(250)), "00:00:00.250");
    }

    #[test]
    fn a_delivery_outranks_a_negative_reply_and_a_timeout_outranks_both() {
        let mut span = Span::new(0, None);
        span.last_reply = Some(ReplyClass::Permanent);
        assert_eq!(span.ending(Some(Closer::Client)), Ending::Permanent);
        span.gave_up = true;
        assert_eq!(span.ending(Some(Closer::Client)), Ending::Timeout);
        span.accepted = true;
        assert_eq!(span.ending(Some(Closer::Client)), Ending::Accepted);
        let quiet = Span::new(0, None);
        assert_eq!(
            quiet.ending(Some(Closer::ServerIdle)),
            Ending::ClosedByServer
        );
        assert_eq!(quiet.ending(Some(Closer::Client)), Ending::ClosedByClient);
        assert_eq!(quiet.ending(None), Ending::Open);
    }
}
