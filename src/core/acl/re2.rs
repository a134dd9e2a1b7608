//! The regex dialect is Go's RE2 syntax (`regexp/syntax`, what docker_auth
//! compiles ACL patterns with): a pattern Go refuses is refused here, so a
//! file docker_auth rejects is never given a meaning. The `regex` crate
//! reads a superset of that syntax; [`check`] parses the pattern with
//! `regex-syntax` (the parser `regex` itself uses) and walks the tree for
//! what Go refuses and `regex` accepts:
//! - stacked repetition operators (`a**`, `a?*`, `a+?+`, `a{2}*`): Go's
//!   `invalid nested repetition operator`, RE2's `bad repetition operator`;
//!   a repetition of a group (`(a*)*`) is fine in both;
//! - `{n,m}` counts above 1000, alone or multiplied through nested counted
//!   repetitions (`(a{100}){20}`): Go's `invalid repeat count`;
//! - flags other than `i`, `m`, `s`, `U` (`x`, `u`, `R`): Go's
//!   `invalid or unsupported Perl syntax`;
//! - `\u`/`\U` code point escapes (Go has only `\x`): Go's
//!   `invalid escape sequence`;
//! - `\p{name=value}` forms and Unicode class names outside Go's tables
//!   (Go takes general categories, `Any` and script names, spelt exactly;
//!   `regex` also takes binary properties and loose spellings): Go's
//!   `invalid character class range`;
//! - capture names with characters other than `[0-9A-Za-z_]`: Go's
//!   `invalid named capture`.
//!
//! The walk sees the pattern after [`super::pattern`]'s rewriting of the
//! places where the two dialects read the same text differently (a literal
//! `{`, `[` inside classes, `\Q...\E`), so it judges Go's reading.

use regex_syntax::ast::{self, Ast, ClassSet, ClassSetItem, GroupKind, RepetitionKind};

/// Go's limit on a counted repetition, and on counts multiplied through
/// nesting (`regexp/syntax`'s `repeatIsValid`).
const MAX_REPEAT: u32 = 1000;

/// `Ok` when Go's `regexp.Compile` accepts `translated` (the body of a
/// `/regex/` pattern as rewritten by `pattern::translate` without the
/// ASCII word-boundary groups);
/// otherwise Go's reason. A pattern the `regex` crate cannot parse is left
/// for it to report.
pub(super) fn check(translated: &str) -> Result<(), String> {
    let Ok(ast) = ast::parse::Parser::new().parse(translated) else {
        return Ok(());
    };
    walk(&ast, translated)
}

fn walk(ast: &Ast, src: &str) -> Result<(), String> {
    match ast {
        Ast::Repetition(r) => {
            if let Ast::Repetition(inner) = &*r.ast {
                // Go quotes the operators: from the inner one to the outer.
                let ops = &src[inner.op.span.start.offset..r.op.span.end.offset];
                return Err(format!("invalid nested repetition operator: `{ops}`"));
            }
            if let RepetitionKind::Range(range) = &r.op.kind {
                let (min, max) = bounds(range);
                let too_many = min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT);
                let nested =
                    (min >= 2 || max.is_some_and(|m| m >= 2)) && !repeat_is_valid(ast, MAX_REPEAT);
                if too_many || nested {
                    return Err(format!(
                        "invalid repeat count: `{}`",
                        &src[r.op.span.start.offset..r.op.span.end.offset]
                    ));
                }
            }
            walk(&r.ast, src)
        }
        Ast::Flags(f) => flags(&f.flags),
        Ast::Group(g) => {
            match &g.kind {
                GroupKind::NonCapturing(f) => flags(f)?,
                GroupKind::CaptureName { name, .. } => {
                    let ok = name
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !ok {
                        return Err(format!("invalid named capture: `{}`", name.name));
                    }
                }
                GroupKind::CaptureIndex(_) => {}
            }
            walk(&g.ast, src)
        }
        Ast::Literal(l) => literal(l, src),
        Ast::ClassUnicode(u) => unicode_class(u, src),
        Ast::ClassBracketed(b) => class_set(&b.kind, src),
        Ast::Alternation(a) => a.asts.iter().try_for_each(|a| walk(a, src)),
        Ast::Concat(c) => c.asts.iter().try_for_each(|a| walk(a, src)),
        Ast::Empty(_) | Ast::Dot(_) | Ast::Assertion(_) | Ast::ClassPerl(_) => Ok(()),
    }
}

fn bounds(range: &ast::RepetitionRange) -> (u32, Option<u32>) {
    match *range {
        ast::RepetitionRange::Exactly(n) => (n, Some(n)),
        ast::RepetitionRange::AtLeast(n) => (n, None),
        ast::RepetitionRange::Bounded(n, m) => (n, Some(m)),
    }
}

/// Go's `repeatIsValid`: the counted repetitions on any path from `ast`
/// down, multiplied (an open-ended `{n,}` counts `n`), stay within `n`.
fn repeat_is_valid(ast: &Ast, mut n: u32) -> bool {
    if let Ast::Repetition(r) = ast {
        if let RepetitionKind::Range(range) = &r.op.kind {
            let m = match bounds(range) {
                (_, Some(0)) => return true,
                (_, Some(max)) => max,
                (min, None) => min,
            };
            if m > n {
                return false;
            }
            n = n.checked_div(m).unwrap_or(n);
        }
    }
    match ast {
        Ast::Repetition(r) => repeat_is_valid(&r.ast, n),
        Ast::Group(g) => repeat_is_valid(&g.ast, n),
        Ast::Alternation(a) => a.asts.iter().all(|a| repeat_is_valid(a, n)),
        Ast::Concat(c) => c.asts.iter().all(|a| repeat_is_valid(a, n)),
        _ => true,
    }
}

fn flags(f: &ast::Flags) -> Result<(), String> {
    for item in &f.items {
        let name = match item.kind {
            ast::FlagsItemKind::Flag(ast::Flag::IgnoreWhitespace) => 'x',
            ast::FlagsItemKind::Flag(ast::Flag::Unicode) => 'u',
            ast::FlagsItemKind::Flag(ast::Flag::CRLF) => 'R',
            _ => continue,
        };
        return Err(format!(
            "invalid or unsupported Perl syntax: flag `{name}` (Go knows i, m, s and U)"
        ));
    }
    Ok(())
}

fn literal(l: &ast::Literal, src: &str) -> Result<(), String> {
    use ast::{HexLiteralKind as H, LiteralKind as K};
    match l.kind {
        K::HexFixed(H::UnicodeShort | H::UnicodeLong)
        | K::HexBrace(H::UnicodeShort | H::UnicodeLong) => Err(format!(
            "invalid escape sequence: `{}` (Go writes code points as \\x{{...}})",
            &src[l.span.start.offset..l.span.end.offset]
        )),
        _ => Ok(()),
    }
}

fn class_set(set: &ClassSet, src: &str) -> Result<(), String> {
    match set {
        ClassSet::Item(item) => class_item(item, src),
        ClassSet::BinaryOp(op) => {
            class_set(&op.lhs, src)?;
            class_set(&op.rhs, src)
        }
    }
}

fn class_item(item: &ClassSetItem, src: &str) -> Result<(), String> {
    match item {
        ClassSetItem::Literal(l) => literal(l, src),
        ClassSetItem::Range(r) => {
            literal(&r.start, src)?;
            literal(&r.end, src)
        }
        ClassSetItem::Unicode(u) => unicode_class(u, src),
        ClassSetItem::Bracketed(b) => class_set(&b.kind, src),
        ClassSetItem::Union(u) => u.items.iter().try_for_each(|i| class_item(i, src)),
        ClassSetItem::Empty(_) | ClassSetItem::Ascii(_) | ClassSetItem::Perl(_) => Ok(()),
    }
}

fn unicode_class(u: &ast::ClassUnicode, src: &str) -> Result<(), String> {
    let ok = match &u.kind {
        ast::ClassUnicodeKind::OneLetter(c) => GO_CATEGORIES.contains(&c.to_string().as_str()),
        ast::ClassUnicodeKind::Named(name) => {
            let name = name.strip_prefix('^').unwrap_or(name);
            name == "Any" || GO_CATEGORIES.contains(&name) || GO_SCRIPTS.contains(&name)
        }
        ast::ClassUnicodeKind::NamedValue { .. } => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid character class range: `{}` (Go takes general categories, Any and script names)",
            &src[u.span.start.offset..u.span.end.offset]
        ))
    }
}

/// Go's `unicode.Categories` keys.
const GO_CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs",
];

/// Go's `unicode.Scripts` keys (Unicode 15).
const GO_SCRIPTS: &[&str] = &[
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
];

#[cfg(test)]
mod tests;
