//! An index of ACL entries by the literal start of their `name` pattern, so
//! that a request is tested only against the entries that can match its
//! name, still in entry order: first-match semantics are unchanged.
//!
//! Each entry gets a [`NameKey`]. `Prefix(k)` promises that the entry's
//! `name` pattern can only match a name that equals `k` or starts with
//! `k/`; `Any` promises nothing (no `name`, a `/regex/`, a wildcard or a
//! placeholder before the first `/`). For a request name `n`, the candidates
//! are the `Any` entries plus the buckets of `n` and of every prefix of `n`
//! that ends just before a `/`. Every entry that can match is a candidate,
//! candidates are tested in ascending entry order with the same test as the
//! linear scan, and the first that matches decides — so the decision is the
//! linear scan's, without testing the entries of other buckets.

use std::collections::HashMap;

use super::pattern::{Part, Pattern, GLOB_META};

/// Which names an entry's `name` pattern can match (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NameKey {
    Any,
    Prefix(String),
}

/// The key of a `name` pattern: `src` as written, `pattern` as compiled.
pub(super) fn name_key(src: Option<&str>, pattern: Option<&Pattern>) -> NameKey {
    let (Some(src), Some(pattern)) = (src, pattern) else {
        return NameKey::Any;
    };
    // A `/regex/` is unanchored; a pattern starting with `/` may also become
    // one once its placeholders are substituted.
    if src.starts_with('/') {
        return NameKey::Any;
    }
    // A glob matches the whole name, character by character up to its first
    // metacharacter. Placeholders are only known per request: use the
    // literal text before the first one.
    let literal = if pattern.is_static() {
        src
    } else {
        match pattern.parts().first() {
            Some(Part::Lit(lit)) => lit.as_str(),
            _ => return NameKey::Any,
        }
    };
    let end = literal.find(GLOB_META).unwrap_or(literal.len());
    if pattern.is_static() && end == src.len() {
        // A literal glob matches exactly itself.
        return NameKey::Prefix(src.to_owned());
    }
    match literal[..end].rfind('/') {
        Some(slash) => NameKey::Prefix(literal[..slash].to_owned()),
        None => NameKey::Any,
    }
}

/// Most buckets one lookup merges (the `Any` list included); names with
/// more matching prefixes fall back to the linear scan.
const MAX_LISTS: usize = 16;

/// Entry indices by [`NameKey`], each list ascending.
#[derive(Debug, Clone, Default)]
pub(super) struct NameIndex {
    len: usize,
    any: Vec<u32>,
    by_prefix: HashMap<Box<str>, Vec<u32>>,
}

impl NameIndex {
    /// Builds the index from the keys of entries `0..`, in order.
    pub(super) fn new(keys: impl IntoIterator<Item = NameKey>) -> NameIndex {
        let mut index = NameIndex::default();
        for (i, key) in keys.into_iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 ACL entries");
            match key {
                NameKey::Any => index.any.push(i),
                NameKey::Prefix(k) => index.by_prefix.entry(k.into()).or_default().push(i),
            }
            index.len += 1;
        }
        index
    }

    /// The first entry, in entry order, among those that can match `name`,
    /// for which `matches` holds. `matches` is called on candidates only,
    /// in ascending order, and not after it returned `true`.
    pub(super) fn first(
        &self,
        name: &str,
        mut matches: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let mut lists: [&[u32]; MAX_LISTS] = [&[]; MAX_LISTS];
        lists[0] = &self.any;
        let mut n = 1;
        if !self.by_prefix.is_empty() {
            let prefixes = name
                .match_indices('/')
                .map(|(i, _)| &name[..i])
                .chain(std::iter::once(name));
            for prefix in prefixes {
                if let Some(bucket) = self.by_prefix.get(prefix) {
                    if n == MAX_LISTS {
                        return (0..self.len).find(|&i| matches(i));
                    }
                    lists[n] = bucket;
                    n += 1;
                }
            }
        }
        let lists = &mut lists[..n];
        if let [only] = lists {
            return only.iter().map(|&i| i as usize).find(|&i| matches(i));
        }
        // The lists are disjoint (one key per entry, distinct prefixes):
        // merge them by always taking the smallest head.
        loop {
            let (k, head) = lists
                .iter()
                .enumerate()
                .filter_map(|(k, l)| l.first().map(|&h| (k, h)))
                .min_by_key(|&(_, h)| h)?;
            lists[k] = &lists[k][1..];
            if matches(head as usize) {
                return Some(head as usize);
            }
        }
    }

    /// How many entries a request for `name` tests at most.
    #[cfg(test)]
    pub(super) fn candidates(&self, name: &str) -> usize {
        let mut count = 0;
        self.first(name, |_| {
            count += 1;
            false
        });
        count
    }
}
