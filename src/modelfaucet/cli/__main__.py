"""``python -m modelfaucet.cli``."""

from .main import main

main()
