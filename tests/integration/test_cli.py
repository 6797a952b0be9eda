"""The ``codeconductor`` command as a user runs it: a real subprocess, settings from a ``codeconductor.toml`` in a
temporary folder, real tiny llama.cpp servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE, example_path
from tests.support.fault_server import FaultServer
from tests.support.llama_server import LlamaServer, free_port, llama_servers

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
CODE = "import math\n\n\ndef area(r):\n    return 3.14 * r * r\n"


@pytest.fixture(scope="module")
def servers(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LlamaServer]]:
    with llama_servers(
        tiny_gguf, ("cli-a", "cli-b"), n_ctx=2048, log_dir=tmp_path_factory.mktemp("llama-logs")
    ) as started:
        yield started


def write_config(folder: Path, *urls: str, extra: str = "") -> None:
    endpoints = "".join(f'\n[[endpoints]]\nurl = "{u}"\n' for u in urls)
    folder.joinpath("codeconductor.toml").write_text(
        'probe_local = false\nembedded = "off"\nmax_tokens = 8\ntemperature = 0.0\nverify = false\n' + extra + endpoints
    )


def cli(folder: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "codeconductor.cli", *args],
        cwd=folder,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_models_json_lists_the_servers(servers: list[LlamaServer], tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    write_config(tmp_path, *(s.url for s in servers), dead)
    done = cli(tmp_path, "models", "--json")
    assert done.returncode == EXIT_OK, done.stderr
    document = json.loads(done.stdout)
    assert [(m["name"], m["endpoint"]) for m in document["models"]] == [(s.model_name, s.url) for s in servers]
    states = {e["url"]: e["state"] for e in document["endpoints"]}
    assert states == {servers[0].url: "up", servers[1].url: "up", dead: "down"}


def test_models_table(servers: list[LlamaServer], tmp_path: Path) -> None:
    write_config(tmp_path, servers[0].url)
    done = cli(tmp_path, "models", "--refresh")
    assert done.returncode == EXIT_OK, done.stderr
    assert "cli-a" in done.stdout
    assert servers[0].url in done.stdout
    assert "up" in done.stdout


def test_ask_json_from_file_lines(servers: list[LlamaServer], tmp_path: Path) -> None:
    write_config(tmp_path, *(s.url for s in servers))
    tmp_path.joinpath("geo.py").write_text(CODE)
    done = cli(tmp_path, "ask", "--file", "geo.py", "--lines", "4-5", "--task", "fix", "--json", "use math.pi")
    assert done.returncode == EXIT_OK, done.stderr
    result = json.loads(done.stdout)
    assert result["request"]["task"] == "fix"
    assert result["request"]["context"]["selection"] == "def area(r):\n    return 3.14 * r * r"
    assert result["request"]["context"]["start_line"] == 3
    assert "import math" in result["request"]["context"]["imports"]
    assert sorted(a["model"]["name"] for a in result["answers"]) == ["cli-a", "cli-b"]
    assert all(a["status"] == "answered" for a in result["answers"])
    assert result["consensus"]["asked"] == 2


def test_ask_human_output_from_stdin(servers: list[LlamaServer], tmp_path: Path) -> None:
    write_config(tmp_path, servers[0].url)
    done = cli(tmp_path, "ask", "--samples", "2", "--task", "improve", "make it faster", stdin=CODE)
    assert done.returncode == EXIT_OK, done.stderr
    assert "cli-a" in done.stdout
    assert "consensus" in done.stdout
    assert "confidence" in done.stdout or "no edit:" in done.stdout
    assert "answered" in done.stderr  # the progress lines


def test_ask_reports_failures_and_exit_code_when_nobody_answers(tmp_path: Path) -> None:
    with FaultServer(["http500", "garbage-json"], apis=("openai",)) as server:
        write_config(tmp_path, server.url)
        done = cli(tmp_path, "ask", "--json", "anything", stdin=CODE)
    assert done.returncode == EXIT_NO_ANSWER, done.stderr
    result = json.loads(done.stdout)
    assert sorted((a["status"], a["reason"]) for a in result["answers"]) == [
        ("failed", "http_500"),
        ("failed", "protocol"),
    ]


def test_invalid_settings_name_the_field(tmp_path: Path) -> None:
    write_config(tmp_path, extra="timeout_s = -1\n")
    done = cli(tmp_path, "models")
    assert done.returncode == EXIT_USAGE
    assert "timeout_s" in done.stderr
    bad_flag = cli(tmp_path.parent, "ask", "--timeout", "-3", "x")
    assert bad_flag.returncode == EXIT_USAGE


def test_no_models_is_an_error_with_advice(tmp_path: Path) -> None:
    write_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    done = cli(tmp_path, "ask", "hello", stdin=CODE)
    assert done.returncode == EXIT_ERROR
    assert "no models available" in done.stderr


def test_usage_errors(tmp_path: Path) -> None:
    write_config(tmp_path)
    tmp_path.joinpath("geo.py").write_text(CODE)
    assert cli(tmp_path, "ask", "--file", "geo.py", "--lines", "9-12", "x").returncode == EXIT_USAGE
    assert cli(tmp_path, "ask", "--file", "missing.py", "x").returncode == EXIT_USAGE
    assert cli(tmp_path, "ask").returncode == EXIT_USAGE  # no code, no instruction
    assert cli(tmp_path, "frobnicate").returncode == EXIT_USAGE


def test_demo_example_is_bundled() -> None:
    text = example_path().read_text()
    assert "def average" in text
    assert ">>> average([])" in text


def test_ctrl_c_cancels_cleanly(tmp_path: Path) -> None:
    with FaultServer(["hang"], apis=("openai",)) as server:
        write_config(tmp_path, server.url, extra="timeout_s = 600\ndeadline_s = 600\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # A shell's background job (CI, `nohup ... &`) runs with SIGINT ignored, and a child inherits that: the CLI
        # must meet the Ctrl-C a terminal sends (a handled signal is reset to the default in the child).
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "codeconductor.cli", "ask", "--quiet", "hello"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        finally:
            signal.signal(signal.SIGINT, inherited)
        try:
            for _ in range(600):  # until the model request reached the server
                if any(r.path.endswith("completions") for r in server.requests):
                    break
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == EXIT_INTERRUPTED, stderr
        assert "cancelled" in stderr
        for _ in range(200):  # the connection was closed, not left hanging
            if "hang" in server.disconnects:
                break
            time.sleep(0.05)
        assert "hang" in server.disconnects


def test_serve_over_tcp_answers_initialize(tmp_path: Path) -> None:
    write_config(tmp_path)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "codeconductor.cli", "serve", "--tcp", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        sock = None
        for _ in range(300):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=0.5)
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.1)
        assert sock is not None, "server did not listen"
        with sock:
            body = json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "capabilities": {}}}
            ).encode()
            sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            sock.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
            while len(rest) < length:
                rest += sock.recv(65536)
        reply = json.loads(rest[:length])
        assert reply["id"] == 1
        assert "capabilities" in reply["result"]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
