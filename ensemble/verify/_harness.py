"""The harness of a project job whose tests run as processes (Go, Rust, Java; JavaScript's ``node --test``, Jest,
Vitest), run INSIDE the sandbox by the server's own
interpreter (``python -I _harness.py JOB``; standard library only, nothing of this package is imported).

Why a harness and not a shell script: the program's stdout is a file in the scratch (``/tmp/.stdout``) that the
code under test, running as the same uid, can read and rewrite, and a shell script's nonce sits in a file it can
read. So the harness

* reads the job (a JSON file in the scratch holding a per-job secret key) and deletes it before anything of the
  user's or a candidate's runs, and makes itself non-dumpable (``PR_SET_DUMPABLE`` 0: no ``/proc/PID/mem``,
  ``environ`` or ``fd`` of it can be opened by the code under test; tracing is refused by the seccomp filter);
* runs every step (the build, each test) as a child of its own with stdin ``/dev/null`` and stdout and stderr
  going to a file it has already unlinked, and reads the child's exit status from ``waitpid``;
* before each test, kills every process left in the sandbox (but itself and its ancestors) and puts the build's
  inputs and outputs back as they were right after the build, before any code under test ran (:class:`Snapshot`):
  what one test's process wrote (the next test's binary, a class file, a library a doc test links) never
  reaches the next;
* reports one line per finding: JSON, a tab, and an HMAC-SHA256 of the JSON under the secret key. The parent
  keeps only lines whose MAC is right, so code under test can delete or duplicate report lines (an error: a
  test reported twice or never counts as not passed) but never write one.

What a test's verdict rests on is the language runner's business (``go_project``, ``rust_project``,
``java_project``); the harness counts, in each step's output, the lines matching patterns the parent gives, and
the exit status.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

_STATE = {"key": b""}  # the job's secret, once read
_LIMIT = 4 * 1024 * 1024  # what is read of one step's output


def report(record: dict[str, Any]) -> None:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    mac = hmac.new(_STATE["key"], text.encode("utf-8"), hashlib.sha256).hexdigest()
    sys.stdout.write(f"{text}\t{mac}\n")
    sys.stdout.flush()


def _undumpable() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def run(
    argv: list[str], *, env: dict[str, str], cwd: str, timeout: float, stderr: bool = True, swept: bool = False
) -> tuple[int, str, bool]:
    """Run ``argv``; its exit status (negative: a signal), what it printed (stdout and stderr together, capped;
    stdout alone without ``stderr``), and whether it ran out of time (then its whole process group is killed).
    ``swept``: every process left in the sandbox is killed before the output is read (one in a session of its
    own could still be writing to it)."""
    name = f"/tmp/.cc-out-{os.urandom(8).hex()}"
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(name)  # nobody but this process and the child reach it by path
    timed_out = False
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd if stderr else subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        try:
            rc = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            rc = -9
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)  # what it left running (a test's threads, a daemon) goes too
        if timed_out:
            child.wait()
        if swept:
            sweep()
    except OSError as exc:
        os.close(fd)
        return 127, f"cannot run {argv[0]}: {exc}", False
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, _LIMIT)
    os.close(fd)
    return rc, data.decode("utf-8", "replace"), timed_out


def _ancestors() -> set[int]:
    pids = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        pids.add(pid)
    return pids | {1, 2}


def _zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True  # gone already


def sweep() -> None:
    """Kill every process left in the sandbox but this one and its ancestors: a test's process may have started
    others in sessions of their own, out of reach of the kill of its group. One that keeps forking faster than it
    is killed ends the job (the tests not yet run count as errors)."""
    keep = _ancestors()
    for _ in range(100):
        alive = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in keep and not _zombie(n)]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    sys.exit(3)


class Snapshot:
    """The build's outputs and inputs as they were right after the build, before any code under test ran; put
    back byte for byte before each test, so what one test's process wrote (another test's binary, a class file, a
    library a doc test links) never reaches the next."""

    def __init__(self, roots: list[str], limit: int = 96 * 1024 * 1024) -> None:
        self.entries: list[tuple[str, str, bytes, int, int]] = []
        self.roots = [r for r in roots if os.path.isdir(r)]
        size = 0
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                self.entries.append((folder, "dir", b"", os.stat(folder).st_mode & 0o777, 0))
                for name in [*dirs, *files]:
                    path = os.path.join(folder, name)
                    if os.path.islink(path):
                        self.entries.append((path, "link", os.readlink(path).encode(), 0, 0))
                    elif name in files:
                        with open(path, "rb") as handle:
                            data = handle.read()
                        size += len(data)
                        if size > limit:
                            raise MemoryError("the build's outputs are too large to keep")
                        stat = os.stat(path)
                        self.entries.append((path, "file", data, stat.st_mode & 0o777, stat.st_mtime_ns))

    def restore(self) -> None:
        sweep()
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)
        for path, kind, data, mode, mtime in self.entries:
            if kind == "dir":
                os.makedirs(path, exist_ok=True)
                os.chmod(path, mode | 0o700)
            elif kind == "link":
                os.symlink(data.decode(), path)
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode | 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.utime(path, ns=(mtime, mtime))  # cargo's freshness checks compare modification times


def counts(output: str, patterns: dict[str, str]) -> dict[str, int]:
    return {name: len(re.findall(pattern, output, re.M)) for name, pattern in patterns.items()}


def mirror(source: str, dest: str, *, replaced: str, text: str, copied: tuple[str, ...], skip: tuple[str, ...]) -> None:
    """``dest``: ``source``'s tree, folders made and files linked (read-only originals), but ``replaced`` (a path
    below ``source``) written with ``text`` and the files named in ``copied`` copied (the build may rewrite
    them); folders named in ``skip`` left out."""
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d not in skip]
        relative = os.path.relpath(folder, source)
        target = os.path.normpath(os.path.join(dest, relative))
        os.makedirs(target, exist_ok=True)
        for name in files:
            path = os.path.join(folder, name)
            into = os.path.join(target, name)
            if path == replaced:
                with open(into, "w", encoding="utf-8") as handle:
                    handle.write(text)
            elif name in copied:
                shutil.copyfile(path, into)
            else:
                os.symlink(path, into)


def _rust(job: dict[str, Any]) -> None:
    env = dict(job["env"])
    work = job["work"]
    mirror(job["root"], work, replaced=job["path"], text=job["source"], copied=("Cargo.lock",), skip=("target", ".git"))
    manifest = os.path.join(work, job["package"], "Cargo.toml")
    cargo = [job["cargo"], "test", "--offline", "--manifest-path", manifest]
    rc, output, timed_out = run(
        [*cargo, "--no-run", "--message-format=json"], env=env, cwd=work, timeout=job["build_timeout"]
    )
    executables: dict[str, str] = {}
    errors: list[str] = []
    for line in output.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            target = message.get("target") or {}
            kind = (target.get("kind") or ["?"])[0]
            executables["lib" if kind == "lib" else f"{kind}:{target.get('name')}"] = message["executable"]
        elif message.get("reason") == "compiler-message":
            diagnostic = message.get("message") or {}
            if diagnostic.get("level") == "error" and len(errors) < 5:
                errors.append(str(diagnostic.get("message", ""))[:300])
    if rc != 0 or timed_out:
        plain = [ln for ln in output.splitlines() if ln.startswith(("error", "warning: ", "  "))][:5]
        report({"build": rc, "timed_out": timed_out, "errors": errors or plain})
        return
    doc_tests: list[tuple[str, str]] = []
    if job["doc_lines"]:  # listed before any code of the crate runs (listing compiles and runs none)
        rc, output, _ = run([*cargo, "--doc", "--", "--list"], env=env, cwd=work, timeout=job["build_timeout"])
        wanted = {int(k): v for k, v in job["doc_lines"].items()}
        prefix = re.escape(job["doc_file"]) + r" - .*? \(line (\d+)\)(?: - compile(?: fail)?)?"
        for found in re.finditer(rf"^({prefix}): test$", output, re.M):
            name, at = found.group(1), int(found.group(2))
            if at in wanted and wanted[at] not in {t for _, t in doc_tests}:
                doc_tests.append((name, wanted[at]))
    snapshot = Snapshot([work, env["CARGO_TARGET_DIR"], env["CARGO_HOME"]])
    for test in job["tests"]:
        exe = executables.get(test["target"])
        if exe is None:
            report({"test": test["id"], "rc": 127, "counts": {}, "why": "no test binary"})
            continue
        snapshot.restore()
        argv = [exe, "--exact", test["name"], "--test-threads=1"]
        rc, output, timed_out = run(argv, env=env, cwd=os.path.join(work, job["package"]), timeout=job["per_test"])
        report({"test": test["id"], "rc": rc, "timed_out": timed_out, "counts": counts(output, test["patterns"])})
    if doc_tests:
        for name, test_id in doc_tests:
            snapshot.restore()
            rc, out, timed_out = run(
                [*cargo, "--doc", "--", name, "--test-threads=1"],  # rustdoc's --exact matches no doc test
                env=env,
                cwd=work,
                timeout=job["build_timeout"],
            )
            patterns = {v: rf"^test {re.escape(name)} \.\.\. {v}$" for v in ("ok", "FAILED", "ignored")}
            report({"test": test_id, "rc": rc, "timed_out": timed_out, "counts": counts(out, patterns)})


def _java(job: dict[str, Any]) -> None:
    env = dict(job["env"])
    work = job["work"]
    classes = os.path.join(work, "classes")
    os.makedirs(classes)
    candidate = os.path.join(work, "src", job["relative"])
    os.makedirs(os.path.dirname(candidate), exist_ok=True)
    with open(candidate, "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    sources = [candidate if s == job["path"] else s for s in job["sources"]]
    if job.get("runner"):  # the one-test JUnit runner, compiled with the project
        runner = os.path.join(work, "runner", "CcJUnit4Runner.java")
        os.makedirs(os.path.dirname(runner))
        with open(runner, "w", encoding="utf-8") as handle:
            handle.write(job["runner"])
        sources.append(runner)
    with open(os.path.join(work, "sources.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(f'"{s}"' for s in sources) + "\n")
    argv = [job["javac"], *job["jvm_javac"], "-nowarn", "-encoding", "UTF-8", "-d", classes]
    if job["classpath"]:
        argv += ["-cp", job["classpath"]]
    rc, output, timed_out = run([*argv, "@" + os.path.join(work, "sources.txt")], env=env, cwd=work,
                                timeout=job["build_timeout"])  # fmt: skip
    if rc != 0 or timed_out:
        lines = output.splitlines()
        errors: list[str] = []
        for index, line in enumerate(lines):
            if ": error: " in line and len(errors) < 5:
                symbol = [ln.strip() for ln in lines[index + 1 : index + 4] if ln.strip().startswith("symbol:")]
                errors.append(line + (f" ({symbol[0]})" if symbol else ""))
        report({"build": rc, "timed_out": timed_out, "errors": errors or output.splitlines()[:3]})
        return
    classpath = os.pathsep.join([classes, *([job["classpath"]] if job["classpath"] else [])])
    snapshot = Snapshot([work])
    for test in job["tests"]:
        snapshot.restore()
        argv = [job["java"], *job["jvm"], "-ea", "-cp", classpath, *test["argv"]]
        rc, output, timed_out = run(argv, env=env, cwd=job["root"], timeout=job["per_test"])
        record = {"test": test["id"], "rc": rc, "timed_out": timed_out, "counts": counts(output, test["patterns"])}
        report({**record, "exit_only": bool(test.get("exit_only"))})


def _go(job: dict[str, Any]) -> None:
    env = dict(job["env"])
    work = job["work"]
    os.makedirs(work)
    candidate = os.path.join(work, job["candidate"])
    with open(candidate, "w", encoding="utf-8") as handle:
        handle.write(job["source"])
    overlay = os.path.join(work, "overlay.json")
    with open(overlay, "w", encoding="utf-8") as handle:
        json.dump({"Replace": {job["path"]: candidate}}, handle)
    binary = os.path.join(work, "cc.test")
    argv = [job["go"], "test", "-c", "-o", binary, "-overlay", overlay, "."]
    rc, output, timed_out = run(argv, env=env, cwd=job["package_dir"], timeout=job["build_timeout"])
    if rc != 0 or timed_out or not os.access(binary, os.X_OK):
        errors = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("#")][:5]
        report({"build": rc, "timed_out": timed_out, "errors": errors})
        return
    snapshot = Snapshot([work])
    for test in job["tests"]:
        snapshot.restore()
        name = test["name"]  # a Go identifier: nothing to quote
        argv = [binary, "-test.run", f"^{name}$", "-test.v", "-test.count=1", f"-test.timeout={job['per_test']}s"]
        rc, output, timed_out = run(argv, env=env, cwd=job["package_dir"], timeout=job["per_test"] + 5)
        patterns = {
            k: rf"^--- {v}: {re.escape(name)} " for k, v in (("ok", "PASS"), ("FAILED", "FAIL"), ("ignored", "SKIP"))
        }
        report({"test": test["id"], "rc": rc, "timed_out": timed_out, "counts": counts(output, patterns)})


def _bounded_lines(text: str, *, prefix: str = "", limit: int = 5000, chars: int = 512 * 1024) -> list[str]:
    """The lines of ``text`` (those starting with ``prefix``, which is cut off), at most ``limit`` of them and
    ``chars`` characters in all: a report line must fit the sandbox's output cap."""
    found: list[str] = []
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        chars -= len(line)
        if len(found) >= limit or chars < 0:
            break
        found.append(line[len(prefix) :])
    return found


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(_LIMIT).decode("utf-8", "replace")
    except OSError:
        return ""


def _js(job: dict[str, Any]) -> None:
    """A JavaScript project job (``js_project``): each step (the replay, ``node --test`` per file, Jest or Vitest
    and Vitest's report) run as a child, nothing left running before the next step or before its output is
    read; what each step says (its own output, or a file the runner wrote, ``read``; the files in ``fresh`` and
    ``read`` are deleted before it starts), cut to the lines starting with ``prefix``, reported with its exit
    status; then the files of ``files`` (the recorded calls, the hooks' event codes)."""
    env = {**os.environ, **job["env"]}
    for step in job["steps"]:
        sweep()
        path = step.get("read") or ""
        for stale in [*step.get("fresh", []), *([path] if path else [])]:
            with contextlib.suppress(OSError):
                os.unlink(stale)  # nothing written before the runner ran (by an earlier step) is read as its report
        rc, output, timed_out = run(
            step["argv"], env={**env, **step.get("env", {})}, cwd=job["root"], timeout=step["timeout"],
            stderr=False, swept=True,
        )  # fmt: skip
        text = _read_file(path) if path else output if step.get("output") else ""
        lines = _bounded_lines(text, prefix=step.get("prefix", ""), limit=step.get("limit", 5000))
        report({"step": step["kind"], "index": step.get("index", 0), "rc": rc, "timed_out": timed_out, "lines": lines})
    for kind, path, limit in job["files"]:
        report({"step": kind, "lines": _bounded_lines(_read_file(path), limit=limit)})


def main() -> None:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as handle:
        job = json.load(handle)
    os.unlink(path)
    _STATE["key"] = bytes.fromhex(job.pop("key"))
    _undumpable()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a step's output file that is full means EFBIG, not death
    {"rust": _rust, "java": _java, "go": _go, "js": _js}[job["kind"]](job)
    report({"done": True})


if __name__ == "__main__":
    main()
