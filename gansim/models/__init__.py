"""gansim.models package."""
