"""Count the tensor ops of one MOSAIC training step at fixed read capacities, on the CPU.

A CUDA graph of the training step replays one kernel per op, more or less, and at the bench's
sizes most of them are too small to take longer than a launch: so the op count is what a
graphed step's time follows, and it can be measured without a GPU. The step is the bench's
(engine.bench.train): forward without final state, next-byte cross-entropy, backward, AdamW.
Ops are counted at the dispatcher, after autograd, leaving out views (no kernel) and whatever
the Triton interpreter runs inside a kernel (one launch on a GPU, counted once as "triton").

    python scripts/count_step_ops.py [--kernels triton|naive] [--batch 2] [--length 64] [--trainer] [--json]

With ``--kernels triton`` (default) the Triton twins run through the interpreter, as on a GPU;
the optimizer is the foreach AdamW (the fused one a GPU uses is one kernel per parameter
group, so its count is left out of the total). ``--trainer``: the trainer's step instead (a
curriculum batch, teacher labels, every auxiliary loss, as ``mosaic train --cuda-graph`` captures
it), with the losses' own ops counted apart from the model's forward.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# no kernel: views, metadata, allocation without a fill
_FREE = ("view", "_unsafe_view", "t", "transpose", "expand", "unsqueeze", "squeeze", "permute", "slice", "select",
         "alias", "as_strided", "_reshape_alias", "split", "unbind", "split_with_sizes", "lift_fresh", "unsqueeze_",
         "empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "chunk", "narrow", "diagonal",
         "view_as", "detach", "_local_scalar_dense",
         "promote_types", "scalar_tensor")  # no device kernel: dtype logic, a CPU-side 0-dim wrapper


def count_step(kernels: str, batch: int, length: int, trainer: bool = False) -> dict:
    """{"forward": n, "losses": n, "backward": n, "optimizer": n, "triton": n, "top": {phase: [(op, n)]}}
    for one step ("losses": the trainer's auxiliary losses, 0 for the bench's cross-entropy step)."""
    if kernels == "triton":
        os.environ["TRITON_INTERPRET"] = "1"
    import torch
    import torch.nn.functional as F
    from torch.utils._python_dispatch import TorchDispatchMode

    from engine.bench.decode import kernels_mode, load_bench_model
    from engine.vm.static_reads import count_reads, padded, read_capacity

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.phase, self.ops, self.launches = "forward", collections.Counter(), 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name not in _FREE and not _in_interpreter():
                self.ops[(self.phase, name)] += 1
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    net = load_bench_model(None, torch.device("cpu")).train()
    ids = torch.randint(0, 256, (batch, length + 1), generator=torch.Generator().manual_seed(0))
    teacher, loss_of = None, None
    if trainer:
        from engine.train.config import train_preset
        from engine.train.data import make_batch
        from engine.train.loop import _teacher, aux_weights
        from engine.train.losses import AUX_NAMES, compute_losses
        cfg = train_preset("default")
        data = make_batch(0, batch, length, net.config.buckets, cfg.seed, 0)
        ids, teacher = data["ids"], _teacher(data, 0.5)
        weights = {k: torch.tensor(v) for k, v in aux_weights(cfg, 0.1).items()}
        mem = [i for i, blk in enumerate(net.blocks) if blk.memory is not None]

        def loss_of(out):
            return compute_losses(out, data, weights, mem, cfg.infonce_tau, active=frozenset(AUX_NAMES))[0]
    launches = collections.Counter()
    x = ids if trainer else ids[:, :-1]
    with kernels_mode(kernels), read_capacity(net, padded(count_reads(net, x, teacher))):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, foreach=True)
        counter = None

        def step():
            opt.zero_grad(set_to_none=True)
            out = net(x, teacher=teacher, keep_state=False)
            if counter is not None and trainer:
                counter.phase = "losses"
            if trainer:
                loss = loss_of(out)
            else:
                loss = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
            if counter is not None:
                counter.phase = "backward"
            loss.backward()
            if counter is not None:
                counter.phase = "optimizer"
            opt.step()

        step()  # warm-up: optimizer state, interpreter caches
        counter = Counter()
        with counter, _count_launches(launches):
            step()
    phases = collections.Counter()
    for (phase, _), n in counter.ops.items():
        phases[phase] += n
    top = {p: sorted(((op, n) for (ph, op), n in counter.ops.items() if ph == p), key=lambda x: -x[1])[:12]
           for p in ("forward", "backward")}
    return {"kernels": kernels, "batch": batch, "length": length, "trainer": trainer, "forward": phases["forward"],
            "losses": phases["losses"], "backward": phases["backward"], "optimizer": phases["optimizer"],
            "triton": sum(launches.values()),
            "total": phases["forward"] + phases["losses"] + phases["backward"] + sum(launches.values()), "top": top}


def _in_interpreter() -> bool:
    f = sys._getframe(2)
    while f is not None:
        if "triton/runtime/interpreter" in f.f_code.co_filename.replace("\\", "/"):
            return True
        f = f.f_back
    return False


class _count_launches:
    """Count Triton kernel launches (interpreted) while inside the ``with``."""

    def __init__(self, into: collections.Counter):
        self.into = into

    def __enter__(self):
        from triton.runtime import interpreter
        self.cls = interpreter.InterpretedFunction
        self.orig = self.cls.run
        into = self.into

        def run(fn_self, *a, **kw):
            into[getattr(fn_self.fn, "__name__", "?")] += 1
            return self.orig(fn_self, *a, **kw)
        self.cls.run = run
        return self

    def __exit__(self, *exc):
        self.cls.run = self.orig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", choices=("triton", "naive"), default="triton",
                    help="Triton twins through the interpreter (as on a GPU) or the naive references")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--trainer", action="store_true",
                    help="the trainer's step: a curriculum batch, teacher labels, every auxiliary loss")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    res = count_step(args.kernels, args.batch, args.length, args.trainer)
    if args.json:
        print(json.dumps(res))
        return 0
    what = "trainer" if args.trainer else "bench"
    print(f"one fixed-capacity {what} training step, batch {args.batch} x {args.length}, {args.kernels} kernels")
    losses = f"losses {res['losses']:,}  " if args.trainer else ""
    print(f"  forward {res['forward']:,}  {losses}backward {res['backward']:,}  Triton launches {res['triton']:,}  "
          f"total {res['total']:,}   (optimizer, foreach AdamW: {res['optimizer']:,})")
    for phase, rows in res["top"].items():
        print(f"  {phase}: " + ", ".join(f"{op} {n}" for op, n in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
