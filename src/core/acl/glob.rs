//! Go `path.Match` globs, whole-string: a port of Go's own matcher, used
//! for every glob (nothing to compile, no per-pattern automaton: a 10,000
//! entry ACL stays small, and a glob with placeholders is matched right
//! after substitution). The translation to an anchored regex is kept for
//! the tests, as an independent implementation to check the port against.

use std::iter::Peekable;
use std::str::Chars;

/// A validated glob.
#[cfg(test)]
#[derive(Debug, Clone)]
pub(super) enum Glob {
    /// Equivalent anchored regex source.
    Regex(String),
    /// Go's matcher does not backtrack, so when a class that can match `/`
    /// follows a `*`, it can miss matches a regex would find; such globs are
    /// matched with [`go_match`] to stay exact.
    Go(String),
}

/// Parses `p`; `None` when Go would return `ErrBadPattern`.
#[cfg(test)]
pub(super) fn parse(p: &str) -> Option<Glob> {
    let esc = |c: char| regex::escape(c.encode_utf8(&mut [0; 4]));
    let mut out = String::from(r"\A");
    let mut it = p.chars().peekable();
    let (mut star, mut slash_class_after_star) = (false, false);
    while let Some(c) = it.next() {
        match c {
            '*' => {
                star = true;
                out.push_str("[^/]*");
            }
            '?' => out.push_str("[^/]"),
            '\\' => out.push_str(&esc(it.next()?)),
            '[' => {
                let negated = it.next_if_eq(&'^').is_some();
                let (mut ranges, mut nrange, mut has_slash) = (String::new(), 0, false);
                loop {
                    if nrange > 0 && it.next_if_eq(&']').is_some() {
                        break;
                    }
                    let lo = get_esc(&mut it)?;
                    let hi = if it.next_if_eq(&'-').is_some() {
                        get_esc(&mut it)?
                    } else {
                        lo
                    };
                    it.peek()?; // the class must go on
                    if lo <= hi {
                        ranges.push_str(&format!(r"\x{{{:x}}}-\x{{{:x}}}", lo as u32, hi as u32));
                    }
                    has_slash |= lo <= '/' && '/' <= hi;
                    nrange += 1;
                }
                slash_class_after_star |= star && (has_slash != negated);
                match (negated, ranges.is_empty()) {
                    (false, true) => out.push_str(r"[^\x00-\x{10FFFF}]"),
                    (true, true) => out.push_str(r"(?s:.)"),
                    (false, false) => out.push_str(&format!("[{ranges}]")),
                    (true, false) => out.push_str(&format!("[^{ranges}]")),
                }
            }
            c => out.push_str(&esc(c)),
        }
    }
    out.push_str(r"\z");
    Some(if slash_class_after_star {
        Glob::Go(p.to_owned())
    } else {
        Glob::Regex(out)
    })
}

/// Go's `getEsc`: a class character, maybe `\`-escaped, never a bare `-` or `]`.
fn get_esc(it: &mut Peekable<Chars<'_>>) -> Option<char> {
    match it.next()? {
        '-' | ']' => None,
        '\\' => it.next(),
        c => Some(c),
    }
}

/// Go's `path.Match` (1.16+), ported: `Err` is `ErrBadPattern`.
pub(super) fn go_match(mut pattern: &str, mut name: &str) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest unless it has a /.
            return Ok(!name.contains('/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Look for a match skipping i+1 bytes; a star cannot skip /.
            let mut i = 0;
            while i < name.len() && name.as_bytes()[i] != b'/' {
                if let Some(rest) = name.get(i + 1..) {
                    let (t, ok) = match_chunk(chunk, rest)?;
                    // The last chunk must exhaust the name.
                    if ok && (t.is_empty() || !pattern.is_empty()) {
                        name = t;
                        continue 'pattern;
                    }
                }
                i += 1;
            }
        }
        // Before returning false, check the rest of the pattern's syntax.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, "")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the following star-free chunk.
fn scan_chunk(p: &str) -> (bool, &str, &str) {
    let trimmed = p.trim_start_matches('*');
    let b = trimmed.as_bytes();
    let (mut i, mut inrange) = (0, false);
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => i += 1,
            b'[' => inrange = true,
            b']' => inrange = false,
            b'*' if !inrange => break,
            _ => {}
        }
        i += 1;
    }
    (trimmed.len() != p.len(), &trimmed[..i], &trimmed[i..])
}

/// Matches `chunk` (no stars) at the start of `s`: the rest of `s` and
/// whether it matched. The whole chunk is always checked for syntax.
fn match_chunk<'s>(chunk: &str, s: &'s str) -> Result<(&'s str, bool), ()> {
    let mut chunk = chunk.chars().peekable();
    let mut s = s.chars();
    let mut failed = false;
    while let Some(c) = chunk.next() {
        let r = if failed { None } else { s.next() };
        failed |= r.is_none();
        match c {
            '[' => {
                let negated = chunk.next_if_eq(&'^').is_some();
                let (mut matched, mut nrange) = (false, 0);
                loop {
                    if nrange > 0 && chunk.next_if_eq(&']').is_some() {
                        break;
                    }
                    let lo = get_esc(&mut chunk).ok_or(())?;
                    let hi = if chunk.next_if_eq(&'-').is_some() {
                        get_esc(&mut chunk).ok_or(())?
                    } else {
                        lo
                    };
                    chunk.peek().ok_or(())?;
                    matched |= r.is_some_and(|r| lo <= r && r <= hi);
                    nrange += 1;
                }
                failed |= matched == negated;
            }
            '?' => failed |= r == Some('/'),
            '\\' => failed |= r != Some(chunk.next().ok_or(())?),
            c => failed |= r != Some(c),
        }
    }
    Ok(if failed {
        ("", false)
    } else {
        (s.as_str(), true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    fn glob(p: &str, s: &str) -> Result<bool, ()> {
        match parse(p).ok_or(())? {
            Glob::Regex(re) => Ok(Regex::new(&re)
                .expect("translated glob compiles")
                .is_match(s)),
            Glob::Go(p) => go_match(&p, s),
        }
    }

    /// (pattern, name, matches | None = bad pattern); mostly Go's own
    /// `path.Match` test table.
    const GLOBS: &[(&str, &str, Option<bool>)] = &[
        ("", "", Some(true)),
        ("", "a", Some(false)),
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*", "", Some(true)),
        ("*", "a/b", Some(false)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(false)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a[^a]b", "a/b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        ("[\\]a]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "x", Some(true)),
        ("[\\-x]", "-", Some(true)),
        ("[\\-x]", "a", Some(false)),
        ("[z-a]", "m", Some(false)),
        ("[^z-a]", "m", Some(true)),
        ("*x", "xxx", Some(true)),
        // Go does not backtrack: a class matching / after a star.
        ("*[a/]*", "a/", Some(false)),
        ("*[^x]*", "a/", Some(false)),
        ("*[a/]", "a/", Some(true)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[-x]", "x", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("a[", "x", None),
        ("a/b[", "x", None),
        ("*[a/]*[", "a/", None),
    ];

    #[test]
    fn glob_table() {
        for &(p, s, want) in GLOBS {
            let want = want.ok_or(());
            assert_eq!(go_match(p, s), want, "go_match: {p:?} {s:?}");
            assert_eq!(glob(p, s), want, "glob: {p:?} {s:?}");
        }
    }

    #[test]
    fn ambiguous_globs_use_go_matcher() {
        for p in ["*[a/]*", "x*[^a]y*", "*[.-0]*"] {
            assert!(matches!(parse(p), Some(Glob::Go(_))), "{p}");
        }
        for p in ["[^a]*", "*[a-c]*", "*[^/]*", "library/*", "[^a]/b*"] {
            assert!(matches!(parse(p), Some(Glob::Regex(_))), "{p}");
        }
    }

    proptest! {
        /// The regex translation agrees with Go's matcher wherever it is used.
        #[test]
        fn regex_translation_agrees_with_go(p in "[ab/*?\\[\\]^\\\\-]{0,10}", s in "[ab/\\]^*-]{0,8}") {
            match parse(&p) {
                Some(Glob::Regex(re)) => {
                    prop_assert_eq!(Ok(Regex::new(&re).unwrap().is_match(&s)), go_match(&p, &s), "{:?} {:?}", p, s);
                }
                Some(Glob::Go(_)) => prop_assert!(go_match(&p, &s).is_ok()),
                None => prop_assert_eq!(go_match(&p, &s), Err(())),
            }
        }

        /// Production checks a glob's syntax with `go_match(p, "")`: the
        /// same verdict as the full parse.
        #[test]
        fn syntax_check_agrees_with_parse(p in "\\PC{0,10}|[ab/*?\\[\\]^\\\\-]{0,10}") {
            prop_assert_eq!(go_match(&p, "").is_ok(), parse(&p).is_some(), "{:?}", p);
        }

        #[test]
        fn never_panics(p in "\\PC{0,10}|[é☺ab/*?\\[\\]^\\\\-]{0,10}", s in "\\PC{0,8}|[é☺ab/\\]^*-]{0,8}") {
            let _ = glob(&p, &s);
            let _ = go_match(&p, &s);
        }
    }
}
