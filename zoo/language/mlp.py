"""Feed-forward mixers: squared-ReLU MLP (Nemotron-H), SwiGLU (Llama, Qwen2, DeciLM) and DeciLM's linear block.

SwiGLU keeps gate and up in one `gate_up` Linear (split on save) so the FFN is two matmuls, not three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor, nn

from zoo.language.config import BlockSpec, LMConfig

if TYPE_CHECKING:
    from zoo.language.model import ForwardContext


class MLP(nn.Module):
    """relu2: down(relu(up(x))^2); swiglu: down(silu(gate(x)) * up(x)). x: (b, l, hidden)."""

    def __init__(self, config: LMConfig, block: BlockSpec) -> None:
        super().__init__()
        self.activation = config.mlp_activation
        self.intermediate_size = width = config.block_intermediate(block)
        if self.activation == "relu2":
            self.up_proj = nn.Linear(config.hidden_size, width, bias=False)
        else:
            self.gate_up = nn.Linear(config.hidden_size, 2 * width, bias=False)
        self.down_proj = nn.Linear(width, config.hidden_size, bias=False)

    def forward(self, x: Tensor, ctx: ForwardContext | None = None, state: None = None) -> Tensor:
        if self.activation == "relu2":
            return self.down_proj(F.relu(self.up_proj(x)).square())
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class LinearMixer(nn.Module):
    """DeciLM `replace_with_linear`: one hidden x hidden Linear without bias (Puzzle's cheapest block variant)."""

    def __init__(self, config: LMConfig, block: BlockSpec) -> None:
        super().__init__()
        self.linear = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x: Tensor, ctx: ForwardContext | None = None, state: None = None) -> Tensor:
        return self.linear(x)
