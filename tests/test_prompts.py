import json

import pytest

from cure_bench.errors import ConfigError
from cure_bench.generation.prompts import coder_messages, load_template, prompt_hash
from cure_bench.generation.prompts import tester_messages as make_tester_messages
from cure_bench.types import Task, TestCase

TASK = Task(
    task_id="t1",
    question="Read two integers and print their sum.",
    time_limit=1.0,
    example_tests=[TestCase("1 2\n", "3\n")],
    hidden_tests=[TestCase("5 5\n", "10\n")],
)


def test_coder_prompt_states_the_problem_and_io_contract():
    messages = dict(coder_messages(TASK))
    assert TASK.question in messages["user"]
    assert "input()" in messages["user"] and "print()" in messages["user"]


def test_tester_hides_examples_unless_asked():
    hidden = dict(make_tester_messages(TASK))["user"]
    shown = dict(make_tester_messages(TASK, show_examples=True))["user"]
    assert "'1 2\\n'" not in hidden
    assert "Its input is '1 2\\n'. Its output is '3\\n'." in shown
    assert "**Test Input:**" in hidden and "**Test Output:**" in hidden and "{{" not in hidden


def test_txt_template_replaces_user_message(tmp_path):
    path = tmp_path / "coder.txt"
    path.write_text("Solve: {{problem}}")
    template = load_template(path, "coder", "--coder-prompt")
    messages = coder_messages(TASK, template)
    assert messages[-1] == ("user", f"Solve: {TASK.question}")
    assert messages[0][0] == "system"
    assert prompt_hash(template, None) != prompt_hash(None, None)


def test_json_template(tmp_path):
    path = tmp_path / "tester.json"
    path.write_text(json.dumps([{"role": "user", "content": "Write a test for {{problem}} {{example_intro}}"}]))
    messages = make_tester_messages(TASK, True, load_template(path, "tester", "--tester-prompt"))
    assert len(messages) == 1 and "We already have one test sample" in messages[0][1]


def test_template_errors_name_the_flag_and_file(tmp_path):
    missing = tmp_path / "none.txt"
    with pytest.raises(ConfigError, match=r"--coder-prompt .*none\.txt"):
        load_template(missing, "coder", "--coder-prompt")
    no_problem = tmp_path / "p.txt"
    no_problem.write_text("no placeholder")
    with pytest.raises(ConfigError, match=r"--tester-prompt .*\{\{problem\}\}"):
        load_template(no_problem, "tester", "--tester-prompt")
    bad_json = tmp_path / "p.json"
    bad_json.write_text("[{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_template(bad_json, "coder", "--coder-prompt")
