"""Notifications: routing, the transactional outbox's dispatch, message rendering and the channels that deliver."""
