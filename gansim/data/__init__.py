"""gansim.data package."""
