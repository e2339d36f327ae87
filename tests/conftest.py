"""Fixtures shared by the whole suite (each defined in tests/helpers/, exported here once)."""

from tests.helpers.fixtures import fake_openai, tiny_model_dir

__all__ = ["fake_openai", "tiny_model_dir"]
