"""Models of hermes."""
