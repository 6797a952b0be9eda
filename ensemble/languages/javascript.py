"""JavaScript and TypeScript (and TSX): tree-sitter for syntax, functions and normalisation; node for execution.

Candidates run in the project's sandbox (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_program`) under node's
permission model where node has it: a small harness (``_harness.js``) defines the candidate in a fresh ``vm``
context, evaluates each call expression and prints one line per call - a per-job key, then the call's canonical
JSON value - read back here with bounded parsing (:func:`read_harness_output`) into the same
:class:`~codeconductor.ensemble.verify.sandbox.CallOutcome` objects as Python's path. As in Python's path, expected values never
enter the sandbox: every comparison is made here (:func:`~codeconductor.ensemble.verify.compare.same_json_value`).
TypeScript is turned into JavaScript first by esbuild (type stripping only; esbuild parses, it never runs the
code), found at run time: ``$CODECONDUCTOR_ESBUILD``, the copy ``scripts/setup.sh`` installs under ``tools/node``,
or ``esbuild`` on PATH. Without node (or, for TypeScript, without esbuild) ``can_execute`` is False.

A method selected in its class (and an answer for it) does not parse on its own: it is read inside a class body
of methods only (:meth:`JavaScript._member`), so it parses, normalises and names its function like any code, and
in a project it is put in place of the method (``verify/js_project.py``). A candidate that tries what no function
needs (a connection, a process, a write outside the scratch, node's internal bindings) is named by the harness
(one ``{hostile: CODE}`` line before the refusal; :data:`HOSTILE_REASONS` gives the words the user reads).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import SandboxError
from ._base import Example, Extracted, Function, balanced_calls
from ._treesitter import TreeSitterLanguage

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..verify.sandbox import CallOutcome, CallSpec, Sandbox

__all__ = [
    "HOSTILE_REASONS",
    "JavaScript",
    "TypeScript",
    "TypeScriptReact",
    "esbuild_path",
    "hostile_reason",
    "node_path",
    "read_harness_output",
]

_HARNESS = Path(__file__).with_name("_harness.js").read_text(encoding="utf-8")
_NODE_MEMORY_MB = 2048  # V8 reserves ~1 GiB of address space up front; the heap itself is capped below
_NODE_HEAP_MB = 256
_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "node" / "node_modules" / "esbuild" / "bin" / "esbuild"

_KEEP_TOP_LEVEL = frozenset(
    {"function_declaration", "generator_function_declaration", "lexical_declaration", "variable_declaration",
     "class_declaration", "comment", "type_alias_declaration", "interface_declaration", "enum_declaration",
     "abstract_class_declaration", "function_signature", "ambient_declaration", "empty_statement"}
)  # fmt: skip
_JS_GLOBALS = frozenset(
    {"Math", "JSON", "Object", "Array", "String", "Number", "Boolean", "Set", "Map", "WeakMap", "WeakSet",
     "Symbol", "BigInt", "Date", "RegExp", "Error", "TypeError", "RangeError", "Infinity", "NaN", "undefined",
     "parseInt", "parseFloat", "isNaN", "isFinite", "console", "Promise", "Reflect", "Proxy", "globalThis",
     "arguments", "require", "module", "exports", "process"}
)  # fmt: skip


_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
_MEMBER_OPEN = "class __cc_member__ {\n"
_MEMBER_CLOSE = "\n}\n"
_MEMBER_TYPES = frozenset(
    {"method_definition", "comment", "method_signature", "abstract_method_signature", "decorator"}
)


@functools.lru_cache(maxsize=1)
def node_path() -> str | None:
    """The absolute path of ``node``, or None when it is not installed."""
    found = shutil.which("node")
    return os.path.realpath(found) if found else None


@functools.lru_cache(maxsize=1)
def esbuild_path() -> str | None:
    """The esbuild binary: ``$CODECONDUCTOR_ESBUILD``, ``tools/node`` (installed by setup), or PATH."""
    override = os.environ.get("CODECONDUCTOR_ESBUILD")
    for candidate in (override, str(_TOOLS), shutil.which("esbuild")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return None


@functools.lru_cache(maxsize=512)
def _strip_types(code: str, loader: str) -> str:
    """TypeScript to JavaScript with esbuild (types removed, nothing else rewritten). Raises SandboxError when
    esbuild is missing or rejects the code."""
    binary = esbuild_path()
    if binary is None:
        raise SandboxError("TypeScript: esbuild is not installed (run scripts/setup.sh)")
    try:
        done = subprocess.run(
            [binary, f"--loader={loader}", "--log-level=error", "--target=es2022"],
            input=code,
            capture_output=True,
            text=True,
            timeout=20,
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"TypeScript: esbuild failed: {type(exc).__name__}") from exc
    if done.returncode != 0:
        raise SandboxError("TypeScript: esbuild rejected the code")
    return done.stdout


class JavaScript(TreeSitterLanguage):
    name = "javascript"
    ids: ClassVar[tuple[str, ...]] = ("javascript", "js", "javascriptreact", "jsx", "node", "mjs", "cjs")
    extensions: ClassVar[tuple[str, ...]] = (".js", ".mjs", ".cjs", ".jsx")
    grammar = "javascript"
    function_types = frozenset(
        {"function_declaration", "generator_function_declaration", "method_definition", "arrow_function",
         "function_expression", "function"}
    )  # fmt: skip
    identifier_types = frozenset({"identifier", "shorthand_property_identifier"})
    globals = _JS_GLOBALS
    code_markers = frozenset(
        {"lexical_declaration", "variable_declaration", "class_declaration", "call_expression",
         "assignment_expression", "augmented_assignment_expression", "return_statement", "if_statement",
         "for_statement", "for_in_statement", "while_statement", "update_expression", "export_statement",
         "import_statement", "statement_block"}
    )  # fmt: skip
    #: esbuild loader for the code before it runs (None: run as it is).
    loader: ClassVar[str | None] = None

    # -- class members: a method selected in its class (and an answer for it) is code of the class's body --------
    def _member(self, code: str) -> str | None:
        """``code`` inside a class, when it does not parse on its own but does there as methods only (what a
        method selected in its class is); None otherwise. Prose never passes: a class body of bare words would
        be fields, not methods."""
        if not code.strip() or TreeSitterLanguage.parses(self, code):
            return None
        wrapped = _MEMBER_OPEN + code.rstrip("\n") + _MEMBER_CLOSE
        root = self.tree(wrapped).root_node
        if root.has_error or len(root.named_children) != 1:
            return None
        body = root.named_children[0].child_by_field_name("body")
        members = [n.type for n in body.named_children] if body is not None else []
        if "method_definition" not in members or any(m not in _MEMBER_TYPES for m in members):
            return None
        return wrapped

    def parses(self, code: str) -> bool:
        return super().parses(code) or self._member(code) is not None

    def is_code(self, text: str) -> bool:
        return super().is_code(self._member(text) or text)

    def normalize(self, code: str) -> str:
        return super().normalize(self._member(code) or code)

    def functions(self, code: str) -> list[Function]:
        wrapped = self._member(code)
        if wrapped is None:
            return super().functions(code)
        shift = _MEMBER_OPEN.count("\n")
        return [
            dataclasses.replace(f, start_line=f.start_line - shift, end_line=f.end_line - shift)
            for f in super().functions(wrapped)
        ]

    def _function_name(self, node: Node) -> str | None:
        name = node.child_by_field_name("name")
        if name is None and node.type in ("arrow_function", "function_expression", "function"):
            parent = node.parent
            if parent is not None and parent.type in ("variable_declarator", "assignment_expression", "pair"):
                name = parent.child_by_field_name("name") or parent.child_by_field_name("left")
                name = name or parent.child_by_field_name("key")
        if name is None or name.text is None or name.type not in ("identifier", "property_identifier"):
            return None
        return name.text.decode()

    def _function_params(self, node: Node) -> tuple[str, ...]:
        single = node.child_by_field_name("parameter")
        if single is not None and single.text is not None:
            return (single.text.decode(),)
        return super()._function_params(node)

    def _function_span(self, node: Node) -> Node:
        """``const f = (x) => {...};``: the whole declaration, not only the arrow function."""
        if node.type in ("arrow_function", "function_expression", "function"):
            parent = node.parent
            if parent is not None and parent.type == "variable_declarator" and parent.parent is not None:
                return parent.parent
        return node

    def is_expression(self, text: str) -> bool:
        if not text.strip():
            return False
        root = self.tree(f"({text});").root_node
        return not root.has_error and len(root.named_children) == 1

    def examples(self, code: str, entry_point: str) -> list[Example]:
        """Comment examples, with what a reader means where JavaScript would read it otherwise: ``(2, 3)`` (a
        pair written as a tuple, common in comments) is a comma expression in JavaScript, so it becomes
        ``[2, 3]``, in calls and expected values; a bare ``True`` / ``False`` / ``None`` becomes ``true`` /
        ``false`` / ``null``."""
        out = []
        for example in super().examples(code, entry_point):
            expected = _PY_LITERALS.get(example.expected, example.expected)
            out.append(Example(self._tuples_as_arrays(example.call), self._tuples_as_arrays(expected)))
        return out

    def _tuples_as_arrays(self, text: str) -> str:
        data = text.encode("utf-8")
        tuples = [
            n
            for n in _descendants(self.tree(f"{text};").root_node)
            if n.type == "parenthesized_expression"
            and n.named_children
            and n.named_children[0].type == "sequence_expression"
        ]
        for node in sorted(tuples, key=lambda n: -n.start_byte):  # innermost/last first keeps offsets valid
            data = (
                data[: node.start_byte]
                + b"["
                + data[node.start_byte + 1 : node.end_byte - 1]
                + b"]"
                + data[node.end_byte :]
            )
        return data.decode("utf-8", "replace")

    def _clean(self, code: str, entry_point: str | None, notes: list[str]) -> str:
        """Keep the declarations; drop demo calls, prints, ``module.exports`` and imports around them, and
        unwrap ``export`` (the harness runs a script, not a module). Class members stay as they are."""
        if self._member(code) is not None:
            return code
        data = code.encode("utf-8")
        root = self.tree(code).root_node
        kept: list[str] = []
        dropped = False
        for child in root.named_children:
            node = child
            if child.type == "export_statement":
                inner = child.child_by_field_name("declaration")
                if inner is None:
                    dropped = True
                    continue
                node = inner
            if node.type in _KEEP_TOP_LEVEL:
                kept.append(data[node.start_byte : node.end_byte].decode("utf-8", "replace"))
            else:
                dropped = True
        if not dropped and all(c.type != "export_statement" for c in root.named_children):
            return code
        notes.append("scaffolding removed")
        return "\n\n".join(kept) + "\n"

    def generate_calls(
        self, code: str, entry_point: str, examples: Sequence[Example], limit: int = 8, *, wide: bool = False
    ) -> list[str]:
        """Variations of the examples' calls: each argument in turn changed (arrays reversed, shortened and
        emptied; numbers shifted; strings reversed), so candidates that agree on the examples may still differ.
        There is no wider net here: ``wide`` changes nothing."""
        calls: list[str] = []
        seen = {e.call for e in examples}
        for example in examples:
            for variant in self._variants(example.call, entry_point):
                if variant not in seen and self.is_expression(variant):
                    seen.add(variant)
                    calls.append(variant)
                    if len(calls) >= limit:
                        return calls
        return calls

    def _variants(self, call: str, entry_point: str) -> list[str]:
        spans = balanced_calls(call, entry_point)
        if not spans:
            return []
        root = self.tree(call).root_node
        args = next((n for n in _descendants(root) if n.type == "arguments"), None)
        if args is None:
            return []
        data = call.encode("utf-8")
        out = []
        for arg in args.named_children:
            text = data[arg.start_byte : arg.end_byte].decode("utf-8", "replace")
            for changed in _mutations(arg, text):
                out.append((data[: arg.start_byte] + changed.encode() + data[arg.end_byte :]).decode())
        return out

    # -- execution ------------------------------------------------------------------------------------------
    @property
    def can_execute(self) -> bool:
        return node_path() is not None and (self.loader is None or esbuild_path() is not None)

    @property
    def runtime_note(self) -> str:
        if node_path() is None:
            return f"{self.name}: not executed (node is not installed)"
        if self.loader is not None and esbuild_path() is None:
            return f"{self.name}: not executed (esbuild is not installed: run scripts/setup.sh)"
        return ""

    def runnable(self, code: str) -> str:
        """The JavaScript that runs for ``code`` on its own (the harness runs a script, not a module: ``export``
        unwrapped; TypeScript: types stripped by esbuild)."""
        code = self._unexported(code)
        return _strip_types(code, self.loader) if self.loader else code

    def extract(self, raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
        """Also keeps ``export`` on the function when the user's code exports it: the answer stands in for the
        selection in the module, where the other modules import it."""
        found = super().extract(raw, context=context, entry_point=entry_point)
        entry = entry_point or (self.entry_point(context) if context else None)
        if not found.parseable or entry is None or not self._exports(context, entry):
            return found
        function = next(
            (n for n in self._top_level_functions(found.code) if self._name_of(n, found.code) == entry), None
        )
        if function is None:
            return found
        data = found.code.encode("utf-8")
        code = (data[: function.start_byte] + b"export " + data[function.start_byte :]).decode("utf-8")
        if not self.parses(code):
            return found
        return Extracted(code, self.name, True, (*found.notes, "export kept"), norm=self.normalize(code))

    def _name_of(self, node: Node, code: str) -> str | None:
        name = node.child_by_field_name("name")
        return code.encode("utf-8")[name.start_byte : name.end_byte].decode("utf-8") if name is not None else None

    def _top_level_functions(self, code: str) -> list[Node]:
        kinds = ("function_declaration", "generator_function_declaration")
        return [n for n in self.tree(code).root_node.named_children if n.type in kinds]

    def _exports(self, code: str, name: str) -> bool:
        """Whether ``code`` exports the function ``name`` where it declares it (``export function name``)."""
        for child in self.tree(code).root_node.named_children:
            inner = child.child_by_field_name("declaration") if child.type == "export_statement" else None
            if inner is not None and inner.type.endswith("function_declaration") and self._name_of(inner, code) == name:
                return True
        return False

    def _unexported(self, code: str) -> str:
        """``code`` with each ``export <declaration>`` reduced to the declaration, other exports dropped."""
        root = self.tree(code).root_node
        exports = [c for c in root.named_children if c.type == "export_statement"]
        if not exports:
            return code
        data = code.encode("utf-8")
        for child in reversed(exports):
            inner = child.child_by_field_name("declaration")
            kept = data[inner.start_byte : inner.end_byte] if inner is not None else b""
            data = data[: child.start_byte] + kept + data[child.end_byte :]
        return data.decode("utf-8", "replace")

    def run_calls(
        self,
        sandbox: Sandbox,
        code: str,
        entry_point: str,
        calls: Sequence[str | CallSpec],
        timeout_s: float = 5.0,
        *,
        call_timeout_s: float = 1.0,
    ) -> list[CallOutcome]:
        """Values out, verdicts here: the harness gets the call expressions only and reports each call's
        canonical JSON; whether it matches an expected value is decided in this process
        (:func:`~codeconductor.ensemble.verify.compare.same_json_value`), against the expected value read as JSON here or, when it
        is not JSON (``'a'``, ``{a: 1}``, ``new Set([1])``), evaluated by the same harness in a sandbox of its own
        with no candidate in it."""
        from ..verify.compare import same_json_value
        from ..verify.sandbox import CallOutcome, CallSpec

        node = node_path()
        if node is None:
            raise SandboxError(self.runtime_note)
        specs = [c if isinstance(c, CallSpec) else CallSpec(c) for c in calls]
        try:
            script = self.runnable(code)
        except SandboxError:
            return [CallOutcome(False, error="load:SyntaxError", matches=False if s.expected else None) for s in specs]
        outcomes = _run_harness(
            sandbox,
            node,
            script,
            entry_point,
            [s.expr for s in specs],
            timeout_s=timeout_s,
            call_timeout_s=call_timeout_s,
        )
        wanted = [s.expected for s in specs if s.expected is not None]
        expected = _expected_values(sandbox, node, wanted, timeout_s) if wanted else {}
        out = []
        for spec, outcome in zip(specs, outcomes, strict=True):
            matches: bool | None = None
            if spec.expected is not None:
                want = expected.get(spec.expected)
                matches = outcome.ok and outcome.value is not None and want is not None
                matches = matches and same_json_value(str(outcome.value), str(want))
            out.append(CallOutcome(outcome.ok, outcome.value, outcome.error, matches))
        return out


class TypeScript(JavaScript):
    name = "typescript"
    ids: ClassVar[tuple[str, ...]] = ("typescript", "ts", "mts", "cts")
    extensions: ClassVar[tuple[str, ...]] = (".ts", ".mts", ".cts")
    grammar = "typescript"
    loader = "ts"

    def is_expression(self, text: str) -> bool:
        return JAVASCRIPT.is_expression(text) or super().is_expression(text)


class TypeScriptReact(TypeScript):
    name = "typescriptreact"
    ids: ClassVar[tuple[str, ...]] = ("typescriptreact", "tsx")
    extensions: ClassVar[tuple[str, ...]] = (".tsx",)
    grammar = "tsx"
    loader = "tsx"


JAVASCRIPT = JavaScript()


# -- running the harness (values out) ---------------------------------------------------------------------
_KEY_BYTES = 16
_LINE_CHARS = 16384  # one harness line: a value is cut at 2000 characters, then JSON-escaped once more
_EXPECTED_CACHE_SIZE = 512
_RUN_ERRORS = frozenset({"Timeout", "Forged", "Malformed", "OutputLimit"})
_expected_cache: dict[str, str | None] = {}
_expected_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _permission_flags() -> tuple[str, ...]:
    """node's permission model, where this node has it (20+): the harness may read its two files and nothing
    else, and may not start processes or workers, open an inspector session or reach internal bindings."""
    node = node_path()
    if node is None:
        return ()
    for flag in ("--permission", "--experimental-permission"):
        try:
            done = subprocess.run(
                [node, flag, "--allow-fs-read=*", "--no-warnings", "-e", "0"],
                capture_output=True,
                timeout=20,
                env={"PATH": "/usr/bin:/bin"},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ()
        if done.returncode == 0:
            return (flag, "--allow-fs-read=harness.js", "--allow-fs-read=job.json", "--no-warnings")
    return ()


def _run_harness(
    sandbox: Sandbox,
    node: str,
    script: str,
    entry_point: str,
    exprs: Sequence[str],
    *,
    timeout_s: float,
    call_timeout_s: float,
) -> list[CallOutcome]:
    """Run ``exprs`` against ``script`` in the sandbox; one outcome per call, ``matches`` left unset."""
    key = secrets.token_hex(_KEY_BYTES)
    job = {"code": script, "entry": entry_point, "calls": list(exprs), "callTimeoutMs": int(call_timeout_s * 1000)}
    argv = [node, *_permission_flags(), f"--max-old-space-size={_NODE_HEAP_MB}", "--stack-size=2048", "harness.js"]
    outcome = sandbox.run_program(
        {"harness.js": _HARNESS, "job.json": json.dumps(job)},
        [*argv, key],
        timeout_s,
        memory_mb=max(_NODE_MEMORY_MB, sandbox.memory_mb),
    )
    if outcome.hostile:  # seccomp killed node: named before anything it printed is read
        from ..verify.sandbox import HOSTILE_ERROR, CallOutcome

        return [CallOutcome(False, error=HOSTILE_ERROR + outcome.hostile) for _ in exprs]
    why = "Timeout" if outcome.timed_out else f"Killed:{outcome.exit_code}"
    return read_harness_output(outcome.stdout, key, len(exprs), why)


def read_harness_output(stdout: str, key: str, count: int, why: str) -> list[CallOutcome]:
    """The outcomes of ``count`` calls from the harness's stdout, read with bounded, non-recursive parsing.

    A line the harness wrote starts with ``key`` and a space. A line without the key (a candidate that got hold
    of stdout), a call reported twice or out of order, or a line after the last call fails every call
    (``Forged``). A keyed line that does not parse or has the wrong shape fails its call (``Malformed``) and ends
    the reading; calls not reported fail with ``why`` (the run's end: ``Timeout``, ``Killed:<code>``), or
    ``OutputLimit`` when the output was cut at the sandbox's cap. Never raises."""
    from ..verify.bounded import read_json
    from ..verify.sandbox import HOSTILE_ERROR, CallOutcome

    def failed(error: str, n: int = count) -> list[CallOutcome]:
        return [CallOutcome(False, error=error) for _ in range(n)]

    prefix = key + " "
    outcomes: list[CallOutcome] = []
    lines = stdout.split("\n")
    hostile = hostile_reason(lines, prefix)
    if hostile is not None:  # what it tried decides, whatever values it reported
        return failed(HOSTILE_ERROR + hostile)
    for index, line in enumerate(lines):
        if not line and index == len(lines) - 1:
            break  # the newline ending the last line
        if line == "[output truncated]" and index == len(lines) - 1:
            why = "OutputLimit"
            break
        if not line.startswith(prefix):
            return failed("Forged")
        try:
            frame = read_json(line[len(prefix) :], max_depth=2, max_chars=_LINE_CHARS)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            outcomes.append(CallOutcome(False, error="Malformed"))
            break
        if "load_error" in frame:
            error = frame["load_error"]
            if outcomes or any(lines[index + 1 :]):
                return failed("Forged")
            return failed(f"load:{error[:100]}" if isinstance(error, str) else "Malformed")
        if frame.get("i") != len(outcomes) or len(outcomes) >= count:
            return failed("Forged")
        ok, value, error = frame.get("ok"), frame.get("value"), frame.get("error")
        if ok is True and isinstance(value, str) and len(value) <= 2100:
            outcomes.append(CallOutcome(True, value=value))
        elif ok is False and isinstance(error, str) and len(error) <= 100:
            outcomes.append(CallOutcome(False, error=error or "Error"))
        else:
            outcomes.append(CallOutcome(False, error="Malformed"))
            break
    return outcomes[:count] + failed(why, count - len(outcomes))


# What the harness and the project's test processes report as tried (codes written in the sandbox), in the words
# the user reads (the Python candidates' words for the same acts: ``verify._worker._HOSTILE``). A code not listed
# here is no reason of the candidate's own making: it reads as the general one.
HOSTILE_REASONS = {
    "network": "tried to open a network connection",
    "process": "tried to start a process",
    "write": "tried to write outside its scratch directory",
    "binding": "tried to reach node's internal bindings",
    "syscall": "made a system call no code edit needs (mounting, namespaces, tracing, kernel keys or modules)",
}
HOSTILE_GENERAL = "tried something no code edit needs"


def hostile_reason(lines: Sequence[str], prefix: str) -> str | None:
    """The reason for the first ``{"hostile": CODE}`` line that starts with ``prefix`` (parsed bounded), in
    :data:`HOSTILE_REASONS`' words; None when there is none."""
    from ..verify.bounded import read_json

    for line in lines[:100000]:
        if not line.startswith(prefix) or '"hostile"' not in line[:64]:
            continue
        try:
            frame = read_json(line[len(prefix) :], max_depth=2, max_chars=256)
        except ValueError:
            continue
        if isinstance(frame, dict) and "hostile" in frame:
            return HOSTILE_REASONS.get(str(frame["hostile"]), HOSTILE_GENERAL)
    return None


def _expected_values(sandbox: Sandbox, node: str, exprs: Sequence[str], timeout_s: float) -> dict[str, str | None]:
    """Each expected expression's canonical JSON (None: it could not be evaluated). JSON text is its own value;
    anything else is evaluated by the harness in a sandbox with no candidate (cached: the same examples are
    compared for every candidate of a request)."""
    from ..verify.bounded import read_json

    out: dict[str, str | None] = {}
    missing: list[str] = []
    for expr in dict.fromkeys(exprs):
        try:
            read_json(expr, max_depth=32, max_chars=_LINE_CHARS)
        except ValueError:
            with _expected_lock:
                if expr in _expected_cache:
                    out[expr] = _expected_cache[expr]
                else:
                    missing.append(expr)
        else:
            out[expr] = expr
    if missing:
        results = _run_harness(sandbox, node, "", "", missing, timeout_s=timeout_s, call_timeout_s=1.0)
        # An expression's own error (ReferenceError...) is its value; a run that did not finish properly is not.
        ended_early = any(r.error in _RUN_ERRORS or str(r.error).startswith("Killed:") for r in results)
        with _expected_lock:
            for expr, result in zip(missing, results, strict=True):
                out[expr] = result.value if result.ok else None
                if not ended_early:
                    _expected_cache[expr] = out[expr]
            while len(_expected_cache) > _EXPECTED_CACHE_SIZE:
                _expected_cache.pop(next(iter(_expected_cache)))
    return out


def _descendants(node: Node) -> list[Node]:
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(current.children))
    return out


def _mutations(arg: Node, text: str) -> list[str]:
    if arg.type == "array":
        items = [c.text.decode("utf-8", "replace") for c in arg.named_children if c.text is not None]
        out = ["[]"]
        if len(items) > 1:
            out += ["[" + ", ".join(reversed(items)) + "]", "[" + ", ".join(items[:-1]) + "]"]
        return out
    if arg.type == "number":
        try:
            value = float(text)
        except ValueError:
            return []
        if value.is_integer():
            return [str(int(value) + 1), str(int(value) * 2 + 3), "0"]
        return [repr(value + 1.5), repr(-value)]
    if arg.type == "unary_expression" and text.startswith("-") and text[1:].strip().isdigit():
        return [text[1:].strip()]
    if arg.type == "string" and len(text) >= 2:
        inner = text[1:-1]
        if "\\" in inner:
            return []
        quote = text[0]
        return [quote + inner[::-1] + quote, quote + inner.upper() + quote, quote + quote]
    return []
