"""Tables of the analysis app."""
