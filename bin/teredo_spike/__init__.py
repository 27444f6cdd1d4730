"""teredo_spike: the app's logic (see docs/ARCHITECTURE.md)."""
