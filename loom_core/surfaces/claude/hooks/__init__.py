"""Hook scripts ``loom setup --hooks`` registers with Claude Code (spec §8.5): advisory, never a security boundary."""
