"""Fused decode kernels: a whole MOSAIC block's step in three launches (see triton.py).

There is no separate naive file: the reference is the model's own eager step
(``engine.vm.block.MosaicBlock.step_``), against which tests/kernels/test_fastpath.py
compares the fused path (kernels never import the engine).
"""
