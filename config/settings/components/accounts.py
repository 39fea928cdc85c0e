"""Settings of the accounts context, read from the environment (see the README's table)."""
