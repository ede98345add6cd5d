"""hook: a self-hosted labeling hook server for Camio camera events."""

__version__ = "0.1.0"
