"""Write a tiny random GGUF model that llama.cpp loads and serves in well under a second.

Tests need a *real* llama.cpp server without real weights: this writes a 2-layer llama-architecture model with a
byte-level SentencePiece vocabulary (``<unk>``, ``<s>``, ``</s>`` and the 256 ``<0xNN>`` byte tokens) and a chat
template, so both ``/v1/completions`` and ``/v1/chat/completions`` work.

The weights are random, with one deliberate property: only printable ASCII bytes and newline can ever be sampled.
Dimension 0 of the residual stream is a constant positive value (set in every token embedding, never written by
any layer), and the output rows of all other tokens (control bytes, bytes >= 0x80, ``</s>``) carry a large negative
weight on that dimension. So every answer is valid UTF-8, never stops early on ``</s>``, and runs to ``max_tokens``
- which makes streaming, token counts and "huge answer" tests deterministic in shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["TINY_CHAT_TEMPLATE", "write_tiny_gguf"]

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_N_EMBD = 64
_N_HEAD = 4
_N_HEAD_KV = 2
_N_FF = 128
_N_LAYER = 2
_N_CTX_TRAIN = 2048
_SPECIALS = ["<unk>", "<s>", "</s>"]


def _allowed_output(token_id: int) -> bool:
    """Tokens the model may emit: the byte tokens for printable ASCII and newline."""
    if token_id < len(_SPECIALS):
        return False
    byte = token_id - len(_SPECIALS)
    return byte == 0x0A or 0x20 <= byte < 0x7F


def write_tiny_gguf(path: Path, *, seed: int = 0) -> Path:
    """Write the tiny model to ``path`` (parent folders created) and return ``path``.

    Different ``seed`` values give different weights, hence different answers to the same prompt: useful to make
    several "models" that disagree.
    """
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    tokens = [*_SPECIALS, *(f"<0x{b:02X}>" for b in range(256))]
    n_vocab = len(tokens)
    token_types = [
        int(gguf.TokenType.UNKNOWN),
        int(gguf.TokenType.CONTROL),
        int(gguf.TokenType.CONTROL),
        *([int(gguf.TokenType.BYTE)] * 256),
    ]

    # Written under a temporary name and renamed, so a concurrent reader never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(f"tiny-random-{seed}")
    writer.add_context_length(_N_CTX_TRAIN)
    writer.add_embedding_length(_N_EMBD)
    writer.add_block_count(_N_LAYER)
    writer.add_feed_forward_length(_N_FF)
    writer.add_head_count(_N_HEAD)
    writer.add_head_count_kv(_N_HEAD_KV)
    writer.add_rope_dimension_count(_N_EMBD // _N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types(token_types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(TINY_CHAT_TEMPLATE)

    def rand(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are (out, in); gguf reverses them into ggml's (ne0=in, ne1=out).
    embd = rand(n_vocab, _N_EMBD, scale=1.0)
    embd[:, 0] = 4.0  # the constant "bias" dimension (see module docstring)
    writer.add_tensor("token_embd.weight", embd)
    writer.add_tensor("output_norm.weight", np.ones(_N_EMBD, dtype=np.float32))
    out = rand(n_vocab, _N_EMBD, scale=1.0)
    out[:, 0] = 0.0
    for token_id in range(n_vocab):
        if not _allowed_output(token_id):
            out[token_id, 0] = -200.0
    writer.add_tensor("output.weight", out)

    head_dim = _N_EMBD // _N_HEAD
    n_embd_kv = head_dim * _N_HEAD_KV
    for layer in range(_N_LAYER):
        prefix = f"blk.{layer}"
        attn_out = rand(_N_EMBD, _N_EMBD)
        attn_out[0, :] = 0.0  # layers never touch the constant dimension
        ffn_down = rand(_N_EMBD, _N_FF)
        ffn_down[0, :] = 0.0
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(_N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q.weight", rand(_N_EMBD, _N_EMBD))
        writer.add_tensor(f"{prefix}.attn_k.weight", rand(n_embd_kv, _N_EMBD))
        writer.add_tensor(f"{prefix}.attn_v.weight", rand(n_embd_kv, _N_EMBD))
        writer.add_tensor(f"{prefix}.attn_output.weight", attn_out)
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(_N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", rand(_N_FF, _N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_up.weight", rand(_N_FF, _N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_down.weight", ffn_down)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path
