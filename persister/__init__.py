"""The persister: single writer and sequencer of messages (`python -m persister`)."""
