"""Real-browser tests of the Temporal Web UI of `make run`'s stack (tests/browser/install.sh)."""
