"""Coder and tester prompts of the ``chat`` protocol, as chat messages, and prompt template files.

(The ``cure`` protocol's raw prompt strings live in ``protocols``.)

The default texts carry the same content and answer format as the CURE paper's evaluation prompts, so numbers
are comparable with the paper: the coder thinks, then writes one ```python block that reads stdin with
input() and prints with print(); the tester reasons step by step, then ends with **Test Input:** /
**Test Output:** / **Explanation:** blocks. Users may override either prompt with a template file; the
hash of the prompt texts goes into the run manifest so two runs with different prompts are never confused.

Template files: ``.txt`` is the user message (the default system message is kept); ``.json`` is a list of
``{"role", "content"}`` messages. Placeholders use ``{{name}}``: ``{{problem}}`` (required) for both roles,
``{{example_intro}}`` for the tester (empty unless examples are shown).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cure_bench.errors import ConfigError
from cure_bench.types import ChatMessages, Task

CODER_SYSTEM = "You are a helpful assistant help user solve problems."
CODER_USER = (
    "You need to think first then write python script. "
    "You should use input() to input and print() to output in your script.\n"
    "This is the problem:\n{{problem}}"
)

TESTER_SYSTEM = "You are a helpful assistant help user generate test examples for coding tasks."
TESTER_USER = (
    "Given a coding task, instead of providing the final script, your task is to generate a new test example "
    "(both input, output and explanation).\n"
    "This is the problem:\n{{problem}}\n"
    "{{example_intro}}\n"
    "You need to provide a new test example. A good test example should be completely accurate and conform to "
    "the problem's format requirements, while also possessing enough discriminative power to distinguish correct "
    "code from incorrect code.\n"
    "Before providing a test example, you must think carefully and reason step by step to derive an input and "
    "output you are very confident are correct. For example, start by designing an input you can reliably handle, "
    "then compute the output step by step. If you're unsure about the output, revise or re-design the input to "
    "ensure accuracy. Directly providing input/output pairs without this process is discouraged, as it often "
    "results in low accuracy.\n"
    "Finally, after completing these previous thinking and derivation steps (you should not write the final test "
    "example unless you have gone through these steps very thoroughly), you MUST put your final test example in "
    "the following format:\n\n"
    "**Test Input:**\n```input here```\n\n"
    "**Test Output:**\n```output here```\n\n"
    "**Explanation:**\nexplanation here."
)

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def fill_placeholders(text: str, **values: str) -> str:
    """Replace ``{{name}}`` by ``values[name]`` in one pass (a value's own braces are never re-read)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class PromptTemplate:
    """A list of (role, content-with-placeholders) messages."""

    messages: tuple[tuple[str, str], ...]
    source: str = "default"
    raw: str | None = None  # a .txt file's whole text: the raw prompt string under --protocol cure

    def render(self, **values: str) -> ChatMessages:
        return tuple((role, fill_placeholders(content, **values)) for role, content in self.messages)

    def text(self) -> str:
        return json.dumps([list(m) for m in self.messages], ensure_ascii=False)


DEFAULT_CODER = PromptTemplate((("system", CODER_SYSTEM), ("user", CODER_USER)))
DEFAULT_TESTER = PromptTemplate((("system", TESTER_SYSTEM), ("user", TESTER_USER)))


def load_template(path: str | Path, role: str, flag: str) -> PromptTemplate:
    """Read a template file for ``role`` ("coder"/"tester"); errors name ``flag`` and the file."""
    path = Path(path)
    default = DEFAULT_CODER if role == "coder" else DEFAULT_TESTER
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read the template ({exc.strerror})") from None
    text: str | None = None
    if path.suffix == ".json":
        messages = _parse_json_template(raw, path, flag)
    else:
        messages = ((default.messages[0][0], default.messages[0][1]), ("user", raw))
        text = raw
    if not any("problem" in _PLACEHOLDER.findall(content) for _, content in messages):
        raise ConfigError(f"{flag} {path}: the template never uses {{{{problem}}}}; the model would not see the task")
    return PromptTemplate(messages, source=str(path), raw=text)


def _parse_json_template(raw: str, path: Path, flag: str) -> tuple[tuple[str, str], ...]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag} {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{flag} {path}: expected a non-empty JSON list of {{'role', 'content'}} messages")
    messages = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise ConfigError(f"{flag} {path}: message {i} needs a string 'content'")
        role = item.get("role", "user")
        if role not in ("system", "user", "assistant"):
            raise ConfigError(f"{flag} {path}: message {i} has role {role!r}; use system, user or assistant")
        messages.append((role, item["content"]))
    return tuple(messages)


def examples_sentence(task: Task, n: int) -> str:
    """The paper's sentence presenting ``n`` public examples (it lists every example, whatever ``n`` says)."""
    inputs = ", ".join(repr(t.input) for t in task.example_tests)
    outputs = ", ".join(repr(t.output) for t in task.example_tests)
    if n == 1:
        return f"We already have one test sample:\n Its input is {inputs}. Its output is {outputs}."
    return (
        f"We already have {n} test samples:\n The inputs are, respectively, {inputs}. "
        f"The corresponding outputs are {outputs}."
    )


def example_intro(task: Task) -> str:
    """The paper's sentence presenting public examples to the tester (only with --show-examples)."""
    n = len(task.example_tests)
    return examples_sentence(task, n) + "\n" if n else ""


def coder_messages(task: Task, template: PromptTemplate | None = None) -> ChatMessages:
    return (template or DEFAULT_CODER).render(problem=task.question)


def tester_messages(task: Task, show_examples: bool = False, template: PromptTemplate | None = None) -> ChatMessages:
    intro = example_intro(task) if show_examples else ""
    return (template or DEFAULT_TESTER).render(problem=task.question, example_intro=intro)


def prompt_hash(*templates: PromptTemplate | None) -> str:
    """sha256 over the template texts in use (defaults included), for the manifest."""
    digest = hashlib.sha256()
    for tpl, default in zip(templates, (DEFAULT_CODER, DEFAULT_TESTER), strict=False):
        digest.update((tpl or default).text().encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()
