"""groklab: measure and see how neural networks memorize, compress and generalize."""

__version__ = "0.1.0"


class GroklabError(Exception):
    """An error the user caused (config, CLI argument, file). The CLI prints one line and exits 2."""
