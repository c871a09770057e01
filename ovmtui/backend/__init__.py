"""Backends: the only code that talks to hosts. No Textual here."""
