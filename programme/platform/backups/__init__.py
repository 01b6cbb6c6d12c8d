"""Backups of the whole database (``inspire backup``) and restoring them (``inspire restore``)."""
