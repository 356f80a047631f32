"""Executors run the run specs of a plan: ``local`` (a process pool on this machine; the default)."""
