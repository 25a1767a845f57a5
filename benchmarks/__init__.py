"""kgnet's benchmark suite: `python -m benchmarks.run --suite quick|full` (see benchmarks/run.py)."""
