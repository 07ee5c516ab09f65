"""gansim.sim package."""
