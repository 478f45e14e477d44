"""The evaluation commands' logic, shared by ``mosaic eval`` and ``python -m engine.eval``.

Each function loads the model(s), runs one benchmark and returns plain JSON values;
with a baseline the result holds both, for a side-by-side table.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.train.checkpoint import load_trained_model, train_length


def _device(name: str | None) -> torch.device:
    from engine.train.loop import resolve_device
    return resolve_device(name)


def _load(path, device):
    model, arch, name = load_trained_model(path, device)
    return model, arch, (str(path) if path is not None else "default"), path


def recall(model_path=None, baseline_path=None, facts: list[int] | None = None,
           distances: list[int] | None = None, samples: int = 8, device: str | None = None,
           plot: str | Path | None = None, progress=None) -> dict:
    """The recall grid (or one cell) for the model and optionally a baseline.

    Returns {"train_len", "facts", "distances", "results": {model_name: [cells]}}; each cell has
    accuracy (0-1), facts, distance, model.
    """
    from engine.eval.recall import DEFAULT_FACTS, default_distances, n_buckets_of, plot_recall, recall_grid
    dev = _device(device)
    results: dict[str, list[dict]] = {}
    train_len = None
    for path in [model_path] + ([baseline_path] if baseline_path else []):
        model, arch, name, p = _load(path, dev)
        tl = train_length(model, arch, p)
        train_len = train_len or tl
        fs = facts or list(DEFAULT_FACTS)
        ds = distances or default_distances(train_len)
        nb = n_buckets_of(model, arch)
        results[name] = recall_grid(model, arch, fs, ds, samples, nb, model_name=name, progress=progress)
    if plot:
        plot_recall(results, plot, train_len)
    return {"train_len": train_len, "results": results}


def _each(model_path, baseline_path, device, bench) -> dict:
    """{"results": {name: bench(model, arch, n_buckets, name)}} for the model and the baseline."""
    from engine.eval.recall import n_buckets_of
    dev = _device(device)
    out = {}
    for path in [model_path] + ([baseline_path] if baseline_path else []):
        model, arch, name, _ = _load(path, dev)
        out[name] = bench(model, arch, n_buckets_of(model, arch), name)
    return {"results": out}


def updates(model_path=None, baseline_path=None, facts: int = 6, samples: int = 16,
            device: str | None = None, split: str = "heldout") -> dict:
    """Recall after updates (:func:`engine.eval.recall.update_cell`) for the model and optionally a baseline."""
    from engine.eval.recall import update_cell
    return _each(model_path, baseline_path, device,
                 lambda m, arch, nb, name: update_cell(m, arch, facts, samples, nb, model_name=name, split=split))


def forget(model_path=None, baseline_path=None, facts: int = 6, samples: int = 16,
           device: str | None = None, split: str = "heldout") -> dict:
    """Replies after "forget the X" (:func:`engine.eval.recall.forget_cell`)."""
    from engine.eval.recall import forget_cell
    return _each(model_path, baseline_path, device,
                 lambda m, arch, nb, name: forget_cell(m, arch, facts, samples, nb, model_name=name, split=split))


def replies(model_path=None, baseline_path=None, facts: int = 16, distance: int = 2000, samples: int = 8,
            device: str | None = None, split: str = "heldout") -> dict:
    """The model's own replies to recall questions (:func:`engine.eval.recall.reply_cell`)."""
    from engine.eval.recall import reply_cell
    return _each(model_path, baseline_path, device,
                 lambda m, arch, nb, name: reply_cell(m, arch, facts, distance, samples, nb, model_name=name,
                                                      split=split))


def tools(model_path=None, baseline_path=None, samples_per_tool: int = 1, max_new: int = 1600,
          device: str | None = None, limit: int | None = None, split: str = "heldout",
          retries: int = 0, retry_temperature: float = 0.5) -> dict:
    """Tool definitions and calls (:func:`engine.eval.tools.evaluate_tools`)."""
    from engine.curriculum import tools as toolset
    from engine.eval.tools import evaluate_tools
    dev = _device(device)
    out = {}
    for path in [model_path] + ([baseline_path] if baseline_path else []):
        model, arch, name, _ = _load(path, dev)
        out[name] = evaluate_tools(model, arch, samples_per_tool, max_new,
                                   toolset.TOOLS[:limit] if limit else None, model_name=name, split=split,
                                   retries=retries, retry_temperature=retry_temperature)
    return {"results": out}


def impulses(model_path=None, baseline_path=None, samples: int = 16, device: str | None = None) -> dict:
    from engine.eval.impulses import evaluate_impulses
    return _each(model_path, baseline_path, device,
                 lambda m, arch, nb, name: evaluate_impulses(m, arch, samples, nb, model_name=name))


def recall_table(report: dict) -> str:
    """Plain-text table: one row per (facts, distance), one column per model."""
    names = list(report["results"])
    cells: dict[tuple[int, int], dict[str, float]] = {}
    for name, rows in report["results"].items():
        for r in rows:
            cells.setdefault((r["facts"], r["distance"]), {})[name] = r["accuracy"]
    head = f"{'facts':>5} {'distance':>9} " + " ".join(f"{n[-24:]:>24}" for n in names)
    lines = [head, "-" * len(head)]
    for (f, d), accs in sorted(cells.items()):
        lines.append(f"{f:>5} {d:>9} " + " ".join(
            f"{(100 * accs[n]):>23.1f}%" if n in accs else f"{'-':>24}" for n in names))
    return "\n".join(lines)
