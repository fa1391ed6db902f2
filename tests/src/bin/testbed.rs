//! The board test bed, for a person: simulated bare boards to try
//! `reconciler apply --ssh` on, without any Raspberry Pi.
//!
//!     cargo run -p reconciler-tests --bin testbed -- up 3     # boards tb-1..3 and ./testbed/
//!     reconciler apply testbed --ssh                          # bootstrap them into a swarm
//!     cargo run -p reconciler-tests --bin testbed -- down     # remove them
//!
//! Needs `scripts/setup` (Docker, debootstrap). The boards live on the private
//! network 10.77.0.0/24 and install Docker from this machine's Debian mirror.
//! Like Raspberry Pi OS they log in as `pi`, with passwordless sudo.

use std::path::Path;

use reconciler_tests::boards::Boards;

const PREFIX: &str = "tb-";
const FIRST_ADDRESS: u8 = 101;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("up") => {
            let count: u8 = args
                .get(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(3)
                .clamp(1, 20);
            Boards::remove(PREFIX);
            let dir = Path::new("testbed");
            let boards =
                Boards::start_with_keys_in(PREFIX, FIRST_ADDRESS, count, &dir.join("keys"));
            let identity =
                std::fs::canonicalize(boards.identity()).unwrap_or_else(|_| boards.identity());
            let known = std::fs::canonicalize(boards.known_hosts())
                .unwrap_or_else(|_| boards.known_hosts());
            let mut spec = format!(
                "[cluster]\nname = \"testbed\"\n\n[ssh]\nuser = \"pi\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n\n[bootstrap]\n# The simulated boards have no systemd.\nstart_docker = \"nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &\"\n",
                identity.display(),
                known.display()
            );
            for i in 0..usize::from(count) {
                let role = if i == 0 { "manager" } else { "worker" };
                spec.push_str(&format!(
                    "\n[node.pi{}]\naddress = \"{}\"\nrole = \"{role}\"\n",
                    i + 1,
                    boards.address(i)
                ));
            }
            if let Err(error) = std::fs::write(dir.join("cluster.toml"), spec) {
                eprintln!("cannot write testbed/cluster.toml: {error}");
                std::process::exit(1);
            }
            for i in 0..usize::from(count) {
                println!(
                    "{}  {}  (ssh -i {} pi@{})",
                    boards.name(i),
                    boards.address(i),
                    identity.display(),
                    boards.address(i)
                );
            }
            println!("\nA spec for them is in ./testbed. Try:\n  reconciler facts testbed\n  reconciler apply testbed --ssh\nRemove them with: cargo run -p reconciler-tests --bin testbed -- down");
            boards.keep_running();
        }
        Some("down") => {
            let removed = Boards::remove(PREFIX);
            println!("removed {removed} board(s)");
        }
        _ => {
            eprintln!("usage: testbed up [COUNT] | testbed down");
            std::process::exit(2);
        }
    }
}
