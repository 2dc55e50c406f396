"""The classifier's free text maps to a mode, whatever shape a real model gives it."""

import pytest

from chatbot.domain.modes import FALLBACK_MODE, parse_mode


@pytest.mark.parametrize(
    ("answer", "mode"),
    [
        ("generate_poem", "generate_poem"),
        ("Generate_Poem", "generate_poem"),
        ("GENERATE_CODE", "generate_code"),
        ('"answer_question"', "answer_question"),
        ("'generate_code'.", "generate_code"),
        ("**generate_poem**", "generate_poem"),
        ("`generate_code`", "generate_code"),
        ("generate-poem", "generate_poem"),
        ("generate poem", "generate_poem"),
        ("  answer_question\n", "answer_question"),
        ("The mode is: generate_code.", "generate_code"),
        ("The answer is generate_poem", "generate_poem"),
        ("Mode: answer_question (the user asks a question)", "answer_question"),
        ("generate_poem, not generate_code", "generate_poem"),
        ("poem", "generate_poem"),
        ("Poem.", "generate_poem"),
        ("Poem. The user wants verse, not code", "generate_poem"),
        ("code", "generate_code"),
        ("This is a question.", "answer_question"),
        ("I would classify this as a poem request.", "generate_poem"),
    ],
)
def test_messy_answers_map_to_their_mode(answer: str, mode: str) -> None:
    assert parse_mode(answer) == mode


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "",
        "   ",
        "unknown",
        "UNKNOWN.",
        "prompt_for_more",
        "I'm not sure.",
        "None of these apply",
        "Either generate_code or generate_poem",
        "code or poem?",
        "barcode",
        "42",
        "🙂",
    ],
)
def test_unmappable_or_ambiguous_answers_fall_back(answer: str | None) -> None:
    assert parse_mode(answer) == FALLBACK_MODE
