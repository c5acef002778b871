"""The emulator against what the live service answered in Microsoft's recorded tests (see conftest.py)."""
