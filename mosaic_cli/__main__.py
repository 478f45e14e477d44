"""``python -m mosaic_cli``: the same as the ``mosaic`` console script."""
from mosaic_cli.app import main

main()
