"""Extraction: from raw model answers to the code the user would get."""

from __future__ import annotations

import ast
from typing import Any

from codeconductor.ensemble.consensus.extract import clear_cache, extract_code, fenced_blocks

STUB = '''from typing import List


def helper(x: int) -> int:
    return x + 1


def total(values: List[int]) -> int:
    """Sum of helper(v).
    >>> total([1, 2])
    5
    """
'''


def _defines(code: str, name: str) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in ast.parse(code).body)


def test_picks_the_fenced_block_that_defines_the_function() -> None:
    raw = (
        "Here is an example usage:\n```python\nprint(total([1]))\n```\n"
        "And the solution:\n```python\ndef total(values):\n    return sum(helper(v) for v in values)\n```\nDone."
    )
    out = extract_code(raw, context=STUB)
    assert out.parseable
    assert _defines(out.code, "total")
    assert "print(" not in out.code
    assert "Done." not in out.code


def test_body_only_is_merged_with_the_signature_and_helpers_kept() -> None:
    out = extract_code("    return sum(helper(v) for v in values)\n", context=STUB)
    assert out.parseable
    assert _defines(out.code, "total")
    assert _defines(out.code, "helper")
    assert "from typing import List" in out.code
    namespace: dict[str, Any] = {}
    exec(out.code, namespace)
    assert namespace["total"]([1, 2]) == 5


def test_main_guard_prints_and_asserts_are_removed() -> None:
    raw = (
        "def total(values):\n    return sum(v + 1 for v in values)\n\n"
        "print(total([1]))\nassert total([]) == 0\n\nif __name__ == '__main__':\n    total([5])\n"
    )
    out = extract_code(raw, context=STUB)
    assert "__main__" not in out.code
    assert "assert" not in out.code
    assert "print" not in out.code
    assert "scaffolding removed" in out.notes


def test_missing_standard_imports_are_added() -> None:
    raw = "def total(values):\n    c = Counter(values)\n    return int(math.sqrt(sum(c.values())))\n"
    out = extract_code(raw, context=STUB)
    assert "import math" in out.code
    assert "from collections import Counter" in out.code


def test_lost_indentation_is_repaired() -> None:
    raw = "def total(values):\n s = 0\n for v in values:\n s += v + 1\n return s\n"
    out = extract_code(raw, context=STUB)
    assert out.parseable
    namespace: dict[str, Any] = {}
    exec(out.code, namespace)
    assert namespace["total"]([1, 2]) == 5


def test_truncated_answer_keeps_the_parseable_prefix() -> None:
    raw = "def total(values):\n    return sum(v + 1 for v in values)\n\ndef other(x):\n    return [x,"
    out = extract_code(raw, context=STUB)
    assert out.parseable
    assert "truncated" in out.notes
    assert _defines(out.code, "total")


def test_hopeless_answers_are_kept_and_marked() -> None:
    out = extract_code("def total(values:\n    ((((\n", context=STUB)
    assert not out.parseable
    assert out.code.strip()


def test_empty_answer_is_empty() -> None:
    out = extract_code("   \n", context=STUB)
    assert out.empty
    assert not out.parseable


def test_non_python_uses_the_matching_fence() -> None:
    raw = "Shell first:\n```sh\nnpm i\n```\nThen:\n```typescript\nconst x: number = 1;\n```\n"
    out = extract_code(raw, language="typescript")
    assert out.code == "const x: number = 1;\n"
    assert fenced_blocks(raw)[0][0] == "sh"


def test_extraction_is_memoised_per_answer_and_context() -> None:
    raw = "```python\ndef f(x):\n    return x + 1\n```"
    first = extract_code(raw, context="def f(x):\n    pass\n")
    assert extract_code(raw, context="def f(x):\n    pass\n") is first  # reused, not recomputed
    other = extract_code(raw, context="import math\n\ndef f(x):\n    pass\n")
    assert other is not first  # another context is another extraction
    assert "import math" in other.code
    clear_cache()
    again = extract_code(raw, context="def f(x):\n    pass\n")
    assert again is not first
    assert again == first
