"""mosaic's command line and TUI: commands parse, call the engine and print; no logic of their own."""
