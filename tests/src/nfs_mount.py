#!/usr/bin/env python3
"""`mount.nfs` for the test bed's boards, whose kernel has no NFS client:
the same command line as nfs-utils' helper (`mount.nfs SERVER:/PATH DIR
[-o OPTIONS]`, as mount(8) calls it for an fstab line of type nfs), but the
share is mounted through FUSE by libnfs, a user-space NFS client that
speaks real NFSv4 to the server board. `umount DIR` ends it.

Only what a shared directory needs: stat, list, read, write, create,
remove, rename, mkdir. Options other than `ro` are accepted and ignored.
"""

import ctypes
import errno
import os
import sys
import threading
import time

NFS_V4 = 4
RETRY_SECONDS = 120


class Stat64(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size", "blksize",
        "blocks", "atime", "mtime", "ctime", "atime_nsec", "mtime_nsec",
        "ctime_nsec", "used")]


class DirEnt(ctypes.Structure):
    pass


DirEnt._fields_ = [("next", ctypes.POINTER(DirEnt)), ("name", ctypes.c_char_p)]


def library():
    nfs = ctypes.CDLL("libnfs.so.13")
    c = ctypes.c_void_p
    nfs.nfs_init_context.restype = c
    nfs.nfs_get_error.restype = ctypes.c_char_p
    nfs.nfs_get_error.argtypes = [c]
    nfs.nfs_set_version.argtypes = [c, ctypes.c_int]
    nfs.nfs_mount.argtypes = [c, ctypes.c_char_p, ctypes.c_char_p]
    nfs.nfs_stat64.argtypes = [c, ctypes.c_char_p, ctypes.POINTER(Stat64)]
    nfs.nfs_open.argtypes = [c, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(c)]
    nfs.nfs_open2.argtypes = [c, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(c)]
    nfs.nfs_close.argtypes = [c, c]
    nfs.nfs_pread.argtypes = [c, c, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p]
    nfs.nfs_pwrite.argtypes = [c, c, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p]
    nfs.nfs_truncate.argtypes = [c, ctypes.c_char_p, ctypes.c_uint64]
    nfs.nfs_unlink.argtypes = [c, ctypes.c_char_p]
    nfs.nfs_mkdir.argtypes = [c, ctypes.c_char_p]
    nfs.nfs_rmdir.argtypes = [c, ctypes.c_char_p]
    nfs.nfs_rename.argtypes = [c, ctypes.c_char_p, ctypes.c_char_p]
    nfs.nfs_chmod.argtypes = [c, ctypes.c_char_p, ctypes.c_int]
    nfs.nfs_opendir.argtypes = [c, ctypes.c_char_p, ctypes.POINTER(c)]
    nfs.nfs_readdir.argtypes = [c, c]
    nfs.nfs_readdir.restype = ctypes.POINTER(DirEnt)
    nfs.nfs_closedir.argtypes = [c, c]
    return nfs


def serve(server, export, mountpoint, read_only):
    try:
        from fuse import FUSE, FuseOSError, Operations
    except ImportError:  # Debian's python3-fusepy names the module fusepy
        from fusepy import FUSE, FuseOSError, Operations

    nfs = library()
    # As nfs-utils' mount.nfs in the foreground (retry=2): a server that
    # does not answer yet is asked again for two minutes.
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        context = nfs.nfs_init_context()
        nfs.nfs_set_version(context, NFS_V4)
        if nfs.nfs_mount(context, server.encode(), export.encode()) == 0:
            break
        sys.stderr.write("mount.nfs: %s\n" % nfs.nfs_get_error(context).decode())
        if time.monotonic() > deadline:
            sys.exit(32)
        time.sleep(2)
    lock = threading.Lock()

    def call(result):
        if result < 0:
            raise FuseOSError(-result)
        return result

    class Share(Operations):
        def getattr(self, path, fh=None):
            st = Stat64()
            with lock:
                call(nfs.nfs_stat64(context, path.encode(), ctypes.byref(st)))
            return {
                "st_mode": st.mode, "st_nlink": st.nlink, "st_uid": st.uid,
                "st_gid": st.gid, "st_size": st.size, "st_atime": st.atime,
                "st_mtime": st.mtime, "st_ctime": st.ctime,
            }

        def readdir(self, path, fh):
            handle = ctypes.c_void_p()
            names = [".", ".."]
            with lock:
                call(nfs.nfs_opendir(context, path.encode(), ctypes.byref(handle)))
                while True:
                    entry = nfs.nfs_readdir(context, handle)
                    if not entry:
                        break
                    name = entry.contents.name.decode()
                    if name not in (".", ".."):
                        names.append(name)
                nfs.nfs_closedir(context, handle)
            return names

        def open(self, path, flags):
            if read_only and flags & (os.O_WRONLY | os.O_RDWR):
                raise FuseOSError(errno.EROFS)
            handle = ctypes.c_void_p()
            with lock:
                call(nfs.nfs_open(context, path.encode(), flags & 3, ctypes.byref(handle)))
            return handle.value

        def create(self, path, mode, fi=None):
            if read_only:
                raise FuseOSError(errno.EROFS)
            handle = ctypes.c_void_p()
            with lock:
                # nfs_creat opens NFSv4 files read-only (libnfs 4.0): writes
                # would fail with NFS4ERR_OPENMODE.
                call(nfs.nfs_open2(context, path.encode(), os.O_CREAT | os.O_RDWR,
                                   mode & 0o7777, ctypes.byref(handle)))
            return handle.value

        def read(self, path, size, offset, fh):
            buffer = ctypes.create_string_buffer(size)
            with lock:
                count = call(nfs.nfs_pread(context, ctypes.c_void_p(fh), offset, size, buffer))
            return buffer.raw[:count]

        def write(self, path, data, offset, fh):
            with lock:
                return call(nfs.nfs_pwrite(context, ctypes.c_void_p(fh), offset, len(data), data))

        def truncate(self, path, length, fh=None):
            with lock:
                call(nfs.nfs_truncate(context, path.encode(), length))

        def release(self, path, fh):
            with lock:
                nfs.nfs_close(context, ctypes.c_void_p(fh))
            return 0

        def unlink(self, path):
            with lock:
                call(nfs.nfs_unlink(context, path.encode()))

        def mkdir(self, path, mode):
            with lock:
                call(nfs.nfs_mkdir(context, path.encode()))

        def rmdir(self, path):
            with lock:
                call(nfs.nfs_rmdir(context, path.encode()))

        def rename(self, old, new):
            with lock:
                call(nfs.nfs_rename(context, old.encode(), new.encode()))

        def chmod(self, path, mode):
            with lock:
                call(nfs.nfs_chmod(context, path.encode(), mode & 0o7777))

        def chown(self, path, uid, gid):
            return 0

        def utimens(self, path, times=None):
            return 0

        def flush(self, path, fh):
            return 0

    FUSE(Share(), mountpoint, foreground=True, allow_other=True, fsname=server + ":" + export,
         subtype="nfs4", ro=read_only)


def mounted(mountpoint):
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == mountpoint for line in mounts)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("-")]
    options = ""
    if "-o" in argv:
        options = argv[argv.index("-o") + 1]
        args = [a for a in args if a != options]
    if len(args) < 2 or ":" not in args[0]:
        sys.stderr.write("usage: mount.nfs SERVER:/PATH DIR [-o OPTIONS]\n")
        return 1
    server, export = args[0].split(":", 1)
    mountpoint = os.path.realpath(args[1])
    read_only = "ro" in options.split(",")
    child = os.fork()
    if child == 0:
        os.setsid()
        log = os.open("/var/log/mount.nfs.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        serve(server, export, mountpoint, read_only)
        os._exit(0)
    deadline = time.monotonic() + RETRY_SECONDS + 10
    while time.monotonic() < deadline:
        if mounted(mountpoint):
            return 0
        if os.waitpid(child, os.WNOHANG)[0] == child:
            break  # it gave up (see its log)
        time.sleep(0.1)
    sys.stderr.write("mount.nfs: %s did not mount on %s (see /var/log/mount.nfs.log)\n"
                     % (args[0], mountpoint))
    return 32


if __name__ == "__main__":
    sys.exit(main(sys.argv))
