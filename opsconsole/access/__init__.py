"""Who is calling and what they may do and see: API tokens, authentication, permissions and
the support roles, rate limits, monitoring access and personal-data masking."""
