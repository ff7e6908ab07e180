"""Telegram bridge: one chat <-> one hub channel, over the Bot API."""
