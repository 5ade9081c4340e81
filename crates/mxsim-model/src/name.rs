//! Host names and mailboxes.

use std::fmt;
use std::sync::Arc;

/// A DNS host name in canonical form: ASCII, lowercase, no trailing dot.
///
/// Cheap to clone (a shared string), so traces and candidate lists can hold copies.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// Parses and canonicalises a host name. `.` alone is the root (used by null MX).
    pub fn parse(text: &str) -> Result<Name, String> {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if text == "." {
            return Ok(Name(Arc::from(".")));
        }
        if trimmed.is_empty() {
            return Err("empty host name".to_owned());
        }
        if !trimmed.is_ascii() {
            return Err(format!(
                "`{text}` is not ASCII: write the A-label form (xn--...)"
            ));
        }
        if trimmed.len() > 253 {
            return Err(format!("`{text}` is longer than 253 characters"));
        }
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(format!("`{text}` has an empty label"));
            }
            if label.len() > 63 {
                return Err(format!("`{text}` has a label longer than 63 characters"));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(format!(
                    "`{text}` contains `{bad}`, which a host name cannot"
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("`{text}` has a label that starts or ends with `-`"));
            }
        }
        Ok(Name(Arc::from(trimmed.to_ascii_lowercase())))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the root name `.`, the target of a null MX.
    pub fn is_root(&self) -> bool {
        &*self.0 == "."
    }
}

impl fmt::Display for Name {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", &*self.0)
    }
}

/// An envelope address `local@domain`. The local part is kept as written (it may be UTF-8);
/// the domain is a canonical [`Name`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mailbox {
    text: Arc<str>,
    at: usize,
    domain: Name,
}

impl Mailbox {
    /// Parses `local@domain`.
    pub fn parse(text: &str) -> Result<Mailbox, String> {
        let Some(at) = text.rfind('@') else {
            return Err(format!("`{text}` is not a mailbox: expected local@domain"));
        };
        let local = &text[..at];
        if local.is_empty() {
            return Err(format!("`{text}` has an empty local part"));
        }
        if local.len() > 64 {
            return Err(format!("`{text}` has a local part longer than 64 octets"));
        }
        if let Some(bad) = local
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@'))
        {
            return Err(format!(
                "`{text}` has `{}` in its local part",
                bad.escape_default()
            ));
        }
        let domain = Name::parse(&text[at + 1..]).map_err(|error| format!("`{text}`: {error}"))?;
        if domain.is_root() {
            return Err(format!("`{text}` has no domain"));
        }
        let canonical = format!("{local}@{domain}");
        Ok(Mailbox {
            text: Arc::from(canonical),
            at,
            domain,
        })
    }

    /// The null reverse-path `<>` (RFC 5321 §4.5.5): the sender of a DSN, to which no DSN is
    /// ever sent (§6.1). It has no local part, and its domain is the root.
    pub fn null() -> Mailbox {
        Mailbox {
            text: Arc::from(""),
            at: 0,
            domain: Name::parse(".").expect("the root is a valid name"),
        }
    }

    /// True for the null reverse-path.
    pub fn is_null(&self) -> bool {
        self.text.is_empty()
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &Name {
        &self.domain
    }

    /// The part before the `@`.
    pub fn local(&self) -> &str {
        &self.text[..self.at]
    }

    /// True when the local part needs SMTPUTF8 to be transmitted (RFC 6531 §3.2).
    pub fn is_internationalized(&self) -> bool {
        !self.local().is_ascii()
    }

    /// `local@domain`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", &*self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            Name::parse("SMTP1.Foo.Example.").map(|n| n.to_string()),
            Ok("smtp1.foo.example".to_owned())
        );
        assert!(Name::parse("a..b").is_err());
        assert!(Name::parse("a b.example").is_err());
        assert!(Name::parse("-a.example").is_err());
        assert!(Name::parse("δ.example").is_err());
        assert!(Name::parse(".").is_ok_and(|n| n.is_root()));
    }

    #[test]
    fn mailboxes() {
        let mailbox = Mailbox::parse("δοκιμή@Bar.Example").unwrap();
        assert_eq!(mailbox.to_string(), "δοκιμή@bar.example");
        assert_eq!(mailbox.domain().as_str(), "bar.example");
        assert!(mailbox.is_internationalized());
        assert!(Mailbox::parse("user").is_err());
        assert!(Mailbox::parse("@foo.example").is_err());
        assert!(Mailbox::parse("a b@foo.example").is_err());
        assert!(Mailbox::parse("user@").is_err());
        assert!(Mailbox::null().is_null());
        assert_eq!(Mailbox::null().to_string(), "");
        assert!(!mailbox.is_null());
    }
}
