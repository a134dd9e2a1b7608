//! The client address: the peer, or a position in a proxy header
//! (`server.real_ip_header` / `real_ip_pos`, docker_auth's semantics).
//!
//! A header sent on several lines is one list (RFC 9110 §5.3: the lines
//! joined with `,` in order), so `real_ip_pos` counts across all of them:
//! a proxy that adds its own `X-Forwarded-For` line (HAProxy's
//! `option forwardfor`) instead of appending to the client's puts its
//! entry last, where `-1` finds it, not behind a line the client forged.
//! The lines are walked twice (count, then pick) rather than joined, so
//! nothing is allocated.

use std::net::{IpAddr, SocketAddr};

/// Why no client address could be read from the header.
pub(crate) const NOT_PROVIDED: &str = "client address not provided";

/// Picks the client address. Without a configured header (`lines` is
/// `None`), the peer. With one, `lines()` yields the header's lines in the
/// order received (`None` for a line that is not text); their
/// comma-separated entries form one list, and position `pos` is taken
/// (negative counts from the end, clamped to the first entry; past the
/// end, the last). No line, a line that is not text, or an entry that is
/// not an address is `Err`.
pub(crate) fn client_ip<'a, F, I>(
    peer: SocketAddr,
    lines: Option<F>,
    pos: i64,
) -> Result<IpAddr, &'static str>
where
    F: Fn() -> I,
    I: Iterator<Item = Option<&'a str>>,
{
    let Some(lines) = lines else {
        return Ok(peer.ip().to_canonical());
    };
    let mut len: i64 = 0;
    for line in lines() {
        len += line.ok_or(NOT_PROVIDED)?.split(',').count() as i64;
    }
    if len == 0 {
        return Err(NOT_PROVIDED);
    }
    let mut idx = if pos < 0 {
        (len + pos).max(0)
    } else {
        pos.min(len - 1)
    };
    // Every line is text: the count above checked.
    for entry in lines().flat_map(|l| l.unwrap_or_default().split(',')) {
        if idx == 0 {
            return entry
                .trim()
                .parse::<IpAddr>()
                .map(|ip: IpAddr| ip.to_canonical())
                .map_err(|_| NOT_PROVIDED);
        }
        idx -= 1;
    }
    Err(NOT_PROVIDED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let peer: SocketAddr = "[::ffff:10.0.0.9]:4000".parse().unwrap();
        // (header lines, `None` = no header configured; pos; want)
        type Case<'a> = (Option<&'a [Option<&'a str>]>, i64, Result<&'a str, &'a str>);
        let cases: &[Case] = &[
            (None, 0, Ok("10.0.0.9")),
            (Some(&[Some("1.1.1.1, 2.2.2.2")]), 0, Ok("1.1.1.1")),
            (Some(&[Some("1.1.1.1, 2.2.2.2")]), 1, Ok("2.2.2.2")),
            (Some(&[Some("1.1.1.1, 2.2.2.2")]), -1, Ok("2.2.2.2")),
            (Some(&[Some("1.1.1.1, 2.2.2.2")]), -5, Ok("1.1.1.1")),
            (Some(&[Some("1.1.1.1, 2.2.2.2")]), 9, Ok("2.2.2.2")),
            (Some(&[Some("2001:db8::1")]), 0, Ok("2001:db8::1")),
            (Some(&[Some("::ffff:10.1.1.1")]), 0, Ok("10.1.1.1")),
            // Several lines are one list, in order.
            (
                Some(&[Some("10.1.2.3"), Some("127.0.0.1")]),
                -1,
                Ok("127.0.0.1"),
            ),
            (
                Some(&[Some("10.1.2.3"), Some("127.0.0.1")]),
                0,
                Ok("10.1.2.3"),
            ),
            (
                Some(&[Some("1.1.1.1, 2.2.2.2"), Some("3.3.3.3")]),
                -2,
                Ok("2.2.2.2"),
            ),
            (
                Some(&[Some("1.1.1.1, 2.2.2.2"), Some("3.3.3.3")]),
                2,
                Ok("3.3.3.3"),
            ),
            (
                Some(&[Some("1.1.1.1"), Some("2.2.2.2, 3.3.3.3")]),
                1,
                Ok("2.2.2.2"),
            ),
            (Some(&[]), 0, Err(NOT_PROVIDED)),
            (Some(&[Some("garbage")]), 0, Err(NOT_PROVIDED)),
            (Some(&[Some("")]), 0, Err(NOT_PROVIDED)),
            (Some(&[Some("1.1.1.1"), Some("")]), -1, Err(NOT_PROVIDED)),
            // A line that is not text spoils the list wherever it is.
            (Some(&[None, Some("1.1.1.1")]), -1, Err(NOT_PROVIDED)),
            (Some(&[Some("1.1.1.1"), None]), 0, Err(NOT_PROVIDED)),
        ];
        for (lines, pos, want) in cases {
            let got = client_ip(peer, lines.map(|l| || l.iter().copied()), *pos);
            let want = want.map(|s| s.parse::<IpAddr>().unwrap());
            assert_eq!(got, want, "{lines:?} {pos}");
        }
    }
}
