"""The ``modelfaucet`` command line: the same services behind a terminal."""
