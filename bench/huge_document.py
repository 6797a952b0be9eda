"""``python -m bench.huge_document``: how long a ``codeconductor.status`` request waits while ``textDocument/codeAction``
runs over a 200,000-line document (a real ``python -m codeconductor.server`` over stdio, spoken to with the hardening suite's raw
client). Before the server parsed only around the lines asked about, the status request waited for the whole
document's ``ast.parse`` (seconds)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.support.rawlsp import RawServer

LINES = 200_000


def main() -> None:
    text = "".join(f"def f_{i}(x):\n    return x + {i}\n\n\n" for i in range(LINES // 4))
    uri = "file:///tmp/codeconductor-bench/huge.py"
    with tempfile.TemporaryDirectory() as tmp, RawServer(stderr_path=Path(tmp) / "stderr.log") as server:
        server.initialize({"probeLocal": False, "embedded": "off", "history": False})
        server.open(uri, text)
        server.healthy()
        middle = LINES // 2 + 1
        for name, start, end in (("at a function", middle, middle), ("over the whole file", 0, LINES)):
            began = time.perf_counter()
            msg_id = server.start_request(
                "textDocument/codeAction",
                {
                    "textDocument": {"uri": uri},
                    "range": {"start": {"line": start, "character": 4}, "end": {"line": end, "character": 4}},
                    "context": {"diagnostics": []},
                },
            )
            time.sleep(0.05)
            asked = time.perf_counter()
            server.healthy()
            status = time.perf_counter() - asked
            server.wait_response(msg_id, 120)
            print(f"codeAction {name}: {time.perf_counter() - began:.2f} s; status meanwhile {status:.2f} s")


if __name__ == "__main__":
    main()
