"""Generate the VS Code extension's settings (``contributes.configuration`` in ``vscode-extension/package.json``)
from the language server's pydantic settings schema, so the settings a user sees in VS Code never drift from the
ones the server accepts.

Usage::

    python scripts/gen_vscode_settings.py            # rewrite package.json's configuration in place
    python scripts/gen_vscode_settings.py --check    # exit 1 (and say what differs) when package.json is stale

The first configuration section ("CodeConductor") is generated from :func:`codeconductor.ensemble.settings.json_schema`, one
``codeconductor.<camelCaseKey>`` per field. A second section ("CodeConductor: Extension") holds the settings only
the extension reads (which Python starts the server, LSP tracing); the extension strips those before the server
sees the ``codeconductor`` section.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `ensemble` importable
    sys.path.insert(0, str(ROOT))

from pydantic.alias_generators import to_camel  # noqa: E402

from codeconductor.ensemble.settings import USER_ONLY_KEYS, Settings, json_schema  # noqa: E402

__all__ = ["EXTENSION_ONLY", "PACKAGE_JSON", "SECTION", "camel", "configuration", "main", "schema_properties"]

SECTION = "codeconductor"
PACKAGE_JSON = ROOT / "vscode-extension" / "package.json"

# Settings read by the extension itself, never sent to the server (the pydantic model forbids unknown keys).
EXTENSION_ONLY: dict[str, dict[str, Any]] = {
    f"{SECTION}.python": {
        "type": "string",
        "default": "",
        "scope": "machine-overridable",
        "markdownDescription": (
            "Python interpreter that runs the CodeConductor language server (`<python> -I -m codeconductor.server`, "
            "after a handshake that checks it is CodeConductor's, in this extension's version). "
            "Empty: the Python extension's selected interpreter when installed, else `python3` on PATH."
        ),
    },
    f"{SECTION}.trace.server": {
        "type": "string",
        "enum": ["off", "messages", "verbose"],
        "default": "off",
        "scope": "window",
        "description": (
            "Trace the JSON-RPC traffic with the server in the 'CodeConductor Trace' output channel "
            "(also set that channel's log level to Trace)."
        ),
    },
}

# JSON-schema keywords VS Code's settings editor understands and that carry meaning for validation.
_KEEP = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "items", "properties")


# ``probe_local`` -> ``probeLocal``: a setting's key in VS Code is its camelCase alias in the settings model.
camel = to_camel


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s and turn ``anyOf: [X, null]`` into ``type: [X, "null"]`` (VS Code has no ``$defs``)."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "anyOf":
            options = [_resolve(opt, defs) for opt in value]
            simple = all(set(opt) <= {"type", "minimum", "maximum", "exclusiveMinimum"} for opt in options)
            if simple:
                types = [opt["type"] for opt in options]
                out["type"] = types
                for opt in options:  # numeric bounds of the non-null branch
                    out.update({k: v for k, v in opt.items() if k != "type"})
            else:
                out["anyOf"] = options
        elif key == "title":
            continue  # VS Code derives titles from the key
        else:
            out[key] = _resolve(value, defs)
    return out


def schema_properties() -> dict[str, dict[str, Any]]:
    """The ``codeconductor.*`` properties derived from the pydantic schema, in field order."""
    schema = json_schema()
    defs = schema.get("$defs", {})
    defaults = Settings().model_dump(mode="json")
    props: dict[str, dict[str, Any]] = {}
    for order, (name, field) in enumerate(schema["properties"].items()):
        resolved = _resolve(field, defs)
        prop: dict[str, Any] = {k: resolved[k] for k in _KEEP if k in resolved}
        if "anyOf" in resolved:
            prop["anyOf"] = resolved["anyOf"]
        # default_factory fields carry no "default" in the schema; the model's own dump is the truth.
        prop["default"] = defaults[name]
        prop["description"] = resolved.get("description", "")
        prop["order"] = order
        if isinstance(prop.get("items"), dict) and prop["items"].get("type") == "object":
            prop["items"].setdefault("additionalProperties", False)
        if resolved.get("type") == "object" and "additionalProperties" in resolved:
            prop["additionalProperties"] = resolved["additionalProperties"]
        if name in USER_ONLY_KEYS or name == "endpoints":
            # Workspace trust: VS Code takes "application" settings from the user's settings only, never from a
            # repository's .vscode/settings.json, so a cloned project cannot choose where code and keys go. Not
            # "machine": a remote window (code-server, Remote-SSH, WSL) drops those from the user's settings once
            # the extension's schema is known, and a live change then reads the defaults (no endpoints).
            prop["scope"] = "application"
        props[f"{SECTION}.{camel(name)}"] = prop
    return props


def configuration() -> list[dict[str, Any]]:
    """The whole ``contributes.configuration`` array."""
    return [
        {"title": "CodeConductor", "id": SECTION, "properties": schema_properties()},
        {"title": "CodeConductor: Extension", "id": f"{SECTION}-extension", "properties": EXTENSION_ONLY},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when package.json is out of date")
    parser.add_argument("--package-json", type=Path, default=PACKAGE_JSON)
    args = parser.parse_args(argv)
    package = json.loads(args.package_json.read_text(encoding="utf-8"))
    wanted = configuration()
    current = package.get("contributes", {}).get("configuration")
    if args.check:
        if current == wanted:
            return 0
        sys.stderr.write(
            f"{args.package_json}: contributes.configuration is stale; run scripts/gen_vscode_settings.py\n"
        )
        return 1
    package.setdefault("contributes", {})["configuration"] = wanted
    args.package_json.write_text(json.dumps(package, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
