"""``python -m modelfaucet``."""

from .cli.main import main

main()
