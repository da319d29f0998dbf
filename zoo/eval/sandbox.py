"""Run an untrusted Python program in a confined child process and collect its output.

Code rewards (AceReason, algorithms.md §6: reward 1 iff all tests pass) execute model-written programs, so
every run is a separate process with layered limits. Each layer is used when the machine permits it; the
ones that are always on come first:

1. rlimits in the child: address space (``RLIMIT_AS``), CPU seconds (SIGXCPU, then SIGKILL one second later),
   file size, no core files. Wall time is enforced here, by the parent.
2. A parent-side watchdog polls the run's processes: too many processes (fork bomb), too much resident memory,
   or too much output end the run. Output is read incrementally and capped, so 1 GB of output never lands here.
3. When started as root the child drops to ``nobody`` (uid 65534): root ignores ``RLIMIT_NPROC`` and file
   permissions, ``nobody`` does not.
4. An audit hook (`sys.addaudithook`) in the child refuses writes outside the work directory, socket
   creation and starting other programs. It is a Python-level guard (ctypes can go around it), so it is the
   last line only when the kernel layers below are missing; then ctypes is refused too.
5. Namespaces via ``unshare`` when permitted: a new network namespace (no interfaces but a down loopback), a
   new PID namespace whose init is our launcher (when it exits the kernel kills every process left inside,
   daemons included), and a private mount namespace where every mount is read-only except a small tmpfs
   on the work directory.
6. A cgroup (v1 ``pids`` + ``memory`` or v2) when the hierarchy is writable: a hard cap on processes and on the
   run's total memory, and an exact list of the run's processes for the final sweep.

At the end every process of the run is killed (cgroup list, process tree, then an environment-marker scan for
anything that escaped both) and the temporary directory is removed.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Limits", "RunResult", "run_python", "isolation", "sandbox_processes"]

_CHILD = Path(__file__).with_name("_sandbox_child.py")
_NOBODY = 65534
_MARKER_ENV = "ZOO_SANDBOX_RUN"
_POLL_S = 0.02


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Attributes:
        wall_s: Wall-clock seconds before the run is killed.
        cpu_s: CPU seconds per process (``RLIMIT_CPU``).
        memory_bytes: Address space per process (``RLIMIT_AS``) and resident memory of the whole run.
        max_procs: Processes the program may have alive at once, itself included.
        output_bytes: Cap on stdout and on stderr, each.
        file_bytes: Largest file the program may write (``RLIMIT_FSIZE``).
        tmpfs_bytes: Size of the work directory's tmpfs (namespace mode only).
        namespaces: Use unshare namespaces: None = when available; False = never; True = required.
        cgroup: Use a cgroup: None = when writable; False = never; True = required.
        drop_privileges: Run the program as ``nobody`` when started as root.
    """

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1 << 30
    max_procs: int = 16
    output_bytes: int = 1 << 20
    file_bytes: int = 16 << 20
    tmpfs_bytes: int = 64 << 20
    namespaces: bool | None = None
    cgroup: bool | None = None
    drop_privileges: bool = True

    def __post_init__(self) -> None:
        if self.wall_s <= 0 or self.cpu_s <= 0 or self.memory_bytes <= 0 or self.max_procs < 1:
            raise ValueError(f"sandbox limits must be positive: {self}")


@dataclass
class RunResult:
    """What one run did.

    Attributes:
        status: ``ok`` (exit 0), ``error`` (non-zero exit), ``timeout``, ``cpu_limit``, ``memory_limit``,
            ``proc_limit``, ``output_limit``, ``stray_processes`` (it left processes running, e.g. a daemon),
            ``killed`` (another signal) or ``setup_error``.
        returncode: The program's exit code (negative: killed by that signal); None if the parent killed it.
        stdout: Captured standard output (at most ``output_bytes``), decoded as UTF-8 with replacement.
        stderr: Captured standard error, likewise.
        wall_s: Seconds from start to the end of the sweep.
        layers: The confinement layers that were active.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    layers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---------------------------------------------------------------------------------------------------------------
# What this machine permits (probed once per process)


@functools.cache
def _namespaces_work() -> bool:
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        r = subprocess.run([exe, *_UNSHARE_ARGS, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


_UNSHARE_ARGS = ["--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc"]


@functools.cache
def _unprivileged_python() -> str | None:
    """An interpreter that ``nobody`` can run (ours may live under root's private home), or None."""
    for exe in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", ""), "/usr/bin/python3"]):
        if not exe or not os.path.exists(exe):
            continue
        try:
            r = subprocess.run([exe, "-I", "-c", "import ctypes, json, runpy, traceback"], capture_output=True,
                               timeout=20, user=_NOBODY, group=_NOBODY, extra_groups=[], cwd="/")
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0:
            return exe
    return None


def _own_cgroup(controller: str) -> Path | None:
    """Our cgroup directory for a v1 controller, or the v2 one when controller is ``""``."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if (controller and controller in ctrls.split(",")) or (not controller and ctrls == ""):
            for root in ([Path("/sys/fs/cgroup") / controller] if controller else
                         [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")]):
                d = root / path.lstrip("/")
                if (d / "cgroup.procs").exists():
                    return d
    return None


@functools.cache
def _cgroup_bases() -> tuple[str, tuple[Path, ...]] | None:
    """("v1", (pids dir, memory dir?)) or ("v2", (dir,)) where we may create child cgroups; None otherwise."""
    pids = _own_cgroup("pids")
    if pids is not None and os.access(pids, os.W_OK) and (pids / "cgroup.procs").exists():
        mem = _own_cgroup("memory")
        bases = (pids, mem) if mem is not None and os.access(mem, os.W_OK) else (pids,)
        return "v1", bases
    v2 = _own_cgroup("")
    if v2 is not None and os.access(v2, os.W_OK):
        try:
            enabled = (v2 / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        if "pids" in enabled:
            return "v2", (v2,)
    return None


def isolation() -> dict:
    """The confinement layers available on this machine (for logs, docs and test skips)."""
    cg = _cgroup_bases()
    return {
        "namespaces": _namespaces_work(),
        "cgroup": cg[0] if cg else None,
        "cgroup_memory": bool(cg and (cg[0] == "v2" or len(cg[1]) > 1)),
        "drop_privileges": os.geteuid() == 0 and _unprivileged_python() is not None,
    }


# ---------------------------------------------------------------------------------------------------------------
# Process bookkeeping


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, resident pages) for every live, non-zombie process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if rest[0] in (b"Z", b"X"):
            continue
        table[int(name)] = (int(rest[1]), int(rest[21]))
    return table


def _descendants(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def sandbox_processes(run_id: str | None = None) -> set[int]:
    """Pids of live processes started by a sandbox run (any run when ``run_id`` is None), by environment marker."""
    needle = f"{_MARKER_ENV}={run_id or ''}".encode()
    found = set()
    for pid in _proc_table():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env:
            found.add(pid)
    return found


class _Cgroup:
    """A throw-away cgroup for one run: hard caps on processes (and memory), the run's exact process list."""

    def __init__(self, version: str, bases: tuple[Path, ...], limits: Limits, run_id: str) -> None:
        self.version = version
        self.dirs: list[Path] = []
        for base in bases:
            d = base / f"zoo-sandbox-{run_id}"
            d.mkdir()
            self.dirs.append(d)
        # The launcher is one more process than the program is allowed.
        self._write("pids.max", str(limits.max_procs + 1))
        self.memory = False
        mem_file = "memory.max" if version == "v2" else "memory.limit_in_bytes"
        try:
            self._write(mem_file, str(limits.memory_bytes))
            self.memory = True
        except OSError:
            pass
        if version == "v2":
            try:
                self._write("memory.swap.max", "0")
            except OSError:
                pass

    def _write(self, name: str, value: str) -> None:
        for d in self.dirs:
            if (d / name).exists():
                (d / name).write_text(value)
                return
        raise OSError(f"no {name} in {self.dirs}")

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        try:
            return {int(x) for x in (self.dirs[0] / "cgroup.procs").read_text().split()}
        except OSError:
            return set()

    def fork_refused(self) -> bool:
        """Whether the kernel refused a fork because pids.max was reached (the fork-bomb signature)."""
        try:
            text = (self.dirs[0] / "pids.events").read_text()
        except OSError:
            return False
        return any(line.split()[0] == "max" and int(line.split()[1]) > 0 for line in text.splitlines() if line)

    def oom(self) -> bool:
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (d / name).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    k, _, v = line.partition(" ")
                    if k in ("oom_kill", "oom") and v.strip().isdigit() and int(v) > 0:
                        return True
        return False

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(500):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy until the last process is reaped
                    for pid in self.pids():
                        _kill(pid)
                    time.sleep(0.01)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _sweep(proc: subprocess.Popen, cg: _Cgroup | None, run_id: str) -> None:
    """Kill every process of the run, then the launcher, and reap it.

    The launcher goes last: while it lives, orphans are re-parented to it and stay in its process tree. The
    marker scan catches whatever left the tree and the cgroup anyway.
    """
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        pids = _descendants(proc.pid, _proc_table()) | (cg.pids() if cg else set()) | sandbox_processes(run_id)
        pids.discard(proc.pid)
        if not pids:
            if proc.poll() is None:
                _kill(proc.pid)
                proc.wait()
                continue  # killing the launcher may orphan a process forked in between: look once more
            break
        for pid in pids:
            _kill(pid)
        time.sleep(0.005)
    proc.wait()


# ---------------------------------------------------------------------------------------------------------------
# One run


def _pick(flag: bool | None, available: bool, what: str) -> bool:
    if flag and not available:
        raise RuntimeError(f"sandbox: {what} was required but is not available on this machine")
    return available if flag is None else flag


def run_python(program: str, *, stdin: str = "", limits: Limits | None = None) -> RunResult:
    """Run Python source in the sandbox.

    Args:
        program: The program's source code; it runs as ``__main__``.
        stdin: Text given on standard input.
        limits: Resource limits; the defaults when None.

    Returns:
        The run's status, exit code and captured output.
    """
    limits = limits or Limits()
    use_ns = _pick(limits.namespaces, _namespaces_work(), "a network/PID/mount namespace")
    cg_info = _cgroup_bases() if limits.cgroup is not False else None
    if limits.cgroup and cg_info is None:
        raise RuntimeError("sandbox: a cgroup was required but no writable cgroup hierarchy was found")
    drop = limits.drop_privileges and os.geteuid() == 0 and _unprivileged_python() is not None
    python = (_unprivileged_python() if drop else None) or sys.executable
    run_id = uuid.uuid4().hex
    root = Path(tempfile.mkdtemp(prefix="zoo-sandbox-"))
    cg: _Cgroup | None = None
    start = time.monotonic()
    try:
        root.chmod(0o711)  # `nobody` may pass through to its work dir and program, not list or write here
        work = root / "work"
        work.mkdir(mode=0o700)
        prog = root / "program.py"
        prog.write_text(program, encoding="utf-8")
        prog.chmod(0o644)
        (root / "stdin.txt").write_text(stdin, encoding="utf-8")
        if cg_info is not None:
            try:
                cg = _Cgroup(cg_info[0], cg_info[1], limits, run_id)
            except OSError:
                if limits.cgroup:
                    raise
                cg = None
        layers = {"namespaces": use_ns, "cgroup": cg.version if cg else None, "drop_privileges": drop,
                  "audit_hook": True, "python": python}
        cfg = {
            "work": str(work),
            "program": str(prog),
            "uid": _NOBODY if drop else None,
            "gid": _NOBODY if drop else None,
            "cgroup_procs": cg.procs_files() if cg else [],
            "readonly_mounts": use_ns,
            # Without namespaces the audit hook is the only guard of network and files: close its ctypes hole.
            "deny_ctypes": not use_ns,
            "limits": {**asdict(limits), "cpu_s": int(limits.cpu_s), "nproc": 4 * limits.max_procs + 128},
        }
        cfg_path = root / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        cfg_path.chmod(0o600)
        cmd = [python, "-I", str(_CHILD), str(cfg_path)]
        if use_ns:
            cmd = [shutil.which("unshare") or "unshare", *_UNSHARE_ARGS, *cmd]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8", _MARKER_ENV: run_id}
        with open(root / "stdin.txt", "rb") as fin:
            proc = subprocess.Popen(cmd, stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    cwd=str(work), close_fds=True)
        try:
            status, out, err = _watch(proc, cg, limits, start)
        finally:
            _sweep(proc, cg, run_id)
        rc = proc.returncode
        if status is None:
            status, rc = _classify(rc, err, cg)
        else:
            rc = None
        return RunResult(status=status, returncode=rc, stdout=out.decode("utf-8", "replace"),
                         stderr=err.decode("utf-8", "replace"), wall_s=time.monotonic() - start, layers=layers)
    finally:
        if cg is not None:
            cg.remove()
        shutil.rmtree(root, ignore_errors=True)


def _watch(proc: subprocess.Popen, cg: _Cgroup | None, limits: Limits,
           start: float) -> tuple[str | None, bytes, bytes]:
    """Read output and police the run until it ends. Returns (violation or None, stdout, stderr)."""
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    page = os.sysconf("SC_PAGE_SIZE")
    violation = None
    last_check = 0.0
    try:
        while bufs and sel.get_map():
            now = time.monotonic()
            if now - start > limits.wall_s:
                violation = "timeout"
                break
            for key, _ in sel.select(timeout=_POLL_S):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                buf += chunk[: max(0, limits.output_bytes - len(buf))]
                if len(chunk) and len(buf) >= limits.output_bytes:
                    violation = "output_limit"
            if violation:
                break
            if now - last_check >= _POLL_S:
                last_check = now
                violation = _police(proc, cg, limits, page)
                if violation:
                    break
        if violation is None:
            # Pipes closed: the launcher is exiting; give it the rest of the wall budget.
            try:
                proc.wait(timeout=max(0.0, limits.wall_s - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                violation = "timeout"
    finally:
        sel.close()
    out, err = bytes(bufs[proc.stdout.fileno()]), bytes(bufs[proc.stderr.fileno()])
    proc.stdout.close()
    proc.stderr.close()
    return violation, out, err


def _police(proc: subprocess.Popen, cg: _Cgroup | None, limits: Limits, page: int) -> str | None:
    """One watchdog tick: the process count and resident memory of the run."""
    if cg is not None and cg.fork_refused():
        return "proc_limit"
    table = _proc_table()
    pids = cg.pids() if cg is not None else _descendants(proc.pid, table)
    # The launcher (and `unshare`, outside any cgroup) are ours, not the program's.
    overhead = 1 if cg is not None else (2 if limits.namespaces is not False and _namespaces_work() else 1)
    if len(pids) - overhead > limits.max_procs:
        return "proc_limit"
    if cg is None or not cg.memory:
        rss = sum(table[p][1] for p in pids if p in table) * page
        if rss > limits.memory_bytes:
            return "memory_limit"
    return None


def _classify(rc: int | None, err: bytes, cg: _Cgroup | None) -> tuple[str, int | None]:
    """Map the launcher's exit code (128 + signal for a signalled program) to a status."""
    if rc is None:
        return "killed", None
    if rc < 0:  # the launcher itself was signalled
        rc = 128 - rc
    if rc == 0:
        return "ok", 0
    if rc == 120 and b"sandbox setup failed" in err:
        return "setup_error", rc
    if rc == 121:
        return "stray_processes", rc
    if rc > 128:
        sig = rc - 128
        if sig == signal.SIGXCPU:
            return "cpu_limit", -sig
        if cg is not None and cg.oom():
            return "memory_limit", -sig
        return "killed", -sig
    if b"MemoryError" in err[-4096:]:
        return "memory_limit", rc
    return "error", rc
