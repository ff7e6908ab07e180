"""Test helpers shared by every tier: raw agents, fake servers, deadlines (`util`).

Imported as `from support.agent import RawAgent`; pytest puts `tests/` on the path
through the rootdir conftest, so no test touches `sys.path`.
"""
