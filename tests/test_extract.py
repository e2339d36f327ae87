from cure_bench.generation.extract import extract_program, extract_test, strip_reasoning
from cure_bench.types import TestCase


def test_last_python_block_wins():
    text = "draft:\n```python\nprint(1)\n```\nfinal:\n```python\nprint(2)\n```\n"
    assert extract_program(text) == "print(2)"


def test_falls_back_to_last_fenced_block_of_any_kind():
    assert extract_program("```\nprint(3)\n```") == "print(3)"
    assert extract_program("```py\nx=1\n```") == "x=1"


def test_no_block_means_no_program():
    assert extract_program("I think the answer is print(1)") is None
    assert extract_program("```python\n\n```") is None


def test_code_inside_reasoning_is_ignored():
    text = "<think>```python\nprint('draft')\n```</think>Answer:\n```python\nprint('final')\n```"
    assert extract_program(text) == "print('final')"
    assert extract_program("<think>```python\nprint(1)\n```") is None  # still thinking at the token limit


def test_strip_reasoning_handles_missing_opening_tag():
    assert strip_reasoning("reasoning here</think>answer") == "answer"
    assert strip_reasoning("a<think>b</think>c") == "ac"


def test_fenced_test_pair_is_extracted_and_normalised():
    text = (
        "Let me think.\n**Test Input:**\n```\n3\n1 2 3\n```\n\n**Test Output:**\n```\n6\n```\n\n**Explanation:**\nsum."
    )
    assert extract_test(text) == TestCase(input="3\n1 2 3\n", output="6\n")


def test_last_pair_wins_and_plaintext_tag_and_escaped_newlines_are_cleaned():
    text = (
        "**Test Input:**\n```\n1\n```\n**Test Output:**\n```\n1\n```\n"
        "**Test Input:**\n```plaintext\n2\\n5\n```\n**Test Output:**\n```plaintext\n7\n```\n"
    )
    assert extract_test(text) == TestCase(input="2\n5\n", output="7\n")


def test_plain_text_fallback_like_cure():
    text = "**Test Input:**\n4 5\n**Test Output:**\n9\n**Explanation:** add"
    assert extract_test(text) == TestCase(input="4 5\n", output="9\n")


def test_missing_parts_give_none():
    assert extract_test("no test here") is None
    assert extract_test("**Test Output:**\n```\n1\n```") is None
    assert extract_test("<think>**Test Input:**\n```\n1\n```\n**Test Output:**\n```\n1\n```</think>nothing") is None
