"""How a backend declares its options: a dataclass whose fields carry their help text.

Each backend module defines one (``OpenAIOptions``, ``VLLMOptions``, ``HFOptions``); the registry in
``backends/__init__`` names it, ``open_generator`` checks a caller's options against it, and the CLI derives
its per-backend flags (name, type, default, help) from its fields. So a new backend brings its flags with it.

Field metadata: ``help`` (one sentence), ``flag`` (False: the command declares it itself, e.g. ``--base-url``
whose name differs per role), ``cli_type`` (the flag's value type when the field's own type is wider, e.g. ``str``
for a list that the command line spells as JSON text; optional when the default is None), ``samples`` (True: the
value changes what the model answers, e.g. the context length that cuts answers, so it is part of a run's resume
key and a finished run made under another value is never reported for this one).
"""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str, *, flag: bool = True, cli_type: Any = None, samples: bool = False) -> Any:
    """A dataclass field with its help text (see the module docstring)."""
    metadata = {"help": help, "flag": flag, "cli_type": cli_type, "samples": samples}
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(name: str) -> str:
    """``gpu_memory_utilization`` -> ``--gpu-memory-utilization``."""
    return "--" + name.replace("_", "-")


def option_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}
