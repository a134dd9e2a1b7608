//! `regauth robot add|list|remove`: edit a robots file. `add` draws the
//! secret, writes only its SHA-256 and prints the secret once, on stdout
//! and nowhere else (so `SECRET=$(regauth robot add ...)` captures it); the
//! messages go to stderr. Each edit keeps the file's other entries and
//! comments as written ([`crate::config::robots::append`], `remove`) and
//! replaces the file atomically (a temporary file in the same directory,
//! then `rename`), keeping its permissions; a new file is created with mode
//! 0600. The running server picks the change up on its next reload (it
//! watches the file).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::authn::robots::{new_secret, sha256};
use crate::config::robots::{self as file, RawRobot};

#[derive(Debug, clap::Args)]
pub struct RobotArgs {
    #[command(subcommand)]
    pub command: RobotCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RobotCommand {
    /// Add a robot and print its secret (once: only its hash is kept).
    Add(AddArgs),
    /// List the robots: names, scopes, expiry (never secrets or hashes).
    List(ListArgs),
    /// Remove a robot; the running server refuses it from its next reload.
    Remove(RemoveArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The robots file (created with mode 0600 when missing).
    #[arg(long)]
    pub file: PathBuf,
    /// The robot's name: the user name it logs in with.
    #[arg(long)]
    pub name: String,
    /// The most it may be granted, type:name-glob:actions (repeatable),
    /// e.g. repository:ci/*:push,pull. The ACL decides within it.
    #[arg(long, required = true)]
    pub scope: Vec<String>,
    /// How long it lives (90d, 12h, 1y) or until when (RFC 3339).
    #[arg(long)]
    pub expires: String,
    /// A label, name=value (repeatable), for ACL label matches.
    #[arg(long)]
    pub label: Vec<String>,
    /// A note kept in the file (who owns it, what it is for).
    #[arg(long)]
    pub comment: Option<String>,
    /// A configuration to check the name against: a robot may not share
    /// a name with a user of its users or htpasswd file.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The robots file.
    #[arg(long)]
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The robots file.
    #[arg(long)]
    pub file: PathBuf,
    /// The robot to remove.
    #[arg(long)]
    pub name: String,
}

/// Why a robot command failed: one line, naming the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RobotError {
    #[error("{flag}: {message}")]
    Usage { flag: &'static str, message: String },
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
}

pub(crate) fn run(args: &RobotArgs) -> Result<(), RobotError> {
    match &args.command {
        RobotCommand::Add(a) => add(a, &mut std::io::stdout()),
        RobotCommand::List(a) => list(a, &mut std::io::stdout()),
        RobotCommand::Remove(a) => remove(a),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `--expires`: a duration from now (humantime: `90d`, `12h`, `1y`) or an
/// RFC 3339 time; must lie in the future.
pub(crate) fn expiry(flag: &str, now: i64) -> Result<i64, String> {
    let at = match OffsetDateTime::parse(flag, &Rfc3339) {
        Ok(t) => t.unix_timestamp(),
        Err(_) => {
            let d: Duration = humantime::parse_duration(flag).map_err(|e| {
                format!("{flag:?}: {e} (give a duration such as 90d or 12h, or an RFC 3339 time such as 2027-03-01T00:00:00Z)")
            })?;
            now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        }
    };
    if at <= now {
        return Err(format!("{flag:?} is not in the future"));
    }
    if OffsetDateTime::from_unix_timestamp(at).is_err() {
        return Err(format!("{flag:?} is too far in the future"));
    }
    Ok(at)
}

fn add(a: &AddArgs, out: &mut dyn Write) -> Result<(), RobotError> {
    let usage = |flag, message| RobotError::Usage { flag, message };
    file::check_name(&a.name).map_err(|m| usage("--name", m))?;
    let expires = expiry(&a.expires, now()).map_err(|m| usage("--expires", m))?;
    crate::core::ceiling::Ceiling::parse(a.scope.iter().map(String::as_str))
        .map_err(|e| usage("--scope", e.to_string()))?;
    let labels = super::parse_labels(&a.label).map_err(|m| usage("--label", m))?;
    if let Some(config) = &a.config {
        let policy = crate::config::Config::load_policy(config).map_err(|e| RobotError::File {
            file: e.file,
            message: e.message,
        })?;
        let taken = [("users", &policy.users), ("htpasswd", &policy.htpasswd)]
            .into_iter()
            .find(|(_, t)| {
                t.as_ref()
                    .is_some_and(|t| t.users().any(|(n, _)| n == a.name))
            });
        if let Some((section, _)) = taken {
            return Err(usage(
                "--name",
                format!(
                    "{:?} is a user of {section} in {}; pick another name",
                    a.name,
                    config.display()
                ),
            ));
        }
    }
    let secret = new_secret();
    let entry = RawRobot {
        name: a.name.clone(),
        secret_sha256: data_encoding::HEXLOWER.encode(&sha256(&secret)),
        expires: file::rfc3339(expires),
        scopes: a.scope.clone(),
        labels,
        comment: a.comment.clone(),
    };
    edit(&a.file, |text| file::append(text, &entry))?;
    eprintln!(
        "robot {:?} added to {}, expires {}; the secret, on stdout, is shown this once (store it in the client's secret store; the server reloads the file on its own)",
        a.name,
        a.file.display(),
        entry.expires
    );
    writeln!(out, "{}", secret.expose()).map_err(|e| RobotError::File {
        file: "stdout".into(),
        message: e.to_string(),
    })
}

fn list(a: &ListArgs, out: &mut dyn Write) -> Result<(), RobotError> {
    let robots = file::load(&a.file).map_err(|message| RobotError::File {
        file: a.file.clone(),
        message,
    })?;
    let now = now();
    let mut text = String::new();
    if robots.robots.is_empty() {
        text.push_str("no robots\n");
    }
    for r in &robots.robots {
        let state = if r.expired(now) {
            "EXPIRED".to_owned()
        } else {
            format!("{} days left", (r.expires - now) / 86_400)
        };
        let scopes: Vec<String> = r.ceiling.bounds().iter().map(|b| b.to_string()).collect();
        text.push_str(&format!(
            "{}  expires {} ({state})  scopes [{}]",
            r.name,
            r.expires_text(),
            scopes.join(", ")
        ));
        if !r.labels.is_empty() {
            text.push_str(&format!(
                "  labels {}",
                super::inspect::show_labels(&r.labels)
            ));
        }
        if let Some(c) = &r.comment {
            text.push_str(&format!("  # {c}"));
        }
        text.push('\n');
    }
    out.write_all(text.as_bytes())
        .map_err(|e| RobotError::File {
            file: "stdout".into(),
            message: e.to_string(),
        })
}

fn remove(a: &RemoveArgs) -> Result<(), RobotError> {
    edit(&a.file, |text| file::remove(text, &a.name))?;
    eprintln!(
        "robot {:?} removed from {}; a running server refuses its secret once it has reloaded the file (within about 2 s)",
        a.name,
        a.file.display()
    );
    Ok(())
}

/// Reads the file (missing: empty), applies `change` and replaces the
/// file atomically, keeping its mode (0600 for a new file).
fn edit(
    path: &Path,
    change: impl FnOnce(&str) -> Result<String, String>,
) -> Result<(), RobotError> {
    let fail = |message: String| RobotError::File {
        file: path.to_owned(),
        message,
    };
    // A symlink (a mounted secret) is followed: the target is replaced.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let (text, mode) = match std::fs::read_to_string(&target) {
        Ok(t) => {
            let mode = std::fs::metadata(&target)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
            (t, mode.map_err(|e| fail(e.to_string()))? & 0o7777)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), 0o600),
        Err(e) => return Err(fail(format!("cannot read: {e}"))),
    };
    // The whole file must be valid before and after.
    file::parse(&text).map_err(&fail)?;
    let next = change(&text).map_err(&fail)?;
    file::parse(&next).map_err(|e| {
        fail(format!(
            "the edit would make the file invalid ({e}); nothing written"
        ))
    })?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "robots".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(next.as_bytes())?;
        f.sync_all()?;
        // The umask may have narrowed the mode at creation.
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        std::fs::rename(&tmp, &target)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(format!("cannot write: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_table() {
        let now = 1_700_000_000;
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("90d", Ok(now + 90 * 86_400)),
            ("12h", Ok(now + 12 * 3600)),
            ("1h 30m", Ok(now + 5400)),
            ("2030-01-01T00:00:00Z", Ok(1_893_456_000)),
            ("2030-01-01T01:00:00+01:00", Ok(1_893_456_000)),
            ("2020-01-01T00:00:00Z", Err("is not in the future")),
            ("0s", Err("is not in the future")),
            ("90", Err("give a duration such as 90d")),
            ("soon", Err("give a duration such as 90d")),
        ];
        for (flag, want) in cases {
            match (expiry(flag, now), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{flag}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{flag}: {e}"),
                (got, want) => panic!("{flag}: got {got:?}, want {want:?}"),
            }
        }
    }
}
