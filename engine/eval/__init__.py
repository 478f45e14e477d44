"""Quality benchmarks: recall (facts x distance), tools (validate, pass tests), impulses (opcodes)."""
