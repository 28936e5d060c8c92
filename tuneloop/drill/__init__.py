"""The drill: a domain shift replayed through the running system, and its offline tools."""
