"""PEFT LoRA adapters on a MosaicLM: which layers, how to attach, snapshot and merge.

The adapters are injected with ``peft.get_peft_model``, which swaps the chosen
``nn.Linear`` modules *in place* for ``lora.Linear`` wrappers. So the
``MosaicLM`` object the runtime holds runs with the adapters at once, its
``forward``/``step`` paths are unchanged (the integer slot pass never sees
LoRA: it works on projections the wrapped layers already produced), and the
base weights stay frozen tensors that no optimizer ever sees.

``peft`` is imported inside the functions: importing it costs ~3 s.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftModel

# Name patterns (regular expressions on the last dotted parts of a module's
# path) of the linear layers that get adapters by default: the MLP that reads
# u, and the projections that carry register / memory readouts and the output
# back into the residual stream or the vocabulary. The heads that drive integer
# decisions (opcode, router, write gate, utility, commitment) and the write
# key/value/query projections are left alone on purpose: moving them would move
# which slot a stored fact lives in, and memory written before the update could
# no longer be found.
DEFAULT_TARGETS: tuple[str, ...] = (
    r"mlp_in",              # u -> the gated MLP (gate and up halves)
    r"mlp_out",             # the MLP back into the residual stream
    r"registers\.readout",  # register readout
    r"memory\.out",         # memory readout (no bias: no read still adds exactly zero)
    r"head",                # the LM head (logits)
)

ADAPTER_NAME = "default"


class AdapterError(ValueError):
    """A clear, one-line problem with adapters (no matching layer, incompatible files)."""


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA shape: which layers, rank, scale. Saved with every adapter by PEFT."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise AdapterError(f"rank must be >= 1, got {self.rank}")
        if not self.targets:
            raise AdapterError("targets must name at least one layer pattern")


def linear_names(model: nn.Module) -> list[str]:
    """Full dotted names of every ``nn.Linear`` in ``model`` (LoRA-wrapped ones reported by their base name)."""
    names = []
    for name, module in model.named_modules():
        if type(module) is nn.Linear:
            # inside a lora.Linear the real layer is "<name>.base_layer"
            names.append(name[: -len(".base_layer")] if name.endswith(".base_layer") else name)
    return names


def resolve_targets(model: nn.Module, patterns: tuple[str, ...] | list[str]) -> list[str]:
    """The full names of the linear layers whose path ends with a match of one of ``patterns``.

    A pattern is a regular expression matched against the trailing dotted parts
    of a name (``"lm_head"`` matches ``lm_head``; ``"mlp\\.up"`` matches
    ``blocks.3.mlp.up``). Raises AdapterError if nothing matches.
    """
    compiled = [re.compile(rf"(^|\.)(?:{p})$") for p in patterns]
    chosen = [n for n in linear_names(model) if any(c.search(n) for c in compiled)]
    if not chosen:
        raise AdapterError(
            f"no linear layer matches the adapter targets {list(patterns)}; "
            f"linear layers are: {linear_names(model)[:20]}"
        )
    return chosen


def lora_config(model: nn.Module, settings: LoraSettings):
    """A ``peft.LoraConfig`` naming the exact layers of ``model`` that ``settings`` selects."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=resolve_targets(model, settings.targets),
        bias="none",
        init_lora_weights=True,  # B = 0: a new adapter is exactly the base model
        **settings.extra,
    )


def attach(model: nn.Module, settings: LoraSettings | None = None) -> "PeftModel":
    """Wrap ``model``'s chosen linear layers with fresh LoRA adapters (in place) and return the PeftModel.

    Every base parameter gets ``requires_grad=False``; only ``lora_A``/``lora_B`` train.
    """
    from peft import get_peft_model

    settings = settings or LoraSettings()
    if is_attached(model):
        raise AdapterError("this model already carries LoRA adapters")
    return get_peft_model(model, lora_config(model, settings))


def load(model: nn.Module, folder, trainable: bool = True) -> "PeftModel":
    """Attach the adapter saved in ``folder`` (PEFT's save_pretrained format) to ``model``.

    ``trainable=True`` matters: PEFT loads adapters frozen otherwise.
    """
    from peft import PeftModel

    if is_attached(model):
        raise AdapterError("this model already carries LoRA adapters")
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=trainable)
    except (ValueError, KeyError, RuntimeError) as exc:  # wrong targets / shapes
        raise AdapterError(f"adapter in {folder} does not fit this model: {str(exc).splitlines()[0]}") from exc


def is_attached(model: nn.Module) -> bool:
    """True if any submodule of ``model`` is a PEFT LoRA layer."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # pragma: no cover
        return False
    return any(isinstance(m, LoraLayer) for m in model.modules())


def adapter_params(peft_model: "PeftModel") -> list[nn.Parameter]:
    """The trainable adapter parameters (LoRA A and B of every wrapped layer)."""
    return [p for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" in n]


def base_params(peft_model: "PeftModel") -> dict[str, torch.Tensor]:
    """Every non-adapter parameter and buffer, by name (the frozen base model)."""
    out = {n: p for n, p in peft_model.named_parameters() if "lora_" not in n}
    out.update({n: b for n, b in peft_model.named_buffers() if "lora_" not in n})
    return out


def adapter_state(peft_model: "PeftModel") -> dict[str, torch.Tensor]:
    """A detached copy of the adapter weights (PEFT's state-dict keys; never the base ``lm_head``)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(
        peft_model, save_embedding_layers=False).items()}


def set_adapter_state(peft_model: "PeftModel", state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` (from adapter_state) back into the adapter, bit for bit."""
    from peft import set_peft_model_state_dict

    with torch.no_grad():
        result = set_peft_model_state_dict(peft_model, state)
    if getattr(result, "unexpected_keys", None):
        raise AdapterError(f"adapter state has unknown keys: {result.unexpected_keys[:3]}")


def merged_copy(peft_model: "PeftModel") -> nn.Module:
    """A deep copy of the base model with the adapters folded into its weights (plain nn.Linear again).

    The live model is never merged in place: merge then unmerge is not bit-exact
    in floating point, and the base weights must stay bit-identical.
    """
    return copy.deepcopy(peft_model).merge_and_unload()


def unwrap(model: nn.Module) -> nn.Module:
    """The MosaicLM inside a PeftModel (or ``model`` itself)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        return model
    return model.get_base_model() if isinstance(model, PeftModel) else model


def base_digest(model: nn.Module) -> str:
    """sha256 of the base model's weights, LoRA parameters excluded (the same before and after
    attaching adapters): adapters are only valid on the exact base they were learned on."""
    import hashlib

    h = hashlib.sha256()
    state = unwrap(model).state_dict()
    names = sorted((k.replace(".base_layer.", "."), k) for k in state if "lora_" not in k)
    for clean, key in names:
        h.update(clean.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
