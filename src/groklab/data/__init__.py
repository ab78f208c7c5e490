"""Task data: deterministic tensors from a seed. `make_task(cfg)` is the one entry point."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TaskData:
    """Train and test tensors of one task, shared by every member of an ensemble."""

    x_train: torch.Tensor  # (n_train, 2) int64 operands, or (n_train, d_in) float bits
    y_train: torch.Tensor  # (n_train,) int64 labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    n_tokens: int = 0  # modular: size of the input vocabulary (p)

    def to(self, device) -> TaskData:
        return TaskData(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                        self.y_test.to(device), self.n_classes, self.n_tokens)


def make_task(cfg) -> TaskData:
    """Build the task named by `cfg.task.kind` from a full groklab Config."""
    if cfg.task.kind == "modular":
        from groklab.data.modular import modular_task
        return modular_task(cfg.task.p, cfg.task.op, cfg.data.train_fraction, cfg.data.only_a_le_b,
                            cfg.data.seed, getattr(cfg.data, "nonzero_b", False),
                            python_shuffle=getattr(cfg.data, "split", "shared") == "python")
    from groklab.data.parity import parity_task
    return parity_task(cfg.task.n_bits, cfg.task.k_bits, cfg.data.n_train, cfg.data.n_test,
                       cfg.task.bias_column, cfg.data.seed)
