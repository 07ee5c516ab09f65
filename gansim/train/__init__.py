"""gansim.train package."""
