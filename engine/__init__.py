"""mosaic's engine: the VM model, its training, the autonomous runtime, learning and persistence.

Subpackages: ``vm`` (the model), ``curriculum`` and ``train`` (slow timescale),
``runtime`` (events, drives, engine thread, consolidation, ledger), ``learn``
(medium timescale, LoRA), ``store`` (atomic files, sessions, event log),
``eval`` (quality benchmarks). The engine never imports the CLI or the TUI.
"""
