//! A Redis Cluster on loopback for tests: three primaries and a replica of each, on free
//! ports, created with `redis-cli --cluster create`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    // A cluster node also listens on port + 10000 (the bus): pick ports whose bus is free too.
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = l.local_addr().expect("addr").port();
        if port < 55000 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    /// Starts six nodes and joins them: three primaries with one replica each.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "captix-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut c = Cluster {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let port = free_port();
            c.ports.push(port);
            c.children.push(Some(c.spawn(port)));
        }
        for port in &c.ports {
            wait_listening(*port);
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed (apt-get install redis-server)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        c.wait_ok();
        c
    }

    fn spawn(&self, port: u16) -> Child {
        Command::new("redis-server")
            .current_dir(&self.dir)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "1000",
                // A replica may take over whatever its link's age, and syncs at once.
                "--cluster-replica-validity-factor",
                "0",
                "--repl-diskless-sync-delay",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)")
    }

    /// `redis+cluster://` with every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until every live node reports `cluster_state:ok` and every live replica has
    /// synced with its primary.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .ports
                .iter()
                .zip(&self.children)
                .filter(|(_, c)| c.is_some())
                .all(|(p, _)| {
                    let replication = self.cli(*p, &["info", "replication"]);
                    self.cli(*p, &["cluster", "info"])
                        .contains("cluster_state:ok")
                        && (replication.contains("role:master")
                            || replication.contains("master_link_status:up"))
                });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port of the primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let live = self
            .ports
            .iter()
            .zip(&self.children)
            .find(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .expect("a live node");
        let slot: u16 = self
            .cli(live, &["cluster", "keyslot", key])
            .parse()
            .expect("slot");
        for (p, c) in self.ports.iter().zip(&self.children) {
            if c.is_none() {
                continue;
            }
            let nodes = self.cli(*p, &["cluster", "nodes"]);
            for line in nodes.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                    continue;
                }
                for range in &f[8..] {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                        if (a..=b).contains(&slot) {
                            let port = f[1].split([':', '@']).nth(1).expect("port");
                            return port.parse().expect("port");
                        }
                    }
                }
            }
            break;
        }
        panic!("no primary serves slot {slot}");
    }

    /// Kills a node (SIGKILL): what a crashed primary looks like to its cluster.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("node");
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "node {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
