"""Speed benchmarks (kernels, decoding, training); ``mosaic bench`` and scripts/gpu_check.py print them."""
