//! One compiled ACL entry: compilation of its `match` conditions (regexes,
//! globs, IPs and placeholders checked once) and the test of one request.

use std::net::IpAddr;

use ipnet::IpNet;

use super::pattern::{self, Ctx, Field, Part, Pattern};
use super::{Request, RuleSpec};
use crate::core::scope::{action, Actions};

/// One compiled ACL entry: its `match` conditions and granted actions.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Patterns indexed by [`Field`].
    pub(super) fields: [Option<Pattern>; 4],
    pub(super) ip: Option<IpNet>,
    pub(super) labels: Vec<(String, Pattern)>,
    /// Fields whose regex captures some `${field:N}` of this entry uses.
    pub(super) captured: [bool; 4],
    /// Whether some pattern has placeholders.
    pub(super) dynamic: bool,
    pub(super) allow_all: bool,
    pub(super) actions: Actions,
}

pub(super) type EntryError = (String, String);

impl Entry {
    pub(super) fn compile(rule: &RuleSpec) -> Result<Entry, EntryError> {
        let m = &rule.matches;
        let sources = [&m.account, &m.typ, &m.name, &m.service];
        let mut fields: [Option<Pattern>; 4] = Default::default();
        for f in Field::ALL {
            if let Some(src) = sources[f as usize] {
                let p =
                    Pattern::compile(src, true).map_err(|e| (format!("match.{}", f.key()), e))?;
                fields[f as usize] = Some(p);
            }
        }
        let mut labels = Vec::with_capacity(m.labels.len());
        for (label, src) in &m.labels {
            let p =
                Pattern::compile(src, false).map_err(|e| (format!("match.labels.{label}"), e))?;
            labels.push((label.clone(), p));
        }
        let ip =
            m.ip.as_deref()
                .map(parse_ip)
                .transpose()
                .map_err(|e| ("match.ip".to_owned(), e))?;

        // `${field:N}` needs that field's pattern to be a regex (without
        // placeholders) with at least N groups.
        let mut captured = [false; 4];
        let named = fields
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((format!("match.{}", Field::ALL[i].key()), p.as_ref()?)));
        let named = named.chain(labels.iter().map(|(l, p)| (format!("match.labels.{l}"), p)));
        for (path, p) in named {
            for part in p.parts() {
                let Part::Capture(f, n) = *part else { continue };
                let (k, source) = (f.key(), fields[f as usize].as_ref());
                let groups = match (source.and_then(Pattern::capture_regex), sources[f as usize]) {
                    (Some(re), _) => re.captures_len() - 1,
                    (None, Some(src)) if pattern::is_regex(src) => {
                        let msg =
                            format!("${{{k}:{n}}}: the {k} regex must not contain placeholders");
                        return Err((path, msg));
                    }
                    _ => return Err((path, format!("${{{k}:{n}}}: match.{k} is not a /regex/"))),
                };
                if n == 0 || n > groups {
                    let msg = format!(
                        "${{{k}:{n}}}: capture group out of range (the regex has {groups})"
                    );
                    return Err((path, msg));
                }
                captured[f as usize] = true;
            }
        }
        let dynamic = fields
            .iter()
            .flatten()
            .chain(labels.iter().map(|(_, p)| p))
            .any(|p| !p.is_static());
        Ok(Entry {
            fields,
            ip,
            labels,
            captured,
            dynamic,
            allow_all: rule.actions.len() == 1 && rule.actions[0] == "*",
            actions: rule.actions.iter().map(|a| action(a)).collect(),
        })
    }

    /// The compiled `name` pattern, if the entry has one.
    pub(super) fn name_pattern(&self) -> Option<&Pattern> {
        self.fields[Field::Name as usize].as_ref()
    }

    /// All conditions ANDed; the cheap, precompiled ones first.
    pub(super) fn matches(&self, req: &Request<'_>, ip: Option<IpAddr>) -> bool {
        if let Some(net) = &self.ip {
            match ip {
                Some(ip) if net.contains(&ip) => {}
                _ => return false,
            }
        }
        let values = [req.account, req.typ, req.name, req.service];
        let label_ok = |label: &str, matches: &dyn Fn(&str) -> bool| {
            req.labels
                .get(label)
                .is_some_and(|vs| vs.iter().any(|v| matches(v)))
        };
        for (f, p) in self.fields.iter().enumerate() {
            if let Some(p) = p.as_ref().filter(|p| p.is_static()) {
                if !p.matches_static(values[f]) {
                    return false;
                }
            }
        }
        for (label, p) in self.labels.iter().filter(|(_, p)| p.is_static()) {
            if !label_ok(label, &|v| p.matches_static(v)) {
                return false;
            }
        }
        if !self.dynamic {
            return true;
        }
        let mut captures: [Option<regex::Captures<'_>>; 4] = Default::default();
        for f in Field::ALL
            .into_iter()
            .filter(|f| self.captured[*f as usize])
        {
            if let Some(re) = self.fields[f as usize]
                .as_ref()
                .and_then(Pattern::capture_regex)
            {
                captures[f as usize] = re.captures(values[f as usize]);
            }
        }
        let ctx = Ctx {
            values,
            captures,
            labels: req.labels,
        };
        let fields_ok = self.fields.iter().enumerate().all(|(f, p)| match p {
            Some(p) if !p.is_static() => p.matches(values[f], &ctx),
            _ => true,
        });
        fields_ok
            && self
                .labels
                .iter()
                .filter(|(_, p)| !p.is_static())
                .all(|(label, p)| label_ok(label, &|v| p.matches(v, &ctx)))
    }
}

/// docker_auth's `parseIPPattern`: an address (v4-mapped v6 taken as v4) or
/// a CIDR (a v4-mapped network with prefix >= 96 taken as the v4 network).
fn parse_ip(s: &str) -> Result<IpNet, String> {
    let bad = || format!("invalid IP or CIDR {s:?}");
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    match s.parse::<IpNet>().map_err(|_| bad())? {
        IpNet::V6(net) if net.prefix_len() >= 96 => match net.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, net.prefix_len() - 96)
                .map(IpNet::V4)
                .map_err(|_| bad()),
            None => Ok(IpNet::V6(net)),
        },
        net => Ok(net),
    }
}
