"""The VS Code extension's ``src/protocol.ts`` must be what ``scripts/gen_vscode_protocol.py`` writes from
:mod:`codeconductor.server.protocol`: this test fails when it is stale (fix: run
``python scripts/gen_vscode_protocol.py``), and checks that the server registers exactly the declared commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from codeconductor.server import protocol
from codeconductor.server.app import create_server
from codeconductor.server.features import COMMAND_HANDLERS, handler_of
from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


gen = load_script("gen_vscode_protocol")


def test_protocol_ts_is_generated_from_the_server() -> None:
    current = gen.PROTOCOL_TS.read_text(encoding="utf-8")
    assert current == gen.render(), "protocol.ts is stale: run `python scripts/gen_vscode_protocol.py`"


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "protocol.ts"
    stale.write_text(gen.render().replace('  cancel: "codeconductor.cancel",\n', ""), encoding="utf-8")
    assert gen.main(["--check", "--protocol-ts", str(stale)]) == 1
    assert gen.main(["--protocol-ts", str(stale)]) == 0  # regenerating repairs it
    assert gen.main(["--check", "--protocol-ts", str(stale)]) == 0
    assert 'cancel: "codeconductor.cancel"' in stale.read_text(encoding="utf-8")


def test_every_command_the_server_registers_is_declared() -> None:
    registered = set(create_server().protocol.fm.commands)
    assert registered == {c.value for c in protocol.Command}


def test_every_command_has_a_handler_that_imports() -> None:
    # Commands are registered by name and imported on first use: a wrong "module:function" would only fail then.
    assert set(COMMAND_HANDLERS) == set(protocol.Command)
    for command, target in COMMAND_HANDLERS.items():
        assert callable(handler_of(target)), command


def test_the_server_starts_without_the_engine() -> None:
    # Start-up (docs/benchmarks.md): answering `initialize` imports neither the engine nor pydantic.
    code = (
        "import sys; from codeconductor.server.app import create_server; create_server(); "
        "print(sorted(m for m in sys.modules if m.startswith(('codeconductor.ensemble', 'pydantic'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_every_declared_command_and_status_reaches_the_extension() -> None:
    ts = gen.render()
    for command in protocol.Command:
        assert f'"{command.value}"' in ts, command
    unions = " ".join(line for line in ts.splitlines() if line.startswith("export type"))
    for status in protocol.Status:
        assert f'"{status.value}"' in unions, f"status {status.value} is in no reply's union"


def test_engine_shapes_named_by_the_replies_exist_in_engine_ts() -> None:
    # protocol.ts imports them from ./engine: a missing one would only fail the extension's compile.
    ts = gen.render()
    imported = re.search(r'^import type \{ (.*) \} from "\./engine";$', ts, flags=re.MULTILINE)
    assert imported is not None
    assert set(imported.group(1).split(", ")) <= set(gen.engine_types())
    assert {"Result", "Finding", "FixOutcome", "TestGenOutcome", "ModelInfo"} <= set(imported.group(1).split(", "))


def test_reply_status_unions_are_typescript_unions_of_the_enum_values() -> None:
    ts = gen.render()
    assert 'export type GenerateStatus = "generated" | "noTests" | "failed" | "cancelled";' in ts, (
        "GenerateStatus changed: update this test with the server"
    )
    assert "  status?: RunStatus;" in ts
    assert "  start: LspPosition;" in ts  # a value type's required keys stay required
