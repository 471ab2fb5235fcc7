"""The console's static files, served under /console/static/ (package data)."""
