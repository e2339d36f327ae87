"""Planning a bench run's generation: each role's backend and options, the prompt form, the sampling sent.

Split from ``pipeline`` so every check that needs no request (options against the chosen backend, the protocol
against the endpoint, sampling resolution) reads in one place, and runs before anything is created.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cure_bench.config import BenchConfig, ModelConfig
from cure_bench.errors import ConfigError
from cure_bench.generation.prompts import PromptTemplate
from cure_bench.types import Generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RolePlan:
    """A role's model, its chosen backend and its checked options (nothing built yet)."""

    model_cfg: ModelConfig
    backend: str
    reason: str
    options: Any
    foreign: frozenset[str]

    @property
    def text_prompt(self) -> bool:
        return bool(getattr(self.options, "text_prompt", False))


def plan_roles(cfg: BenchConfig, protocol: str) -> dict[str, RolePlan]:
    """Choose each role's backend and check its options; same-identity roles share one plan ("coder").

    In `cure bon` the CLI hands both roles the same flags, so an option is an error only when neither role's
    backend takes it.
    """
    from cure_bench.generation.backends import choose_backend, options_class, resolve_options, takers
    from cure_bench.generation.backends.options import option_fields

    roles = {"coder": cfg.coder}
    if cfg.tester is not None and cfg.tester.identity() != cfg.coder.identity() and not cfg.single:
        roles["tester"] = cfg.tester
    chosen = {role: choose_backend(m.model, m.base_url, m.backend) for role, m in roles.items()}
    plans = {}
    for role, m in roles.items():
        others = {b for r, (b, _) in chosen.items() if r != role}
        foreign = frozenset(name for b in others for name in option_fields(options_class(b)))
        backend, reason = chosen[role]
        if m.base_url and backend == "openai":  # a malformed or duplicated list, named by its own flag
            from cure_bench.generation.backends.endpoints import parse_base_urls

            parse_base_urls(m.base_url, "--base-url" if cfg.tester is None else f"--{role}-base-url")
        if m.base_url and backend not in takers("base_url"):
            raise ConfigError(
                f"the {backend} backend does not take a base URL (got {m.base_url}); a server URL needs "
                "--backend openai (or auto)"
            )
        options = resolve_options(backend, m.options, defaults=connection(m), foreign=foreign)
        if protocol != "cure" and backend == "openai" and getattr(options, "text_prompt", False):
            raise ConfigError(
                "--endpoint completions sends one raw prompt string, which only --protocol cure builds; "
                "use --protocol cure or --endpoint chat"
            )
        plans[role] = RolePlan(m, backend, reason, options, foreign)
    return plans


def connection(m: ModelConfig) -> dict[str, Any]:
    return {"base_url": m.base_url, "api_key": m.api_key}


@dataclass(frozen=True)
class GenerationPlan:
    """Per role: its plan, whether its prompts are raw strings, and the sampling sent (protocol + overrides)."""

    protocol: str
    plans: dict[str, RolePlan]
    text: tuple[bool, bool]  # (coder, tester): raw prompt strings?
    sampling: tuple[Any, Any]  # ResolvedSampling of (coder, tester)
    prompt_sha256: str

    @classmethod
    def build(
        cls,
        cfg: BenchConfig,
        protocol: Any,
        plans: dict[str, RolePlan],
        templates: tuple[PromptTemplate | None, PromptTemplate | None],
    ) -> GenerationPlan:
        from cure_bench.generation.protocols import resolve_sampling

        tester = plans.get("tester", plans["coder"])
        cure = protocol.name == "cure"
        text = (cure and plans["coder"].text_prompt, cure and tester.text_prompt)
        sampling = (
            resolve_sampling(protocol, text[0], cfg.overrides),
            resolve_sampling(protocol, text[1], cfg.overrides),
        )
        return cls(protocol.name, plans, text, sampling, protocol.prompt_sha256(templates, text))

    def role_plan(self, role: str) -> RolePlan:
        return self.plans.get(role, self.plans["coder"])

    def manifest_entries(self) -> dict[str, Any]:
        """The protocol, and per role every sampling value it set and every one the user overrode."""
        coder, tester = (s.describe() for s in self.sampling)
        return {
            "protocol": {
                "name": self.protocol,
                "coder": {"prompt_form": "text" if self.text[0] else "chat", "sampling": coder},
                "tester": {"prompt_form": "text" if self.text[1] else "chat", "sampling": tester},
            },
            "sampling": coder["sent"],
        }


def open_role(plan: RolePlan) -> tuple[Generator, dict[str, Any]]:
    from cure_bench.generation.backends import open_generator

    m = plan.model_cfg
    log.info("%s: backend %s (%s)", m.model, plan.backend, plan.reason)
    opened = open_generator(m.model, m.backend, m.options, defaults=connection(m), foreign=plan.foreign)
    return opened.generator, opened.describe()
