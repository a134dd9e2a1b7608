//! LDAP string escaping and DN parsing: values put into search filters
//! (RFC 4515), values put into DNs (RFC 4514), and the CN taken out of a DN
//! (`parse_cn`). Pure functions; the account name is untrusted input.

/// Escapes `value` for an assertion value inside a search filter (RFC 4515
/// §3): `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`.
/// Every other character stands for itself, so the result can never close a
/// filter component, open a new one or become a wildcard.
pub(crate) fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\0' => out.push_str("\\00"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '*' => out.push_str("\\2a"),
            '\\' => out.push_str("\\5c"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `value` for an attribute value inside a DN string (RFC 4514
/// §2.4): `,` `+` `"` `\` `<` `>` `;` `=` get a backslash, NUL becomes
/// `\00`, and a leading `#` or space and a trailing space are escaped. The
/// result is always exactly one attribute value: it cannot add an RDN or an
/// attribute to the DN it is put in.
pub(crate) fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '\0' => out.push_str("\\00"),
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

/// Replaces each `${name}` in `template` with its value (already escaped
/// for where it goes), in one pass: a value that itself contains `${...}`
/// is never substituted again.
pub(crate) fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    'scan: while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        for (name, value) in vars {
            if let Some(after) = tail
                .strip_prefix("${")
                .and_then(|t| t.strip_prefix(*name))
                .and_then(|t| t.strip_prefix('}'))
            {
                out.push_str(value);
                rest = after;
                continue 'scan;
            }
        }
        out.push_str("${");
        rest = &tail[2..];
    }
    out.push_str(rest);
    out
}

/// The value of the leftmost `cn` attribute of `dn` (type compared without
/// regard to case, `2.5.4.3` accepted), unescaped; `dn` itself when it does
/// not parse or has no `cn`. docker_auth compared the type with `"CN"`
/// exactly, so the lower-case `cn=` most servers return never matched.
pub(crate) fn cn_of(dn: &str) -> String {
    parse_dn(dn)
        .and_then(|rdns| {
            rdns.into_iter().flatten().find_map(|(typ, value)| {
                (typ.eq_ignore_ascii_case("cn") || typ == "2.5.4.3").then_some(value)
            })
        })
        .unwrap_or_else(|| dn.to_owned())
}

/// Characters RFC 4514 allows after a backslash (besides two hex digits).
const ESCAPABLE: &str = ",+\"\\<>;=# ";

/// One attribute type and its unescaped value.
type Ava = (String, String);

/// Parses an RFC 4514 DN string into RDNs (each a list of AVAs); `None`
/// when it is malformed. Values in `#hex` (BER) form are kept as written.
fn parse_dn(dn: &str) -> Option<Vec<Vec<Ava>>> {
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut chars = dn.chars().peekable();
    if dn.trim().is_empty() {
        return Some(rdns);
    }
    loop {
        // Attribute type, up to '='.
        let mut typ = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            typ.push(c);
        }
        let typ = typ.trim().to_owned();
        if typ.is_empty() {
            return None;
        }
        // Value, up to an unescaped ',', ';' or '+'. Unescaped spaces
        // around it are not part of it.
        let mut bytes: Vec<u8> = Vec::new();
        let mut started = false;
        let mut trailing_spaces = 0;
        let mut end = None;
        while let Some(c) = chars.next() {
            let mut buf = [0u8; 4];
            match c {
                '\\' => {
                    let a = chars.next()?;
                    if a.is_ascii_hexdigit() {
                        let b = chars.next().filter(char::is_ascii_hexdigit)?;
                        let hex = [a as u8, b as u8];
                        let hex = std::str::from_utf8(&hex).ok()?;
                        bytes.push(u8::from_str_radix(hex, 16).ok()?);
                    } else if ESCAPABLE.contains(a) {
                        bytes.extend_from_slice(a.encode_utf8(&mut buf).as_bytes());
                    } else {
                        return None;
                    }
                    started = true;
                    trailing_spaces = 0;
                }
                ',' | ';' | '+' => {
                    end = Some(c);
                    break;
                }
                ' ' if !started => {}
                c => {
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    started = true;
                    trailing_spaces = if c == ' ' { trailing_spaces + 1 } else { 0 };
                }
            }
        }
        bytes.truncate(bytes.len() - trailing_spaces);
        let value = String::from_utf8(bytes).ok()?;
        rdn.push((typ, value));
        match end {
            Some('+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_value_table() {
        let cases = [
            ("alice", "alice"),
            ("", ""),
            ("*", "\\2a"),
            ("al*", "al\\2a"),
            (")(uid=*", "\\29\\28uid=\\2a"),
            ("admin)(|(uid=*", "admin\\29\\28|\\28uid=\\2a"),
            ("a\0b", "a\\00b"),
            ("\\00", "\\5c00"),
            ("back\\slash", "back\\5cslash"),
            ("(x)", "\\28x\\29"),
            // Not special in a filter value: left alone.
            ("a=b&c|d!e~f<g>h", "a=b&c|d!e~f<g>h"),
            ("jürgen", "jürgen"),
        ];
        for (input, want) in cases {
            assert_eq!(filter_value(input), want, "{input:?}");
        }
    }

    #[test]
    fn escaped_filters_parse_as_one_equality_match() {
        for account in ["*", ")(uid=*", "a\0b", "\\", "x)(|(objectClass=*"] {
            let filter = fill("(uid=${account})", &[("account", &filter_value(account))]);
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
            // Exactly one component: no unescaped parenthesis got through.
            assert_eq!(filter.matches('(').count(), 1, "{filter}");
            assert_eq!(filter.matches(')').count(), 1, "{filter}");
            assert!(!filter.contains('*'), "{filter}");
        }
    }

    #[test]
    fn dn_value_table() {
        let cases = [
            ("alice", "alice"),
            ("", ""),
            ("o,malley+co", "o\\,malley\\+co"),
            ("a\"b\\c<d>e;f=g", "a\\\"b\\\\c\\<d\\>e\\;f\\=g"),
            ("#hash", "\\#hash"),
            ("mid#hash", "mid#hash"),
            (" lead", "\\ lead"),
            ("trail ", "trail\\ "),
            (" ", "\\ "),
            ("  ", "\\ \\ "),
            ("in side", "in side"),
            ("nul\0", "nul\\00"),
            ("alice,ou=admins", "alice\\,ou\\=admins"),
            ("*", "*"),
            ("jürgen", "jürgen"),
        ];
        for (input, want) in cases {
            assert_eq!(dn_value(input), want, "{input:?}");
        }
    }

    #[test]
    fn escaped_dn_values_round_trip_as_one_value() {
        for v in [
            "o,malley+co",
            "a\"b\\c<d>e;f=g",
            "#x",
            " x ",
            "alice,ou=admins,dc=evil",
        ] {
            let dn = format!("uid={},ou=people,dc=example,dc=org", dn_value(v));
            let rdns = parse_dn(&dn).expect("parses");
            assert_eq!(rdns.len(), 4, "{dn}");
            assert_eq!(rdns[0], vec![("uid".to_owned(), v.to_owned())]);
        }
    }

    #[test]
    fn cn_of_table() {
        let cases = [
            ("cn=devs,ou=groups,dc=example,dc=org", "devs"),
            ("CN=Developers,OU=Groups,DC=corp", "Developers"),
            ("Cn=Mixed,dc=x", "Mixed"),
            ("uid=alice,cn=people,dc=x", "people"),
            ("cn=Doe\\, Jane (ops)*,ou=people,dc=x", "Doe, Jane (ops)*"),
            ("cn=Doe\\2C Jane,ou=people", "Doe, Jane"),
            ("cn=J\\C3\\BCrgen,dc=x", "Jürgen"),
            ("ou=x+cn=multi,dc=x", "multi"),
            ("2.5.4.3=oid,dc=x", "oid"),
            ("cn = spaced , dc=x", "spaced"),
            // No CN, not a DN, broken escapes: the value as given.
            ("ou=groups,dc=x", "ou=groups,dc=x"),
            ("plain-group", "plain-group"),
            ("cn=bad\\", "cn=bad\\"),
            ("cn=bad\\zz", "cn=bad\\zz"),
            ("=nocn", "=nocn"),
        ];
        for (dn, want) in cases {
            assert_eq!(cn_of(dn), want, "{dn:?}");
        }
    }

    #[test]
    fn fill_table() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 5] = [
            (
                "(|(uid=${account})(mail=${account}))",
                &[("account", "a")],
                "(|(uid=a)(mail=a))",
            ),
            ("(member=${dn})", &[("account", "a")], "(member=${dn})"),
            (
                "(&(member=${dn})(x=${account}))",
                &[("dn", "${account}"), ("account", "a")],
                "(&(member=${account})(x=a))",
            ),
            ("${acc${account}", &[("account", "a")], "${acca"),
            ("tail ${", &[("account", "a")], "tail ${"),
        ];
        for (template, vars, want) in cases {
            assert_eq!(fill(template, vars), want, "{template}");
        }
    }
}
