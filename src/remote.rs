//! Devices on other machines: `recipe worker` serves a local device with
//! Burn's remote server (WebSocket transport), and `--devices
//! ws://HOST:PORT/INDEX,...` trains on such workers (feature `remote`).
//!
//! Burn's distributed data parallel (all-reduce) is not used: in Burn 0.22.1
//! it runs on CUDA only (see the README), so several workers train with
//! Burn's multi-device strategy, the optimizer on the first device.

use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

/// The URL scheme of a worker's address.
pub const SCHEME: &str = "ws://";

/// A device served by a `recipe worker`: `ws://HOST:PORT/INDEX`, the index
/// (0 unless given) counting the devices that worker serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerAddress {
    /// `HOST:PORT`.
    pub host_port: String,
    /// Which of the worker's devices.
    pub index: usize,
}

/// A worker address that cannot be used, or a worker that cannot be reached
/// or started.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Not of the form `ws://HOST:PORT/INDEX`.
    #[error(
        "device `{given}`: expected a worker address ws://HOST:PORT or ws://HOST:PORT/INDEX, e.g. ws://10.0.0.2:3000/0 ({problem})"
    )]
    BadAddress {
        /// The address as given.
        given: String,
        /// What is wrong with it.
        problem: String,
    },
    /// This build has no remote devices.
    #[error(
        "device `{given}` is a remote worker, which this build lacks (rebuild with `--features remote`)"
    )]
    NotCompiled {
        /// The address as given.
        given: String,
    },
    /// Nothing answered, or the worker refused the session.
    #[error(
        "worker {address} cannot be used: {reason} (is `recipe worker --port {port}` running there, and the port open in its firewall?)"
    )]
    Unreachable {
        /// The worker's address.
        address: String,
        /// The port, for the hint.
        port: u16,
        /// What Burn said.
        reason: String,
    },
    /// `recipe worker` could not listen where it was asked to.
    #[error("recipe worker cannot listen on {address}: {reason}")]
    CannotListen {
        /// `HOST:PORT`.
        address: String,
        /// Why, in the system's words, and what to do.
        reason: String,
    },
    /// The server stopped with an error.
    #[error("recipe worker on {address} stopped: {reason}")]
    Serve {
        /// `HOST:PORT`.
        address: String,
        /// What Burn said.
        reason: String,
    },
}

impl WorkerAddress {
    /// Whether a device name is a worker address (starts with `ws://`).
    pub fn is_remote(name: &str) -> bool {
        name.trim().starts_with(SCHEME)
    }

    /// The server's URL, `ws://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("{SCHEME}{}", self.host_port)
    }

    /// The port, for hints.
    pub fn port(&self) -> u16 {
        self.host_port
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(0)
    }

    /// Whether something accepts TCP connections at the address within
    /// `timeout`: a worker that died mid-run does not.
    pub fn answers(&self, timeout: Duration) -> bool {
        let Ok(addresses) = self.host_port.to_socket_addrs() else {
            return false;
        };
        addresses
            .into_iter()
            .any(|address: SocketAddr| TcpStream::connect_timeout(&address, timeout).is_ok())
    }

    /// Connects device `index` of the worker (feature `remote`).
    #[cfg(feature = "remote")]
    pub fn connect(&self) -> Result<burn::tensor::Device, RemoteError> {
        use burn::remote::RemoteHost;
        burn::tensor::Device::remote_options(&RemoteHost::websocket(&self.url()))
            .device_index(self.index)
            .init()
            .map_err(|error| RemoteError::Unreachable {
                address: self.to_string(),
                port: self.port(),
                reason: error.to_string(),
            })
    }
}

impl fmt::Display for WorkerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.host_port, self.index)
    }
}

impl FromStr for WorkerAddress {
    type Err = RemoteError;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| RemoteError::BadAddress {
            given: given.to_string(),
            problem: problem.to_string(),
        };
        let rest = given
            .trim()
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it does not start with ws://"))?;
        let (host_port, index) = match rest.split_once('/') {
            Some((host_port, "")) => (host_port, 0),
            Some((host_port, index)) => (
                host_port,
                index
                    .parse()
                    .map_err(|_| bad("the part after the last / is not a device index"))?,
            ),
            None => (rest, 0),
        };
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or_else(|| bad("no :PORT after the host"))?;
        if host.is_empty() {
            return Err(bad("no host before :PORT"));
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {}
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        }
        Ok(Self {
            host_port: host_port.to_string(),
            index,
        })
    }
}

/// The workers among `names` (the `--devices` list) that no longer accept
/// connections, to name them when a run fails.
pub fn silent_workers(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|name| WorkerAddress::is_remote(name))
        .filter_map(|name| name.parse::<WorkerAddress>().ok())
        .filter(|worker| !worker.answers(Duration::from_secs(2)))
        .map(|worker| worker.to_string())
        .collect()
}

/// Binds `bind:port` for a worker, failing in words when the port is taken
/// or the address is not this machine's.
pub fn listen(bind: &str, port: u16) -> Result<std::net::TcpListener, RemoteError> {
    let address = format!("{bind}:{port}");
    std::net::TcpListener::bind((bind, port)).map_err(|error| {
        let hint = match error.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another worker or program holds the port: stop it or give another --port)"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                " (--bind must be an address of this machine, or 0.0.0.0 for all of them)"
            }
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            _ => "",
        };
        RemoteError::CannotListen {
            address,
            reason: format!("{error}{hint}"),
        }
    })
}

/// Serves `device` on `listener` with Burn's remote server until the process
/// gets Ctrl+C or SIGTERM (feature `remote`).
#[cfg(feature = "remote")]
pub fn serve(
    device: burn::tensor::Device,
    listener: std::net::TcpListener,
) -> Result<(), RemoteError> {
    use burn::server::{RemoteServer, WebSocketTransport};
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    RemoteServer::new([device])
        .serve(WebSocketTransport::from_listener(listener))
        .map_err(|error| RemoteError::Serve {
            address,
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_an_index() {
        let worker: WorkerAddress = "ws://10.0.0.2:3000/1".parse().unwrap();
        assert_eq!(worker.host_port, "10.0.0.2:3000");
        assert_eq!(worker.index, 1);
        assert_eq!(worker.port(), 3000);
        assert_eq!(worker.url(), "ws://10.0.0.2:3000");
        let worker: WorkerAddress = "ws://gpu-a:3001".parse().unwrap();
        assert_eq!(
            (worker.index, worker.to_string()),
            (0, "ws://gpu-a:3001/0".into())
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (given, problem) in [
            ("http://a:1/0", "does not start with ws://"),
            ("ws://a/0", "no :PORT"),
            ("ws://:3000/0", "no host"),
            ("ws://a:99999/0", "not a number from 1 to 65535"),
            ("ws://a:0", "not a number from 1 to 65535"),
            ("ws://a:3000/x", "not a device index"),
        ] {
            let error = given.parse::<WorkerAddress>().unwrap_err().to_string();
            assert!(error.contains(given), "{error}");
            assert!(error.contains(problem), "{given}: {error}");
        }
    }

    #[test]
    fn a_busy_port_is_refused_in_words() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let error = listen("127.0.0.1", port).unwrap_err().to_string();
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
        assert!(
            error.contains("another worker or program holds the port"),
            "{error}"
        );
    }

    #[test]
    fn a_closed_port_does_not_answer() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let name = format!("ws://127.0.0.1:{port}/0");
        assert_eq!(silent_workers(&[name.clone(), "cpu".into()]), vec![name]);
    }
}
