"""The training loop: curriculum batches, annealed teacher forcing and auxiliary losses,
periodic held-out checks, atomic resumable checkpoints, DDP when launched by torchrun."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch

from engine.train import checkpoint as ckpt
from engine.train.config import TrainConfig
from engine.curriculum.mix import Mix
from engine.train.data import batch_stream, make_batch, to_device
from engine.train.graph_step import GraphedTrainStep, set_lr
from engine.train.losses import compute_losses
from engine.train.modelcard import hardware, write_card


# ---- schedule ----------------------------------------------------------------------------------
def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps times a cosine over progress down to ``min_lr_ratio`` x lr
    (a product, so a run cut short by a time budget never jumps in learning rate)."""
    warm = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup > 0 else 1.0
    p = min(1.0, max(0.0, progress))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def teacher_p(cfg: TrainConfig, progress: float) -> float:
    """Probability that a sequence is teacher-forced: ``teacher_start`` until ``teacher_hold``,
    then linearly down to 0 at ``teacher_end_at``."""
    if cfg.teacher_end_at <= 0:
        return 0.0
    if progress <= cfg.teacher_hold:
        return cfg.teacher_start
    span = max(cfg.teacher_end_at - cfg.teacher_hold, 1e-9)
    return cfg.teacher_start * max(0.0, 1.0 - (progress - cfg.teacher_hold) / span)


def aux_weights(cfg: TrainConfig, progress: float) -> dict[str, float]:
    """Each auxiliary weight falls linearly from its start to ``aux_floor`` x start at progress 1;
    the routing target (bucket) falls to 0 at ``bucket_end_at`` (the router then lives on
    distillation and balance)."""
    p = min(1.0, max(0.0, progress))
    f = 1.0 - (1.0 - cfg.aux_floor) * p
    w = {"opcode": cfg.w_opcode * (1.0 - (1.0 - cfg.opcode_floor) * p), "gate": cfg.w_gate * f, "infonce": cfg.w_infonce * f,
         "distill": cfg.w_distill * f, "balance": cfg.w_balance * f, "commit": cfg.w_commit * f,
         "match": cfg.w_match * f}
    w["bucket"] = cfg.w_bucket * max(0.0, 1.0 - p / cfg.bucket_end_at) if cfg.bucket_end_at > 0 else 0.0
    return w


# ---- model -------------------------------------------------------------------------------------
def build_model(cfg: TrainConfig):
    """(model, model config dict, indices of the memory layers the memory losses train, buckets)."""
    from engine.vm import ModelConfig, MosaicLM
    mcfg = ModelConfig.preset(cfg.preset)
    torch.manual_seed(cfg.seed)
    if cfg.arch == "window":
        import dataclasses
        from engine.train.window import WindowLM, matched_window_config
        wcfg = matched_window_config(mcfg, cfg.seq_len)
        if cfg.init_from:
            # a further stage continues the baseline at the size it was trained at, even where
            # the preset's MOSAIC twin has changed shape since (a memory layer dropped)
            from engine.train.checkpoint import load_trained_model
            src, arch, _ = load_trained_model(cfg.init_from)
            if arch == "window":
                wcfg = dataclasses.replace(src.config, window=cfg.seq_len)
        torch.manual_seed(cfg.seed)
        return WindowLM(wcfg), wcfg.to_dict(), [], mcfg.buckets
    model = MosaicLM(mcfg)
    mem = list(mcfg.memory_layer_ids())
    # Layer 0's write key is a projection of the previous byte's embedding alone (no context
    # yet), so it cannot tell facts apart: the memory losses train the layers above it.
    if len(mem) > 1 and mem[0] == 0:
        mem = mem[1:]
    return model, mcfg.to_dict(), mem, mcfg.buckets


def _teacher(batch: dict[str, torch.Tensor], p: float):
    """Teacher labels for the sequences whose draw is under ``p`` (others decide themselves)."""
    from engine.vm import Teacher
    on = (batch["teacher_u"] < p).unsqueeze(1)
    free = torch.full_like(batch["opcode"], -1)
    return Teacher(opcodes=torch.where(on, batch["opcode"], free),
                   write_gate=torch.where(on, batch["write_gate"], free),
                   bucket=torch.where(on, batch["bucket"], free))


# ---- held-out check -----------------------------------------------------------------------------
@torch.no_grad()
def heldout_check(model, cfg: TrainConfig, n_buckets: int, device: torch.device) -> dict:
    """CE, answer-byte accuracy (READ-labelled positions predicting the recalled byte) and the last
    layer's opcode accuracy on labelled non-NOP positions, held-out split, model's own decisions.

    In float32 whatever the training precision: that is how chat and the evals run the model, and
    a model trained under bf16 autocast can decide differently there (MODEL.md, stages 7 to 9).
    For MOSAIC also ``impulses``: the balanced share of 4 held-out impulses of each kind answered
    with the fitting opcodes (``mosaic eval impulses``), which a NOP-labelled decision decides and
    ``opcode_acc`` does not count."""
    from engine.curriculum.example import NOP, READ_MEM
    was = model.training
    model.eval()
    tot = {"ce": 0.0, "answer_byte_acc": 0.0, "opcode_acc": 0.0}
    n = max(1, cfg.eval_batches)
    for i in range(n):
        b = to_device(make_batch(10_000_000 + i, min(cfg.batch_size, 16), cfg.seq_len, n_buckets,
                                 cfg.seed, 0, split="heldout"), device)
        out = model(b["ids"], keep_state=False)
        logits = out.logits.float()
        ids = b["ids"]
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 256), ids[:, 1:].reshape(-1))
        pred = logits[:, :-1].argmax(-1)
        ans = b["opcode"][:, :-1] == READ_MEM
        acc = ((pred == ids[:, 1:]) & ans).sum() / ans.sum().clamp(min=1)
        tot["ce"] += float(ce) / n
        tot["answer_byte_acc"] += float(acc) / n
        if out.aux:
            lab = b["opcode"]
            m = lab > NOP
            tot["opcode_acc"] += float(((out.aux["opcodes"][..., -1] == lab) & m).sum() / m.sum().clamp(min=1)) / n
    if out.aux:
        from engine.eval.impulses import evaluate_impulses
        tot["impulses"] = evaluate_impulses(model, "mosaic", samples=4, n_buckets=n_buckets)["balanced"]
    model.train(was)
    return {k: round(v, 4) for k, v in tot.items()}


# ---- the loop ----------------------------------------------------------------------------------
def resolve_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name} requested but CUDA is not available here")
    return dev


def init_weights(model: torch.nn.Module, arch: str, path: str | Path) -> None:
    """Copy the weights of a trained model (file or run folder) of the same arch and shape into ``model``."""
    from engine.train.checkpoint import CheckpointError, load_trained_model
    src, src_arch, _ = load_trained_model(path)
    if src_arch != arch:
        raise CheckpointError(f"--init {path}: a {src_arch} model cannot start a {arch} run")
    mine, theirs = model.state_dict(), src.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise CheckpointError(f"--init {path}: its shapes differ from this preset's model")
    model.load_state_dict(theirs)


def earlier_stages(init_from: str | None) -> list[dict]:
    """The runs that made the weights a ``--init`` run starts from, oldest first (from the
    metrics.json beside them; empty if there is none): the card lists every stage."""
    if not init_from:
        return []
    p = Path(init_from)
    metrics = (p if p.is_dir() else p.parent) / "metrics.json"
    try:
        prev = json.loads(metrics.read_text())
    except (OSError, ValueError):
        return []
    keep = ("command", "hardware", "seed", "seq_len", "batch_size", "steps_done", "tokens", "wall_s", "tokens_per_s")
    return list(prev.get("stages") or []) + [{k: prev.get(k) for k in keep}]


def train(cfg: TrainConfig, out_dir: str | Path, device: str | None = None, resume: bool = False,
          command: str = "", log: Callable[[str], None] | None = None, progress_bar: bool = True) -> dict:
    """Train per ``cfg`` into ``out_dir``; returns the run summary (also in metrics.json).

    Under torchrun (WORLD_SIZE > 1) every process trains on its own data (rank-seeded) and
    gradients are averaged by DDP (gloo on the CPU, NCCL on CUDA); rank 0 writes the files.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    ddp = world > 1
    dev = resolve_device(device)
    if ddp:
        import torch.distributed as dist
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    main = rank == 0
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    say = log if main else (lambda s: None)
    out = Path(out_dir)
    if not resume and (out / ckpt.CHECKPOINT).exists():
        # a finished or interrupted run lives there: never overwrite it silently
        raise ckpt.CheckpointError(f"{out} already holds a training run: pass --resume to continue it, "
                                   "or choose another --out")
    if main:
        out.mkdir(parents=True, exist_ok=True)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    if cfg.cuda_graph and (dev.type != "cuda" or ddp):
        raise ValueError("--cuda-graph needs one process on a CUDA device"
                         + (" (not torchrun)" if ddp else f" (this run is on {dev})"))
    model, model_cfg, mem_layers, n_buckets = build_model(cfg)
    model.to(dev)
    # a captured optimizer reads its step count and learning rate from the device
    opt = torch.optim.AdamW(model.parameters(), lr=torch.tensor(cfg.lr, device=dev) if cfg.cuda_graph else cfg.lr,
                            weight_decay=cfg.weight_decay, betas=(0.9, 0.95), fused=dev.type == "cuda",
                            capturable=cfg.cuda_graph)
    start, elapsed0, tokens0, history = 0, 0.0, 0, []
    if cfg.init_from and not resume:
        init_weights(model, cfg.arch, cfg.init_from)
        say(f"starting from the weights of {cfg.init_from}")
    if resume:
        st = ckpt.load_training_state(out)
        if st is None:
            say(f"no checkpoint in {out}: starting fresh")
        else:
            if st["train_config"].get("arch") != cfg.arch or st["model_config"] != model_cfg:
                raise ckpt.CheckpointError(f"the checkpoint in {out} is for another model "
                                           f"({st['train_config'].get('arch')}, preset {st['train_config'].get('preset')})")
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            if cfg.cuda_graph:  # checkpoints keep the learning rate as a number
                for g in opt.param_groups:
                    g["lr"] = torch.tensor(float(g["lr"]), device=dev)
            start, elapsed0, tokens0 = st["step"], st["elapsed"], st["tokens"]
            history = st.get("history", [])
            say(f"resumed from step {start}")
    net = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True)

    use_amp = cfg.amp and dev.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext
    if use_amp and cfg.arch == "mosaic":  # the memory pass moves keys to numpy: check bf16 works once
        try:
            with torch.no_grad(), autocast():
                model(torch.randint(0, 256, (2, 32), device=dev))
        except (TypeError, RuntimeError) as exc:
            say(f"bf16 autocast not usable with this model ({type(exc).__name__}); training in fp32/tf32")
            use_amp, autocast = False, nullcontext

    info = {"name": f"mosaic {cfg.arch} ({cfg.preset})", "command": command, "arch": cfg.arch,
            "preset": cfg.preset, "params": sum(p.numel() for p in model.parameters()), "seed": cfg.seed,
            "seq_len": cfg.seq_len, "batch_size": cfg.batch_size, "steps": cfg.steps,
            "time_budget": cfg.time_budget, "hardware": hardware(dev, world), "world_size": world,
            "model_config": model_cfg, "train_config": cfg.to_dict(),
            "amp": use_amp, "init_from": cfg.init_from, "stages": earlier_stages(cfg.init_from)}
    say(f"training {cfg.arch} preset={cfg.preset} params={info['params']:,} on {info['hardware']}; "
        f"seq_len={cfg.seq_len} batch={cfg.batch_size}x{world} steps={cfg.steps}"
        + (f" time_budget={cfg.time_budget:.0f}s" if cfg.time_budget else ""))

    def save(step: int, elapsed: float, tokens: int, final: bool) -> None:
        if not main:
            return
        opt_state = opt.state_dict()
        for g in opt_state["param_groups"]:  # a number, whichever way the next run trains
            g["lr"] = float(g["lr"])
        ckpt.save_training_state(out, {"step": step, "elapsed": elapsed, "tokens": tokens, "history": history,
                                       "model": model.state_dict(), "optimizer": opt_state,
                                       "train_config": cfg.to_dict(), "model_config": model_cfg})
        if final:
            ckpt.save_trained_model(model, cfg.arch, out, cfg.seq_len)

    workers = cfg.workers
    if workers is None:  # beside a GPU, Python data generation must not stall the device
        workers = 0 if dev.type != "cuda" else max(0, min(8, (os.cpu_count() or 1) // max(world, 1) - 2))
    extra = None
    if cfg.from_session:
        from engine.learn.replay_log import replay_curriculum_examples
        extra = replay_curriculum_examples(cfg.from_session, cfg.seq_len)
        if not extra:
            raise ValueError(f"session {cfg.from_session!r} has no replay log to train on")
        say(f"mixing {len(extra)} windows of session {cfg.from_session!r} into {cfg.session_share:.0%} of each batch")
    stream = batch_stream(start, cfg.batch_size, cfg.seq_len, n_buckets, cfg.seed, rank, workers,
                          pin=dev.type == "cuda", extra=extra, extra_share=cfg.session_share,
                          mix=Mix(cfg.tools_share, cfg.more_phrases, cfg.tool_failures))
    bar = _Bar(cfg.steps, start, enabled=progress_bar and main)
    graphed = None

    def loss_of(b, t, w, active=None):
        with autocast():
            output = net(b["ids"], teacher=t, keep_state=False)
        return compute_losses(output, b, w, mem_layers, cfg.infonce_tau, active=active)

    if bar.p is not None:  # log lines go through the bar's console so they do not tear it
        say = bar.p.console.print
    t0 = time.perf_counter()
    tokens = tokens0
    step = start
    stopped_by_time = False
    last_loss = float("nan")
    tick_t, tick_tokens = t0, tokens
    net.train()
    try:
        while step < cfg.steps:
            elapsed = elapsed0 + time.perf_counter() - t0
            if ddp and cfg.time_budget:  # every rank must see the same clock: same lr, same stop step
                clock = torch.tensor([elapsed], dtype=torch.float64, device=dev)
                torch.distributed.all_reduce(clock, op=torch.distributed.ReduceOp.MAX)
                elapsed = float(clock)
            if cfg.time_budget and elapsed >= cfg.time_budget:
                stopped_by_time = True
                break
            progress = step / cfg.steps
            if cfg.time_budget:
                progress = max(progress, elapsed / cfg.time_budget)
            batch = to_device(next(stream), dev)
            lr = lr_at(cfg, step, progress)
            set_lr(opt, lr)
            teacher = _teacher(batch, teacher_p(cfg, progress)) if cfg.arch == "mosaic" else None
            weights = aux_weights(cfg, progress)
            if cfg.cuda_graph:
                if graphed is None:
                    graphed = GraphedTrainStep(model, opt, loss_of, weights, cfg.grad_clip, dev,
                                               columns=cfg.arch == "mosaic")
                loss, parts = graphed.step(batch, teacher, weights)
            else:
                loss, parts = loss_of(batch, teacher, weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            step += 1
            tokens += cfg.batch_size * cfg.seq_len * world
            if step % cfg.log_every == 0 or step == cfg.steps:
                last_loss = float(loss.detach())  # the one host sync of a logging step
                now = time.perf_counter()
                tps = (tokens - tick_tokens) / max(now - tick_t, 1e-9)
                tick_t, tick_tokens = now, tokens
                extras = " ".join(f"{k}={float(v):.3f}" for k, v in parts.items() if k in
                                  ("ce", "opcode", "infonce", "nce_acc", "op_acc", "bucket", "match_cos"))
                bar.update(step, last_loss, tps)
                say(f"step {step}/{cfg.steps} loss={last_loss:.4f} {extras} lr={lr:.2e} "
                    f"tf={teacher_p(cfg, progress):.2f} tok/s={tps:,.0f}")
            else:
                bar.update(step, None, None)
            if main and cfg.eval_every and step % cfg.eval_every == 0:
                h = heldout_check(model, cfg, n_buckets, dev)
                h["step"] = step
                history.append(h)
                say(f"held-out @ {step}: {h}")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save(step, elapsed0 + time.perf_counter() - t0, tokens, final=False)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was learned (resume continues from here), then stop
        bar.close()
        save(step, elapsed0 + time.perf_counter() - t0, tokens, final=False)
        say(f"interrupted at step {step}; checkpoint saved in {out} (--resume continues)")
        raise
    finally:
        bar.close()
    wall = elapsed0 + time.perf_counter() - t0
    if main and (not history or history[-1]["step"] != step):
        h = heldout_check(model, cfg, n_buckets, dev)
        h["step"] = step
        history.append(h)
        say(f"held-out @ {step}: {h}")
    save(step, wall, tokens, final=True)
    run_tokens = tokens - tokens0
    if graphed is not None:
        info["cuda_graph"] = {"captures": graphed.captures, "steps_redone": graphed.overflows,
                              "read_capacity": [graphed.capacity.reads, graphed.capacity.scans]
                              if graphed.capacity else None}
        say(f"CUDA graph: captured {graphed.captures} time(s); {graphed.overflows} step(s) redone eagerly "
            "(reads past the capacity)")
    info.update({"steps_done": step, "tokens": tokens, "wall_s": round(wall, 2),
                 "tokens_per_s": round(run_tokens / max(time.perf_counter() - t0, 1e-9), 1),
                 "final_loss": None if math.isnan(last_loss) else round(last_loss, 4),
                 "stopped_by_time": stopped_by_time, "heldout": history, "out": str(out)})
    if main:
        ckpt.write_metrics(out, info)
        write_card(out, info)
    if ddp:
        import torch.distributed as dist
        dist.barrier()
    return info


class _Bar:
    """A rich progress bar on a terminal (stderr); silent otherwise (the log lines carry progress)."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.p = None
        if not enabled or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
                          TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.task = self.p.add_task("train", total=total, completed=start, loss="-", tps="-")
        self.p.start()

    def update(self, step: int, loss: float | None, tps: float | None) -> None:
        if self.p is None:
            return
        fields = {}
        if loss is not None:
            fields = {"loss": f"{loss:.3f}", "tps": f"{tps:,.0f}"}
        self.p.update(self.task, completed=step, **fields)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None
