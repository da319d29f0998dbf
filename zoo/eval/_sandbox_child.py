"""Inside the sandbox: confine this process, fork the candidate program, reap everything, exit with its status.

Run by `zoo.eval.sandbox` as ``python -I _sandbox_child.py CONFIG.json`` (stdlib only, never imported by `zoo`).
This process is PID 1 of a fresh PID namespace when `unshare` is permitted, otherwise a child subreaper; either
way every orphan of the candidate is re-parented to it, so it can reap and kill them all before it exits.

Order matters: join the cgroups first (so every later fork is counted), then mounts (still root), then fork;
the forked child sets rlimits, drops root, installs the audit hook and only then runs untrusted code.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
MS_NOSUID, MS_NODEV, MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 1, 32, 4096, 16384, 1 << 18
_SETUP_FAILED = 120  # exit code when confinement itself failed: the run counts as an error, never as a pass
_STRAY = 121  # the program exited 0 but left processes running

# Audit events that write or move a path (args[0], and args[1] for two-path events).
_PATH_EVENTS = {
    "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime", "shutil.rmtree",
    "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "shutil.chown", "shutil.move",
}
_TWO_PATH_EVENTS = {"os.rename", "os.link", "os.symlink", "shutil.copyfile", "shutil.copytree", "shutil.copymode"}
# Starting another program would leave the audit hook behind (a new interpreter has none).
_SPAWN_EVENTS = {"os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "os.startfile", "pty.spawn"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _readonly_mounts(libc: ctypes.CDLL, work: str, tmpfs_bytes: int, uid: int, gid: int) -> None:
    """Make every mount read-only in this (private) mount namespace, then put a small tmpfs on ``work``."""
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in points:
        # Remount failures (e.g. a mount we may not touch) leave that mount as it was; the audit hook and the
        # dropped uid still stand in front of it.
        libc.mount(None, mp.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    opts = f"size={tmpfs_bytes},mode=0700,uid={uid},gid={gid}".encode()
    if libc.mount(b"tmpfs", work.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts) != 0:
        raise OSError(ctypes.get_errno(), f"mount tmpfs on {work}")


def _audit_hook(work: str, deny_ctypes: bool):  # noqa: C901 - one flat policy reads best
    """A `sys.addaudithook` policy: no writes outside ``work``, no sockets, no exec, optionally no ctypes."""
    allowed_files = {"/dev/null"}

    def inside(path: object) -> bool:
        if isinstance(path, int):  # an already-open descriptor
            return True
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return p == work or p.startswith(work + os.sep) or p in allowed_files

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the work directory is not allowed: {path!r}")
        elif event in _PATH_EVENTS:
            if args and not inside(args[0]):
                raise PermissionError(f"sandbox: {event} outside the work directory is not allowed")
        elif event in _TWO_PATH_EVENTS:
            if not all(inside(a) for a in args[:2]):
                raise PermissionError(f"sandbox: {event} outside the work directory is not allowed")
        elif event.startswith("socket.") and event != "socket.getdefaulttimeout":
            raise PermissionError("sandbox: network access is not allowed")
        elif event in _SPAWN_EVENTS:
            raise PermissionError("sandbox: starting programs is not allowed")
        elif deny_ctypes and event.startswith("ctypes."):
            raise PermissionError("sandbox: ctypes is not allowed")

    return hook


def _limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def _run_candidate(cfg: dict) -> int:
    """In the forked child: confine, then run the program. Returns its exit code."""
    os.setsid()  # own process group: the launcher can killpg it
    lim = cfg["limits"]
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_FSIZE, lim["file_bytes"])
    _limit(resource.RLIMIT_NOFILE, 256)
    # Soft CPU limit sends SIGXCPU; the hard limit one second later is a SIGKILL backstop.
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
        # Counted per real uid (all sandboxes running as this uid), so only effective once root is dropped.
        _limit(resource.RLIMIT_NPROC, lim["nproc"])
    _limit(resource.RLIMIT_AS, lim["memory_bytes"])
    os.chdir(cfg["work"])
    os.umask(0o077)
    sys.dont_write_bytecode = True
    sys.argv = [cfg["program"]]
    sys.addaudithook(_audit_hook(cfg["work"], cfg["deny_ctypes"]))
    import runpy
    import traceback

    code = 0
    try:
        runpy.run_path(cfg["program"], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # the candidate's own error: report it like the interpreter would
        try:
            traceback.print_exc()
        except BaseException:
            pass
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 1
    return code


def _kill_descendants() -> int:
    """SIGKILL every process whose parent is this one (orphans come here) until none is left; how many."""
    me = os.getpid()
    killed = 0
    for _ in range(200):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == me:
                found = True
                killed += 1
                try:
                    os.kill(int(name), signal.SIGKILL)
                except OSError:
                    pass
        while True:  # reap what died
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not found:
            break
    return killed


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    try:
        for path in cfg["cgroup_procs"]:
            with open(path, "w") as f:
                f.write("0")  # "0" = the writing process; its descendants inherit the cgroup
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if cfg["readonly_mounts"]:
            uid, gid = (cfg["uid"], cfg["gid"]) if cfg["uid"] is not None else (os.getuid(), os.getgid())
            _readonly_mounts(libc, cfg["work"], cfg["limits"]["tmpfs_bytes"], uid, gid)
        if cfg["uid"] is not None:
            os.chown(cfg["work"], cfg["uid"], cfg["gid"])
    except OSError as e:
        print(f"sandbox setup failed: {e}", file=sys.stderr)
        sys.exit(_SETUP_FAILED)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            code = _run_candidate(cfg)
        except BaseException as e:  # confinement failed: never run the program unconfined
            try:
                print(f"sandbox setup failed: {e!r}", file=sys.stderr)
            except BaseException:
                pass
            code = _SETUP_FAILED
        os._exit(code)
    status = 0
    while True:  # as subreaper / PID 1 we also collect orphans until the candidate itself ends
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if got == pid:
            status = st
            break
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    # A program that leaves processes behind (a daemon) fails, whatever it printed.
    stray = _kill_descendants()
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(_STRAY if stray and os.WEXITSTATUS(status) == 0 else os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
