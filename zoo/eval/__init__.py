"""Verifiers and evaluation: math, code (sandboxed), tool calls, multiple choice; the eval runner.

Each verifier module exposes a plain ``score(...) -> float`` that RL rewards reuse. This package never imports
`zoo.training` (verifiers serve training, not the reverse); submodules are imported on use.
"""
