"""Stage 2 of the data path: prompts, generators (``backends/``), the on-disk generation cache, extraction.

Tasks come in, chat messages or raw prompt strings go to a Generator, raw answers come back and are cached
per sample, and ``extract`` turns each answer into a program or an (input, output) test.
"""
