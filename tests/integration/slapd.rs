//! A real OpenLDAP server for the LDAP tests: slapd.conf (mdb, Debian's
//! schemas) and the fixture directory in a temp dir, a test CA and server
//! certificate, and slapd on free loopback ports (plain + LDAPS, StartTLS on
//! the plain one) with its stats log (`-d 256`: every BIND and SRCH) kept in
//! a file. Killed on drop. Missing slapd fails the test, never skips it.

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "dc=example,dc=org";
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
pub const READER_PW: &str = "readerpw";

const INSTALL: &str = "install with: apt-get install slapd ldap-utils";

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
    child: Option<Child>,
}

/// Where `name` is installed (slapd lives in /usr/sbin, which may not be
/// on a test runner's PATH).
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: {INSTALL}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Slapd {
    /// Writes the config, certificates and database, and starts slapd.
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_certs(d);
        fs::create_dir(d.join("db")).unwrap();
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "cn=admin,{BASE}"
rootpw adminpw
directory {d}/db
index uid,member eq
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by anonymous auth
"#,
            d = d.display()
        );
        fs::write(d.join("slapd.conf"), conf).unwrap();
        let ldif = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ldap/directory.ldif");
        let out = Command::new(tool("slapadd"))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(&ldif)
            .output()
            .unwrap_or_else(|e| panic!("slapadd: {e}: {INSTALL}"));
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Slapd {
            dir,
            port: 0,
            tls_port: 0,
            child: None,
        };
        // Another process may take a port between our probe and slapd's
        // bind: try a few pairs.
        for attempt in 0..5 {
            s.port = free_port();
            s.tls_port = free_port();
            if s.port != s.tls_port && s.spawn() {
                return s;
            }
            eprintln!("slapd did not start on attempt {attempt}; retrying");
        }
        panic!("slapd did not start:\n{}", s.log());
    }

    /// `127.0.0.1:PORT` of the plain listener (also StartTLS).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` of the LDAPS listener.
    pub fn tls_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that did not sign the server's certificate.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// A file holding the service account's password (with a newline,
    /// as editors leave it).
    pub fn reader_password_file(&self) -> PathBuf {
        let p = self.dir.path().join("reader.pw");
        fs::write(&p, format!("{READER_PW}\n")).unwrap();
        p
    }

    /// Starts slapd and waits until it answers; `false` if it exited.
    fn spawn(&mut self) -> bool {
        let d = self.dir.path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("slapd.log"))
            .unwrap();
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.tls_port
        );
        let child = Command::new(tool("slapd"))
            .args(["-d", "256", "-h", &urls, "-f"])
            .arg(d.join("slapd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("slapd: {e}: {INSTALL}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("slapd exited: {status}");
                self.child = None;
                return false;
            }
            if self.answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("slapd did not answer within 10s:\n{}", self.log());
    }

    /// Whether both listeners accept and the plain one answers LDAP.
    fn answers(&self) -> bool {
        let connects = |port: u16| {
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        };
        if !connects(self.port) || !connects(self.tls_port) {
            return false;
        }
        Command::new(tool("ldapwhoami"))
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("ldapwhoami: {e}: {INSTALL}"))
            .success()
    }

    /// Kills slapd (SIGKILL: the server vanishes, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts slapd again on the same ports, with the same data.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "slapd did not restart:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to slapd: a stopped server
    /// accepts connections (the kernel does) but never answers. Returns
    /// once every thread has stopped (STOP) or runs again (CONT).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("slapd running").id();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
        let want_stopped = signal == "STOP";
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads_stopped(pid) != want_stopped {
            assert!(Instant::now() < deadline, "slapd did not take SIG{signal}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the log has stopped growing: slapd writes it after it
    /// answers, so counts taken right after a request may lag.
    pub fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.log().len();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.log().len();
            if now == last {
                return;
            }
            last = now;
        }
    }

    /// Applies an LDIF change as the directory's administrator.
    pub fn modify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new(tool("ldapmodify"))
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .args(["-D", &format!("cn=admin,{BASE}"), "-w", "adminpw"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("ldapmodify: {e}: {INSTALL}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "ldapmodify failed:\n{ldif}"
        );
    }

    /// slapd's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Lines of the log containing all of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
            .collect()
    }

    /// BIND requests the server received so far.
    pub fn binds(&self) -> usize {
        self.lines_with(&[" BIND dn=", " method="]).len()
    }

    /// Connections the server accepted so far.
    pub fn accepts(&self) -> usize {
        self.lines_with(&[" ACCEPT from "]).len()
    }
}

/// Whether every thread of `pid` is stopped (state `T`), per /proc.
fn threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            // "pid (comm) S ...": the state follows the last ')'.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
        })
    })
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // A stopped process must be continued to die promptly.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(c.id().to_string())
                .status();
        }
        self.kill();
    }
}

/// A test CA, a server certificate for 127.0.0.1/localhost signed by it,
/// and an unrelated CA.
fn write_certs(d: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        (cert, key)
    };
    let (ca_cert, ca_key) = ca("regauth test CA");
    let (other_cert, _) = ca("unrelated CA");
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
    fs::write(d.join("ca.pem"), ca_cert.pem()).unwrap();
    fs::write(d.join("other-ca.pem"), other_cert.pem()).unwrap();
    fs::write(d.join("server.pem"), cert.pem()).unwrap();
    fs::write(d.join("server.key"), key.serialize_pem()).unwrap();
}
