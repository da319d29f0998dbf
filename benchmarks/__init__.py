"""Side-by-side benchmarks against transformers (scripts, not tests). Run all: ``python -m benchmarks.run_all``."""
