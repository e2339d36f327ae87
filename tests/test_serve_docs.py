"""Every framework page in docs/reward_serve/ has a copy-paste recipe; each test here takes the recipe from the
page as written (flags, paths, JSON bodies, Python) and runs it the way that framework would, against a live
server, checking the reward values. A page edit that breaks a recipe breaks a test."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import shlex
import subprocess
import sys
import tomllib
from argparse import Namespace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cure_bench.serve import transport as cure_transport
from tests.test_serve_frameworks import (
    ADD_PROBLEM,
    DOUBLE_PROBLEM,
    SlimeSample,
    open_live,
    slime_load_function,
    verl_custom_reward_fn,
    verl_run_single,
)
from tests.test_serve_live import ADD, DOUBLE, PRINT3, TOKEN, live, sandbox, tester

__all__ = ["live", "open_live", "sandbox", "tester"]

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "reward_serve"


def blocks(page: str, lang: str) -> list[str]:
    """The fenced code blocks of ``lang`` in ``docs/reward_serve/<page>``, in order."""
    text = (PAGES / page).read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def curl_body(block: str) -> tuple[str, Any]:
    """(path with query, JSON body) of the curl command in a block."""
    line = next(ln for ln in block.splitlines() if ln.startswith("curl "))
    words = shlex.split(line)
    url = next(w for w in words if w.startswith("localhost:"))
    return url[url.index("/") :], json.loads(words[words.index("-d") + 1])


@pytest.fixture(autouse=True)
def _fresh_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cure_transport.URL_ENV, raising=False)
    monkeypatch.delenv(cure_transport.TOKEN_ENV, raising=False)
    monkeypatch.setattr(cure_transport, "_clients", {})


def test_every_framework_has_a_page_linked_from_the_overview() -> None:
    overview = (ROOT / "docs" / "reward_serve.md").read_text()
    for page in ("openrlhf.md", "verl.md", "slime.md", "trl.md", "sandbox_fusion.md"):
        assert (PAGES / page).is_file() and f"(reward_serve/{page})" in overview


def test_no_recipe_uses_flags_openrlhf_removed() -> None:
    for page in [ROOT / "docs" / "reward_serve.md", *PAGES.glob("*.md")]:
        for block in re.findall(r"^```bash\n(.*?)^```$", page.read_text(), flags=re.MULTILINE | re.DOTALL):
            assert "--remote_rm_url" not in block and " --label_key" not in block, page.name


def test_openrlhf_recipe(open_live: str) -> None:
    url_recipe, file_recipe, curl = blocks("openrlhf.md", "bash")
    assert "--reward.remote_url http://127.0.0.1:8765/get_reward" in url_recipe
    assert "--data.label_key problem" in url_recipe
    command = re.search(r"\"\$\((python -c '[^']*')\)\"", file_recipe)
    assert command is not None
    printed = subprocess.run([sys.executable, *shlex.split(command.group(1))[1:]], capture_output=True, text=True)
    spec = importlib.util.spec_from_file_location("reward_func", printed.stdout.strip())  # as OpenRLHF loads it
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.reward_func)

    path, body = curl_body(curl)
    answer = httpx.post(open_live + path, json=body, timeout=60).json()
    assert answer["rewards"] == pytest.approx([2 / 3]) and answer["extra_logs"]["num_tests"] == [3.0]


def test_verl_09_recipe(live: Any) -> None:
    (recipe,) = blocks("verl.md", "bash")
    settings = dict(re.findall(r"\+?reward\.custom_reward_function\.([\w.]+)=(\S+)", recipe))
    reward_kwargs = {k.removeprefix("reward_kwargs."): v for k, v in settings.items() if k.startswith("reward_kwargs.")}
    assert reward_kwargs.pop("url") == "http://127.0.0.1:8765"
    reward_kwargs = {k: yaml.safe_load(v) for k, v in reward_kwargs.items()}  # hydra's parsing: true -> True
    fn = verl_custom_reward_fn(settings["path"], settings["name"], {**reward_kwargs, "url": live.url, "token": TOKEN})
    assert inspect.iscoroutinefunction(fn)
    out = asyncio.run(verl_run_single(fn, "x", ADD, json.dumps({"inputs": []}), {"question": ADD_PROBLEM}))
    assert out["reward_score"] == pytest.approx(2 / 3)
    assert set(out["reward_extra_info"]) == {"score", "pass_rate", "extract_ok", "num_tests"}


def test_verl_batch_manager_recipe(live: Any) -> None:
    (recipe,) = blocks("verl.md", "yaml")
    config = yaml.safe_load(recipe)
    assert config["reward_model"]["reward_manager"] == "batch"
    command = re.search(r"# (python -c '[^']*')", recipe)
    assert command is not None
    printed = subprocess.run([sys.executable, *shlex.split(command.group(1))[1:]], capture_output=True, text=True)
    spec = importlib.util.spec_from_file_location("custom_module", printed.stdout.strip())  # old verl: by file
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, config["custom_reward_function"]["name"])
    kwargs = {**config["custom_reward_function"]["reward_kwargs"], "url": live.url, "token": TOKEN}
    scores = fn(
        data_sources=["x", "x"],
        solution_strs=[ADD, PRINT3],
        ground_truths=[ADD_PROBLEM] * 2,
        extra_infos=None,
        **kwargs,
    )
    assert scores == pytest.approx([2 / 3, 1 / 3])


def test_slime_recipes(open_live: str, live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    remote, curl, custom = blocks("slime.md", "bash")
    assert "--rm-type remote_rm --rm-url http://127.0.0.1:8765/get_reward" in remote
    path, body = curl_body(curl)
    answer = httpx.post(open_live + path, json=body, timeout=60).json()
    assert answer["reward"] == 1.0 and answer["num_tests"] == 4

    rm_paths = set(re.findall(r"--custom-rm-path (\S+)", custom))
    assert len(rm_paths) == 1
    rm = slime_load_function(rm_paths.pop())
    monkeypatch.setenv(cure_transport.TOKEN_ENV, TOKEN)
    args = Namespace(rm_url=live.url, reward_key=None)
    assert asyncio.run(rm(args, SlimeSample(prompt="p", response=DOUBLE, label=DOUBLE_PROBLEM))) == 1.0
    assert asyncio.run(rm(args, [SlimeSample(response=ADD, label=ADD_PROBLEM)])) == pytest.approx([2 / 3])


def test_trl_recipe(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    build, train = blocks("trl.md", "python")
    monkeypatch.setenv(cure_transport.TOKEN_ENV, TOKEN)
    namespace: dict[str, Any] = {}
    exec(build.replace("http://127.0.0.1:8765", live.url), namespace)  # the recipe as written, our server's port
    reward = namespace["reward"]
    assert inspect.iscoroutinefunction(reward) and reward.__name__ == "cure_tests"
    got = asyncio.run(reward(prompts=["p", "p"], completions=[ADD, DOUBLE], problem=[ADD_PROBLEM, DOUBLE_PROBLEM]))
    assert got == pytest.approx([2 / 3, 1.0])
    assert "reward_funcs=[reward]" in train

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "trl>=1.16,<1.17" in extras["train"]


def test_sandbox_fusion_recipe(open_live: str) -> None:
    (curl,) = blocks("sandbox_fusion.md", "bash")
    (shown,) = blocks("sandbox_fusion.md", "json")
    path, body = curl_body(curl)
    answer = httpx.post(open_live + path, json=body, timeout=60).json()
    expected = json.loads(shown)
    assert {k: answer[k] for k in ("status", "message", "compile_result", "files")} == {
        k: expected[k] for k in ("status", "message", "compile_result", "files")
    }
    for key in ("status", "return_code", "stdout", "stderr"):
        assert answer["run_result"][key] == expected["run_result"][key], key
