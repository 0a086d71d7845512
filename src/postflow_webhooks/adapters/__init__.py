"""Adapters: one technology each, fitted to the domain's ports."""
