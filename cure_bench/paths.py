"""One cache root for everything the toolkit keeps between runs.

``$CURE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/cure``, i.e. ``~/.cache/cure``) holds ``datasets/`` (hub
downloads), ``exec/`` (the sandbox's result cache) and ``reward-serve/`` (the reward server's test cache). One
variable moves or wipes all of it, which is what users do when a disk fills up or a cluster node is shared.
The dataset cache once read ``$CURE_CACHE``; it is still honoured, with a deprecation warning, so old
scripts keep their downloads.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

CACHE_ENV = "CURE_CACHE_DIR"
LEGACY_DATASET_ENV = "CURE_CACHE"

CacheKind = Literal["datasets", "exec", "reward-serve"]


def cache_root() -> Path:
    """``$CURE_CACHE_DIR``, else ``$XDG_CACHE_HOME/cure``, else ``~/.cache/cure``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cure"


def cache_dir(kind: CacheKind) -> Path:
    """The folder of one kind of cache under :func:`cache_root` (``datasets`` also honours ``$CURE_CACHE``)."""
    if kind == "datasets":
        legacy = os.environ.get(LEGACY_DATASET_ENV)
        if legacy and not os.environ.get(CACHE_ENV):
            warnings.warn(
                f"${LEGACY_DATASET_ENV} is deprecated: set ${CACHE_ENV} to the cache root instead "
                f"(datasets then live in ${CACHE_ENV}/datasets); using {legacy} for datasets for now",
                DeprecationWarning,
                stacklevel=2,
            )
            return Path(legacy).expanduser()
    return cache_root() / kind
