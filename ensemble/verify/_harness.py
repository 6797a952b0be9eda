"""The harness of a compiled-language project job (Rust, Java), run INSIDE the sandbox by the server's own
interpreter (``python -I _harness.py JOB``; standard library only, nothing of this package is imported).

Why a harness and not a shell script: the program's stdout is a file in the scratch (``/tmp/.stdout``) that the
code under test, running as the same uid, can read and rewrite, and a shell script's nonce sits in a file it can
read. So the harness

* reads the job (a JSON file in the scratch holding a per-job secret key) and deletes it before anything of the
  user's or a candidate's runs, and makes itself non-dumpable (``PR_SET_DUMPABLE`` 0: no ``/proc/PID/mem``,
  ``environ`` or ``fd`` of it can be opened by the code under test; tracing is refused by the seccomp filter);
* runs every step (the build, each test) as a child of its own with stdin ``/dev/null`` and stdout and stderr
  going to a file it has already unlinked, and reads the child's exit status from ``waitpid``;
* reports one line per finding: JSON, a tab, and an HMAC-SHA256 of the JSON under the secret key. The parent
  keeps only lines whose MAC is right, so code under test can delete or duplicate report lines (an error: a
  test reported twice or never counts as not passed) but never write one.

What a test's verdict rests on is the language runner's business (``rust_project``, ``java_project``); the
harness counts, in each step's output, the lines matching patterns the parent gives, and the exit status.
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


def run(argv: list[str], *, env: dict[str, str], cwd: str, timeout: float) -> tuple[int, str, bool]:
    """Run ``argv``; its exit status (negative: a signal), what it printed (stdout and stderr together, capped),
    and whether it ran out of time (then its whole process group is killed)."""
    name = f"/tmp/.cc-out-{os.urandom(8).hex()}"
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(name)  # nobody but this process and the child reach it by path
    timed_out = False
    try:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, cwd=cwd, env=env, start_new_session=True
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
    except OSError as exc:
        os.close(fd)
        return 127, f"cannot run {argv[0]}: {exc}", False
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, _LIMIT)
    os.close(fd)
    return rc, data.decode("utf-8", "replace"), timed_out


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
    for test in job["tests"]:
        exe = executables.get(test["target"])
        if exe is None:
            report({"test": test["id"], "rc": 127, "counts": {}, "why": "no test binary"})
            continue
        argv = [exe, "--exact", test["name"], "--test-threads=1"]
        rc, output, timed_out = run(argv, env=env, cwd=os.path.join(work, job["package"]), timeout=job["per_test"])
        report({"test": test["id"], "rc": rc, "timed_out": timed_out, "counts": counts(output, test["patterns"])})
    if job["doc_lines"]:
        rc, output, _ = run([*cargo, "--doc", "--", "--list"], env=env, cwd=work, timeout=job["build_timeout"])
        wanted = {int(k): v for k, v in job["doc_lines"].items()}
        prefix = re.escape(job["doc_file"]) + r" - .*? \(line (\d+)\)(?: - compile(?: fail)?)?"
        seen: set[str] = set()
        for found in re.finditer(rf"^({prefix}): test$", output, re.M):
            name, at = found.group(1), int(found.group(2))
            if at not in wanted or wanted[at] in seen:
                continue
            seen.add(wanted[at])
            rc, out, timed_out = run(
                [*cargo, "--doc", "--", name, "--test-threads=1"],  # rustdoc's --exact matches no doc test
                env=env,
                cwd=work,
                timeout=job["build_timeout"],
            )
            patterns = {v: rf"^test {re.escape(name)} \.\.\. {v}$" for v in ("ok", "FAILED", "ignored")}
            report({"test": wanted[at], "rc": rc, "timed_out": timed_out, "counts": counts(out, patterns)})


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
    for test in job["tests"]:
        argv = [job["java"], *job["jvm"], "-ea", "-cp", classpath, *test["argv"]]
        rc, output, timed_out = run(argv, env=env, cwd=job["root"], timeout=job["per_test"])
        record = {"test": test["id"], "rc": rc, "timed_out": timed_out, "counts": counts(output, test["patterns"])}
        report({**record, "exit_only": bool(test.get("exit_only"))})


def main() -> None:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as handle:
        job = json.load(handle)
    os.unlink(path)
    _STATE["key"] = bytes.fromhex(job.pop("key"))
    _undumpable()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a step's output file that is full means EFBIG, not death
    {"rust": _rust, "java": _java}[job["kind"]](job)
    report({"done": True})


if __name__ == "__main__":
    main()
