"""Users: accounts, activation codes, passwords, tokens and per-user settings."""
