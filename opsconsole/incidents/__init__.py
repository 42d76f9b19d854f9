"""Incidents: the records, notes and write-ups staff keep, and the recorder that opens one when
the console itself notices trouble."""
