"""Voices: samples, clone jobs, our records of remote voices and their clean-up."""
