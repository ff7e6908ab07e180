"""The wire protocol, pure: frame codec, error codes, bus topics, mentions, channel names.

Imported by the hub and the agent client alike; it imports nothing beyond the
standard library.
"""
