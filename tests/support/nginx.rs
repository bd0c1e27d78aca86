//! nginx from Debian for the real-world path: started on a free port with
//! tests/nginx.conf, its access log (status codes only) read back as the
//! server's own count. Absent nginx skips (returns None) unless
//! URK_REQUIRE_NGINX=1.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    /// Its https port, with a certificate for 127.0.0.1 from `pki`'s CA.
    pub tls_port: u16,
    /// HTTP/2 with prior knowledge (h2c) only, and h2 over TLS.
    pub h2_port: u16,
    pub h2_tls_port: u16,
    pub pki: super::tls::Pki,
}

/// Length of the static file served at `/big`.
pub const BIG_LEN: u64 = 300_000;

impl Nginx {
    /// Starts nginx on a free port, or returns None when it is not installed
    /// (and not required).
    pub fn start(name: &str) -> Option<Nginx> {
        Nginx::start_with(name, None)
    }

    /// Like [`Nginx::start`], its https server presenting this certificate
    /// and key (PEM files) instead of one from its PKI.
    pub fn start_with_cert(
        name: &str,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Option<Nginx> {
        Nginx::start_with(name, Some((cert, key)))
    }

    fn start_with(name: &str, cert: Option<(&std::path::Path, &std::path::Path)>) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(bin) = bin else {
            if std::env::var("URK_REQUIRE_NGINX").as_deref() == Ok("1") {
                panic!("nginx is required (URK_REQUIRE_NGINX=1) but not installed");
            }
            eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("urk-nginx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let ports = [free(), free(), free(), free()];
        let [port, tls_port, h2_port, h2_tls_port] = ports;
        let pki = write_config(&dir, ports);
        if let Some((cert, key)) = cert {
            std::fs::copy(cert, dir.join("cert.pem")).unwrap();
            std::fs::copy(key, dir.join("key.pem")).unwrap();
        }
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www/big"), vec![b'b'; BIG_LEN as usize]).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx {
            child,
            dir,
            port,
            tls_port,
            h2_port,
            h2_tls_port,
            pki,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its plain server's Unix socket (`--unix-socket`), and the TLS one's.
    pub fn unix_socket(&self, tls: bool) -> PathBuf {
        self.dir
            .join(if tls { "nginx-tls.sock" } else { "nginx.sock" })
    }

    /// The h2c server's URL (HTTP/2 with prior knowledge only).
    pub fn h2_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.h2_port)
    }

    /// The h2 server's URL (TLS, h2 by ALPN).
    pub fn h2_tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.h2_tls_port)
    }

    pub fn tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port)
    }

    /// Status counts from the access log, once it has stopped growing.
    pub fn logged(&self) -> BTreeMap<u16, u64> {
        let last = settled(&self.dir.join("access.log"));
        let mut m = BTreeMap::new();
        for line in last.lines() {
            *m.entry(line.trim().parse::<u16>().expect("status_only log line"))
                .or_insert(0) += 1;
        }
        m
    }
}

/// A log's text once it has stopped growing.
fn settled(path: &std::path::Path) -> String {
    let mut last = String::new();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        let now = std::fs::read_to_string(path).unwrap_or_default();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

impl Nginx {
    /// Per nginx connection (its serial number), the requests it served,
    /// from the connection log (`$connection $connection_requests`), once
    /// it has stopped growing. Each connection's count is checked to run
    /// 1, 2, ..., n in the log.
    pub fn connections(&self) -> BTreeMap<u64, u64> {
        let mut m: BTreeMap<u64, u64> = BTreeMap::new();
        for line in settled(&self.dir.join("conn.log")).lines() {
            let (c, n) = line.split_once(' ').expect("conn log line");
            let (c, n): (u64, u64) = (c.parse().unwrap(), n.trim().parse().unwrap());
            let seen = m.entry(c).or_insert(0);
            assert_eq!(n, *seen + 1, "connection {c}: request {n} after {seen}");
            *seen = n;
        }
        m
    }
}

/// Writes tests/nginx.conf for `dir` and the ports into `dir/nginx.conf`,
/// with the https server's certificate and key beside it; returns the PKI
/// whose CA signed them.
/// `ports`: plain, https, h2c and h2 over TLS.
pub fn write_config(dir: &std::path::Path, ports: [u16; 4]) -> super::tls::Pki {
    let pki = super::tls::Pki::new();
    pki.write_pem(
        super::tls::Leaf::Good,
        &dir.join("cert.pem"),
        &dir.join("key.pem"),
    );
    let conf = include_str!("../nginx.conf")
        .replace("@DIR@", dir.to_str().unwrap())
        .replace("@PORT@", &ports[0].to_string())
        .replace("@TLSPORT@", &ports[1].to_string())
        .replace("@H2PORT@", &ports[2].to_string())
        .replace("@H2TLSPORT@", &ports[3].to_string());
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    pki
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx's path when a test can run it in a network namespace of its
/// own (root, unshare); `None`, saying so, where it cannot, and a failure
/// where CI requires it (`URK_REQUIRE_NGINX=1`, as root).
pub fn netns_nginx() -> Option<&'static str> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let unshare = std::path::Path::new("/usr/bin/unshare").exists();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if let (Some(nginx), true, true) = (nginx, unshare, root) {
        return Some(nginx);
    }
    assert!(
        !root || std::env::var("URK_REQUIRE_NGINX").as_deref() != Ok("1"),
        "nginx and unshare are required"
    );
    eprintln!("skipped: needs nginx, unshare and root (for a network namespace)");
    None
}
