"""Django admin for users (search, filters, actions) — built out by the accounts context."""
