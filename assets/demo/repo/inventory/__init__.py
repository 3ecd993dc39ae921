from .stock import Stock, OutOfStock

__all__ = ["Stock", "OutOfStock"]
