"""The test suite: tests/unit (no network) and tests/e2e (the scripts against Azurite and the Batch emulator)."""
