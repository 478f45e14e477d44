"""The TUI's widgets: one module per panel."""
