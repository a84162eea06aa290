"""kumiai: the platform an AI research consortium runs on."""

__version__ = "0.1.0"
