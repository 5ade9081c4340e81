//! The scenario's zone served as an authoritative DNS server on 127.0.0.1:53, over UDP and TCP.
//!
//! The answers come from the same function the simulator asks, [`Zone::answer`]: one behaviour,
//! one implementation. This module only turns them into DNS messages with hickory-proto (the
//! wire format is a library's, not ours) and waits the scenario's latency, scaled. Every answer
//! is authoritative (AA), has TTL 0 so nothing caches it, and carries the SOA in the authority
//! section when it is empty (NODATA, NXDOMAIN). A name with a `cname` gets the CNAME and, as an
//! authoritative server in the same zone would, the target's records after it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA};
use hickory_proto::rr::{Name as WireName, RData, Record, RecordType as WireType};
use mxsim_model::dns::{DnsAnswer, RecordType};
use mxsim_model::name::Name;
use mxsim_model::scenario::{Scenario, ZoneName};
use mxsim_model::trace::EventKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::record::Recorder;

/// Where the server listens inside the namespace.
pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 53);

/// How many CNAME links an answer follows inside the zone (a loop ends here).
const CNAME_CHAIN: usize = 8;

/// A built answer: the message to send (none when the scenario says the answer never comes)
/// and the latency to wait first.
pub struct Answered {
    /// The response, or `None` for a server that never answers.
    pub response: Option<Message>,
    /// The scenario latency before it goes out.
    pub latency: mxsim_model::time::Duration,
}

/// The server's sockets, bound before anything asks.
pub struct Sockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

/// Binds [`LISTEN`] over UDP and TCP.
pub async fn bind() -> std::io::Result<Sockets> {
    Ok(Sockets {
        udp: UdpSocket::bind(LISTEN).await?,
        tcp: TcpListener::bind(LISTEN).await?,
    })
}

/// Serves `scenario`'s zone until the task is dropped.
pub async fn serve(sockets: Sockets, scenario: Arc<Scenario>, recorder: Recorder) {
    let Sockets { udp, tcp } = sockets;
    let udp = Arc::new(udp);
    let udp_task = {
        let (scenario, recorder, udp) = (scenario.clone(), recorder.clone(), udp.clone());
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((length, peer)) = udp.recv_from(&mut buffer).await else {
                    // A transient error (an ICMP error reported on the socket): never spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let query = buffer[..length].to_vec();
                let (scenario, recorder, udp) = (scenario.clone(), recorder.clone(), udp.clone());
                tokio::spawn(async move {
                    if let Some(bytes) = respond(&scenario, &recorder, &query, Some(512)).await {
                        let _ = udp.send_to(&bytes, peer).await;
                    }
                });
            }
        })
    };
    loop {
        let Ok((mut stream, _)) = tcp.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let (scenario, recorder) = (scenario.clone(), recorder.clone());
        tokio::spawn(async move {
            // RFC 7766: any number of length-prefixed queries per connection.
            loop {
                let Ok(length) = stream.read_u16().await else {
                    return;
                };
                let mut query = vec![0u8; usize::from(length)];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(bytes) = respond(&scenario, &recorder, &query, None).await else {
                    continue;
                };
                let Ok(length) = u16::try_from(bytes.len()) else {
                    return;
                };
                if stream.write_u16(length).await.is_err()
                    || stream.write_all(&bytes).await.is_err()
                {
                    return;
                }
            }
        });
        if udp_task.is_finished() {
            return;
        }
    }
}

/// Answers one query: decodes it, asks the zone, records the answer, waits its latency and
/// encodes the response (truncated to `limit` bytes over UDP, with TC set, as RFC 1035 says).
async fn respond(
    scenario: &Scenario,
    recorder: &Recorder,
    query: &[u8],
    limit: Option<usize>,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let now = recorder.clock().now();
    let (answered, observed) = answer(scenario, &request, now);
    if let Some(kind) = observed {
        recorder.record(kind);
    }
    tokio::time::sleep(recorder.clock().real(answered.latency)).await;
    let response = answered.response?;
    let bytes = response.to_vec().ok()?;
    match limit {
        Some(limit) if bytes.len() > limit => response.truncate().to_vec().ok(),
        _ => Some(bytes),
    }
}

/// The response to `request` at scenario time `now`, and the trace event it makes (none for
/// record types the scenario format has no notion of). Pure: unit-tested without sockets.
pub fn answer(
    scenario: &Scenario,
    request: &Message,
    now: mxsim_model::time::Instant,
) -> (Answered, Option<EventKind>) {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        response.edns = Some(edns);
    }
    let latency = mxsim_model::time::Duration::ZERO;
    let [query] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return (
            Answered {
                response: Some(response),
                latency,
            },
            None,
        );
    };
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return (
            Answered {
                response: Some(response),
                latency,
            },
            None,
        );
    }
    let wire_name = query.name().to_lowercase();
    let Ok(name) = Name::parse(&wire_name.to_ascii()) else {
        response.metadata.response_code = ResponseCode::NXDomain;
        add_soa(&mut response, &wire_name);
        return (
            Answered {
                response: Some(response),
                latency,
            },
            None,
        );
    };
    let record_type = match query.query_type() {
        WireType::MX => RecordType::Mx,
        WireType::A => RecordType::A,
        WireType::AAAA => RecordType::Aaaa,
        _ => {
            // A type the scenario format cannot state (TXT, TLSA, PTR...): no such records.
            let exists = matches!(scenario.zone.names.get(&name), Some(ZoneName::Records(_)));
            if !exists {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            add_soa(&mut response, &wire_name);
            return (
                Answered {
                    response: Some(response),
                    latency,
                },
                None,
            );
        }
    };
    let (first, latency) = scenario.zone.answer(&name, record_type, now);
    let event = EventKind::Dns {
        name: name.clone(),
        record_type,
        answer: first.clone(),
    };
    let mut current = (name, first);
    for _ in 0..CNAME_CHAIN {
        let (owner, answer) = &current;
        let owner_wire = wire(owner);
        match answer {
            DnsAnswer::Timeout => {
                return (
                    Answered {
                        response: None,
                        latency,
                    },
                    Some(event),
                );
            }
            DnsAnswer::Cname(target) => {
                response.answers.push(Record::from_rdata(
                    owner_wire,
                    0,
                    RData::CNAME(CNAME(wire(target))),
                ));
                let next = scenario.zone.answer(target, record_type, now).0;
                current = (target.clone(), next);
                continue;
            }
            DnsAnswer::Mx(records) => {
                for mx in records.iter() {
                    let exchange = if mx.exchange.is_root() {
                        WireName::root()
                    } else {
                        wire(&mx.exchange)
                    };
                    response.answers.push(Record::from_rdata(
                        owner_wire.clone(),
                        0,
                        RData::MX(MX::new(mx.preference, exchange)),
                    ));
                }
            }
            DnsAnswer::Addresses(addresses) => {
                for address in addresses.iter() {
                    let rdata = match address {
                        IpAddr::V4(v4) if record_type == RecordType::A => RData::A(A(*v4)),
                        IpAddr::V6(v6) if record_type == RecordType::Aaaa => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    response
                        .answers
                        .push(Record::from_rdata(owner_wire.clone(), 0, rdata));
                }
                if response.answers.is_empty() {
                    add_soa(&mut response, &owner_wire);
                }
            }
            DnsAnswer::NoData => add_soa(&mut response, &owner_wire),
            DnsAnswer::NxDomain => {
                response.metadata.response_code = ResponseCode::NXDomain;
                add_soa(&mut response, &owner_wire);
            }
            DnsAnswer::ServFail => {
                response.metadata.response_code = ResponseCode::ServFail;
                response.answers.clear();
            }
        }
        break;
    }
    (
        Answered {
            response: Some(response),
            latency,
        },
        Some(event),
    )
}

fn wire(name: &Name) -> WireName {
    let mut text = name.as_str().to_owned();
    text.push('.');
    WireName::from_ascii(&text).expect("scenario names are valid DNS names")
}

/// The SOA of an empty answer: owned by the name's parent domain, TTL and minimum 0 so no
/// resolver caches the negative answer.
fn add_soa(response: &mut Message, owner: &WireName) {
    let apex = if owner.num_labels() > 2 {
        owner.trim_to(2)
    } else {
        owner.clone()
    };
    let soa = SOA::new(
        WireName::from_ascii("ns.mxsim.invalid.").expect("a valid name"),
        WireName::from_ascii("hostmaster.mxsim.invalid.").expect("a valid name"),
        1,
        3600,
        600,
        86400,
        0,
    );
    response
        .authorities
        .push(Record::from_rdata(apex, 0, RData::SOA(soa)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use mxsim_model::time::Instant;

    fn scenario() -> Scenario {
        let text = "title: t\nmessage:\n  to: [u@foo.example]\ndns:\n  foo.example: {mx: [10 smtp1.foo.example, 20 alias.foo.example]}\n  alias.foo.example: {cname: smtp1.foo.example}\n  gone.foo.example: nxdomain\n  broken.foo.example: {a: servfail}\n  slow.foo.example: {a: timeout}\nservers:\n  smtp1.foo.example: {}\n";
        mxsim_model::scenario::load(text, &|_| true).expect("the test scenario loads")
    }

    fn ask(scenario: &Scenario, name: &str, kind: WireType) -> (Answered, Option<EventKind>) {
        let mut request = Message::new(7, MessageType::Query, OpCode::Query);
        request
            .queries
            .push(Query::query(WireName::from_ascii(name).unwrap(), kind));
        // Round-trip through the wire format, as a resolver's query arrives.
        let request = Message::from_vec(&request.to_vec().unwrap()).unwrap();
        answer(scenario, &request, Instant::START)
    }

    #[test]
    fn mx_answer_is_authoritative_and_in_zone_order() {
        let scenario = scenario();
        let (answered, event) = ask(&scenario, "FOO.example.", WireType::MX);
        let response = answered.response.unwrap();
        assert!(response.metadata.authoritative);
        assert_eq!(response.metadata.id, 7);
        let exchanges: Vec<String> = response
            .answers
            .iter()
            .map(|record| match &record.data {
                RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange),
                other => panic!("not MX: {other:?}"),
            })
            .collect();
        assert_eq!(
            exchanges,
            ["10 smtp1.foo.example.", "20 alias.foo.example."]
        );
        assert!(matches!(
            event,
            Some(EventKind::Dns {
                answer: DnsAnswer::Mx(_),
                ..
            })
        ));
    }

    #[test]
    fn failures_become_rcodes_and_timeouts_no_response() {
        let scenario = scenario();
        let (answered, _) = ask(&scenario, "gone.foo.example.", WireType::A);
        let response = answered.response.unwrap();
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(response.authorities.len(), 1);
        let (answered, _) = ask(&scenario, "unknown.example.", WireType::MX);
        assert_eq!(
            answered.response.unwrap().metadata.response_code,
            ResponseCode::NXDomain
        );
        let (answered, _) = ask(&scenario, "broken.foo.example.", WireType::A);
        assert_eq!(
            answered.response.unwrap().metadata.response_code,
            ResponseCode::ServFail
        );
        let (answered, event) = ask(&scenario, "slow.foo.example.", WireType::A);
        assert!(answered.response.is_none());
        assert!(matches!(
            event,
            Some(EventKind::Dns {
                answer: DnsAnswer::Timeout,
                ..
            })
        ));
        // NODATA: the name exists, the type does not.
        let (answered, _) = ask(&scenario, "smtp1.foo.example.", WireType::AAAA);
        let response = answered.response.unwrap();
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.answers.is_empty());
        assert_eq!(response.authorities.len(), 1);
    }

    #[test]
    fn cname_is_followed_inside_the_zone() {
        let scenario = scenario();
        let (answered, _) = ask(&scenario, "alias.foo.example.", WireType::A);
        let response = answered.response.unwrap();
        let kinds: Vec<WireType> = response
            .answers
            .iter()
            .map(|record| record.record_type())
            .collect();
        assert_eq!(kinds, [WireType::CNAME, WireType::A]);
    }
}
