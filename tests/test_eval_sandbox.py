"""Sandbox: hostile programs end within their limits, fail, and leave nothing running or written.

Every hostile program runs twice: with every layer this machine allows (namespaces, cgroup, dropped uid) and
with the kernel layers off (rlimits + watchdog + audit hook only), so the fallback path is tested too.
"""

import os
import socket
import time
import uuid

import pytest

from zoo.eval.sandbox import Limits, isolation, run_python, sandbox_processes

FAST = Limits(wall_s=2.0, cpu_s=2, memory_bytes=512 << 20, max_procs=8, output_bytes=1 << 20)
MODES = {
    "full": {},
    "fallback": {"namespaces": False, "cgroup": False},
}


def _limits(mode: str, **kw) -> Limits:
    return Limits(**{**FAST.__dict__, **MODES[mode], **kw})


@pytest.fixture(autouse=True)
def _nothing_left_running():
    yield
    time.sleep(0.05)
    assert sandbox_processes() == set(), "a sandboxed process survived its run"


@pytest.fixture(params=list(MODES))
def mode(request):
    return request.param


def test_hello(mode):
    r = run_python("print(input()[::-1])", stdin="abc\n", limits=_limits(mode))
    assert r.status == "ok" and r.stdout == "cba\n"


def test_error_exit(mode):
    r = run_python("raise SystemExit(3)", limits=_limits(mode))
    assert r.status == "error" and r.returncode == 3


def test_infinite_loop(mode):
    t = time.monotonic()
    r = run_python("while True: pass", limits=_limits(mode))
    assert r.status in ("timeout", "cpu_limit")
    assert time.monotonic() - t < FAST.wall_s + 2.0


def test_cpu_limit_before_wall():
    r = run_python("while True: pass", limits=_limits("full", cpu_s=1, wall_s=5.0))
    assert r.status == "cpu_limit"


def test_huge_allocation(mode):
    r = run_python("x = bytearray(10 * 10**9)\nprint('allocated')", limits=_limits(mode))
    assert r.status == "memory_limit" and "allocated" not in r.stdout


def test_huge_output(mode):
    t = time.monotonic()
    src = "import sys\nfor _ in range(1024):\n    sys.stdout.write('x' * (1 << 20))\n"  # 1 GB in 1 MB writes
    r = run_python(src, limits=_limits(mode))
    assert r.status == "output_limit"
    assert len(r.stdout) <= FAST.output_bytes
    assert time.monotonic() - t < FAST.wall_s + 2.0


def test_fork_bomb(mode):
    t = time.monotonic()
    src = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    r = run_python(src, limits=_limits(mode))
    assert r.status in ("proc_limit", "timeout")
    assert time.monotonic() - t < FAST.wall_s + 3.0


def test_socket_refused(mode):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    try:
        r = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')",
                       limits=_limits(mode))
        assert r.status == "error" and "connected" not in r.stdout
        with pytest.raises(TimeoutError):
            srv.accept()
    finally:
        srv.close()


@pytest.mark.skipif(not isolation()["namespaces"], reason="network namespaces not permitted here")
def test_network_namespace_stops_raw_syscalls():
    """ctypes goes around the audit hook; the empty network namespace still has no route to the host."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    src = f"""
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)
addr = struct.pack("<HH4s8x", 2, __import__("socket").htons({port}), bytes([127, 0, 0, 1]))
rc = libc.connect(fd, addr, len(addr))
print("fd", fd, "rc", rc)
raise SystemExit(0 if rc == 0 else 1)
"""
    try:
        r = run_python(src, limits=_limits("full"))
        assert r.status == "error", r.stdout + r.stderr
        with pytest.raises(TimeoutError):
            srv.accept()
    finally:
        srv.close()


def test_write_outside_refused(mode, tmp_path):
    outside = tmp_path / f"pwned-{uuid.uuid4().hex}"
    home = os.path.expanduser("~")
    home_target = os.path.join(home, f".zoo-sandbox-probe-{uuid.uuid4().hex}")
    for target in (str(outside), home_target):
        r = run_python(f"open({target!r}, 'w').write('x')\nprint('wrote')", limits=_limits(mode))
        assert r.status == "error" and "wrote" not in r.stdout
        assert not os.path.exists(target)


def test_write_inside_work_dir_allowed(mode):
    src = "import os\nopen('f.txt', 'w').write('hi')\nprint(open(os.path.join(os.environ['HOME'], 'f.txt')).read())"
    r = run_python(src, limits=_limits(mode))
    assert r.status == "ok" and r.stdout == "hi\n", r.stderr


def test_forked_daemon_is_killed_and_fails(mode):
    src = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(100)\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
        "print('done')\n"
    )
    r = run_python(src, limits=_limits(mode))
    assert r.status == "stray_processes"
    # the autouse fixture checks that the daemon is gone


def test_spawned_daemon_refused(mode):
    r = run_python("import subprocess\nsubprocess.Popen(['sleep', '100'], start_new_session=True)\n",
                   limits=_limits(mode))
    assert r.status == "error"


def test_nothing_left_on_disk():
    import tempfile

    before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("zoo-sandbox-")}
    run_python("open('junk', 'w').write('x' * 1000)", limits=FAST)
    after = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("zoo-sandbox-")}
    assert after <= before
