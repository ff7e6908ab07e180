"""persister package."""
