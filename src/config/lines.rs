//! Line numbers of the places messages are about: the entries of a YAML
//! block sequence (`acl:` in the configuration, or an `acl_file` that is
//! a sequence itself), a field inside one entry, a key of a mapping
//! section (`users:`), a user of an htpasswd file.
//!
//! serde_yaml keeps no positions once a value is deserialized, and the
//! messages that need a line (an ACL pattern that does not compile, a
//! `check` warning) are found after that, so the line is looked up in the
//! text. The lookup reads block style, which is what configuration files
//! are written in; for flow style (`acl: [{...}, {...}]` on one line) it
//! finds no entry and the message goes without a line rather than with a
//! wrong one.

/// 1-based lines of the items of the block sequence under the top-level
/// `key`, or of the document's own sequence when `key` is `None`.
pub(crate) fn seq_items(text: &str, key: Option<&str>) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = match key {
        None => 0,
        Some(k) => match top_level_key(&lines, k) {
            Some(i) => i + 1,
            None => return Vec::new(),
        },
    };
    let mut items = Vec::new();
    let mut indent = None;
    for (j, l) in lines.iter().enumerate().skip(start) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("---") {
            continue;
        }
        let ind = l.len() - t.len();
        let dash = t == "-" || t.starts_with("- ");
        if key.is_some() && ind == 0 && !dash {
            break; // the next top-level key
        }
        if dash && indent.is_none_or(|x| x == ind) {
            indent = Some(ind);
            items.push(j + 1);
        }
    }
    items
}

/// The line of item `index` of that sequence, and inside it the line where
/// the last component of `field` (`match.account` -> `account`) is a key,
/// when it is written on a line of its own or inline in the item.
pub(crate) fn entry_line(
    text: &str,
    key: Option<&str>,
    index: usize,
    field: &str,
) -> Option<usize> {
    let items = seq_items(text, key);
    let first = *items.get(index)?;
    let end = items
        .get(index + 1)
        .copied()
        .unwrap_or(text.lines().count() + 1);
    let name = field.rsplit('.').next().unwrap_or(field);
    let found = text
        .lines()
        .enumerate()
        .skip(first - 1)
        .take(end - first)
        .find(|(_, l)| has_key(l, name))
        .map(|(i, _)| i + 1);
    Some(found.unwrap_or(first))
}

/// `message` (`mirrors[1].prefix: ...`) with the line of the item it
/// names in the block sequence under `key`, when it can be found.
pub(crate) fn with_item_line(text: &str, key: &str, message: String) -> String {
    let index = message
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.split_once(']'))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    match index.and_then(|i| seq_items(text, Some(key)).get(i).copied()) {
        Some(l) => format!("{message} (line {l})"),
        None => message,
    }
}

/// The line of `name:` (bare or quoted) inside the top-level mapping
/// `section`.
pub(crate) fn section_key(text: &str, section: &str, name: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = top_level_key(&lines, section)?;
    lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .take_while(|(_, l)| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .find(|(_, l)| {
            let t = l.trim_start();
            [
                format!("{name}:"),
                format!("\"{name}\":"),
                format!("'{name}':"),
            ]
            .iter()
            .any(|k| t.starts_with(k.as_str()))
        })
        .map(|(i, _)| i + 1)
}

/// The line of `user` in an htpasswd file.
pub(crate) fn htpasswd_user(text: &str, user: &str) -> Option<usize> {
    let prefix = format!("{user}:");
    text.lines()
        .position(|l| l.starts_with(&prefix))
        .map(|i| i + 1)
}

fn top_level_key(lines: &[&str], key: &str) -> Option<usize> {
    lines.iter().position(|l| {
        l.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'))
    })
}

/// Whether `name:` appears in `line` as a key: at the start of the line's
/// text (after `- `) or after `{` or `,` in a flow mapping.
fn has_key(line: &str, name: &str) -> bool {
    let pat = format!("{name}:");
    line.match_indices(&pat).any(|(i, _)| {
        let before = line[..i].trim_end();
        before.is_empty() || before.ends_with(['{', ',', '-']) || before.ends_with("\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "server:\n  addr: x\nacl:\n  # first\n  - match: {account: a}\n    actions: [pull]\n  - match:\n      account: \"/b\"\n      name: c\n    actions: [pul]\nusers:\n  \"\": {}\n  bob:\n    password: x\n";
    const ACL_FILE: &str = "# rules\n- match: {account: a}\n  actions: []\n\n- match: {name: \"/[/\"}\n  actions: [push]\n";

    #[test]
    fn lines_table() {
        // (text, sequence key, entry, field, line)
        type Case<'a> = (&'a str, Option<&'a str>, usize, &'a str, Option<usize>);
        let cases: &[Case] = &[
            (CONFIG, Some("acl"), 0, "match", Some(5)),
            (CONFIG, Some("acl"), 0, "match.account", Some(5)),
            (CONFIG, Some("acl"), 0, "actions", Some(6)),
            (CONFIG, Some("acl"), 1, "match.account", Some(8)),
            (CONFIG, Some("acl"), 1, "match.name", Some(9)),
            (CONFIG, Some("acl"), 1, "actions", Some(10)),
            (CONFIG, Some("acl"), 2, "match", None),
            (ACL_FILE, None, 0, "actions", Some(3)),
            (ACL_FILE, None, 1, "match.name", Some(5)),
            (
                "acl: [{match: {}, actions: []}]\n",
                Some("acl"),
                0,
                "match",
                None,
            ),
        ];
        for (text, key, index, field, want) in cases {
            assert_eq!(
                entry_line(text, *key, *index, field),
                *want,
                "{key:?}[{index}].{field}"
            );
        }
        let mirrors = "mirrors:\n  - {service: a, prefix: a}\n  - service: b\n    prefix: b\n";
        assert_eq!(
            with_item_line(mirrors, "mirrors", "mirrors[1].audience: missing".into()),
            "mirrors[1].audience: missing (line 3)"
        );
        assert_eq!(
            with_item_line(mirrors, "mirrors", "services: x".into()),
            "services: x"
        );
        assert_eq!(section_key(CONFIG, "users", "bob"), Some(13));
        assert_eq!(section_key(CONFIG, "users", ""), Some(12));
        assert_eq!(section_key(CONFIG, "users", "carol"), None);
        assert_eq!(htpasswd_user("# x\nalice:$2y$\nbob:$2y$\n", "bob"), Some(3));
    }
}
