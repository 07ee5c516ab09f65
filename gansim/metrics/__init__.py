"""gansim.metrics package."""
