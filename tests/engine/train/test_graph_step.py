"""The trainer's CUDA-graph step (engine.train.graph_step), its bodies run eagerly on the CPU:
the same training as the plain loop, also when reads overflow their capacity or a batch's
InfoNCE columns outgrow the captured ones; padded columns and tensor weights change no loss."""
import pytest
import torch

from engine.train.config import train_preset
from engine.train.data import make_batch
from engine.train.graph_step import GraphedTrainStep, column_widths, pad_columns, set_lr
from engine.train.loop import _teacher, aux_weights, build_model, train
from engine.train.losses import compute_losses


def _setup(seed=0, arch="mosaic"):
    cfg = train_preset("tiny", seed=seed, seq_len=96, batch_size=3, arch=arch)
    torch.manual_seed(seed)
    model, _, mem_layers, n_buckets = build_model(cfg)
    return cfg, model, mem_layers, n_buckets


def _batch(cfg, n_buckets, step):
    return make_batch(step, cfg.batch_size, cfg.seq_len, n_buckets, cfg.seed, 0)


def test_padded_columns_and_tensor_weights_change_no_loss():
    cfg, model, mem_layers, n_buckets = _setup()
    batch = _batch(cfg, n_buckets, 0)
    teacher = _teacher(batch, 1.0)
    out = model(batch["ids"], teacher=teacher)
    weights = aux_weights(cfg, 0.1)
    ref_loss, ref = compute_losses(out, batch, weights, mem_layers)
    widths = column_widths(batch)
    wide = pad_columns(batch, {g: w + 5 for g, w in widths.items()})
    assert column_widths(wide) == {g: w + 5 for g, w in widths.items()}
    tensors = {k: torch.tensor(v) for k, v in weights.items()}
    active = frozenset(k for k, v in weights.items() if v > 0)
    loss, parts = compute_losses(out, wide, tensors, mem_layers, active=active)
    assert torch.allclose(loss, ref_loss, rtol=1e-6), (loss, ref_loss)
    for k in ref:
        assert torch.allclose(parts[k], ref[k], rtol=1e-5, atol=1e-7), k
    with pytest.raises(ValueError, match="columns"):
        pad_columns(batch, {g: 0 for g in widths})


def _train(graphed: bool, steps: int = 12, arch: str = "mosaic"):
    cfg, model, mem_layers, n_buckets = _setup(1, arch)
    # plain SGD: AdamW turns rounding-level differences of a near-zero gradient into steps of size
    # lr, and moves a parameter with a zero gradient (the graph's) but not one with none (eager)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loss_of(b, t, w, active=None):
        return compute_losses(model(b["ids"], teacher=t), b, w, mem_layers, cfg.infonce_tau, active=active)
    step_fn = None
    losses = []
    for step in range(steps):
        batch = _batch(cfg, n_buckets, step)
        # half the rows teacher-forced: the others read where the model decides, so counts vary
        teacher = _teacher(batch, 0.5) if arch == "mosaic" else None
        weights = aux_weights(cfg, step / steps)
        set_lr(opt, 0.05 * (1 - step / steps))
        if graphed:
            if step_fn is None:  # exact capacities and widths: later batches outgrow them
                step_fn = GraphedTrainStep(model, opt, loss_of, weights, cfg.grad_clip, torch.device("cpu"),
                                           capture=False, headroom=1.0, multiple=1, columns=arch == "mosaic")
            loss, _ = step_fn.step(batch, teacher, weights)
        else:
            loss, _ = loss_of(batch, teacher, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
        losses.append(loss.item())
    return losses, model, step_fn


def test_graph_steps_train_as_the_plain_loop_through_overflows_and_wider_batches():
    ref_losses, ref_model, _ = _train(False)
    losses, model, step_fn = _train(True)
    assert step_fn.overflows > 0, "no batch went past the first batch's read counts"
    assert step_fn.captures > step_fn.overflows, "no batch outgrew the first batch's columns"
    assert torch.allclose(torch.tensor(losses), torch.tensor(ref_losses), rtol=1e-4), (losses, ref_losses)
    for (n, p), q in zip(ref_model.named_parameters(), model.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), f"{n}: max diff {(p - q).abs().max()}"


def test_graph_steps_train_the_window_baseline_as_the_plain_loop():
    ref_losses, ref_model, _ = _train(False, steps=4, arch="window")
    losses, model, step_fn = _train(True, steps=4, arch="window")
    assert step_fn.overflows == 0 and step_fn.captures == 1   # no memory, no columns: one capture
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    for (n, p), q in zip(ref_model.named_parameters(), model.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), n


def test_cuda_graph_on_a_cpu_is_refused_in_one_line(tmp_path):
    cfg = train_preset("tiny", steps=1, cuda_graph=True)
    with pytest.raises(ValueError, match="--cuda-graph needs one process on a CUDA device"):
        train(cfg, tmp_path / "run", device="cpu", log=lambda s: None, progress_bar=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
