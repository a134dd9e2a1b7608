//! A small pool of LDAP connections: at most `pool_size` open at once, idle
//! ones reused, each optionally bound as the service account when opened.
//! A connection is returned to the pool only by [`Lease::release`] after a
//! clean operation; one that errored, or whose lease was dropped (request
//! cancelled, deadline passed), is closed. Connections are opened lazily,
//! so a pool can be built outside an async runtime.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::Failure;
use crate::config::ldap::{LdapSettings, TlsMode};
use crate::secret::Secret;

/// An idle connection older than this is closed rather than reused:
/// firewalls and servers drop idle connections without telling anyone.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// An open connection; closing it stops its driver task.
struct Conn {
    ldap: ldap3::Ldap,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub(crate) struct Pool {
    settings: LdapSettings,
    /// Bound right after connecting (service account), or `None`.
    service: Option<(String, Secret)>,
    idle: Mutex<Vec<(Conn, Instant)>>,
    slots: Semaphore,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("url", &self.settings.url)
            .field("service_dn", &self.service.as_ref().map(|(dn, _)| dn))
            .field("size", &self.settings.pool_size)
            .finish()
    }
}

/// A connection taken from the pool.
pub(crate) struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    _slot: SemaphorePermit<'p>,
}

impl Lease<'_> {
    pub(crate) fn ldap(&mut self) -> &mut ldap3::Ldap {
        &mut self.conn.as_mut().expect("lease holds a connection").ldap
    }

    /// Returns the connection to the pool for reuse.
    pub(crate) fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.lock().push((conn, Instant::now()));
        }
    }
}

impl Pool {
    pub(crate) fn new(settings: LdapSettings, service: Option<(String, Secret)>) -> Pool {
        let size = settings.pool_size;
        Pool {
            settings,
            service,
            idle: Mutex::new(Vec::with_capacity(size)),
            slots: Semaphore::new(size),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Conn, Instant)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection: an idle one if there is one still open, else a new
    /// one. Waits while `pool_size` connections are in use.
    pub(crate) async fn get(&self) -> Result<Lease<'_>, Failure> {
        let slot = self.slots.acquire().await.expect("semaphore never closed");
        loop {
            let Some((mut conn, since)) = self.lock().pop() else {
                break;
            };
            if !conn.ldap.is_closed() && since.elapsed() < MAX_IDLE {
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                    _slot: slot,
                });
            }
        }
        let conn = self.connect().await?;
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            _slot: slot,
        })
    }

    /// Closes every idle connection (after one was found broken: the
    /// server probably restarted and the others are dead too).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let s = &self.settings;
        let mut cs = LdapConnSettings::new().set_conn_timeout(s.connect_timeout);
        if let Some(config) = &s.tls_config {
            cs = cs.set_config(config.clone());
        }
        cs = cs
            .set_starttls(s.tls == TlsMode::StartTls)
            .set_no_tls_verify(s.insecure);
        let (conn, ldap) = LdapConnAsync::with_settings(cs, &s.url)
            .await
            .map_err(|e| match e {
                ldap3::LdapError::Timeout { .. } => {
                    Failure::Connect(format!("no connection within {:?}", s.connect_timeout))
                }
                e => Failure::Connect(e.to_string()),
            })?;
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection closed");
            }
        });
        let mut conn = Conn { ldap, driver };
        if let Some((dn, password)) = &self.service {
            let result = conn
                .ldap
                .simple_bind(dn, password.expose())
                .await
                .map_err(Failure::from)?;
            if result.rc != 0 {
                return Err(Failure::Server(format!(
                    "service bind as {dn:?} refused: {} (rc={}); check ldap_auth.bind_dn and bind_password_file",
                    result.text.trim(),
                    result.rc
                )));
            }
        }
        Ok(conn)
    }
}
