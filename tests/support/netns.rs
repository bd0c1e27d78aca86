//! A fleet in network namespaces the test makes: nginx in the test
//! thread's own namespace, listening on every address, and each shard's
//! namespace behind a veth pair that reaches it (shard `i` is
//! `10.S.i.2`, its nginx `10.S.i.1`). Needs root ([`super::nginx::netns_nginx`]).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Runs `f` on a thread of its own moved into a new network namespace:
/// a thread's sockets, and the processes it starts, live in its own, so
/// the rest of the test process is untouched.
pub fn in_own_netns(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare has no memory preconditions; it moves this
        // thread alone into a new network namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
        f();
    })
    .join()
    .unwrap();
}

/// The namespaces and the nginx; all gone when dropped.
pub struct NsFleet {
    ns: String,
    subnet: u8,
    shards: usize,
    pub dir: PathBuf,
}

impl NsFleet {
    /// `shards` namespaces on `10.subnet.i.0/24` and nginx (at `nginx`)
    /// serving them, in the calling thread's namespace (see
    /// [`in_own_netns`]).
    pub fn start(nginx: &str, subnet: u8, shards: usize) -> NsFleet {
        let ns = format!("urk{subnet}x{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("urk-ns-{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        let _pki = super::nginx::write_config(&dir, [8080, 8443, 8081, 8444]);
        // The plain server on every address, for the shards' namespaces.
        let conf = std::fs::read_to_string(dir.join("nginx.conf"))
            .unwrap()
            .replace("listen 127.0.0.1:8080 ", "listen 8080 ");
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let script = format!(
            r#"set -e
ip link set lo up
for i in $(seq 0 {last}); do
  ip netns add {ns}-$i
  ip link add u$i type veth peer name s$i netns {ns}-$i
  ip addr add 10.{subnet}.$i.1/24 dev u$i && ip link set u$i up
  ip -n {ns}-$i addr add 10.{subnet}.$i.2/24 dev s$i
  ip -n {ns}-$i link set s$i up && ip -n {ns}-$i link set lo up
done
{nginx} -p {d} -c {d}/nginx.conf -e {d}/error.log </dev/null >/dev/null 2>&1 &
sleep 0.5
"#,
            last = shards - 1,
            d = dir.display()
        );
        let fleet = NsFleet {
            ns,
            subnet,
            shards,
            dir,
        };
        let out = Command::new("timeout")
            .args(["30", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fleet
    }

    /// A command run in shard `i`'s namespace: add the program and its
    /// arguments.
    pub fn exec(&self, i: usize) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-{i}", self.ns)]);
        c
    }

    /// Shard `i`'s own address, and its way to nginx.
    pub fn addr(&self, i: usize) -> String {
        format!("10.{}.{i}.2", self.subnet)
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://10.{}.{i}.1:8080/", self.subnet)
    }

    /// nginx's count of 200s, from its access log, once it has settled.
    pub fn served(&self) -> u64 {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.trim() == "200")
            .count() as u64
    }
}

impl Drop for NsFleet {
    fn drop(&mut self) {
        let script = format!(
            "kill $(cat {d}/nginx.pid) 2>/dev/null; for i in $(seq 0 {last}); do ip netns del {ns}-$i 2>/dev/null; done; true",
            d = self.dir.display(),
            last = self.shards - 1,
            ns = self.ns
        );
        let _ = Command::new("sh").args(["-c", &script]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
