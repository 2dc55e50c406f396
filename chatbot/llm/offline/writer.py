"""The offline model's "mind": rule-based classification and deterministic replies.

Replies are chosen by a stable hash of the prompt, so the same conversation always
gets the same words (tests and screenshots stay reproducible), and they are shaped like
the real thing: verse for a poem, one fenced block for code, an answer-shaped reply that
says plainly what the offline model cannot know.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Final

from chatbot.domain.modes import CLASSIFY_TASK, task_of

SIGNATURE: Final = "offline model"

_POEM_WORDS: Final = re.compile(
    r"\b(poem|poems|poetry|haiku|sonnet|limerick|verses?|rhymes?|ode|stanzas?|ballad)\b", re.I
)
_CODE_WORDS: Final = re.compile(
    r"\b(code|function|script|program|implement|class|regex|algorithm|snippet|debug|bug|"
    r"compile|python|javascript|typescript|java|rust|golang|bash|shell|sql|html|css)\b|c\+\+",
    re.I,
)
_QUESTION_START: Final = re.compile(
    r"^\s*(what|why|how|who|whom|whose|when|where|which|is|are|was|were|can|could|does|do|"
    r"did|should|would|will|explain|describe|tell me|define|compare)\b",
    re.I,
)
_STOPWORDS: Final = frozenset(
    "a an and are about as at be can could did do does for from give have how i in into is it "
    "its me my of on or please should tell that the their there these this to was what when "
    "where which who why will with would you your write compose create make generate show "
    "explain describe define some".split()
)


def classify(prompt: str) -> str:
    """The label the offline model gives a prompt: poem, then code, then question wins."""
    if _POEM_WORDS.search(prompt):
        return "generate_poem"
    if _CODE_WORDS.search(prompt):
        return "generate_code"
    if prompt.rstrip().endswith("?") or _QUESTION_START.match(prompt):
        return "answer_question"
    return "unknown"




def _stable_index(text: str, modulo: int) -> int:
    return zlib.crc32(text.encode("utf-8")) % modulo


def _clean(text: str, limit: int = 80) -> str:
    text = " ".join(text.split()).strip(" .!?;:,'\"`")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _keywords(text: str, count: int = 3) -> list[str]:
    words = re.findall(r"[A-Za-z][A-Za-z0-9'-]{2,}", text)
    seen: list[str] = []
    for word in words:
        lower = word.lower()
        if lower not in _STOPWORDS and lower not in (w.lower() for w in seen):
            seen.append(word)
        if len(seen) == count:
            break
    return seen


_POEM_TOPIC: Final = re.compile(
    r"^.*?\b(?:poem|poems|poetry|haiku|sonnet|limerick|verses?|ode|ballad|rhymes?)\b"
    r"(?:\s+(?:about|on|for|of|to|celebrating|praising))?\s*",
    re.I,
)

_POEMS: Final = (
    (
        "In quiet hours I think of {topic},",
        "a thought that hums beneath the day;",
        "it gathers light the way rain gathers",
        "and will not let itself be weighed.",
        "",
        "So here it is, in borrowed measure,",
        "set down by rules and not by art:",
        "a little map of {topic}",
        "drawn by a model with no heart.",
    ),
    (
        "Say {topic} slowly, like a name",
        "you half remember from a dream;",
        "the sound arrives before the meaning,",
        "the way a bridge arrives before the stream.",
        "",
        "I cannot see it, only spell it,",
        "a ledger of a single word;",
        "but every line you read returns it,",
        "{topic}, spoken, and then heard.",
    ),
    (
        "Morning opens on {topic}:",
        "the kettle, the window, the grey;",
        "nothing is asked of it but staying,",
        "and so it stays, and that is the day.",
        "",
        "By evening {topic} is a habit,",
        "worn smooth as a step by the door;",
        "I wrote this from rules and a hash of your words,",
        "and could not have meant any more.",
    ),
)


_HAIKU: Final = (
    ("{topic} at first light", "a sentence the rain began", "and left unfinished"),
    ("slow hours, {topic}", "the kettle remembers steam", "the window, its frost"),
    ("{topic}, then silence", "one word held up to the lamp", "to see what it holds"),
)


def poem(prompt: str) -> str:
    match = _POEM_TOPIC.match(prompt)
    topic = _clean(prompt[match.end() :] if match else prompt, 48) or "this"
    if re.search(r"\bhaiku", prompt, re.I):
        lines = _HAIKU[_stable_index(prompt, len(_HAIKU))]
        body = "\n".join(line.format(topic=topic) for line in lines)
        return f"{body}\n\n*— a haiku by the {SIGNATURE}, counted by rules, not by ear.*"
    lines = _POEMS[_stable_index(prompt, len(_POEMS))]
    body = "\n".join(line.format(topic=topic) for line in lines)
    return f"{body}\n\n*— a poem by the {SIGNATURE}; connect a real model for your own.*"


_LANGUAGES: Final = (
    ("typescript", re.compile(r"\b(typescript|ts)\b", re.I)),
    ("javascript", re.compile(r"\b(javascript|js|node(\.js)?)\b", re.I)),
    ("rust", re.compile(r"\brust\b", re.I)),
    ("go", re.compile(r"\b(golang|go)\b", re.I)),
    ("sql", re.compile(r"\bsql\b", re.I)),
    ("bash", re.compile(r"\b(bash|shell)\b", re.I)),
    ("python", re.compile(r"\bpython\b", re.I)),
)

_COMMENT: Final = {"python": "#", "bash": "#", "sql": "--"}

# A few tasks the offline model knows how to write for real, in Python and JavaScript.
_KNOWN_TASKS: Final = {
    "reverse": {
        "python": (
            "def reverse_text(text: str) -> str:\n"
            '    """Return the characters of text in reverse order."""\n'
            "    return text[::-1]\n\n\n"
            'print(reverse_text("streaming"))  # gnimaerts'
        ),
        "javascript": (
            "function reverseText(text) {\n"
            "  // Spread first so characters outside the BMP stay whole.\n"
            '  return [...text].reverse().join("");\n'
            "}\n\n"
            'console.log(reverseText("streaming")); // gnimaerts'
        ),
    },
    "fibonacci": {
        "python": (
            "def fibonacci(n: int) -> list[int]:\n"
            '    """Return the first n Fibonacci numbers."""\n'
            "    numbers, a, b = [], 0, 1\n"
            "    for _ in range(n):\n"
            "        numbers.append(a)\n"
            "        a, b = b, a + b\n"
            "    return numbers\n\n\n"
            "print(fibonacci(10))  # [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]"
        ),
        "javascript": (
            "function fibonacci(n) {\n"
            "  const numbers = [];\n"
            "  let [a, b] = [0, 1];\n"
            "  for (let i = 0; i < n; i++) {\n"
            "    numbers.push(a);\n"
            "    [a, b] = [b, a + b];\n"
            "  }\n"
            "  return numbers;\n"
            "}\n\n"
            "console.log(fibonacci(10)); // [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]"
        ),
    },
    "factorial": {
        "python": (
            "def factorial(n: int) -> int:\n"
            '    """Return n! for n >= 0."""\n'
            "    if n < 0:\n"
            '        raise ValueError("n must be non-negative")\n'
            "    result = 1\n"
            "    for k in range(2, n + 1):\n"
            "        result *= k\n"
            "    return result\n\n\n"
            "print(factorial(5))  # 120"
        ),
        "javascript": (
            "function factorial(n) {\n"
            '  if (n < 0) throw new RangeError("n must be non-negative");\n'
            "  let result = 1n;\n"
            "  for (let k = 2n; k <= BigInt(n); k++) result *= k;\n"
            "  return result;\n"
            "}\n\n"
            "console.log(factorial(5)); // 120n"
        ),
    },
    "prime": {
        "python": (
            "def is_prime(n: int) -> bool:\n"
            '    """Trial division up to the square root of n."""\n'
            "    if n < 2:\n"
            "        return False\n"
            "    k = 2\n"
            "    while k * k <= n:\n"
            "        if n % k == 0:\n"
            "            return False\n"
            "        k += 1\n"
            "    return True\n\n\n"
            "print([n for n in range(20) if is_prime(n)])  # [2, 3, 5, 7, 11, 13, 17, 19]"
        ),
        "javascript": (
            "function isPrime(n) {\n"
            "  if (n < 2) return false;\n"
            "  for (let k = 2; k * k <= n; k++) if (n % k === 0) return false;\n"
            "  return true;\n"
            "}\n\n"
            "console.log([...Array(20).keys()].filter(isPrime)); // [2, 3, 5, 7, 11, 13, 17, 19]"
        ),
    },
    "fizzbuzz": {
        "python": (
            "def fizzbuzz(limit: int) -> list[str]:\n"
            "    out = []\n"
            "    for n in range(1, limit + 1):\n"
            '        word = ("Fizz" if n % 3 == 0 else "") + ("Buzz" if n % 5 == 0 else "")\n'
            "        out.append(word or str(n))\n"
            "    return out\n\n\n"
            'print(", ".join(fizzbuzz(15)))'
        ),
        "javascript": (
            "function fizzbuzz(limit) {\n"
            "  return Array.from({ length: limit }, (_, i) => {\n"
            "    const n = i + 1;\n"
            '    const word = (n % 3 === 0 ? "Fizz" : "") + (n % 5 === 0 ? "Buzz" : "");\n'
            "    return word || String(n);\n"
            "  });\n"
            "}\n\n"
            'console.log(fizzbuzz(15).join(", "));'
        ),
    },
}
_TASK_PATTERNS: Final = (
    ("fizzbuzz", re.compile(r"fizz\s*buzz", re.I)),
    ("fibonacci", re.compile(r"fibonacci", re.I)),
    ("factorial", re.compile(r"factorial", re.I)),
    ("prime", re.compile(r"\bprimes?\b", re.I)),
    ("reverse", re.compile(r"\breverse", re.I)),
)
_CODE_TASK: Final = re.compile(
    r"^.*?\b(?:function|script|program|code|snippet|class|query)\b"
    r"(?:\s+(?:that|to|which|for|in\s+\w+\s+(?:that|to|which)))?\s*",
    re.I,
)


def _language(prompt: str) -> str:
    for name, pattern in _LANGUAGES:
        if pattern.search(prompt):
            return name
    return "python"


def code(prompt: str) -> str:
    language = _language(prompt)
    comment = _COMMENT.get(language, "//")
    header = f"{comment} Written by the {SIGNATURE}: a canned example, not generated for you.\n"
    for task, pattern in _TASK_PATTERNS:
        if pattern.search(prompt):
            snippets = _KNOWN_TASKS[task]
            if language in snippets:
                return f"```{language}\n{header}{snippets[language]}\n```"
    match = _CODE_TASK.match(prompt)
    task_text = _clean(prompt[match.end() :] if match else prompt, 60) or "the task"
    name = "_".join(w.lower() for w in re.findall(r"[A-Za-z]+", task_text)[:4]) or "solve"
    todo = f"{comment} TODO: {task_text}. Set OPENAI_API_KEY to have a real model write this."
    if language == "python":
        body = f'def {name}(*args, **kwargs):\n    {todo}\n    raise NotImplementedError("{name}")'
    elif language in ("javascript", "typescript"):
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
        body = f'function {camel}(...args) {{\n  {todo}\n  throw new Error("not implemented");\n}}'
    elif language == "sql":
        body = f"{todo}\nSELECT 1;"
    elif language == "bash":
        body = (
            f"#!/usr/bin/env bash\nset -euo pipefail\n{todo}\n"
            f'echo "{name}: not implemented" >&2\nexit 1'
        )
    elif language == "go":
        body = f"func {name.title().replace('_', '')}() error {{\n\t{todo}\n\treturn nil\n}}"
    else:  # rust
        body = f"fn {name}() {{\n    {todo}\n    unimplemented!()\n}}"
    return f"```{language}\n{header}{body}\n```"


def answer(prompt: str, history: Sequence[dict[str, str]]) -> str:
    question = _clean(prompt, 120) or "that"
    keywords = _keywords(prompt)
    earlier = [m["content"] for m in history if m.get("role") == "user"][:-1]
    lines = [
        f"I'm the **{SIGNATURE}** that ships with this server, so I can't actually look up "
        f"or reason about “{question}” the way a real language model would.",
        "",
        "What I can honestly offer is a way to approach it:",
        "",
    ]
    if keywords:
        lines.append(f"1. Pin down what you mean by {', '.join(f'*{k}*' for k in keywords)}.")
    else:
        lines.append("1. Restate the question in one precise sentence.")
    lines += [
        "2. Check a primary source (documentation, a standard, a paper) for each part.",
        "3. Write the answer down and test it against an example you already understand.",
        "",
    ]
    if earlier:
        lines.append(
            f"This is message {len(earlier) + 1} of yours in this conversation; earlier you "
            f"asked about “{_clean(earlier[-1], 60)}”."
        )
        lines.append("")
    lines.append(
        "For a real answer, start the server with `OPENAI_API_KEY` set, or point "
        "`OPENAI_BASE_URL` at a local model server (Ollama, vLLM, llama.cpp)."
    )
    return "\n".join(lines)


def reply(system_prompt: str, messages: Sequence[dict[str, str]]) -> str:
    """The offline model's full answer to a chat-completions request.

    What to write is decided by the task marker our prompts open with, never by their
    prose; a request without a marker (any other client) gets an answer-shaped reply.
    """
    last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    task = task_of(system_prompt)
    if task == CLASSIFY_TASK:
        return classify(last_user)
    if task == "generate_poem":
        return poem(last_user)
    if task == "generate_code":
        return code(last_user)
    return answer(last_user, messages)
