"""Web push worker: notifies people of the messages that mention them or DM them."""
