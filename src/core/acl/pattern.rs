//! ACL pattern strings as docker_auth reads them: `/regex/` (Go RE2 syntax,
//! unanchored) or a Go `path.Match` glob (whole string), with placeholders.

use regex::{Captures, Regex};

use super::glob;
use crate::core::Labels;

/// The request fields a pattern can name in `${field}` / `${field:N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Account = 0,
    Type = 1,
    Name = 2,
    Service = 3,
}

impl Field {
    pub(super) const ALL: [Field; 4] = [Field::Account, Field::Type, Field::Name, Field::Service];

    pub(super) fn key(self) -> &'static str {
        ["account", "type", "name", "service"][self as usize]
    }

    /// docker_auth title-cases the field of `${field:N}`, so `Account` works too.
    fn parse(s: &str, title_case_ok: bool) -> Option<Field> {
        Field::ALL.into_iter().find(|f| {
            let k = f.key();
            let (s, k) = (s.as_bytes(), k.as_bytes());
            s == k
                || (title_case_ok
                    && s.len() == k.len()
                    && s[0] == k[0].to_ascii_uppercase()
                    && s[1..] == k[1..])
        })
    }
}

/// A piece of a pattern between placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Lit(String),
    /// `${account}` etc.: the request's value, escaped (always literal).
    Var(Field),
    /// `${labels:X}`: each value of the account's label X, raw.
    Label(String),
    /// `${account:1}` etc.: capture group N of that field's regex, raw.
    Capture(Field, usize),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(super) enum Pattern {
    /// No placeholders: compiled once at load.
    Static { m: Matcher, is_regex: bool },
    /// Placeholders: substituted, classified and compiled per evaluation.
    Dynamic(Vec<Part>),
}

/// A compiled regex or glob.
#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// A glob without metacharacters: it matches exactly itself.
    Exact(String),
    Regex(Regex),
    /// A glob, matched by the port of Go's `path.Match` (exact, and nothing
    /// to compile or keep but the pattern).
    Go(String),
}

impl Matcher {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(p) => p == s,
            Matcher::Regex(re) => re.is_match(s),
            Matcher::Go(p) => glob::go_match(p, s) == Ok(true),
        }
    }
}

/// What a dynamic pattern is substituted with.
pub(super) struct Ctx<'r> {
    /// Request values indexed by [`Field`].
    pub(crate) values: [&'r str; 4],
    /// Captures of the entry's own field regexes, `None` when not referenced
    /// or not matching (then `${field:N}` stays unsubstituted: no match).
    pub(crate) captures: [Option<Captures<'r>>; 4],
    pub(crate) labels: &'r Labels,
}

/// The characters of a Go `path.Match` glob that are not literal.
pub(super) const GLOB_META: [char; 4] = ['*', '?', '[', '\\'];

/// docker_auth: `len(p) > 2 && p[0] == '/' && p[len(p)-1] == '/'`.
pub(super) fn is_regex(p: &str) -> bool {
    p.len() > 2 && p.starts_with('/') && p.ends_with('/')
}

/// For `check`: whether the regex pattern `src` (`/.../`) can only match at
/// the edges of the value or of its path segments. Otherwise (`/team/`
/// also matches `alice/teamwork`), the suggested anchored form.
///
/// Each top-level alternative must begin with `^`, `\A`, `/` (a segment
/// boundary) or `.*`/`.+` (where the match begins then makes no
/// difference), and end with `$`, `\z`, `/` or `.*`/`.+`. Leading flag
/// groups such as `(?i)` are skipped. A syntactic test: it can warn about
/// a regex whose unanchored side happens to be harmless, never the other
/// way round for the forms it accepts.
pub(super) fn unanchored(src: &str) -> Option<String> {
    if !is_regex(src) {
        return None;
    }
    let body = &src[1..src.len() - 1];
    let mut rest = body;
    while let Some(flags) = rest.strip_prefix("(?") {
        match flags.find(')') {
            Some(end)
                if flags[..end]
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '-') =>
            {
                rest = &flags[end + 1..];
            }
            _ => break,
        }
    }
    let branches = top_level_branches(rest);
    let starts = |b: &str| {
        ["^", "\\A", "/", "\\/", ".*", ".+"]
            .iter()
            .any(|p| b.starts_with(p))
    };
    // Whether the last character of `b` is escaped.
    let escaped_end = |b: &str| {
        let slashes = b[..b.len() - 1]
            .chars()
            .rev()
            .take_while(|c| *c == '\\')
            .count();
        slashes % 2 == 1
    };
    let ends = |b: &str| {
        !b.is_empty()
            && ((b.ends_with('$') && !escaped_end(b))
                || b.ends_with("\\z")
                || b.ends_with('/')
                || ((b.ends_with(".*") || b.ends_with(".+")) && !escaped_end(&b[..b.len() - 1])))
    };
    if branches.iter().all(|b| starts(b) && ends(b)) {
        return None;
    }
    let flags = &body[..body.len() - rest.len()];
    Some(if branches.len() > 1 {
        format!("/{flags}^({rest})$/")
    } else {
        let core = rest.strip_prefix('^').unwrap_or(rest);
        let core = match core.strip_suffix('$') {
            Some(c) if !escaped_end(core) => c,
            _ => core,
        };
        format!("/{flags}^{core}$/")
    })
}

/// The top-level alternatives of a regex body (`|` outside groups and
/// classes, not escaped).
fn top_level_branches(body: &str) -> Vec<&str> {
    let (mut out, mut depth, mut class, mut start) = (Vec::new(), 0usize, false, 0);
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !class => class = true,
            ']' if class => class = false,
            '(' if !class => depth += 1,
            ')' if !class => depth = depth.saturating_sub(1),
            '|' if !class && depth == 0 => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    out
}

impl Pattern {
    /// Parses and validates `src`. `labels_ok` is false for `labels:` patterns,
    /// where docker_auth never substitutes `${labels:X}`.
    pub(super) fn compile(src: &str, labels_ok: bool) -> Result<Pattern, String> {
        let parts = parse_parts(src)?;
        if !labels_ok {
            if let Some(Part::Label(l)) = parts.iter().find(|p| matches!(p, Part::Label(_))) {
                return Err(format!(
                    "${{labels:{l}}} is not supported in labels patterns"
                ));
            }
        }
        match parts.as_slice() {
            [] | [Part::Lit(_)] => match build(src) {
                Ok(m) => Ok(Pattern::Static {
                    m,
                    is_regex: is_regex(src),
                }),
                Err(reason) => Err(describe(src, src, &reason)),
            },
            _ => {
                // Check the syntax with a dummy word in place of each placeholder.
                let dummy = substitute(&parts, |_| Some("x")).unwrap_or_default();
                match build(&dummy) {
                    Ok(_) => Ok(Pattern::Dynamic(parts)),
                    Err(reason) => Err(describe(
                        src,
                        &dummy,
                        &format!("{reason} (with \"x\" for placeholders)"),
                    )),
                }
            }
        }
    }

    pub(super) fn parts(&self) -> &[Part] {
        match self {
            Pattern::Static { .. } => &[],
            Pattern::Dynamic(parts) => parts,
        }
    }

    /// The regex of a `/regex/` pattern without placeholders (the only kind
    /// `${field:N}` may refer to).
    pub(super) fn capture_regex(&self) -> Option<&Regex> {
        match self {
            Pattern::Static {
                m: Matcher::Regex(re),
                is_regex: true,
            } => Some(re),
            _ => None,
        }
    }

    pub(super) fn is_static(&self) -> bool {
        matches!(self, Pattern::Static { .. })
    }

    /// Matches a pattern without placeholders.
    pub(super) fn matches_static(&self, subject: &str) -> bool {
        match self {
            Pattern::Static { m, .. } => m.is_match(subject),
            Pattern::Dynamic(_) => false,
        }
    }

    /// docker_auth's `matchStringWithLabelPermutations`: substitute the escaped
    /// request values and capture groups, then try every combination of the
    /// values of the labels the pattern names, inserted raw. A placeholder left
    /// unsubstituted (label missing, capture regex not matching) never matches.
    pub(super) fn matches(&self, subject: &str, ctx: &Ctx<'_>) -> bool {
        let parts = match self {
            Pattern::Static { m, .. } => return m.is_match(subject),
            Pattern::Dynamic(parts) => parts,
        };
        let mut names: Vec<&str> = Vec::new();
        for p in parts {
            if let Part::Label(l) = p {
                if !names.contains(&l.as_str()) {
                    names.push(l);
                }
            }
        }
        let mut choices: Vec<&[String]> = Vec::with_capacity(names.len());
        for name in &names {
            match ctx.labels.get(*name) {
                Some(values) if !values.is_empty() => choices.push(values),
                _ => return false,
            }
        }
        // Only the fields the pattern names are escaped (an allocation each).
        let mut escaped = ctx.values.map(|_| None::<String>);
        for p in parts {
            if let Part::Var(f) = p {
                let slot = &mut escaped[*f as usize];
                if slot.is_none() {
                    *slot = Some(regex::escape(ctx.values[*f as usize]));
                }
            }
        }
        let mut pick = vec![0usize; choices.len()];
        loop {
            let text = substitute(parts, |p| match p {
                Part::Var(f) => escaped[*f as usize].as_deref(),
                Part::Capture(f, n) => ctx.captures[*f as usize]
                    .as_ref()
                    .map(|c| c.get(*n).map_or("", |m| m.as_str())),
                Part::Label(l) => {
                    let i = names.iter().position(|n| n == l)?;
                    Some(choices[i][pick[i]].as_str())
                }
                Part::Lit(_) => None,
            });
            let Some(text) = text else { return false };
            if build(&text).is_ok_and(|m| m.is_match(subject)) {
                return true;
            }
            // Advance to the next combination (odometer order).
            let mut k = 0;
            loop {
                if k == pick.len() {
                    return false;
                }
                pick[k] += 1;
                if pick[k] < choices[k].len() {
                    break;
                }
                pick[k] = 0;
                k += 1;
            }
        }
    }
}

/// Splits `src` at `${...}` placeholders. `${` without a closing `}` is literal.
pub(super) fn parse_parts(src: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + 2 + len];
        let part = if let Some(f) = Field::parse(inner, false) {
            Part::Var(f)
        } else if let Some(label) = inner.strip_prefix("labels:").filter(|l| !l.is_empty()) {
            Part::Label(label.to_owned())
        } else {
            match inner.split_once(':') {
                Some((f, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    let f = Field::parse(f, true)
                        .ok_or_else(|| format!("unknown placeholder ${{{inner}}}"))?;
                    Part::Capture(f, n.parse().unwrap_or(usize::MAX))
                }
                _ => return Err(format!("unknown placeholder ${{{inner}}}")),
            }
        };
        if start > 0 {
            parts.push(Part::Lit(rest[..start].to_owned()));
        }
        parts.push(part);
        rest = &rest[start + 3 + len..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_owned()));
    }
    Ok(parts)
}

/// Concatenates `parts`, asking `value` for each placeholder; `None` if any
/// placeholder has no value.
fn substitute<'v>(
    parts: &[Part],
    mut value: impl FnMut(&Part) -> Option<&'v str>,
) -> Option<String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(s) => out.push_str(s),
            _ => out.push_str(value(p)?),
        }
    }
    Some(out)
}

/// Compiles a substituted pattern, `/regex/` or glob; `Err` is a one-line reason.
fn build(p: &str) -> Result<Matcher, String> {
    if !is_regex(p) {
        return if !p.contains(GLOB_META) {
            Ok(Matcher::Exact(p.to_owned()))
        } else if glob::go_match(p, "").is_ok() {
            // Go checks the whole pattern's syntax whatever the name.
            Ok(Matcher::Go(p.to_owned()))
        } else {
            Err("syntax error in pattern".into())
        };
    }
    let body = &p[1..p.len() - 1];
    super::re2::check(&translate(body, false))?;
    Regex::new(&translate_regex(body))
        .map(Matcher::Regex)
        .map_err(|e| {
            let msg = e.to_string();
            match msg.rfind("error: ") {
                Some(i) => msg[i + 7..].replace('\n', " "),
                None => msg.trim().replace('\n', " "),
            }
        })
}

/// `invalid regex /src/: reason` or `invalid glob "src": reason`, the kind
/// being decided on the (dummy-)substituted text as docker_auth does.
fn describe(src: &str, substituted: &str, reason: &str) -> String {
    if is_regex(substituted) {
        format!("invalid regex {src}: {reason}")
    } else {
        format!("invalid glob {src:?}: {reason}")
    }
}

/// Rewrites Go RE2 syntax for the `regex` crate where they differ: Perl
/// classes and `\b` are ASCII-only in Go, `\Q...\E` quotes, a `{` that does
/// not start a repetition is literal, `\<` and `\>` are literal characters
/// (word boundaries for `regex`), and inside classes `[`, `&`, `~` and a
/// second `-` are plain characters.
pub(super) fn translate_regex(src: &str) -> String {
    translate(src, true)
}

/// [`translate_regex`]; with `ascii_boundaries` false, `\b` and `\B` stay
/// as written instead of becoming `(?-u:\b)`, so that the text [`super::re2`]
/// checks holds only the flags the pattern's author wrote.
fn translate(src: &str, ascii_boundaries: bool) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c == '\\' && i < chars.len() {
            let e = chars[i];
            i += 1;
            match (e, perl_class(e)) {
                ('Q', _) if !in_class => {
                    let end = (i..chars.len())
                        .find(|&j| chars[j] == '\\' && chars.get(j + 1) == Some(&'E'));
                    let quoted: String = chars[i..end.unwrap_or(chars.len())].iter().collect();
                    out.push_str(&regex::escape(&quoted));
                    i = end.map_or(chars.len(), |j| j + 2);
                }
                ('b' | 'B', _) if !in_class && ascii_boundaries => {
                    out.push_str(if e == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" })
                }
                ('<' | '>', _) => out.push(e),
                ('p' | 'P' | 'x', _) if chars.get(i) == Some(&'{') => {
                    // `\p{Greek}`, `\x{41}`: the braces are not a repetition;
                    // Go's negation `\p{^Greek}` is `regex`'s `\P{Greek}`.
                    let end = (i..chars.len()).find(|&j| chars[j] == '}');
                    let end = end.map_or(chars.len(), |j| j + 1);
                    out.push('\\');
                    if e != 'x' && chars.get(i + 1) == Some(&'^') {
                        out.push(if e == 'p' { 'P' } else { 'p' });
                        out.push('{');
                        out.extend(&chars[i + 2..end]);
                    } else {
                        out.push(e);
                        out.extend(&chars[i..end]);
                    }
                    i = end;
                }
                ('0'..='7', _)
                    if e == '0' || chars.get(i).is_some_and(|c| ('0'..='7').contains(c)) =>
                {
                    // Go's octal escape: `\0` or `\1`-`\7` followed by an octal
                    // digit, three digits at most (a lone `\1` is a
                    // backreference, refused by both).
                    let mut code = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match chars.get(i).and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                code = code * 8 + d;
                                i += 1;
                            }
                            None => break,
                        }
                    }
                    out.push_str(&format!("\\x{{{code:X}}}"));
                }
                (_, Some((set, false))) if in_class => out.push_str(set),
                (_, Some((set, negated))) => {
                    out.push_str(if negated { "[^" } else { "[" });
                    out.push_str(set);
                    out.push(']');
                }
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' => in_class = false,
                '[' if chars.get(i) == Some(&':') => {
                    // POSIX class `[:alpha:]`: copy through `:]`.
                    let end = (i + 1..chars.len())
                        .find(|&j| chars[j] == ':' && chars.get(j + 1) == Some(&']'));
                    if let Some(j) = end {
                        out.extend(&chars[i - 1..j + 2]);
                        i = j + 2;
                        continue;
                    }
                }
                '-' if chars.get(i.wrapping_sub(2)) == Some(&'-') => {
                    out.push_str(r"\-");
                    continue;
                }
                '[' | '&' | '~' => out.push('\\'),
                _ => {}
            }
            out.push(c);
            continue;
        }
        match c {
            '(' if chars[i..].starts_with(&['?', 'P', '<'])
                && chars.get(i + 3).is_some_and(char::is_ascii_digit) =>
            {
                // Go allows a capture name to start with a digit, `regex`
                // does not; names only label groups, so one is prefixed.
                out.push_str("(?P<_");
                i += 3;
            }
            '[' => {
                in_class = true;
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            '{' => match repeat_len(&chars[i..]) {
                Some(n) => {
                    out.push('{');
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
                None => out.push_str(r"\{"),
            },
            '}' => out.push_str(r"\}"),
            _ => out.push(c),
        }
    }
    out
}

/// Go's Perl classes (ASCII): the set's body and whether it is negated.
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    let set = match c.to_ascii_lowercase() {
        'd' => "0-9",
        'w' => "0-9A-Za-z_",
        's' => r"\t\n\f\r ",
        _ => return None,
    };
    Some((set, c.is_ascii_uppercase()))
}

/// Length of `n}`, `n,}` or `n,m}` at the start of `s` (after a `{`).
fn repeat_len(s: &[char]) -> Option<usize> {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let min = digits(0);
    if min == 0 {
        return None;
    }
    let mut i = min;
    if s.get(i) == Some(&',') {
        i += 1 + digits(i + 1);
    }
    (s.get(i) == Some(&'}')).then_some(i + 1)
}

#[cfg(test)]
mod tests;
