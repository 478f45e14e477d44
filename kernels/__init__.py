"""Hot ops of the MOSAIC VM: a float32 naive reference and a Triton twin of each.

Imports nothing of ours (checked by import-linter). Public functions:
``kernels.scan.linear_scan`` and ``kernels.memory.read_slots``; ``kernels.backend``
decides which implementation runs.

Note: this top-level package is *not* Hugging Face's ``kernels`` hub package;
``__mosaic_kernels__`` marks it so, and it defines none of that package's API.
"""
__mosaic_kernels__ = True
