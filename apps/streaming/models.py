"""Models of streaming."""
