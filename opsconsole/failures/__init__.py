"""The failure registry every app declares its failures in, their fingerprints, and the retry
policy."""
