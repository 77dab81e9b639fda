"""``python -m starter.cli``: the same as the ``cancelctl`` console script."""

from starter.cli import entrypoint

entrypoint()
