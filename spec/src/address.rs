//! A board's address, read the way SSH, Docker and Swarm will read it.
//!
//! `address = "192.168.1.020"` looks like a board on the LAN, but the
//! system resolver (`getaddrinfo`, which reads numbers with `inet_aton`)
//! takes `020` as octal: SSH and the root steps would go to 192.168.1.16,
//! another board. So an address is either an IP address in its one plain
//! spelling (dotted decimal, or IPv6 without brackets or zone) or a DNS
//! host name whose last label is not a number; anything else is refused,
//! saying where the resolver would have gone. Two nodes are the same board
//! when their parsed addresses are equal (`fd00::1` and `fd00:0::1`).

use std::net::{IpAddr, Ipv4Addr};

/// Where a board is reached.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Address {
    Ip(IpAddr),
    /// A DNS host name, lower-cased (names are compared without case).
    Name(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Name(name) => write!(f, "{name}"),
        }
    }
}

/// Why a text is no board address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing but spaces.
    #[error("the address is empty")]
    Empty,
    /// `[fd00::1]`: brackets belong to URLs, not to an address.
    #[error("`{0}`: write an IPv6 address without brackets")]
    Brackets(String),
    /// `10.0.0.1:2222`: the SSH port is a setting of its own.
    #[error("`{text}` has a port: write the address alone and set `ssh.port = {port}` on the node (or `[ssh] port`)")]
    Port {
        /// The address as written.
        text: String,
        /// The port it carries.
        port: String,
    },
    /// `fe80::1%eth0`: a zone names an interface of the machine that reads it.
    #[error("`{0}`: an IPv6 address with a zone (`%`) depends on the controller's interfaces; use the board's unique-local or global address, or its name")]
    Zone(String),
    /// A number the resolver reads as IPv4 in a way no one would write it.
    #[error("`{text}` is not a dotted-decimal IPv4 address{reads}")]
    NotDottedDecimal {
        /// The address as written.
        text: String,
        /// `: the system resolver reads it as 192.168.1.16 (a leading 0 is octal)`, or nothing.
        reads: String,
    },
    /// Not a host name: a character or a label DNS does not allow.
    #[error("`{text}` is neither an IP address nor a host name: {why}")]
    NotAName {
        /// The address as written.
        text: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// `address:port` as Docker's `swarm join` and SSH read it: an IPv6
/// address in brackets (`[fd00::20]:2377`, not `fd00::20:2377`).
pub fn host_port(address: &str, port: u16) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{address}:{port}"),
    }
}

/// Reads a board address; see the module's doc.
pub fn parse(text: &str) -> Result<Address, AddressError> {
    if text.trim().is_empty() {
        return Err(AddressError::Empty);
    }
    if text.starts_with('[') {
        return Err(AddressError::Brackets(text.to_string()));
    }
    if text.contains('%') {
        return Err(AddressError::Zone(text.to_string()));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Address::Ip(ip));
    }
    if let Some((host, port)) = text.rsplit_once(':') {
        if !host.contains(':') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::Port {
                text: text.to_string(),
                port: port.to_string(),
            });
        }
    }
    let not_a_name = |why| AddressError::NotAName {
        text: text.to_string(),
        why,
    };
    if text.contains(':') {
        return Err(not_a_name("it has a `:` but is no IPv6 address"));
    }
    let last = text.rsplit('.').next().unwrap_or_default();
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .or_else(|| last.strip_prefix("0X"))
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit())));
    if numeric {
        let reads = match resolver_reads(text) {
            Some(ip) => format!(": the system resolver reads it as {ip}{}", why_read(text)),
            None => ": its last part is a number, so resolvers read it as one, and it is none"
                .to_string(),
        };
        return Err(AddressError::NotDottedDecimal {
            text: text.to_string(),
            reads,
        });
    }
    check_host_name(text).map_err(not_a_name)?;
    Ok(Address::Name(text.to_ascii_lowercase()))
}

/// A DNS host name (RFC 1123): labels of letters, digits and inner `-`, at
/// most 63 characters each and 253 in all, no trailing dot.
pub fn check_host_name(text: &str) -> Result<(), &'static str> {
    if text.len() > 253 {
        return Err("a host name has at most 253 characters");
    }
    if text.ends_with('.') {
        return Err("write the name without the trailing `.`");
    }
    for label in text.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (`..` or a leading `.`)");
        }
        if label.len() > 63 {
            return Err("a label (between dots) has at most 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("a host name has only letters, digits, `-` and `.`");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label (between dots) neither starts nor ends with `-`");
        }
    }
    Ok(())
}

/// What `inet_aton` (glibc's reading of a numeric host) makes of `text`:
/// one to four parts, each decimal, octal after a leading `0` or hex after
/// `0x`, the last filling the remaining bytes.
fn resolver_reads(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = text
        .split('.')
        .map(|part| {
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16).ok()
            } else if part.len() > 1 && part.starts_with('0') {
                u64::from_str_radix(&part[1..], 8).ok()
            } else {
                part.parse::<u64>().ok()
            }
        })
        .collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|p| *p > 255) {
        return None;
    }
    let room = 8 * (4 - u32::try_from(leading.len()).ok()?);
    if room < 64 && *last >= 1u64 << room {
        return None;
    }
    let value = leading
        .iter()
        .fold(0u64, |acc, p| (acc << 8) | p)
        .checked_shl(room)?
        | last;
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

/// Why the resolver reads `text` as it does, in words.
fn why_read(text: &str) -> &'static str {
    let parts: Vec<&str> = text.split('.').collect();
    if parts
        .iter()
        .any(|p| p.starts_with("0x") || p.starts_with("0X"))
    {
        " (`0x` is hexadecimal)"
    } else if parts.iter().any(|p| p.len() > 1 && p.starts_with('0')) {
        " (a leading 0 is octal)"
    } else {
        " (fewer than four parts fill the last bytes)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_in_their_plain_spelling_and_host_names_are_addresses() {
        for text in [
            "192.168.1.20",
            "10.0.0.1",
            "fd00::1",
            "::1",
            "rpi-1",
            "pi1.lan",
            "Pi1.LAN",
        ] {
            assert!(parse(text).is_ok(), "{text}: {:?}", parse(text));
        }
        assert_eq!(
            parse("fd00::1"),
            parse("fd00:0::0:1"),
            "one address, two spellings"
        );
        assert_eq!(parse("Pi1.LAN"), parse("pi1.lan"));
    }

    /// Where glibc's `inet_aton` sends each, as `ping` shows on a Linux box.
    #[test]
    fn numbers_the_resolver_reads_otherwise_are_refused_saying_where_they_would_go() {
        for (text, goes_to) in [
            ("192.168.1.020", "192.168.1.16"),
            ("010.0.0.1", "8.0.0.1"),
            ("192.168.0x10.1", "192.168.16.1"),
            ("10.1", "10.0.0.1"),
            ("3232235777", "192.168.1.1"),
            ("192.168.257", "192.168.1.1"),
        ] {
            let error = parse(text).expect_err(text).to_string();
            assert!(error.contains(goes_to), "{text}: {error}");
        }
        assert!(parse("192.168.1.256").is_err());
        assert!(parse("host.123").is_err());
        assert!(parse("1.2.3.4.5").is_err());
    }

    #[test]
    fn regression_an_ipv6_join_target_is_written_in_brackets() {
        assert_eq!(host_port("fd00::20", 2377), "[fd00::20]:2377");
        assert_eq!(host_port("10.0.0.2", 2377), "10.0.0.2:2377");
        assert_eq!(host_port("pi1.lan", 2377), "pi1.lan:2377");
    }

    #[test]
    fn ports_brackets_zones_and_shell_text_are_refused() {
        assert!(matches!(
            parse("10.0.0.1:2222"),
            Err(AddressError::Port { .. })
        ));
        assert!(matches!(parse("pi1:22"), Err(AddressError::Port { .. })));
        assert!(matches!(parse("[fd00::1]"), Err(AddressError::Brackets(_))));
        assert!(matches!(
            parse("[fd00::1]:22"),
            Err(AddressError::Brackets(_))
        ));
        assert!(matches!(parse("fe80::1%eth0"), Err(AddressError::Zone(_))));
        for text in [
            "10.0.0.1;reboot",
            "pi 1",
            "pi_1",
            "-pi",
            "pi-",
            "a..b",
            "pi1.",
            "",
            " ",
        ] {
            assert!(parse(text).is_err(), "{text:?} accepted");
        }
    }
}
