"""Calls to partners and providers: the outbound address guard, the provider modes (configured,
sandbox, none) and the integrations status probes."""
