"""Tables of the outcomes app."""
