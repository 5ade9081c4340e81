//! DNS values: record types, MX records, and the answers a resolver can give.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::name::Name;

/// The record types a client asks for. CNAME is never asked for: it comes back as an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// Mail exchangers.
    Mx,
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
}

impl fmt::Display for RecordType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RecordType::Mx => "MX",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        })
    }
}

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mx {
    /// Lower is more preferred (RFC 5321 §5.1).
    pub preference: u16,
    /// The host to connect to; `.` for a null MX (RFC 7505).
    pub exchange: Name,
}

impl Mx {
    /// Parses `10 smtp1.foo.example` or `0 .`.
    pub fn parse(text: &str) -> Result<Mx, String> {
        let mut words = text.split_whitespace();
        let (Some(preference), Some(exchange), None) = (words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "`{text}` is not an MX record: expected `<preference> <host>`"
            ));
        };
        let preference: u16 = preference
            .parse()
            .map_err(|_| format!("MX preference `{preference}` is not a number in 0–65535"))?;
        let exchange = Name::parse(exchange)?;
        Ok(Mx {
            preference,
            exchange,
        })
    }

    /// True for `0 .`, the null MX of RFC 7505.
    pub fn is_null(&self) -> bool {
        self.exchange.is_root()
    }
}

impl fmt::Display for Mx {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.preference, self.exchange)
    }
}

/// The ways a lookup can fail, as scenario files name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsFailure {
    /// RCODE 2: the server failed; a temporary error.
    ServFail,
    /// No answer ever comes; the client's own timer decides when to stop waiting.
    Timeout,
    /// RCODE 3: the name does not exist.
    NxDomain,
    /// The name exists but has no records of the asked type.
    NoData,
}

impl DnsFailure {
    /// The word used in scenario files.
    pub const fn key(self) -> &'static str {
        match self {
            DnsFailure::ServFail => "servfail",
            DnsFailure::Timeout => "timeout",
            DnsFailure::NxDomain => "nxdomain",
            DnsFailure::NoData => "nodata",
        }
    }

    /// The failure a scenario-file word names.
    pub fn from_key(word: &str) -> Option<DnsFailure> {
        [
            DnsFailure::ServFail,
            DnsFailure::Timeout,
            DnsFailure::NxDomain,
            DnsFailure::NoData,
        ]
        .into_iter()
        .find(|failure| failure.key() == word)
    }
}

/// What a lookup returned, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsAnswer {
    /// MX records, in the order the zone lists them.
    Mx(Arc<[Mx]>),
    /// Addresses, in the order the zone lists them.
    Addresses(Arc<[IpAddr]>),
    /// The name is an alias; ask again for the target (RFC 5321 §5.1).
    Cname(Name),
    /// The name exists without records of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The server failed.
    ServFail,
    /// No answer came before the client stopped waiting.
    Timeout,
}

impl fmt::Display for DnsAnswer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsAnswer::Mx(records) => write_list(formatter, records.iter()),
            DnsAnswer::Addresses(addresses) => write_list(formatter, addresses.iter()),
            DnsAnswer::Cname(target) => write!(formatter, "CNAME {target}"),
            DnsAnswer::NoData => formatter.write_str("NODATA"),
            DnsAnswer::NxDomain => formatter.write_str("NXDOMAIN"),
            DnsAnswer::ServFail => formatter.write_str("SERVFAIL"),
            DnsAnswer::Timeout => formatter.write_str("no answer"),
        }
    }
}

fn write_list<T: fmt::Display>(
    formatter: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    for (index, item) in items.enumerate() {
        if index > 0 {
            formatter.write_str(", ")?;
        }
        write!(formatter, "{item}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_records() {
        let mx = Mx::parse("10 SMTP1.foo.example").unwrap();
        assert_eq!(mx.to_string(), "10 smtp1.foo.example");
        assert!(Mx::parse("0 .").unwrap().is_null());
        assert!(Mx::parse("70000 a.example").is_err());
        assert!(Mx::parse("smtp1.foo.example").is_err());
        assert!(Mx::parse("10 a.example extra").is_err());
    }
}
