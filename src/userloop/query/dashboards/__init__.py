"""Ready-made dashboards: named lists of analysis definitions."""
