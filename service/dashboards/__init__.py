"""Saved dashboards: named lists of panels whose queries the API resolves in one call."""
