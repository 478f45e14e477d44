"""Training hyper-parameters and presets (the model's shape comes from ``ModelConfig.preset``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ARCHS = ("mosaic", "window")


class TrainConfigError(ValueError):
    """An invalid training setting; the message names it."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything the trainer needs besides the model config.

    Annealing is by *progress* p in [0, 1] (steps done / steps, or elapsed / time budget,
    whichever is further): teacher forcing stays at ``teacher_start`` until ``teacher_hold``,
    then falls to 0 at ``teacher_end_at``; the auxiliary loss weights fall linearly to ``aux_floor`` x their
    start value at p = 1 (the opcode loss to ``opcode_floor`` x); the bucket (routing) target falls to 0 at ``bucket_end_at``.
    """

    preset: str = "tiny"
    arch: str = "mosaic"
    seq_len: int = 256
    batch_size: int = 8
    steps: int = 60
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    # auxiliary losses (start weights)
    w_opcode: float = 1.0
    w_gate: float = 0.5
    w_bucket: float = 0.5
    w_infonce: float = 0.5
    w_distill: float = 0.5
    w_balance: float = 0.1
    w_commit: float = 0.2
    w_match: float = 0.0        # an update's new key onto the old one (losses.py, "match"); off by
                                # default: on a CPU stage it traded recall for updates (MODEL.md)
    aux_floor: float = 0.1
    opcode_floor: float = 0.5    # opcodes decide what memory does at inference: keep teaching them
    infonce_tau: float = 0.1
    teacher_start: float = 1.0
    teacher_hold: float = 0.15   # fully teacher-forced until here: an untrained opcode head would
    teacher_end_at: float = 0.5  # read and write everywhere (slow, and nothing to learn from)
    bucket_end_at: float = 0.5
    # bookkeeping
    log_every: int = 10
    eval_every: int = 50
    eval_batches: int = 1
    checkpoint_every: int = 0   # 0: only at the end (and on a time-budget stop)
    time_budget: float = 0.0    # seconds; 0 = none
    workers: int | None = None  # data-loader processes; 0 = in the training process; None = auto
                                # (0 on the CPU, up to 8 beside a GPU)
    amp: bool = True            # bf16 autocast on CUDA (ignored on the CPU)
    cuda_graph: bool = False    # replay each step from CUDA graphs (engine.train.graph_step; one GPU)
    from_session: str | None = None  # also train on this session's replay log (the slow timescale)
    init_from: str | None = None     # start from these weights (model file or run folder; fresh
                                     # optimizer and schedule): a second stage with another --seed
    session_share: float = 0.25      # share of each batch taken from it
    # the curriculum's mix (engine.curriculum.episodes.Mix): the share of conversations about
    # tools, and whether tool requests also use the blind-written wordings of tool_phrases.json
    # (the defaults are what the default model trained on; held-out checks keep them)
    tools_share: float = 0.15
    more_phrases: bool = False
    tool_failures: float = 0.0  # share of tool calls whose result is a failure

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise TrainConfigError(f"arch: must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        for name in ("seq_len", "batch_size", "steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise TrainConfigError(f"{name}: must be a positive integer, got {v!r}")
        if self.seq_len < 16:
            raise TrainConfigError(f"seq_len: must be >= 16, got {self.seq_len}")
        if not self.lr > 0:
            raise TrainConfigError(f"lr: must be > 0, got {self.lr}")
        if self.time_budget < 0:
            raise TrainConfigError(f"time_budget: must be >= 0 seconds, got {self.time_budget}")
        if not 0 < self.session_share <= 1:
            raise TrainConfigError(f"session_share: must be in (0, 1], got {self.session_share}")
        if self.workers is not None and self.workers < 0:
            raise TrainConfigError(f"workers: must be >= 0, got {self.workers}")
        if not 0 <= self.tools_share < 1:
            raise TrainConfigError(f"tools_share: must be in [0, 1), got {self.tools_share}")
        if not 0 <= self.tool_failures <= 1:
            raise TrainConfigError(f"tool_failures: must be in [0, 1], got {self.tool_failures}")
        if not self.w_match >= 0:
            raise TrainConfigError(f"w_match: must be >= 0, got {self.w_match}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


TRAIN_PRESETS: dict[str, dict] = {
    # a few seconds on one CPU thread: the machinery, not quality
    "tiny": dict(seq_len=256, batch_size=8, steps=60, lr=3e-3, warmup=5, log_every=10, eval_every=30),
    # the shipped model (MODEL.md: three stages, two on one H200, where 3,000 steps take ~250 s,
    # and one on the 2-core CPU, ~23k bytes/s, cut by --time-budget)
    "default": dict(seq_len=1536, batch_size=16, steps=3000, lr=2e-3, warmup=100, log_every=20, eval_every=250),
    # sized for a few minutes of one H100/H200 (the run is usually cut by --time-budget)
    # measured on one H200: ~220k tokens/s (batch 32 x 2048), so 5 minutes are ~1,000 steps
    "base": dict(seq_len=2048, batch_size=32, steps=6000, lr=2e-3, warmup=60, log_every=25,
                    eval_every=250, checkpoint_every=1000),
}


def train_preset(name: str, **overrides) -> TrainConfig:
    """The training preset ``name`` with ``overrides`` (None values are ignored)."""
    if name not in TRAIN_PRESETS:
        raise TrainConfigError(f"preset: unknown preset {name!r} (known: {', '.join(TRAIN_PRESETS)})")
    values = dict(TRAIN_PRESETS[name], preset=name)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**values)
