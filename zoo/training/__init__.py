"""Training: data pipeline, the shared loop, pretraining (with the FP8 recipe), SFT, FSDP2, recipes.

Submodules are imported on use (`from zoo.training import loop`); nothing runs at import.
"""
