"""Java answers run inside the user's source tree (issue 26): the real sandbox and the real JDK (installed by
``scripts/setup.sh --dev``: without it these tests fail, they do not skip), a project made under tmp_path with two
classes in one package (the selected method calls a helper of the other) under ``src/``, and under ``test/`` two
test classes whose ``main`` checks and throws and a JUnit 4 class (Debian's ``junit4``, also installed by setup). javac and the JVM on the user's code are the oracle: improve
keeps every passing test passing, fix makes a failing one pass and breaks none."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.java import java_toolchain
from codeconductor.ensemble.project import project_for
from codeconductor.ensemble.types import (
    AnswerStatus,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.java_project import junit4_classpath
from codeconductor.ensemble.verify.observe import SandboxExecutor

CALC = """package com.shop;

public class Calc {
    /** Adds up the even numbers of xs. */
    public static int sumEven(int[] xs) {
        int total = 0;
        for (int x : xs) {
            if (Util.isEven(x)) {
                total += x;
            }
        }
        return total;
    }

    public static int twice(int x) {
        return 2 * x;
    }
}
"""
UTIL = "package com.shop;\n\nfinal class Util {\n    static boolean isEven(int x) {\n        return x % 2 == 0;\n    }\n}\n"
TABLE_TEST = """package com.shop;

public class CalcTest {
    public static void main(String[] args) {
        int[][] inputs = {{1, 2, 3, 4}, {}, {2, 4, 5}};
        int[] wanted = {6, 0, 6};
        for (int i = 0; i < inputs.length; i++) {
            int got = Calc.sumEven(inputs[i]);
            if (got != wanted[i]) {
                throw new AssertionError("sumEven case " + i + ": " + got);
            }
        }
    }
}
"""
NEGATIVE_TEST = """package com.shop;

public class NegativeTest {
    public static void main(String[] args) {
        assert Calc.sumEven(new int[] {-2, 5}) == -2 : "negative numbers";
    }
}
"""
JUNIT_TEST = """package com.shop;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class SumEvenJUnitTest {
    @Test
    public void mixedSigns() {
        assertEquals(4, Calc.sumEven(new int[] {-2, 6, 7}));
    }

    @Test
    public void doubles() {
        assertEquals(8, Calc.twice(4));
    }
}
"""
RIGHT = """    public static int sumEven(int[] xs) {
        return java.util.Arrays.stream(xs).filter(x -> x % 2 == 0).sum();
    }
"""
MUTANT = """    public static int sumEven(int[] xs) {
        return java.util.Arrays.stream(xs).filter(x -> x > 0 && Util.isEven(x)).sum();
    }
"""
WRONG_FIX = """    public static int sumEven(int[] xs) {
        return java.util.Arrays.stream(xs).sum();
    }
"""


def _buggy(text: str) -> str:
    return text.replace("if (Util.isEven(x)) {", "if (!Util.isEven(x)) {")


def make_project(root: Path, calc: str = CALC, tests: bool = True) -> Path:
    """A project at ``root``: ``src/com/shop/{Calc,Util}.java`` and three test classes under ``test/``."""
    (root / "src" / "com" / "shop").mkdir(parents=True)
    (root / "src" / "com" / "shop" / "Calc.java").write_text(calc, encoding="utf-8")
    (root / "src" / "com" / "shop" / "Util.java").write_text(UTIL, encoding="utf-8")
    if tests:
        (root / "test" / "com" / "shop").mkdir(parents=True)
        (root / "test" / "com" / "shop" / "CalcTest.java").write_text(TABLE_TEST, encoding="utf-8")
        (root / "test" / "com" / "shop" / "NegativeTest.java").write_text(NEGATIVE_TEST, encoding="utf-8")
        (root / "test" / "com" / "shop" / "SumEvenJUnitTest.java").write_text(JUNIT_TEST, encoding="utf-8")
    return root / "src" / "com" / "shop" / "Calc.java"


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    # Setup installs a JDK for the dev suite: missing, these tests must fail, not skip.
    assert java_toolchain() is not None, "no JDK is installed (scripts/setup.sh --dev installs one)"
    assert junit4_classpath() is not None, "JUnit 4 is not installed (scripts/setup.sh --dev installs junit4)"
    runner = SandboxExecutor()
    assert runner.sandbox.containment == "bubblewrap", "Java runs only in the bubblewrap sandbox"
    yield runner
    runner.close()


def _request(module: Path, task: TaskKind, name: str = "sumEven") -> Request:
    text = module.read_text(encoding="utf-8")
    found = language_for("java").find_function(text, name)
    assert found is not None
    context = build_context(text, found.start_line, found.end_line, path=str(module), language="java")
    context.project = project_for(module, text)
    assert context.project is not None
    return Request(task=task, context=context)


def _decide(request: Request, *codes: str, executor: SandboxExecutor) -> ConsensusResult:
    answers = [
        ModelAnswer(
            model=ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434"),
            status=AnswerStatus.ANSWERED,
            text=f"```java\n{code}```",
        )
        for i, code in enumerate(codes)
    ]
    return asyncio.run(decide(request, answers, executor=executor))


def _rejected(result: ConsensusResult) -> list[str]:
    return [c.rejected for c in result.clusters if c.rejected]


def test_the_source_tree_is_found(tmp_path: Path) -> None:
    module = make_project(tmp_path / "shop")
    project = project_for(module, module.read_text(encoding="utf-8"))
    assert project is not None
    assert (project.language, project.root, project.module) == ("java", str(tmp_path / "shop"), "com.shop.Calc")
    assert project.import_root == str(tmp_path / "shop" / "src")
    assert project_for(module, CALC.replace("package com.shop;", "package com.other;")) is None


def test_improve_keeps_the_tests_passing(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_project(tmp_path / "shop")
    result = _decide(_request(module, TaskKind.IMPROVE), MUTANT, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x % 2 == 0" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    assert any("3 of your tests" in n for n in result.notes), result.notes
    assert any(n.startswith("java: executed with javac and the JVM (3 tests") for n in result.notes), result.notes


def test_fix_must_make_a_failing_test_pass(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_project(tmp_path / "shop", _buggy(CALC))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x % 2 == 0" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "failing tests pass" in rejected[0], rejected
    alone = _decide(_request(module, TaskKind.FIX), WRONG_FIX, executor=executor)
    assert not alone.offers_edit


def test_an_answer_that_does_not_compile_is_refused_with_the_reason(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_project(tmp_path / "shop")
    undefined = RIGHT.replace(".sum();", ".sum() + offset;")
    result = _decide(_request(module, TaskKind.IMPROVE), undefined, executor=executor)
    assert not result.offers_edit
    assert any("does not load" in r and "variable offset" in r for r in _rejected(result)), _rejected(result)


def test_hostile_answers_are_contained(tmp_path: Path, executor: SandboxExecutor) -> None:
    """An answer that reads a host file outside the project or connects to the host's loopback sees neither;
    one that would end its JVM itself (directly or by reflection) is refused unrun."""
    secret = tmp_path / "secret.txt"
    secret.write_text("42", encoding="utf-8")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        for _ in range(100):
            try:
                accepted.append(listener.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    module = make_project(tmp_path / "shop", _buggy(CALC))
    reader = RIGHT.replace(
        "return java.util",
        f'try {{ java.nio.file.Files.readString(java.nio.file.Path.of("{secret}")); }} '
        "catch (java.io.IOException e) { return 1; }\n        return java.util",
    )
    caller = RIGHT.replace(
        "return java.util",
        f'try (var s = new java.net.Socket("127.0.0.1", {port})) {{ }} '
        "catch (java.io.IOException e) { return 1; }\n        return java.util",
    )
    reflective = RIGHT.replace(
        "return java.util",
        'try { Class.forName("java.lang.Sys" + "tem").getMethod("ex" + "it", int.class).invoke(null, 0); } '
        "catch (Exception e) { }\n        return java.util",
    )
    result = _decide(_request(module, TaskKind.FIX), reader, caller, reflective, executor=executor)
    thread.join(timeout=25)
    listener.close()
    assert not accepted
    assert not result.offers_edit
    assert all(c.rejected for c in result.clusters)
    assert sorted(m.split("@")[0] for c in result.clusters for m in c.members) == ["m0", "m1", "m2"]
    refused = [c.members for c in result.clusters if "could end its tests early" in (c.rejected or "")]
    assert [[m.split("@")[0] for m in members] for members in refused] == [["m2"]], result.clusters


def test_a_junit_test_is_an_oracle_and_without_a_test_improve_is_refused(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_project(tmp_path / "shop")
    twice = "    public static int twice(int x) {\n        return x + x;\n    }\n"
    result = _decide(_request(module, TaskKind.IMPROVE, "twice"), twice, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # SumEvenJUnitTest.doubles names it
    assert any("1 of your tests (1 passing" in n for n in result.notes), result.notes
    wrong = _decide(_request(module, TaskKind.IMPROVE, "twice"), twice.replace("x + x", "x + 2"), executor=executor)
    assert not wrong.offers_edit
    bare = make_project(tmp_path / "bare", tests=False)
    result = _decide(_request(bare, TaskKind.IMPROVE, "twice"), twice, executor=executor)
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "no test in your project calls twice" in result.no_edit
