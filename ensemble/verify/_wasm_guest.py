"""The program that runs inside the WebAssembly sandbox (CPython 3.12 for WASI under wasmtime): define the
candidate, evaluate each call, print each call's canonical value - never a verdict.

Stdlib only, no CodeConductor imports, never imported by the host: :mod:`codeconductor.ensemble.verify._wasm` sends
it as text, after the source of ``_worker.make_canonical`` and ``_worker._HOOK_SOURCE`` (one canonical form and one
audit hook for both backends), as ``/job/guest.py`` of a read-only directory that also holds ``job.marshal`` (the
code, the entry point and the call expressions: no expected value ever enters the guest).

Records. One line per record on stdout: ``CCW1 <key> <JSON>``. The key is 32 random hex characters the host makes
for each instance and hands over on stdin, which the guest reads once before the candidate is loaded; it is in no
file, argument or variable the candidate can reach (the strict audit hook refuses frames, the heap and tracing),
so a line the candidate prints cannot pass for a record. Everything used after the candidate is loaded (writing,
the canonical form, the JSON of a record) is bound first: patching builtins or ``json`` changes nothing reported.

Hostile. The shared audit hook reports what no code edit needs (``report``: a ``hostile`` record); here also the
creation of a socket (WASI has no sockets: the constructor fails before ``connect`` could be audited), a name
lookup (``create_connection``) and the start of a process (``subprocess`` refuses on WASI before its audit event):
the guest lets them reach an event the hook sees.
"""

from __future__ import annotations

# ruff: noqa: SIM105  (no contextlib: every import is start-up time of every job)
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _reach_the_audit_event(name: str, module: Any) -> None:
    """On WASI, ``subprocess`` refuses before its audit event and ``_socket`` has no ``getaddrinfo`` (so
    ``create_connection`` fails with AttributeError): let both reach the event the hook refuses and names."""
    if name == "subprocess":
        module._can_fork_exec = True
    elif name == "socket" and not hasattr(sys.modules.get("_socket"), "getaddrinfo"):
        audit = sys.audit

        def getaddrinfo(host: Any, port: Any, *rest: Any, **options: Any) -> Any:
            audit("socket.getaddrinfo", host, port, *rest)
            raise OSError("sandbox: no network")

        module.getaddrinfo = getaddrinfo


class _AuditFinder:
    """Imports ``subprocess`` and ``socket`` through :func:`_reach_the_audit_event`. Not imported up front: they
    are a third of the guest's start-up."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in ("subprocess", "socket"):
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util

            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader, run = spec.loader, spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _reach_the_audit_event(name, module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _guest_main() -> None:
    import marshal

    write, translate, to_text, memory, numbered = os.write, str.translate, str, memoryview, enumerate
    escapes = {**{c: f"\\u{c:04x}" for c in range(32)}, ord('"'): '\\"', ord("\\"): "\\\\"}
    key = os.read(0, 64).strip()
    tag = b"CCW1 " + key + b" "

    def quoted(text: str) -> str:
        return '"' + translate(text, escapes) + '"'

    def emit(body: str) -> None:
        data = memory(tag + body.encode("utf-8", "replace") + b"\n")
        while data:
            data = data[write(1, data) :]

    def call_record(index: int, ok: bool, text: str) -> None:
        field = '"value":' if ok else '"error":'
        emit(
            '{"t":"call","i":'
            + to_text(index)
            + ',"ok":'
            + ("true" if ok else "false")
            + ","
            + field
            + quoted(text)
            + "}"
        )

    def hostile(reason: str) -> None:
        emit('{"t":"hostile","reason":' + quoted(reason) + "}")

    with open("/job/job.marshal", "rb") as handle:
        job = marshal.loads(handle.read())  # plain data from the host (``json`` would cost a fifth of the start)
    start = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    code, entry, calls = str(job["code"]), job.get("entry_point"), [str(c) for c in job["calls"]][start:]
    del job
    canonical: Callable[[Any], str] = globals()["make_canonical"]()
    name_of, evaluate = type, eval

    class _Discard:
        """The candidate's ``print``: nowhere (its own ``os.write(1, ...)`` lines are not records)."""

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    sys.stdout = sys.stderr = _Discard()
    import types  # noqa: F401  (it reads a traceback's frame at import: before the hook refuses frames)

    sys.meta_path.insert(0, _AuditFinder())

    def wasi_hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.__new__":
            hostile("tried to open a network connection")
            raise PermissionError("sandbox: sockets are not allowed")

    sys.addaudithook(wasi_hook)
    globals()["_install_audit_hook"]("/tmp", True, hostile)
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": __builtins__}
    emit('{"t":"ready"}')
    try:
        exec(compile(code, "<candidate>", "exec"), namespace)
        if entry and not callable(namespace.get(entry)):
            raise NameError(f"{entry} is not defined")
    except BaseException as exc:
        emit('{"t":"load_error","error":' + quoted(name_of(exc).__name__[:100]) + "}")
        return
    del code
    emit('{"t":"loaded"}')
    for offset, expr in numbered(calls):
        try:
            ok, text = True, canonical(evaluate(expr, namespace))  # __repr__ is candidate code: under the deadline
        except BaseException as exc:
            ok, text = False, "?"
            try:
                text = name_of(exc).__name__[:100]
            except BaseException:
                pass
        call_record(start + offset, ok, text)
    emit('{"t":"done"}')


_guest_main()
