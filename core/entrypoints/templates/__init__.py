"""Templates shipped as package data (``*.tmpl``), read with importlib.resources."""
