"""Multimodal SFT on the training core: processor-rendered samples, assistant-only loss, ADS fitting to the stage
length, length-balanced packing with per-sample boundaries, per-stage frozen towers, and the generated task sets
that train `nano-vl-tiny` and `nano-audio-tiny`. See docs/multimodal-training.md."""
