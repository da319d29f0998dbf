"""GRPO building blocks: recipe config, loss, rollouts, data rules. The entrypoint is `zoo.training.grpo.grpo`."""

from zoo.training.rl.config import AlgoConfig, EntropyProbeConfig, GRPORecipe, PromptSource, RolloutConfig, StageConfig
from zoo.training.rl.loss import GRPOLoss, group_advantages, policy_loss, token_logprobs
from zoo.training.rl.rollout import build_batch, pick_temperature, probe_entropy, sample, score_batch
from zoo.training.rl.rules import PromptPool, loss_mask, read_prompts, stage_at

__all__ = ["AlgoConfig", "EntropyProbeConfig", "GRPORecipe", "PromptSource", "RolloutConfig", "StageConfig",
           "GRPOLoss", "group_advantages", "policy_loss", "token_logprobs", "build_batch", "pick_temperature",
           "probe_entropy", "sample", "score_batch", "PromptPool", "loss_mask", "read_prompts", "stage_at"]
