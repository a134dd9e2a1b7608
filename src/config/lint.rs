//! The warnings `regauth check` prints about a configuration that loads
//! but will not do what it says, each placed at its file and line: the ACL
//! checks of [`crate::core::acl::Acl::lint`], in the file the ACL lives in
//! (the configuration's `acl:` or `acl_file`), and the users no entry can
//! grant anything, at their line in `users:` or in the htpasswd file.
//!
//! Each kind of warning is a function of its own listed in [`CHECKS`];
//! they read the files the configuration names again (the loaded
//! [`Policy`] keeps no text), and a file that cannot be read is left out
//! rather than warned about: loading already refused it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{lines, Policy};
use crate::core::Labels;

/// A warning: where it lives and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warning {
    pub(crate) file: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// The configuration's files, as the checks need them.
struct Sources {
    config: PathBuf,
    text: String,
    /// `acl_file`, with its text, when the ACL lives there.
    acl_file: Option<(PathBuf, String)>,
    htpasswd: Option<(PathBuf, String)>,
}

/// The keys naming other files; the rest of the YAML is ignored here.
#[derive(Deserialize)]
struct Names {
    #[serde(default)]
    acl_file: Option<PathBuf>,
    #[serde(default)]
    htpasswd: Option<PathBuf>,
}

type Check = fn(&Sources, &Policy) -> Vec<Warning>;

/// Every check, in the order their warnings are printed.
const CHECKS: [Check; 2] = [acl_entries, users_without_grants];

/// The warnings about the configuration at `path`, already loaded as `policy`.
pub(crate) fn warnings(path: &Path, policy: &Policy) -> Vec<Warning> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let names: Names = serde_yaml::from_str(&text).unwrap_or(Names {
        acl_file: None,
        htpasswd: None,
    });
    let with_text = |p: Option<PathBuf>| {
        let p = p?;
        let t = std::fs::read_to_string(&p).ok()?;
        Some((p, t))
    };
    let s = Sources {
        config: path.to_owned(),
        acl_file: with_text(names.acl_file),
        htpasswd: with_text(names.htpasswd),
        text,
    };
    CHECKS.iter().flat_map(|c| c(&s, policy)).collect()
}

fn acl_entries(s: &Sources, p: &Policy) -> Vec<Warning> {
    let (file, text, key) = match &s.acl_file {
        Some((f, t)) => (f, t, None),
        None => (&s.config, &s.text, Some("acl")),
    };
    p.acl
        .lint()
        .into_iter()
        .map(|l| Warning {
            file: file.clone(),
            line: lines::entry_line(text, key, l.index, &l.field),
            message: format!("acl[{}].{}: {}", l.index, l.field, l.message),
        })
        .collect()
}

fn users_without_grants(s: &Sources, p: &Policy) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut users: Vec<(String, Labels, PathBuf, Option<usize>)> = Vec::new();
    if let Some(t) = &p.users {
        for (name, labels) in t.users() {
            let line = lines::section_key(&s.text, "users", name);
            users.push((name.to_owned(), labels.clone(), s.config.clone(), line));
        }
    }
    if let (Some(t), Some((file, text))) = (&p.htpasswd, &s.htpasswd) {
        for (name, labels) in t.users() {
            let line = lines::htpasswd_user(text, name);
            users.push((name.to_owned(), labels.clone(), file.clone(), line));
        }
    }
    users.sort_by(|a, b| (&a.2, a.3).cmp(&(&b.2, b.3)));
    for (name, labels, file, line) in users {
        if !p.acl.may_grant(&name, &labels) {
            let who = if name.is_empty() {
                "anonymous requests are allowed (users: \"\"), but".to_owned()
            } else {
                format!("user {name:?}:")
            };
            out.push(Warning {
                file,
                line,
                message: format!(
                    "{who} no ACL entry can grant it anything (none matches its account and labels with actions); add an entry, or remove the user"
                ),
            });
        }
    }
    out
}
