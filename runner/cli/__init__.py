"""The command line: a thin shell over the domain (main.py has the group)."""
