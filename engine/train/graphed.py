"""A whole training step (forward, loss, backward, optimizer update) as one CUDA graph.

MOSAIC's step is a few thousand small kernels; launched one by one from Python the GPU waits
for the host (the bench's profile: kernels are about an eighth of an eager step). Captured
once and replayed, the launches cost about a microsecond each and the host is out of the loop.

What capture needs, and where it comes from:
* no shape and no control flow that depends on the data: MOSAIC's reads at fixed capacities
  (engine.vm.static_reads) with the chains planner, which walks every position as an event;
* no host sync inside the step (the same);
* an optimizer whose step counter lives on the device (``capturable=True``);
* inputs copied into the graph's own buffers before each replay.
"""
from __future__ import annotations

from typing import Callable

import torch


class GraphedStep:
    """``step(*inputs)`` -> loss (0-dim tensor on the device), replaying one captured training step.

    ``loss_of(*inputs)`` must run the forward and return the loss; the graph adds backward and
    ``optimizer.step()``. ``example`` gives the inputs' shapes and dtypes (their values are only
    used by the warm-up steps, which do update the weights). The optimizer must have been made
    with ``capturable=True``. Raises RuntimeError where capture is not possible (no GPU, or an op
    in the step that syncs with the host).
    """

    def __init__(self, loss_of: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer,
                 example: tuple[torch.Tensor, ...], warmup: int = 3):
        if not example or not all(t.is_cuda for t in example):
            raise RuntimeError("a CUDA graph needs the step's inputs on a CUDA device")
        for group in optimizer.param_groups:
            if not group.get("capturable", False):
                raise RuntimeError("the optimizer must be made with capturable=True to be captured")
        self.inputs = tuple(t.clone() for t in example)
        self.optimizer = optimizer

        def step():
            optimizer.zero_grad(set_to_none=False)
            loss = loss_of(*self.inputs)
            loss.backward()
            optimizer.step()
            return loss

        # warm up on a side stream (as torch.cuda.graphs asks): compiles the Triton kernels and
        # makes the gradient buffers and optimizer state that the graph then reuses
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(max(1, warmup)):
                step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = step()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Copy ``inputs`` (the example's shapes) into the graph's buffers and replay one step."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs, got {len(inputs)}")
        for dst, src in zip(self.inputs, inputs):
            if src.shape != dst.shape:
                raise ValueError(f"input shape {tuple(src.shape)} is not the captured {tuple(dst.shape)}")
            if src.data_ptr() != dst.data_ptr():
                dst.copy_(src)
        self.graph.replay()
        return self.loss
