"""Helpers more than one test module uses: test modules import these, never each other."""
