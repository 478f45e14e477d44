"""Training steps replayed from CUDA graphs.

MOSAIC's step is a few thousand small kernels; launched one by one from Python the GPU waits
for the host. Captured once and replayed, each launch costs about a microsecond and the host is
out of the loop. Capture needs no shape and no control flow that depends on the data (MOSAIC's
reads at fixed capacities, engine.vm.static_reads), no host sync inside the step, an optimizer
whose step count and learning rate live on the device (``capturable=True``), and inputs copied
into the graph's own buffers before each replay.

:class:`GraphedStep` is one whole step on fixed inputs (the benchmarks). :class:`GraphedTrainStep`
is ``mosaic train --cuda-graph``: the trainer's step as two CUDA graphs.

Graph 1 holds zero-grad, forward, losses, backward and gradient clipping; graph 2 the
optimizer step. Between the two the host reads one flag: did a memory layer take more READ or
SCAN positions than its fixed capacity (engine.vm.static_reads)? If not, graph 2 applies the
step. If so, graph 1's gradients are dropped and the step runs eagerly instead (exact), the
capacities grow and both graphs are captured again. A batch whose InfoNCE columns (writes,
reads, superseded writes) are wider than the captured ones does the same; narrower ones are
padded with masked entries, which change no loss. So every applied step is the eager step's,
with one difference: a parameter that gets no gradient in a step (a memory whose layer read
nothing) gets a zero one, so AdamW still moves it by its momentum where the eager loop skips it.

The first step, and every re-capture, runs eagerly on a side stream (the warm-up that capture
needs: Triton compiles, gradient buffers exist) and is a real training step.
``capture=False`` runs the same bodies eagerly at every "replay" (the tests, on a CPU).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable

import torch

from engine.vm.static_reads import ReadCapacity, ReadCounter, larger, padded, read_capacity, read_overflow

# the InfoNCE columns of a batch (engine.curriculum.batches.collate), per group one width
COLUMNS = {"writes": ("write_idx", "write_mask"), "reads": ("read_idx", "read_target", "read_mask"),
           "supers": ("super_col", "super_target", "super_mask")}


def column_widths(batch: dict[str, torch.Tensor]) -> dict[str, int]:
    """The width of each column group the batch has: {"writes": W, "reads": R, "supers": S}."""
    return {g: batch[cols[0]].shape[1] for g, cols in COLUMNS.items() if cols[0] in batch}


def pad_columns(batch: dict[str, torch.Tensor], widths: dict[str, int]) -> dict[str, torch.Tensor]:
    """``batch`` with each column group padded to ``widths`` by zeros (masks False): the losses
    only look at masked-in entries, so they are unchanged. Raises ValueError if one is wider."""
    out = dict(batch)
    for g, width in widths.items():
        for name in COLUMNS[g]:
            x = batch[name]
            extra = width - x.shape[1]
            if extra < 0:
                raise ValueError(f"{name}: {x.shape[1]} columns, more than the {width} to pad to")
            if extra:
                out[name] = torch.cat([x, x.new_zeros(x.shape[0], extra)], dim=1)
    return out


@contextmanager
def _side_stream(enabled: bool = True):
    """Inside the ``with``: a fresh CUDA stream that waits for the current one, which waits for it
    after (where PyTorch's capture recipe wants the warm-up); nothing when not ``enabled``."""
    if not enabled:
        yield
        return
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream().wait_stream(side)


def _round_up(n: float, multiple: int) -> int:
    return math.ceil(n / multiple) * multiple


class GraphedTrainStep:
    """One training step per :meth:`step`, replayed from CUDA graphs (see the module docstring).

    model: the MosaicLM or window LM (parameters as trained); optimizer: made with
    ``capturable=True`` and a tensor learning rate when ``capture``; loss_of(batch, teacher,
    weights, active) -> (loss, parts) runs the forward (under autocast if wanted) and
    :func:`engine.train.losses.compute_losses` with those ``active`` terms, weights 0-dim tensors.
    weights: the auxiliary weights of the first step (their names fix the active terms).
    columns: False where the losses never read the InfoNCE columns (the window baseline's): they
    are left out of the graph's inputs, so their widths never make it capture again.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 loss_of: Callable, weights: dict[str, float], grad_clip: float, device: torch.device,
                 capture: bool = True, headroom: float = 1.5, multiple: int = 64, columns: bool = True):
        if capture and device.type != "cuda":
            raise ValueError("--cuda-graph needs a CUDA device")
        self.model, self.optimizer, self.loss_of = model, optimizer, loss_of
        self.grad_clip, self.capture, self.columns = grad_clip, capture, columns
        self.headroom, self.multiple = headroom, multiple
        self.weights = {k: torch.tensor(float(v), device=device) for k, v in weights.items()}
        self.active = frozenset(k for k, v in weights.items() if v > 0)
        self.capacity: ReadCapacity | None = None
        self.widths: dict[str, int] | None = None
        self.captures = 0        # how often the graphs were (re)made
        self.overflows = 0       # steps redone eagerly because their reads did not fit
        self._replay1 = self._replay2 = None
        self.loss = self.parts = self.overflow = None

    # ------------------------------------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor], teacher, weights: dict[str, float]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Train on ``batch`` (tensors on the device) with ``teacher`` (or None) and the current
        auxiliary ``weights``; returns (loss, parts), valid until the next call."""
        if not self.columns:  # losses that never look at the InfoNCE columns (the window baseline)
            batch = {k: v for k, v in batch.items() if not any(k in cols for cols in COLUMNS.values())}
        need = column_widths(batch)
        if self.widths is None or any(need[g] > self.widths.get(g, 0) for g in need):
            old = self.widths or {}
            self.widths = {g: _round_up(max(need[g], old.get(g, 0)) * self.headroom, self.multiple) for g in need}
            self._replay1 = None
        batch = pad_columns(batch, self.widths)
        for k, v in weights.items():
            if k in self.weights:
                self.weights[k].fill_(float(v))
        if self._replay1 is not None:
            self._load(batch, teacher)
            self._replay1()
            if self.overflow is None or not bool(self.overflow):   # the one host read of a step
                self._replay2()
                return self.loss, self.parts
            self.overflows += 1
        return self._eager_then_capture(batch, teacher)

    # ------------------------------------------------------------------------------------------
    def _eager_then_capture(self, batch, teacher):
        """This step eagerly (exact reads; counted), then the graphs for the batches after it."""
        with _side_stream(self.capture):
            with ReadCounter(self.model) as counter:
                self.optimizer.zero_grad(set_to_none=False)
                loss, parts = self.loss_of(batch, teacher, self.weights, self.active)
                loss.backward()
            self._clip()
            self.optimizer.step()
        need, cap = counter.need, self.capacity
        if cap is None or need.reads > cap.reads or need.scans > cap.scans:   # grow only past it
            self.capacity = padded(need if cap is None else larger(need, cap), self.headroom, self.multiple)
        self.static_batch = {k: v.clone() for k, v in batch.items()}
        self.static_teacher = None if teacher is None else type(teacher)(
            *(None if x is None else x.clone() for x in (teacher.opcodes, teacher.write_gate, teacher.bucket)))
        self._make_graphs()
        self.captures += 1
        return loss.detach(), {k: v.detach() for k, v in parts.items()}

    def _clip(self) -> None:
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)

    def _body1(self):
        self.optimizer.zero_grad(set_to_none=False)
        with read_capacity(self.model, self.capacity):
            loss, parts = self.loss_of(self.static_batch, self.static_teacher, self.weights, self.active)
            loss.backward()
            overflow = read_overflow(self.model)
        self._clip()
        return loss.detach(), {k: v.detach() for k, v in parts.items()}, overflow

    def _make_graphs(self) -> None:
        if not self.capture:
            def replay1():
                self.loss, self.parts, self.overflow = self._body1()
            self._replay1, self._replay2 = replay1, self.optimizer.step
            return
        self._replay1 = self._replay2 = None   # the old graphs go before the new ones are made
        g1, g2 = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        # thread_local: the data loader's pin-memory thread may allocate while this thread captures
        with torch.cuda.graph(g1, capture_error_mode="thread_local"):
            self.loss, self.parts, self.overflow = self._body1()
        with torch.cuda.graph(g2, pool=g1.pool(), capture_error_mode="thread_local"):
            self.optimizer.step()
        self._graphs = (g1, g2)
        self._replay1, self._replay2 = g1.replay, g2.replay

    def _load(self, batch, teacher) -> None:
        for k, v in self.static_batch.items():
            v.copy_(batch[k], non_blocking=True)
        if teacher is not None:
            for name in ("opcodes", "write_gate", "bucket"):
                x = getattr(teacher, name)
                if x is not None:
                    getattr(self.static_teacher, name).copy_(x, non_blocking=True)


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
        with _side_stream():
            for _ in range(max(1, warmup)):
                step()
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


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of every group: in place where it is a tensor (a captured optimizer
    reads it from there), else replaced."""
    for g in optimizer.param_groups:
        if isinstance(g["lr"], torch.Tensor):
            g["lr"].fill_(lr)
        else:
            g["lr"] = lr
