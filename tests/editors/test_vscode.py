"""End to end in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) in headless chromium, with the packaged
CodeConductor extension (.vsix) talking to the real language server (``python -I -u -m codeconductor.server``, the interpreter a
virtual environment that imports this checkout: :mod:`tests.support.checkout_python`) and real llama.cpp servers
on loopback. The first test's workspace has its own ``server.py``, ``server/``, ``ensemble/`` and ``codeconductor/``
(:mod:`tests.support.shadow`): the extension must start our server anyway.

What a user sees is asserted from the editor's own DOM (status bar, code action menu, editor text, hover) by the
node playwright driver ``tests/editors/vscode/drive.cjs``; a screenshot of each step goes to
``test-results/vscode/<test>/``. ``scripts/install_code_server.sh`` installs code-server and chromium on first use.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from codeconductor.ensemble.history import History
from tests.conftest import LlamaServerFactory
from tests.editors.vscode.harness import (
    ROOT,
    CodeServer,
    HarnessError,
    build_vsix,
    code_server_env,
    install_code_server,
    start_code_server,
    user_settings,
)
from tests.editors.vscode.harness import drive as _drive
from tests.support.checkout_python import checkout_venv
from tests.support.fault_server import FaultServer
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.llama_server import LlamaServer
from tests.support.shadow import write_shadowing_modules

pytestmark = [pytest.mark.editor, pytest.mark.timeout(900)]

SHOTS = ROOT / "test-results" / "vscode"
# Tests about progress, hovers and the fix loop apply edits at once; the preview has its own test (the last one).
APPLY_AT_ONCE = {"codeconductor.apply": "auto", "codeconductor.autoApplyConfidence": 0.0}


@pytest.fixture(scope="session")
def code_server_bin() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    try:
        return install_code_server()
    except HarnessError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The interpreter the extension is configured with (codeconductor.python); it runs this checkout under -I."""
    return str(checkout_venv(tmp_path_factory.mktemp("checkout-venv")) / "python")


@pytest.fixture(scope="session")
def vsix(code_server_bin: Path) -> Path:
    try:
        return build_vsix()
    except HarnessError as exc:
        pytest.fail(str(exc))


def drive(cs: CodeServer, shots: Path, scenario: str, **cfg: Any) -> dict[str, Any]:
    try:
        return _drive(cs, shots, scenario, **cfg)
    except HarnessError as exc:
        pytest.fail(str(exc))


def test_extension_activates_and_counts_models(
    code_server_bin: Path, vsix: Path, python: str, tiny_server: LlamaServer, tmp_path: Path
) -> None:
    # The workspace is a project with its own server.py, server/, ensemble/ and codeconductor/ (each prints and
    # exits if imported), opened as the first folder: the extension's probe and server run isolated from it.
    write_shadowing_modules(tmp_path / "workspace")
    settings = user_settings(python, [tiny_server.url], {})
    with start_code_server(code_server_bin, vsix, tmp_path, settings, code_server_env(pythonpath=True)) as cs:
        obs = drive(cs, SHOTS / "activation", "smoke", expectStatus="⚖ 1 model")
        log = cs.extension_log()
    assert "⚖ 1 model" in obs["statusBar"]
    assert (SHOTS / "activation" / "01-activated.png").is_file()
    assert f"starting: {python} -I -u -m codeconductor.server" in log  # the configured interpreter, isolated
    assert "ok, CodeConductor " in log  # the handshake answered
    assert "SHADOW" not in log
    assert not obs["errors"], obs["errors"]


def test_missing_server_package_is_reported_with_a_fix(code_server_bin: Path, vsix: Path, tmp_path: Path) -> None:
    # An interpreter that exists but lacks the package: the user must be told, with an install button.
    bare = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    settings = user_settings(bare, ["http://127.0.0.1:9"], {})
    with start_code_server(code_server_bin, vsix, tmp_path, settings, code_server_env(pythonpath=False)) as cs:
        obs = drive(
            cs, SHOTS / "missing-package", "smoke", expectStatus="CodeConductor", waitNotification="not installed"
        )
    text = " ".join(obs["notifications"])
    assert f"the server is not installed for {bare}" in text
    assert "Install in Terminal" in text
    assert "Set Python Path" in text


@pytest.mark.slow
def test_code_action_progress_edit_and_disagreement_hover(
    code_server_bin: Path,
    vsix: Path,
    python: str,
    smollm2_server: LlamaServer,
    llama_server_factory: LlamaServerFactory,
    *,
    tmp_path: Path,
) -> None:
    # Two real models that disagree: SmolLM2 writes the fix; a tiny random model answers noise.
    tiny = llama_server_factory(write_tiny_gguf(tmp_path / "noise.gguf", seed=7), alias="noise", n_ctx=2048)
    settings = user_settings(
        python,
        [smollm2_server.url, tiny.url],
        {"codeconductor.maxTokens": 96, "codeconductor.timeoutS": 240, **APPLY_AT_ONCE},
    )
    # The project's own test is what checks a fix of a function without examples: without it the pick would be
    # "not checked" and previewed, never applied at once (whatever autoApplyConfidence says).
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "test_sample.py").write_text(
        "from sample import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n", encoding="utf-8"
    )
    shots = SHOTS / "code-action"
    with start_code_server(code_server_bin, vsix, tmp_path, settings, code_server_env(pythonpath=True)) as cs:
        obs = drive(cs, shots, "full", expectStatus="⚖ 2 models", selectLines=[1, 3], timeoutMs=120000)
    assert "Fix with ensemble" in obs["actions"]
    assert "Review with ensemble" in obs["actions"]
    assert obs.get("progress"), obs["errors"]
    assert "return a - b" in obs["before"]
    assert obs["after"] != obs["before"]  # the consensus edit was applied in the editor
    hover = obs["hover"]
    assert "Confidence" in hover
    for name in ("smollm2", "noise"):
        assert name in hover  # one row per model in the hover's table
    assert "of 2 models agree" in hover
    # Show Last Result renders the lightbulb's run as a preview with the per-model table.
    assert "Confidence" in obs["lastResult"]
    assert "smollm2" in obs["lastResult"]
    assert "noise" in obs["lastResult"]
    for step in ("02-code-action-menu", "03-progress", "04-applied-edit", "05-disagreement-hover", "06-last-result"):
        assert (shots / f"{step}.png").is_file()


def test_live_settings_and_ask_preview(
    code_server_bin: Path, vsix: Path, python: str, llama_server_factory: LlamaServerFactory, tmp_path: Path
) -> None:
    first = llama_server_factory(alias="tiny-a", n_ctx=2048)
    second = llama_server_factory(write_tiny_gguf(tmp_path / "b.gguf", seed=3), alias="tiny-b", n_ctx=2048)
    settings = user_settings(python, [first.url], {"codeconductor.maxTokens": 24})
    changed = {**settings, "codeconductor.endpoints": [{"url": first.url}, {"url": second.url}]}
    with start_code_server(code_server_bin, vsix, tmp_path, settings, code_server_env(pythonpath=True)) as cs:
        path = cs.user_data / "User" / "settings.json"
        obs = drive(
            cs,
            SHOTS / "ask",
            "ask",
            expectStatus="⚖ 1 model",
            newSettings={"path": str(path), "content": changed, "expectStatus": "⚖ 2 models"},
            selectLines=[1, 3],
            question="Does add() really add?",
        )
        log = cs.extension_log()
    # A second endpoint in settings.json reached the running server: no restart happened.
    assert "⚖ 2 models" in obs["statusBarAfterSettings"]
    assert log.count(" -I -u -m codeconductor.server") == 1
    preview = obs["preview"]
    assert "Ask: Does add() really add?" in preview
    assert "Confidence" in preview
    for name in ("tiny-a", "tiny-b"):
        assert name in preview  # the per-model table
    assert obs["previewTab"].startswith("Preview")


def test_make_tests_pass_from_the_palette(
    code_server_bin: Path, vsix: Path, python: str, fault_server: FaultServer, tmp_path: Path
) -> None:
    # The project's own test decides: of two fixed answers (the fault-injection fake's "ok-*" models, through the
    # real HTTP path) only one passes it, so the user must see "1/2 candidates pass the tests" and get that one.
    right = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n'
    wrong = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a * b\n'
    fault_server.add_model("ok-vscode-fixtests-right", text=f"```python\n{right}```\n")
    fault_server.add_model("ok-vscode-fixtests-wrong", text=f"```python\n{wrong}```\n")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "test_sample.py").write_text(
        "from sample import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n", encoding="utf-8"
    )
    settings = user_settings(
        python,
        [],
        {
            "codeconductor.endpoints": [{"url": fault_server.url, "kind": "openai"}],
            "codeconductor.includeModels": ["ok-vscode-fixtests-right", "ok-vscode-fixtests-wrong"],
            "codeconductor.verify": False,
            **APPLY_AT_ONCE,
        },
    )
    shots = SHOTS / "make-tests-pass"
    with start_code_server(code_server_bin, vsix, tmp_path, settings, code_server_env(pythonpath=True)) as cs:
        obs = drive(cs, shots, "makeTestsPass", expectStatus="⚖ 2 models", selectLines=[1, 3])
    assert "Leave empty" in obs["testsPrompt"]  # the automatic choice is the default
    assert "1/2 candidates pass the tests" in obs["outcome"]
    assert "fix applied" in obs["outcome"]
    assert "return a - b" in obs["before"]
    assert "return a + b" in obs["after"]  # the passing candidate, not the wrong one
    preview = obs["preview"]
    assert "make tests pass (add)" in preview
    assert "test_sample.py::test_add" in preview
    assert "ok-vscode-fixtests-right" in preview
    assert "ok-vscode-fixtests-wrong" in preview  # the failing candidate is listed too
    for step in ("02-which-tests", "03-outcome", "04-outcome-preview"):
        assert (shots / f"{step}.png").is_file()


def test_preview_accept_reject_alternative_and_status_menu(
    code_server_bin: Path, vsix: Path, python: str, fault_server: FaultServer, tmp_path: Path
) -> None:
    # Fixed answers through the real HTTP path (the editor is under test): two models agree, one dissents.
    right = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n'
    other = 'def add(a, b):\n    """Return the sum of a and b."""\n    return sum((a, b))\n'
    for name in ("ok-vscode-preview-a", "ok-vscode-preview-b"):
        fault_server.add_model(name, text=f"```python\n{right}```\n")
    fault_server.add_model("ok-vscode-preview-alt", text=f"```python\n{other}```\n")
    db = tmp_path / "history.sqlite"
    settings = user_settings(
        python,
        [],
        {
            "codeconductor.endpoints": [{"url": fault_server.url, "kind": "openai"}],
            "codeconductor.includeModels": ["ok-vscode-preview-*"],
            "codeconductor.connectTimeoutS": 5,  # a loaded machine must not make the probe miss the fake server
            "codeconductor.verify": False,
            "codeconductor.history": True,
            "codeconductor.historyPath": str(db),
        },
    )
    shots = SHOTS / "preview"
    with start_code_server(code_server_bin, vsix, tmp_path, settings, code_server_env(pythonpath=True)) as cs:
        obs = drive(
            cs,
            shots,
            "preview",
            expectStatus="⚖ 3 models",
            selectLines=[1, 3],
            fixedText="return a + b",
            alternativeText="return sum((a, b))",
        )
    # Preview shown: a diff beside the file, CodeLens over the range, and nothing applied yet.
    assert "return a - b" in obs["before"]
    assert "return a + b" in obs["proposed"]
    assert "CodeConductor: Apply consensus (2/3 models" in obs["previewTab"]
    assert "Accept | Reject | Alternatives" in " ".join(obs["lenses"].replace("\xa0", " ").split())
    assert obs["afterPreview"] == obs["before"]
    # An alternative previews its own diff.
    assert any("ok-vscode-preview-alt" in row for row in obs["alternatives"])
    assert "return sum((a, b))" in obs["alternativeProposed"]
    # Reject leaves the file untouched.
    assert obs["afterReject"] == obs["before"]
    assert "nothing was changed" in obs["rejectedToast"]
    # The document changed since the preview: the edit is refused.
    assert "changed" in obs["staleToast"]
    assert "return a - b" in obs["afterStale"]
    assert "# edited" in obs["afterStale"]
    # Accept applies it.
    assert "return a + b" in obs["afterAccept"]
    assert "return a - b" not in obs["afterAccept"]
    # The status menu: the server up with its models, the last run, the actions; the dashboard in a webview.
    menu = " / ".join(obs["statusMenu"])
    assert "up · 3 models" in menu
    assert "fix: confidence" in menu
    for action in ("Cancel Running Runs", "Show Output", "Open History Dashboard"):
        assert action in menu
    assert "ok-vscode-preview-alt" in obs["dashboard"]
    # Accept and reject were recorded as feedback in the history.
    with History(db) as history:
        rows = set(history.backend.execute("SELECT model_name, action FROM feedback WHERE kind = 'user'"))
    assert ("ok-vscode-preview-alt", "rejected") in rows
    assert ("ok-vscode-preview-a", "applied") in rows
    for step in ("02-preview", "03-alternative", "04-rejected", "05-stale-refused", "06-accepted", "07-status-menu"):
        assert (shots / f"{step}.png").is_file()
    assert (shots / "08-history-dashboard.png").is_file()
