"""Services: polling and actions. They report through callbacks; no Textual here."""
