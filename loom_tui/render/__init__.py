"""Pure formatting for the console's views: plain dicts from the facade in, Rich text out (no widgets)."""
