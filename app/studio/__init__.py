"""The studio: what a page or script does to a project (verbs over store, media, masks and engines)."""
