//! The network of one nemesis run: a hub namespace holding a bridge, one namespace per node
//! joined to it by a veth pair, and nftables rules on the bridge that cut links or drop
//! packets. Addresses are in 10.77.0.0/16 and exist only inside these namespaces.
//!
//! The test process runs inside the hub, where it reaches every node through the bridge's own
//! address. Rules live in the bridge's `forward` hook, which sees node-to-node traffic only, so
//! clients can always reach every node (as in Jepsen's etcd tests) while the nodes cannot reach
//! each other.

use std::io::Write;
use std::process::{Command, Stdio};

/// The port every node listens on, inside its own namespace.
pub const PORT: u16 = 7800;

/// Runs `ip` (or `/usr/sbin/ip` where `/usr/sbin` is not on the PATH).
pub fn ip(args: &[&str]) -> Result<(), String> {
    run(tool("ip"), args, None)
}

fn tool(name: &str) -> String {
    let sbin = format!("/usr/sbin/{name}");
    if std::path::Path::new(&sbin).exists() {
        sbin
    } else {
        name.to_string()
    }
}

fn run(program: String, args: &[&str], input: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(&program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The subnet of a cluster of `size` nodes (one per size, so runs never share addresses).
fn subnet(size: u64) -> String {
    format!("10.77.{size}")
}

/// Node `id`'s address in a cluster of `size`.
pub fn address(size: u64, id: u64) -> String {
    format!("{}.{id}:{PORT}", subnet(size))
}

/// The bridge port of node `id`, as the hub namespace names it.
fn port(id: u64) -> String {
    format!("port{id}")
}

/// Namespace names of one run.
#[derive(Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names { prefix: prefix.to_string() }
    }

    pub fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }

    pub fn node(&self, id: u64) -> String {
        format!("{}n{id}", self.prefix)
    }
}

/// The namespaces of one run; removed on drop, after ending whatever still runs in them.
pub struct Namespaces {
    created: Vec<String>,
}

impl Namespaces {
    pub fn create(names: &Names, size: u64) -> Result<Namespaces, String> {
        let mut namespaces = Namespaces { created: Vec::new() };
        let hub = names.hub();
        ip(&["netns", "add", &hub])?;
        namespaces.created.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub, "addr", "add", &format!("{}.254/24", subnet(size)), "dev", "br0"])?;
        for id in 1..=size {
            let node = names.node(id);
            ip(&["netns", "add", &node])?;
            namespaces.created.push(node.clone());
            ip(&[
                "-n",
                &hub,
                "link",
                "add",
                &port(id),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &node,
            ])?;
            ip(&["-n", &hub, "link", "set", &port(id), "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port(id), "up"])?;
            ip(&["-n", &node, "link", "set", "lo", "up"])?;
            ip(&["-n", &node, "addr", "add", &format!("{}.{id}/24", subnet(size)), "dev", "eth0"])?;
            ip(&["-n", &node, "link", "set", "eth0", "up"])?;
        }
        Ok(namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for namespace in self.created.iter().rev() {
            // Normally empty: the run kills its nodes. After a crash of the run, these are the
            // nodes it started (only they run in namespaces this test created).
            if let Ok(output) = Command::new(tool("ip")).args(["netns", "pids", namespace]).output() {
                for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            if let Err(why) = ip(&["netns", "del", namespace]) {
                eprintln!("nemesis: cleanup of {namespace} failed: {why}");
            }
        }
    }
}

/// What the bridge does to node-to-node traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Links {
    /// Everything passes.
    Healed,
    /// These links are cut, both ways (a partition is the set of links across its sides).
    Cut(Vec<(u64, u64)>),
    /// Every packet between nodes is dropped with this probability, in percent.
    Loss(u32),
}

impl Links {
    /// Cuts every link between different sides.
    pub fn partition(sides: &[Vec<u64>]) -> Links {
        let mut cuts = Vec::new();
        for (i, side) in sides.iter().enumerate() {
            for other in &sides[i + 1..] {
                for &a in side {
                    for &b in other {
                        cuts.push((a, b));
                    }
                }
            }
        }
        Links::Cut(cuts)
    }

    fn ruleset(&self, size: u64) -> String {
        let mut rules = String::new();
        match self {
            Links::Healed => {}
            Links::Cut(cuts) => {
                for &(a, b) in cuts {
                    rules += &format!("  iifname \"{}\" oifname \"{}\" drop\n", port(a), port(b));
                    rules += &format!("  iifname \"{}\" oifname \"{}\" drop\n", port(b), port(a));
                }
            }
            Links::Loss(percent) => {
                for id in 1..=size {
                    rules += &format!("  iifname \"{}\" numgen random mod 100 < {percent} drop\n", port(id));
                }
            }
        }
        format!(
            "flush ruleset\ntable bridge nemesis {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n{rules} }}\n}}\n"
        )
    }

    /// Replaces the bridge's rules (atomically: `nft -f` applies a whole file or nothing).
    /// Runs in the hub namespace, where the test process lives.
    pub fn apply(&self, size: u64) -> Result<(), String> {
        run(tool("nft"), &["-f", "-"], Some(&self.ruleset(size)))
    }
}

/// Whether the tools the nemesis needs exist here (a clear reason if not).
pub fn tools_missing() -> Option<String> {
    for (name, version) in [("ip", "-V"), ("nft", "--version")] {
        let found = Command::new(tool(name)).arg(version).output().is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("`{name}` is missing (scripts/setup.sh installs iproute2 and nftables)"));
        }
    }
    None
}
