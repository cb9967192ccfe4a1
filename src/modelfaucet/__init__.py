"""ModelFaucet billing and settlement service."""

__version__ = "0.7.0"
