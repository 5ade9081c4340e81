//! Isolation: the checks before a live run, the re-execution inside new network, mount and PID
//! namespaces, and the network a scenario needs inside them.
//!
//! `mxsim live` re-executes itself (the path of the running binary) as `unshare --net --mount --pid --fork
//! --mount-proc --kill-child -- MXSIM live --inside …`. `unshare(1)` makes every mount private
//! before the child runs, so no bind or tmpfs mount made inside can reach the host; the child is
//! PID 1 of its PID namespace, so when it exits, for any reason, the kernel kills every process
//! left in it (the MTA's master and its children); and `--kill-child` kills the child when
//! `unshare` itself is killed (Ctrl-C). The network namespace starts with only a `lo` that is
//! down: nothing inside can reach the host's network, and nothing outside sees the listeners.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use mxsim_model::scenario::{ConnectMode, Scenario, ZoneName};

/// Set in the environment of the re-executed process.
pub const INSIDE_ENV: &str = "MXSIM_LIVE_INSIDE";

/// The address of the namespace's one non-loopback interface (`mxl0`, one end of a veth pair):
/// from 198.18.0.0/15 (RFC 2544, benchmarking), which no scenario uses for its servers.
/// OpenSMTPD's resolver needs a non-loopback address, and the dropped-SYN routes go out here.
pub const VETH_ADDRESS: &str = "198.18.0.1/24";

/// The hardware address dropped-SYN routes point at: the other end of the veth pair has
/// another, so it drops every frame sent there and the SYN is never answered.
const NOWHERE_MAC: &str = "02:00:00:00:00:01";

/// Why live mode cannot run here; exit code 2 with this text.
pub fn preflight() -> Result<(), String> {
    if effective_uid()? != 0 {
        return Err(
            "live mode needs root: it creates network, mount and PID namespaces and binds port 25 (run it with sudo)"
                .to_owned(),
        );
    }
    for tool in ["unshare", "setpriv", "ip", "mount"] {
        if which(tool).is_none() {
            return Err(format!(
                "live mode needs `{tool}` (Debian packages util-linux, iproute2, mount): not found on PATH"
            ));
        }
    }
    Ok(())
}

/// The effective user id, from `/proc/self/status` (no libc call, no unsafe code).
fn effective_uid() -> Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| format!("cannot read /proc/self/status: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| "cannot read the effective user id from /proc/self/status".to_owned())
}

/// The first `tool` on PATH.
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// The command that runs `arguments` of this same binary inside fresh namespaces.
///
/// `setpriv --pdeathsig KILL` first: if `mxsim live` itself dies (killed alone, not through
/// its terminal's process group), `unshare` gets SIGKILL, its `--kill-child` kills the inner
/// run, and the kernel ends everything in the PID namespace.
pub fn reexec(arguments: &[std::ffi::OsString]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "KILL", "--", "unshare"])
        .args([
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
        ])
        .arg(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()))
        .args(arguments)
        .env(INSIDE_ENV, "1");
    command
}

/// True in the re-executed process: PID 1 of its own namespace, with the marker set.
pub fn inside() -> bool {
    std::env::var_os(INSIDE_ENV).is_some() && std::process::id() == 1
}

/// Runs one setup command; its failure is a harness failure with the command's own words.
pub fn run(program: &str, arguments: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            arguments.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// How each address of the scenario is served inside the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    /// A listener on port 25 answers through server `.1`'s script.
    pub listeners: Vec<(IpAddr, usize)>,
    /// On `lo` with nothing listening: the kernel refuses the connection (RST).
    pub refusing: Vec<IpAddr>,
    /// Routed to a veth peer that drops every frame: the SYN is never answered.
    pub dropping: Vec<IpAddr>,
    /// Servers whose connect mode changes over time: served by a listener that resets or holds
    /// connections by the mode at accept time (see [`crate::listen`]), with a note.
    pub varying: Vec<usize>,
}

impl Network {
    /// Every address the zone or a server names, each served as its server's connect mode says.
    pub fn of(scenario: &Scenario, server_at: impl Fn(IpAddr) -> Option<usize>) -> Network {
        let mut addresses: Vec<IpAddr> = scenario
            .servers
            .iter()
            .flat_map(|server| server.addresses.iter().copied())
            .collect();
        for name in scenario.zone.names.values() {
            if let ZoneName::Records(records) = name {
                let sets = std::iter::once(&records.base)
                    .chain(records.during.iter().map(|window| &window.patch));
                for sets in sets {
                    for set in [sets.a.as_ref(), sets.aaaa.as_ref()].into_iter().flatten() {
                        if let mxsim_model::scenario::RecordSet::Records(list) = set {
                            addresses.extend(list.iter().copied());
                        }
                    }
                }
            }
        }
        addresses.sort();
        addresses.dedup();
        let mut network = Network::default();
        for address in addresses {
            let Some(index) = server_at(address) else {
                network.refusing.push(address);
                continue;
            };
            let server = &scenario.servers[index];
            let modes: Vec<ConnectMode> = std::iter::once(&server.base)
                .chain(server.during.iter().map(|window| &window.patch))
                .filter_map(|behaviour| behaviour.connect)
                .collect();
            let base = server.base.connect.unwrap_or(ConnectMode::Accept);
            let constant = server
                .during
                .iter()
                .all(|window| window.patch.connect.is_none() || window.patch.connect == Some(base));
            match (constant, base) {
                (true, ConnectMode::Refuse) => network.refusing.push(address),
                (true, ConnectMode::Timeout) => network.dropping.push(address),
                _ => {
                    if !constant && !modes.is_empty() && !network.varying.contains(&index) {
                        network.varying.push(index);
                    }
                    network.listeners.push((address, index));
                }
            }
        }
        network
    }

    /// Brings the network up inside the namespace: `lo`, the veth pair, every served address.
    pub fn bring_up(&self) -> Result<(), String> {
        run("ip", &["link", "set", "lo", "up"])?;
        run(
            "ip",
            &[
                "link", "add", "mxl0", "type", "veth", "peer", "name", "mxl1",
            ],
        )?;
        run("ip", &["addr", "add", VETH_ADDRESS, "dev", "mxl0"])?;
        run("ip", &["link", "set", "mxl0", "up"])?;
        run("ip", &["link", "set", "mxl1", "up"])?;
        let local = self
            .listeners
            .iter()
            .map(|(address, _)| *address)
            .chain(self.refusing.iter().copied());
        for address in local {
            add_local(address)?;
        }
        for address in &self.dropping {
            let (family, prefix) = match address {
                IpAddr::V4(_) => ("-4", 32),
                IpAddr::V6(_) => ("-6", 128),
            };
            let target = format!("{address}/{prefix}");
            run("ip", &[family, "route", "add", &target, "dev", "mxl0"])?;
            run(
                "ip",
                &[
                    family,
                    "neigh",
                    "replace",
                    &address.to_string(),
                    "lladdr",
                    NOWHERE_MAC,
                    "dev",
                    "mxl0",
                    "nud",
                    "permanent",
                ],
            )?;
        }
        Ok(())
    }
}

/// Puts `address` on `lo` (all of 127/8 already is).
fn add_local(address: IpAddr) -> Result<(), String> {
    match address {
        IpAddr::V4(v4) if v4.is_loopback() => Ok(()),
        IpAddr::V4(_) => run(
            "ip",
            &["addr", "add", &format!("{address}/32"), "dev", "lo"],
        ),
        IpAddr::V6(v6) if v6.is_loopback() => Ok(()),
        IpAddr::V6(_) => run(
            "ip",
            &[
                "-6",
                "addr",
                "add",
                &format!("{address}/128"),
                "dev",
                "lo",
                "nodad",
            ],
        ),
    }
}

/// A private tmpfs at `dir`, which must exist; gone with the namespace.
pub fn tmpfs(dir: &Path, options: &str) -> Result<(), String> {
    let dir = dir.to_string_lossy();
    run("mount", &["-t", "tmpfs", "-o", options, "tmpfs", &dir])
}

/// Bind-mounts `source` over `target` (following a symlinked target, as mount(8) does).
pub fn bind(source: &Path, target: &Path) -> Result<(), String> {
    run(
        "mount",
        &[
            "--bind",
            &source.to_string_lossy(),
            &target.to_string_lossy(),
        ],
    )
}

/// Points the namespace's resolver at the DNS server: a private `/etc/resolv.conf`.
pub fn resolver(work: &Path) -> Result<(), String> {
    let file = work.join("resolv.conf");
    std::fs::write(
        &file,
        "nameserver 127.0.0.1\noptions attempts:2 timeout:1\n",
    )
    .map_err(|error| format!("cannot write {}: {error}", file.display()))?;
    let target = std::fs::canonicalize("/etc/resolv.conf")
        .unwrap_or_else(|_| Path::new("/etc/resolv.conf").to_path_buf());
    if !target.exists() {
        return Err(format!(
            "/etc/resolv.conf points at {}, which does not exist: nothing to bind the namespace's resolver over",
            target.display()
        ));
    }
    bind(&file, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_served_by_their_connect_mode() {
        let text = "title: t\nmessage:\n  to: [u@foo.example]\ndns:\n  foo.example: {mx: [10 a.foo.example, 10 b.foo.example, 20 c.foo.example, 30 d.foo.example, 40 e.foo.example]}\n  d.foo.example: {a: [192.0.2.40]}\nservers:\n  a.foo.example: {}\n  b.foo.example: {connect: refuse}\n  c.foo.example: {connect: timeout}\n  e.foo.example:\n    connect: refuse\n    during:\n      - {from: 10m, connect: accept}\n";
        let scenario = mxsim_model::scenario::load(text, &|_| true).expect("loads");
        let server_at = |address: IpAddr| {
            scenario
                .servers
                .iter()
                .position(|server| server.addresses.contains(&address))
        };
        let network = Network::of(&scenario, server_at);
        let address = |name: &str| {
            let index = scenario
                .servers
                .iter()
                .position(|server| server.label() == name)
                .unwrap();
            scenario.servers[index].addresses[0]
        };
        assert_eq!(
            network
                .listeners
                .iter()
                .map(|(address, _)| *address)
                .collect::<Vec<_>>(),
            [address("a.foo.example"), address("e.foo.example")]
        );
        assert!(network.refusing.contains(&address("b.foo.example")));
        assert!(network.refusing.contains(&"192.0.2.40".parse().unwrap()));
        assert_eq!(network.dropping, [address("c.foo.example")]);
        assert_eq!(network.varying.len(), 1);
    }
}
