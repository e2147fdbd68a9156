"""One optimiser step, and the batch source of a model that draws its own batches.

The step stays lean (it sets the throughput the benchmark compares with the matmul
roofline): no host sync, gradients set to None rather than zeroed, the loss returned as a
detached 0-d tensor that the loop sums on the device between logs. Forward, loss and
backward run eagerly or as one compiled graph (:mod:`.compiled_step`, ``RELIGHTZOO_STEP``).
"""

from __future__ import annotations

import torch

from ..errors import TrainingError
from .compiled_step import loss_and_backward

__all__ = ["train_step", "model_train_step", "ModelBatches"]


def train_step(
    model, optimizer, pixels: torch.Tensor, lights: torch.Tensor, rgb: torch.Tensor, *, precision: str = "fp32"
) -> torch.Tensor:
    """One optimiser step on a batch; returns the loss as a detached 0-d tensor (no host sync).

    The loss is the MSE between the model's output and ``2 * rgb - 1`` (``rgb`` in [0, 1] is
    mapped in place: the sampler hands out a fresh tensor each batch). ``precision``: ``fp32``
    or ``bf16`` mixed precision (:mod:`.precision`).
    """
    return model_train_step(model, optimizer, pixels, lights, rgb.mul_(2.0).sub_(1.0), precision=precision)


def model_train_step(model, optimizer, *batch: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """One optimiser step on a batch a model drew itself (``training_batch``): ``batch`` is
    ``(*inputs, target)`` with ``target`` in [-1, 1]; the loss is the MSE between
    ``model(*inputs)`` and ``target``, as for coordinate models. Returns the detached loss."""
    *inputs, target = batch
    optimizer.zero_grad(set_to_none=True)
    loss = loss_and_backward(model, inputs, target, precision=precision)  # eager, or compiled (compiled_step.py)
    optimizer.step()
    return loss.detach()


class ModelBatches:
    """The batch source of a model that draws its own batches (an image model).

    Such a model offers ``training_batch(generator, batch_size) -> (*inputs, target)``, with
    ``target`` in [-1, 1] and ``forward(*inputs)`` giving the prediction on the same scale;
    ``batch_size`` counts target pixels, like the (pixel, light) samples of a coordinate
    model. This wraps it with a seeded generator and the sampler's ``sample`` /
    ``state_dict`` / ``load_state_dict``, so checkpoints, resume and the logs work unchanged.
    """

    def __init__(self, model, batch_size: int, *, seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.generator = torch.Generator(device=torch.device(device))
        self.generator.manual_seed(int(seed))

    def sample(self) -> tuple[torch.Tensor, ...]:
        """One batch, ``(*inputs, target)``."""
        return tuple(self.model.training_batch(self.generator, self.batch_size))

    def state_dict(self) -> dict:
        """The generator state and the batch size, to resume the batch sequence exactly."""
        return {"generator": self.generator.get_state().clone(), "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        if int(state["batch_size"]) != self.batch_size:
            raise TrainingError(f"batch state was saved with batch size {int(state['batch_size'])}, not {self.batch_size}")
        self.generator.set_state(torch.as_tensor(state["generator"]).to(torch.uint8).cpu())
