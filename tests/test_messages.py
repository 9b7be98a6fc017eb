"""Context assembly for the Messages API: pure functions, no SDK, no server."""

from __future__ import annotations

from typing import Any

from runner.brain.messages import (
    EMPTY_INSTRUCTIONS,
    EMPTY_RESPONSE,
    SUMMARY_HEADING,
    build_params,
    normalise,
)
from runner.brain.protocol import BrainRequest, PriorTurn


def request(**kw: Any) -> BrainRequest:
    base: dict[str, Any] = {
        "model": "m",
        "max_tokens": 100,
        "prompt": "Do the thing.\n\n---\nTitle: T",
        "session_id": "s",
    }
    return BrainRequest(**{**base, **kw})


def texts(message: Any) -> list[str]:
    return [block["text"] for block in message["content"]]


def breakpoints(system: list[Any], messages: list[Any]) -> list[str]:
    """Where cache_control sits: 'system[i]' or 'messages[i][j]'."""
    found = [f"system[{i}]" for i, b in enumerate(system) if "cache_control" in b]
    for i, m in enumerate(messages):
        found += [f"messages[{i}][{j}]" for j, b in enumerate(m["content"]) if "cache_control" in b]
    return found


def test_first_run_is_one_user_turn_and_no_system() -> None:
    system, messages = build_params(request())
    assert system == []
    assert [m["role"] for m in messages] == ["user"]
    assert texts(messages[0]) == ["Do the thing.\n\n---\nTitle: T"]
    assert breakpoints(system, messages) == []


def test_system_text_comes_before_the_summary_header() -> None:
    system, _ = build_params(request(system="You are terse.", summary="Three runs so far."))
    assert [b["text"] for b in system] == [
        "You are terse.",
        f"{SUMMARY_HEADING}\n\nThree runs so far.",
    ]


def test_history_alternates_and_keeps_order() -> None:
    history = (
        PriorTurn("first", "answer one", "completed"),
        PriorTurn("second", None, "failed", "overloaded after 3 tries"),
        PriorTurn("third", "answer three", "completed"),
    )
    _, messages = build_params(request(history=history))
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3 + ["user"]
    assert [texts(m)[0] for m in messages[:6]] == [
        "first",
        "answer one",
        "second",
        "(This execution failed and gave no answer: overloaded after 3 tries.)",
        "third",
        "answer three",
    ]
    assert texts(messages[-1]) == ["Do the thing.\n\n---\nTitle: T"]


def test_cache_breakpoint_sits_on_the_last_prior_turn_block() -> None:
    history = (PriorTurn("a", "b", "completed"), PriorTurn("c", "d", "completed"))
    system, messages = build_params(request(history=history, summary="S", system="X"))
    assert breakpoints(system, messages) == ["messages[3][0]"]
    content: Any = messages[3]["content"]
    assert content[0] == {
        "type": "text",
        "text": "d",
        "cache_control": {"type": "ephemeral"},
    }


def test_without_history_the_breakpoint_sits_on_the_summary_header() -> None:
    system, messages = build_params(request(summary="S", system="X"))
    assert breakpoints(system, messages) == ["system[1]"]


def test_empty_texts_never_reach_the_api() -> None:
    history = (
        PriorTurn("", "", "completed"),
        PriorTurn("  ", None, "failed", None),
    )
    _, messages = build_params(request(history=history))
    for message in messages:
        for text in texts(message):
            assert text.strip()
    assert texts(messages[0]) == [EMPTY_INSTRUCTIONS]
    assert texts(messages[1]) == [EMPTY_RESPONSE]
    assert "no reason recorded" in texts(messages[3])[0]


def test_normalise_merges_neighbours_of_one_role_and_fixes_the_ends() -> None:
    messages = normalise(
        [("assistant", "orphan"), ("user", "u1"), ("user", "u2"), ("assistant", "a")]
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert texts(messages[0]) == [EMPTY_INSTRUCTIONS]
    assert texts(messages[2]) == ["u1", "u2"]
    assert texts(messages[-1]) == [EMPTY_INSTRUCTIONS]


def test_normalise_of_nothing_is_one_user_turn() -> None:
    assert [m["role"] for m in normalise([])] == ["user"]


def test_neither_context_nor_a_brain_not_yet_called_imports_the_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from runner.brain.protocol import BrainRequest; "
        "from runner.brain.registry import make_brain; "
        "from runner.brain.messages import build_params; "
        "from runner.settings import BrainSettings; "
        "build_params(BrainRequest('m', 1, 'p', 's')); "
        "from runner import listing; from runner.run import executor; "
        "make_brain(BrainSettings(provider='anthropic')); "
        "print('anthropic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
