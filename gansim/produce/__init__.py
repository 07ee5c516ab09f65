"""gansim.produce package."""
