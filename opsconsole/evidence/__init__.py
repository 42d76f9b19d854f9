"""What is kept to show what happened: the audit trail, CSV exports and the backup drill."""
