"""A headless synthetic headset: logs in, joins a session, streams, measures.

Used by the end-to-end tests, the streaming benchmark and for load. See ``__main__.py``.
"""
