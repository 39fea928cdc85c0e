"""The PostgreSQL database backend of every alias (config/env.py names it in `ENGINE`)."""
