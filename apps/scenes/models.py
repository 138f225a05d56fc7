"""Models of scenes."""
