"""OpenRLHF custom reward function backed by the reward server (``--remote_rm_url /path/to/this/file.py``).

Why a file when ``/get_reward`` exists: OpenRLHF's HTTP remote-RM client sends no headers, so it cannot
reach a server started with ``--auth-token``. OpenRLHF also accepts a Python file defining
``reward_func(queries, prompts, labels)``; this one forwards the batch to ``/get_reward`` with the token
from ``$CURE_AUTH_TOKEN`` and the URL from ``$CURE_REWARD_URL``, and returns OpenRLHF's dict
(``rewards``, ``scores``, ``extra_logs`` as tensors).

    --remote_rm_url $(python -c "import cure_bench.serve.openrlhf_reward as m; print(m.__file__)")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cure_bench.serve.transport import shared_client


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kwargs: Any) -> dict[str, Any]:
    """OpenRLHF's reward-function signature; labels are problem texts or JSON {problem|task_id}."""
    import torch

    client = shared_client(kwargs.get("url"), kwargs.get("token"), kwargs.get("timeout", 600.0))
    body = {"query": list(queries), "prompts": list(prompts), "labels": list(labels)}
    data = client.post("/get_reward", body)
    return {
        "rewards": torch.tensor(data["rewards"], dtype=torch.float32),
        "scores": torch.tensor(data["scores"], dtype=torch.float32),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in data["extra_logs"].items()},
    }
