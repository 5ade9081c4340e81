//! SMTP values: reply codes, replies, EHLO keywords, and the commands a trace shows.

use std::fmt;
use std::sync::Arc;

/// A three-digit reply code in 200–599 (RFC 5321 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(u16);

/// What the first digit of a reply code says (RFC 5321 §4.2.1, §4.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReplyClass {
    /// 2yz: positive completion.
    Positive,
    /// 3yz: positive intermediate (354 to DATA).
    Intermediate,
    /// 4yz: transient negative.
    Transient,
    /// 5yz: permanent negative.
    Permanent,
}

impl ReplyCode {
    /// A code, if it lies in 200–599.
    pub const fn new(code: u16) -> Option<ReplyCode> {
        if code >= 200 && code <= 599 {
            Some(ReplyCode(code))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The class, read from the first digit only, as clients must (§4.3.2).
    pub const fn class(self) -> ReplyClass {
        match self.0 / 100 {
            2 => ReplyClass::Positive,
            3 => ReplyClass::Intermediate,
            4 => ReplyClass::Transient,
            _ => ReplyClass::Permanent,
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// A server reply: code and text (the text of a multi-line reply is its first line).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The code.
    pub code: ReplyCode,
    /// The text after the code, possibly empty.
    pub text: Arc<str>,
}

impl Reply {
    /// Parses `250`, `"421 4.3.2 busy"` and similar.
    pub fn parse(text: &str) -> Result<Reply, String> {
        let text = text.trim();
        let (digits, rest) = text.split_at(text.find(' ').unwrap_or(text.len()));
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{text}` does not start with a three-digit reply code"
            ));
        }
        let number: u16 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a reply"))?;
        let code = ReplyCode::new(number)
            .ok_or_else(|| format!("reply code {number} is outside 200–599"))?;
        let text = match rest.trim() {
            "" => standard_text(number),
            text => text,
        };
        Ok(Reply {
            code,
            text: Arc::from(text),
        })
    }

    /// A reply from a code and text.
    pub fn new(code: ReplyCode, text: &str) -> Reply {
        Reply {
            code,
            text: Arc::from(text),
        }
    }

    /// The reply's class.
    pub fn class(&self) -> ReplyClass {
        self.code.class()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            write!(formatter, "{}", self.code)
        } else {
            write!(formatter, "{} {}", self.code, self.text)
        }
    }
}

/// The text a reply written as a bare code gets, so traces stay readable (`550` becomes
/// `550 5.1.1 mailbox unavailable`). Texts follow RFC 5321 §4.2.2 and RFC 3463 status codes.
pub fn standard_text(code: u16) -> &'static str {
    match code {
        211 => "system status",
        214 => "help",
        220 => "service ready",
        221 => "2.0.0 closing connection",
        250 => "2.0.0 ok",
        251 => "2.1.5 user not local; will forward",
        252 => "2.1.5 cannot verify user; will attempt delivery",
        354 => "start mail input; end with <CR><LF>.<CR><LF>",
        421 => "4.3.2 service not available, closing transmission channel",
        450 => "4.2.1 mailbox unavailable",
        451 => "4.3.0 local error in processing",
        452 => "4.3.1 insufficient system storage",
        454 => "4.7.0 TLS not available due to temporary reason",
        455 => "4.5.0 server unable to accommodate parameters",
        500 => "5.5.2 syntax error, command unrecognized",
        501 => "5.5.4 syntax error in parameters or arguments",
        502 => "5.5.1 command not implemented",
        503 => "5.5.1 bad sequence of commands",
        504 => "5.5.4 command parameter not implemented",
        521 => "5.3.2 host does not accept mail",
        550 => "5.1.1 mailbox unavailable",
        551 => "5.1.6 user not local",
        552 => "5.3.4 exceeded storage allocation",
        553 => "5.1.3 mailbox name not allowed",
        554 => "5.0.0 transaction failed",
        555 => "5.5.4 MAIL FROM/RCPT TO parameters not recognized or not implemented",
        556 => "5.1.10 domain does not accept mail",
        _ => "",
    }
}

/// An EHLO keyword with its optional parameters: `SIZE 10240000` is keyword `SIZE`, parameter
/// `10240000`. Keywords compare case-insensitively, so the name is stored uppercase.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Keyword {
    /// The keyword, uppercase.
    pub name: Arc<str>,
    /// Everything after the first space, as written.
    pub parameter: Option<Arc<str>>,
}

impl Keyword {
    /// Parses one EHLO line such as `SIZE 10240000` or `PIPELINING`.
    pub fn parse(text: &str) -> Result<Keyword, String> {
        let text = text.trim();
        let (name, parameter) = match text.split_once(' ') {
            Some((name, parameter)) => (name, Some(parameter.trim())),
            None => (text, None),
        };
        if name.is_empty() {
            return Err("empty EHLO keyword".to_owned());
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || !name.as_bytes()[0].is_ascii_alphanumeric()
        {
            return Err(format!(
                "`{name}` is not an EHLO keyword (letters, digits and `-`, RFC 5321 §4.1.1.1)"
            ));
        }
        Ok(Keyword {
            name: Arc::from(name.to_ascii_uppercase()),
            parameter: parameter.filter(|p| !p.is_empty()).map(Arc::from),
        })
    }

    /// True when this keyword has the name `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parameter {
            Some(parameter) => write!(formatter, "{} {parameter}", self.name),
            None => formatter.write_str(&self.name),
        }
    }
}

/// Finds a keyword by name in an EHLO list.
pub fn find_keyword<'a>(keywords: &'a [Keyword], name: &str) -> Option<&'a Keyword> {
    keywords.iter().find(|keyword| keyword.is(name))
}

/// The SMTP commands, as the trace and server scripts name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// Not a command: waiting for the 220 greeting.
    Greeting,
    /// EHLO.
    Ehlo,
    /// HELO.
    Helo,
    /// STARTTLS.
    Starttls,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA.
    Data,
    /// The message and its final `.`.
    EndOfData,
    /// QUIT.
    Quit,
    /// RSET: before a cached connection carries another transaction.
    Rset,
}

impl Command {
    /// Every command, in session order.
    pub const ALL: [Command; 10] = [
        Command::Greeting,
        Command::Ehlo,
        Command::Helo,
        Command::Starttls,
        Command::Mail,
        Command::Rcpt,
        Command::Data,
        Command::EndOfData,
        Command::Quit,
        Command::Rset,
    ];

    /// The name used in scenario files (`end_of_data`, `rcpt`, ...).
    pub const fn key(self) -> &'static str {
        match self {
            Command::Greeting => "greeting",
            Command::Ehlo => "ehlo",
            Command::Helo => "helo",
            Command::Starttls => "starttls",
            Command::Mail => "mail",
            Command::Rcpt => "rcpt",
            Command::Data => "data",
            Command::EndOfData => "end_of_data",
            Command::Quit => "quit",
            Command::Rset => "rset",
        }
    }

    /// The command for a scenario-file key.
    pub fn from_key(key: &str) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|command| command.key() == key)
    }

    /// The command as prose names it: `EHLO`, `the greeting`, `the end of data`.
    pub const fn label(self) -> &'static str {
        match self {
            Command::Greeting => "the greeting",
            Command::Ehlo => "EHLO",
            Command::Helo => "HELO",
            Command::Starttls => "STARTTLS",
            Command::Mail => "MAIL",
            Command::Rcpt => "RCPT",
            Command::Data => "DATA",
            Command::EndOfData => "the end of data",
            Command::Quit => "QUIT",
            Command::Rset => "RSET",
        }
    }

    /// The reply a well-behaved server gives.
    pub const fn success_code(self) -> u16 {
        match self {
            Command::Greeting => 220,
            Command::Starttls => 220,
            Command::Data => 354,
            Command::Quit => 221,
            _ => 250,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        let reply = Reply::parse("421 4.3.2 busy").unwrap();
        assert_eq!((reply.code.get(), &*reply.text), (421, "4.3.2 busy"));
        assert_eq!(reply.class(), ReplyClass::Transient);
        assert_eq!(
            Reply::parse("599").map(|r| r.class()),
            Ok(ReplyClass::Permanent)
        );
        assert!(Reply::parse("600").is_err());
        assert!(Reply::parse("199").is_err());
        assert!(Reply::parse("25").is_err());
        assert!(Reply::parse("hello").is_err());
    }

    #[test]
    fn keywords() {
        let keyword = Keyword::parse("size 10240000").unwrap();
        assert_eq!(keyword.to_string(), "SIZE 10240000");
        assert!(keyword.is("Size"));
        assert!(Keyword::parse("").is_err());
        assert!(Keyword::parse("FOO_BAR").is_err());
        assert!(Keyword::parse("8BITMIME").is_ok());
    }
}
