"""Channels: one module per platform. Each parses what arrives and renders what leaves."""
