"""Serving the studio: the scripting API and its argument checks, what is exposed, temporary folders."""
