"""Gitea worker: answers `gitea` frames and the HTTP Gitea routes over the bus."""
