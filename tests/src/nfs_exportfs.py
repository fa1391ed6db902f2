#!/usr/bin/env python3
"""`exportfs` for the test bed's boards, whose kernel has no NFS server:
`exportfs -ra` reads /etc/exports and /etc/exports.d/*.exports as
nfs-kernel-server's does and serves them with NFS-Ganesha, a user-space
NFSv4 server, each path only to the clients its line names (`rw` or `ro`,
`no_root_squash`); `exportfs` alone lists what is exported.
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time

CONF = "/etc/ganesha/ganesha.conf"


def exports():
    found = []
    for name in ["/etc/exports"] + sorted(glob.glob("/etc/exports.d/*.exports")):
        try:
            text = open(name).read()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            path, *clients = line.split()
            parsed = []
            for client in clients:
                match = re.fullmatch(r"([^()]*)(?:\(([^)]*)\))?", client)
                host, options = match.group(1) or "*", (match.group(2) or "").split(",")
                parsed.append((host, options))
            found.append((path, parsed))
    return found


def config(found):
    blocks = ["NFS_CORE_PARAM { Protocols = 4; }", "NFSV4 { Graceless = true; }",
              "NFS_KRB5 { Active_krb5 = false; }"]
    for number, (path, clients) in enumerate(found, start=1):
        lines = ["EXPORT {", "  Export_Id = %d;" % number, "  Path = %s;" % path,
                 "  Pseudo = %s;" % path, "  Protocols = 4;", "  Transports = TCP;",
                 "  Access_Type = None;", "  FSAL { Name = VFS; }"]
        for host, options in clients:
            access = "RW" if "rw" in options else "RO"
            squash = "No_Root_Squash" if "no_root_squash" in options else "Root_Squash"
            lines.append("  CLIENT { Clients = %s; Access_Type = %s; Squash = %s; }"
                         % (host, access, squash))
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


def restart():
    os.makedirs("/var/run/ganesha", exist_ok=True)
    os.makedirs("/var/lib/nfs/ganesha", exist_ok=True)
    if subprocess.run(["pgrep", "-x", "rpcbind"], capture_output=True).returncode != 0:
        subprocess.run(["rpcbind", "-w"], check=True)
    subprocess.run(["pkill", "-x", "ganesha.nfsd"], capture_output=True)
    for _ in range(50):
        if subprocess.run(["pgrep", "-x", "ganesha.nfsd"], capture_output=True).returncode != 0:
            break
        time.sleep(0.1)
    subprocess.run(["ganesha.nfsd", "-f", CONF, "-L", "/var/log/ganesha.log", "-N", "NIV_EVENT"],
                   check=True)
    # Serving once port 2049 listens.
    for _ in range(100):
        listening = subprocess.run(["ss", "-Hltn", "sport = :2049"], capture_output=True, text=True)
        if listening.stdout.strip():
            return 0
        time.sleep(0.1)
    sys.stderr.write("exportfs: the NFS server did not start (see /var/log/ganesha.log)\n")
    return 1


def main(argv):
    found = exports()
    if any(flag in argv for flag in ("-r", "-ra", "-a", "-arv", "-rav")):
        os.makedirs(os.path.dirname(CONF), exist_ok=True)
        with open(CONF, "w") as out:
            out.write(config(found))
        return restart()
    for path, clients in found:
        print("%s\t%s" % (path, " ".join(host for host, _ in clients)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
