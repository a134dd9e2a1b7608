//! The pure core: scope grammar, mirror remapping, ACL evaluation and claim
//! building. Nothing here does I/O, reads the clock or draws randomness.

pub mod acl;
pub mod ceiling;
pub mod claims;
pub(crate) mod remap;
pub mod scope;

use std::collections::BTreeMap;

/// Labels attached to an authenticated account (`{label: [values]}`), as in
/// docker_auth. Used by ACL `labels` matches and `${labels:X}` placeholders.
pub type Labels = BTreeMap<String, Vec<String>>;
