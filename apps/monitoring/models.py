"""Models of monitoring."""
