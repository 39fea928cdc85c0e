"""The accounts domain: users, their credentials' rules, and login sessions (refresh families)."""
