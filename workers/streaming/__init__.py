"""Streaming data plane: render, stamp, encode and send stereo video over WebRTC.

No Django here: the worker is a client of the platform and drives this package through
:class:`workers.streaming.peer.StreamPeer` and :class:`workers.streaming.peer.PeerRegistry`.
"""
