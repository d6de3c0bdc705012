"""carebridge: one normalized, resilient API over CareCloud practice tenants."""

__version__ = "0.1.0"
__all__ = ["__version__"]
