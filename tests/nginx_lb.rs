//! kcpx sessions behind a real UDP load balancer: Debian's nginx with its
//! stream module (`nginx` + `libnginx-mod-stream`) in front of two kcpx
//! listener processes on loopback, with
//! `hash $remote_addr$remote_port consistent`, so that each client's
//! 4-tuple stays on one backend. kcpx dialers and kcp-go clients
//! (`interop/go-peer clients`) echo seeded bytes through it, checked byte
//! for byte, and both backends must have served some of them.
//!
//! Without nginx or its stream module the test skips loudly, and fails under
//! CI unless `KCPX_SKIP_NGINX=1`; without Go or kcp-go only the kcpx clients
//! run, after the same policy with `KCPX_SKIP_GO` (`tests/support/skip.rs`).
//!
//! The backends are this test binary run again as a child process
//! (`listener_process`, active only when `KCPX_LB_LISTENER` is set): it
//! echoes every session until its stdin closes, then prints how many
//! sessions it served.
#![cfg(target_os = "linux")]

#[path = "support/echo.rs"]
mod echo;
#[path = "support/go_peer.rs"]
mod go_peer;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/skip.rs"]
mod skip;

use echo::{config, echo_through, EchoServer};
use kcpx::net::Listener;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
/// kcpx dialers and kcp-go clients through the balancer, each.
const CLIENTS: u64 = 12;
const BYTES: usize = 128 << 10;

/// Child mode: a kcpx echo listener on 127.0.0.1 (port printed on stdout)
/// until stdin closes; then prints the sessions it served.
#[test]
fn listener_process() {
    if std::env::var_os("KCPX_LB_LISTENER").is_none() {
        return;
    }
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &config(true, true)).unwrap();
    let server = EchoServer::serve(listener);
    println!("KCPX_LISTENING {}", server.addr.port());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let stats = server.stop();
    println!("KCPX_SERVED {}", stats.endpoint.passive_opens);
}

/// A backend: this binary in `listener_process` mode.
struct Backend {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Backend {
    fn start() -> Backend {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "listener_process", "--nocapture", "--test-threads", "1"])
            .env("KCPX_LB_LISTENER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let port = read_tagged(&mut stdout, "KCPX_LISTENING");
        Backend {
            child,
            stdin,
            stdout,
            port: port as u16,
        }
    }

    /// Closes its stdin; returns the sessions it served.
    fn stop(mut self) -> u64 {
        drop(self.stdin.take());
        let served = read_tagged(&mut self.stdout, "KCPX_SERVED");
        assert!(self.child.wait().unwrap().success());
        served
    }
}

/// The number after `tag` on the first line holding it (libtest may print
/// the test's name in front).
fn read_tagged(out: &mut impl BufRead, tag: &str) -> u64 {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "backend exited before {tag}");
        if let Some(at) = line.find(tag) {
            return line[at + tag.len()..].trim().parse().unwrap();
        }
    }
}

/// nginx in the foreground, one process; killed when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The nginx configuration: UDP on `front`, consistent hash of the
/// client's address and port over the backends.
fn nginx_conf(dir: &Path, front: SocketAddr, backends: &[u16]) -> String {
    let servers: String = backends
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p};\n"))
        .collect();
    format!(
        "load_module {STREAM_MODULE};\n\
         daemon off;\n\
         master_process off;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         stream {{\n\
         \x20   upstream kcpx {{\n\
         \x20       hash $remote_addr$remote_port consistent;\n\
         {servers}\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen {front} udp;\n\
         \x20       proxy_pass kcpx;\n\
         \x20       proxy_timeout 60s;\n\
         \x20   }}\n\
         }}\n",
        dir = dir.display()
    )
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn kcpx_and_kcpgo_clients_through_nginx_udp_load_balancing() {
    let nginx = nginx_binary();
    let module = Path::new(STREAM_MODULE).exists();
    let (Some(nginx), true) = (nginx, module) else {
        skip::unavailable(
            "nginx_lb",
            "nginx or its stream module is missing (apt-get install nginx libnginx-mod-stream)",
            "KCPX_SKIP_NGINX",
        );
        return;
    };
    let work = std::env::current_exe().unwrap().parent().unwrap().join("nginx_lb");
    let dir = work.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let peer = go_peer::build("nginx_lb", "nginx_lb's kcp-go clients");

    let backends = [Backend::start(), Backend::start()];
    let front: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(&dir, front, &backends.each_ref().map(|b| b.port))).unwrap();
    let _nginx = Nginx(
        Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !dir.join("nginx.pid").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not start: see {}",
            dir.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));

    // kcp-go clients (their own process) and kcpx dialers, at once.
    let go = peer.map(|peer| {
        Command::new(peer)
            .args(["clients", "-addr", &front.to_string(), "-n", &CLIENTS.to_string()])
            .args([
                "-bytes",
                &BYTES.to_string(),
                "-crypt",
                "aes-128",
                "-key",
                &"11".repeat(16),
            ])
            .args([
                "-ds", "10", "-ps", "3", "-stream", "-sndwnd", "1024", "-rcvwnd", "1024", "-timeout", "90s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    let cfg = config(true, true);
    let dialers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let cfg = cfg.clone();
            thread::spawn(move || echo_through(front, &cfg, 900 + i, BYTES, Duration::from_secs(90)))
        })
        .collect();
    for d in dialers {
        d.join().unwrap();
    }
    let mut expected = CLIENTS;
    if let Some(go) = go {
        let out = go.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("kcp-go clients: {}", report.trim());
        assert!(
            out.status.success() && report.contains(&format!("\"sessions_ok\":{CLIENTS}")),
            "kcp-go clients through nginx failed: {report}"
        );
        expected += CLIENTS;
    }
    let served = backends.map(Backend::stop);
    eprintln!("sessions per backend: {served:?}");
    assert_eq!(served.iter().sum::<u64>(), expected, "one session per client");
    assert!(
        served.iter().all(|&n| n > 0),
        "one backend served every client: {served:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
