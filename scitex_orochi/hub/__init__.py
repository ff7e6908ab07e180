"""The hub's internals, shared by its processes: the bus peer, configuration, the store
and its migrations, presence, ingest, supervision, and the testing harness.

Agent code never needs this package (`scitex_orochi.client` does not import it).
"""
