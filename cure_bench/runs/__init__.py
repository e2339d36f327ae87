"""Run directories and their files: layout, resume, typed summary.json / samples.jsonl."""
