"""A realistic integration suite that ``interlock demo`` runs (``make run``)."""
