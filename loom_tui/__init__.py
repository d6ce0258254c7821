"""loom's full-screen console (Textual). The engine never imports this package."""
