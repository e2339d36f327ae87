"""Stage 1 of the data path: task files in, validated :class:`~cure_bench.types.Task` records out.

``reader`` parses and validates the CURE task schema; ``registry`` knows the named datasets (bundled
sample, hub downloads, dates); ``convert/`` turns other benchmarks' formats into the task schema.
"""
