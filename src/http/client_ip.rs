//! The client address: the peer, or a position in a proxy header
//! (`server.real_ip_header` / `real_ip_pos`, docker_auth's semantics).

use std::net::{IpAddr, SocketAddr};

/// Picks the client address. With a header configured, the header is split
/// on `,` and position `pos` is taken (negative counts from the end, clamped
/// to the first element); a missing or unparsable entry is `Err`.
pub fn client_ip(
    peer: SocketAddr,
    header: Option<&str>,
    configured: bool,
    pos: i64,
) -> Result<IpAddr, &'static str> {
    if !configured {
        return Ok(canonical(peer.ip()));
    }
    let value = header.ok_or("client address not provided")?;
    let parts: Vec<&str> = value.split(',').collect();
    let len = parts.len() as i64;
    let idx = if pos < 0 {
        (len + pos).max(0)
    } else {
        pos.min(len - 1)
    };
    parts[idx as usize]
        .trim()
        .parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| "client address not provided")
}

/// IPv4-mapped IPv6 addresses (dual-stack sockets) become plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let peer: SocketAddr = "[::ffff:10.0.0.9]:4000".parse().unwrap();
        type Case<'a> = (Option<&'a str>, bool, i64, Result<&'a str, &'a str>);
        let cases: &[Case] = &[
            (None, false, 0, Ok("10.0.0.9")),
            (Some("1.1.1.1"), false, 0, Ok("10.0.0.9")),
            (Some("1.1.1.1, 2.2.2.2"), true, 0, Ok("1.1.1.1")),
            (Some("1.1.1.1, 2.2.2.2"), true, 1, Ok("2.2.2.2")),
            (Some("1.1.1.1, 2.2.2.2"), true, -1, Ok("2.2.2.2")),
            (Some("1.1.1.1, 2.2.2.2"), true, -5, Ok("1.1.1.1")),
            (Some("1.1.1.1, 2.2.2.2"), true, 9, Ok("2.2.2.2")),
            (Some("2001:db8::1"), true, 0, Ok("2001:db8::1")),
            (None, true, 0, Err("client address not provided")),
            (Some("garbage"), true, 0, Err("client address not provided")),
            (Some(""), true, 0, Err("client address not provided")),
        ];
        for (h, configured, pos, want) in cases {
            let got = client_ip(peer, *h, *configured, *pos);
            let want = want.map(|s| s.parse::<IpAddr>().unwrap());
            assert_eq!(got, want, "{h:?} {configured} {pos}");
        }
    }
}
